"""Images in and out of the runtime.

Reading: an image file, a folder of images (sorted by name) or a video, as uint8 frames
(H×W grey or H×W×3 BGR, OpenCV's convention). Writing: an image file, a folder (same names)
or a video (mp4v), all or nothing through a temporary path. Conversions between uint8 images
and model tensors follow a manifest ``input``/``output`` spec (shape, layout, range, dtype;
three-channel tensors are RGB unless the spec says ``"channel_order": "BGR"``).

OpenCV is imported lazily (numpy-only conversions work without it).
"""

import os
import shutil
import tempfile

import numpy as np

from ..errors import EdgeganError, InputError
from .bundle import check_writable, move_into_place

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
DEFAULT_VIDEO_FPS = 25.0
GREY_WEIGHTS_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def cv2_module():
    """``cv2`` (its own logging silenced: ``quiet_opencv``), or an ``EdgeganError`` saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise EdgeganError("reading and writing images and videos needs OpenCV: pip install opencv-python-headless "
                           "(on a Jetson: the JetPack OpenCV, `sudo apt install python3-opencv`)")
    quiet_opencv(cv2)
    return cv2


def quiet_opencv(cv2):
    """Silence what OpenCV and its FFmpeg print on stderr about unreadable files ("IHDR chunk shall be first",
    "moov atom not found"): edgegan reports an unreadable input itself, in one line. An
    ``OPENCV_LOG_LEVEL`` / ``OPENCV_FFMPEG_LOGLEVEL`` set by the user is kept."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a capture opens
    if "OPENCV_LOG_LEVEL" not in os.environ:
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except AttributeError:  # OpenCV without the logging API (older JetPack builds)
            pass


def _extension(path):
    return os.path.splitext(path)[1].lower()


# -- images as arrays ---------------------------------------------------------------------------

def check_image(image):
    """``image`` as a uint8 H×W (grey) or H×W×3 (BGR) array; an alpha channel is dropped."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError("expected a uint8 image (H×W grey or H×W×3 BGR), got a %s array" % image.dtype.name)
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        image = image[:, :, 0] if image.shape[2] == 1 else image[:, :, :3]
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] == 3):
        raise InputError("expected an image of shape H×W or H×W×3, got shape %s" % (list(image.shape),))
    return image


def to_channels(image, channels):
    """A checked image as grey (``channels=1``, H×W) or BGR (``channels=3``, H×W×3)."""
    image = check_image(image)
    if channels == 1:
        if image.ndim == 3:
            image = np.rint(image.astype(np.float32).dot(GREY_WEIGHTS_BGR)).astype(np.uint8)
        return image
    if channels == 3:
        return image if image.ndim == 3 else np.stack([image] * 3, axis=2)
    raise InputError("models with %d image channels are not supported (1 or 3)" % channels)


def resize(image, height, width):
    """``image`` resized to height×width (area filter when shrinking, bilinear when enlarging)."""
    image = check_image(image)
    if image.shape[:2] == (height, width):
        return image
    cv2 = cv2_module()
    shrink = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def side_by_side(left, right):
    """Two images next to each other, ``left`` resized to ``right``'s height; colour if either is."""
    left, right = check_image(left), check_image(right)
    if left.shape[0] != right.shape[0]:
        scale = float(right.shape[0]) / left.shape[0]
        left = resize(left, right.shape[0], max(1, int(round(left.shape[1] * scale))))
    channels = 3 if 3 in (left.ndim, right.ndim) else 1
    return np.hstack([to_channels(left, channels), to_channels(right, channels)])


def spec_geometry(spec):
    """(channels, height, width) of a manifest tensor spec."""
    _, a, b, c = spec["shape"]
    return (a, b, c) if spec["layout"] == "NCHW" else (c, a, b)


def image_to_tensor(image, spec):
    """A uint8 image → a batch-1 tensor following ``spec``: resized to its H×W, its channel count,
    its value range, layout and dtype."""
    channels, height, width = spec_geometry(spec)
    image = resize(to_channels(image, channels), height, width)
    if channels == 3 and spec.get("channel_order", "RGB") == "RGB":
        image = image[:, :, ::-1]
    low, high = spec["range"]
    x = image.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
    x = x.reshape(height, width, channels)
    if spec["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=spec.get("dtype", "float32"))


def tensor_to_image(array, spec):
    """A model output (batch 1, layout and range of ``spec``) → a uint8 H×W or H×W×3 BGR image."""
    a = np.asarray(array)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise InputError("expected a batch-1 %s output, got shape %s" % (spec["layout"], list(np.shape(array))))
    if spec["layout"] == "NCHW":
        a = a.transpose(1, 2, 0)
    low, high = spec["range"]
    image = np.clip(np.rint((a.astype(np.float32) - low) * np.float32(255.0 / (high - low))), 0, 255)
    image = image.astype(np.uint8)
    if image.shape[2] == 1:
        return image[:, :, 0]
    if image.shape[2] == 3 and spec.get("channel_order", "RGB") == "RGB":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


# -- reading -------------------------------------------------------------------------------------

def input_kind(path):
    """``"image"``, ``"folder"`` or ``"video"``; ``InputError`` for anything else."""
    if not os.path.exists(path):
        raise InputError("no such input: %s" % path)
    if os.path.isdir(path):
        return "folder"
    ext = _extension(path)
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    raise InputError("unsupported input %s: expected an image (%s), a folder of images, or a video (%s)"
                     % (path, " ".join(IMAGE_EXTENSIONS), " ".join(VIDEO_EXTENSIONS)))


def read_image(path):
    """An image file as a uint8 H×W or H×W×3 BGR array (16-bit images are scaled to 8 bits)."""
    image = cv2_module().imread(path, -1)  # IMREAD_UNCHANGED: keep grey images grey
    if image is None:
        raise InputError("cannot read image %s: unsupported or corrupt file" % path)
    if image.dtype == np.uint16:
        image = np.rint(image / 257.0).astype(np.uint8)
    return check_image(image)


def list_images(folder):
    """The image files directly inside ``folder``, sorted by name; ``InputError`` if there are none."""
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if _extension(name) in IMAGE_EXTENSIONS and os.path.isfile(os.path.join(folder, name)))
    if not files:
        raise InputError("no images (%s) in %s" % (" ".join(IMAGE_EXTENSIONS), folder))
    return files


def _open_video(path):
    capture = cv2_module().VideoCapture(path)
    if not capture.isOpened():
        raise InputError("cannot open video %s: unsupported codec or not a video (try an mp4)" % path)
    return capture


class FrameSource(object):
    """The frames of an image, a folder of images or a video, as ``(name, uint8 image)`` pairs.

    ``kind``: ``"image"``, ``"folder"`` or ``"video"``; ``count``: the number of frames (for a video
    the container's estimate); ``fps``: a video's frame rate, else ``None``. Video frames are
    named ``000000.png``, ``000001.png``, ...
    """

    def __init__(self, path):
        self.path = path
        self.kind = input_kind(path)
        self.fps = None
        if self.kind == "video":
            cv2 = cv2_module()
            capture = _open_video(path)
            self.fps = capture.get(cv2.CAP_PROP_FPS) or DEFAULT_VIDEO_FPS
            self.count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) or None
            capture.release()
            self.files = None
        else:
            self.files = list_images(path) if self.kind == "folder" else [path]
            self.count = len(self.files)

    def __iter__(self):
        if self.files is not None:
            for path in self.files:
                yield os.path.basename(path), read_image(path)
            return
        capture = _open_video(self.path)
        try:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                yield "%06d.png" % index, check_image(frame)
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise InputError("no readable frames in video %s" % self.path)


# -- writing -------------------------------------------------------------------------------------

def output_kind(source_kind, path):
    """What to write for a ``source_kind`` input at ``path``: ``"image"``, ``"folder"`` or ``"video"``.

    An image goes to an image file or a folder; a folder to a folder; a video to a video file
    or a folder of frames.
    """
    ext = _extension(path)
    if source_kind == "image" and ext and ext not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS \
            and not os.path.isdir(path):
        raise InputError("--output %s: %s is not an image type edgegan writes (%s); for a folder of outputs, give "
                         "a name without an extension" % (path, ext, ", ".join(IMAGE_EXTENSIONS)))
    if ext in IMAGE_EXTENSIONS:
        if source_kind == "image":
            return "image"
        raise InputError("--output %s is an image file, but the input is a %s: pass a folder%s"
                         % (path, source_kind, " or a video (.mp4)" if source_kind == "video" else ""))
    if ext in VIDEO_EXTENSIONS:
        if source_kind == "video":
            return "video"
        raise InputError("--output %s is a video, but the input is a%s %s: pass a folder%s"
                         % (path, "n" if source_kind == "image" else "", source_kind,
                            " or an image file" if source_kind == "image" else ""))
    return "folder"


class FrameWriter(object):
    """Writes frames to ``path`` as one image, a folder of images or an mp4v video, all or nothing.

    Frames go to a hidden temporary file or folder next to ``path``, renamed into place when the
    with-block ends without error (deleted otherwise). An existing ``path`` is refused unless
    ``force``. ``frames`` counts the frames written.
    """

    def __init__(self, path, kind, force=False, fps=None):
        if kind not in ("image", "folder", "video"):
            raise ValueError("kind must be image, folder or video, got %r" % (kind,))
        self.path = path
        self.kind = kind
        self.force = force
        self.fps = fps or DEFAULT_VIDEO_FPS
        self.frames = 0
        self._tmp = None
        self._video = None

    def __enter__(self):
        if os.path.lexists(self.path) and not self.force:
            raise EdgeganError("%s already exists; pass --force to replace it" % self.path)
        check_writable(self.path)
        parent, base = os.path.split(os.path.abspath(self.path))
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent)
            if self.kind == "folder":
                self._tmp = tempfile.mkdtemp(prefix=".%s.tmp-" % base, dir=parent)
                os.chmod(self._tmp, 0o755)
            else:
                stem, ext = os.path.splitext(base)
                fd, self._tmp = tempfile.mkstemp(prefix=".%s.tmp-" % stem, suffix=ext, dir=parent)
                os.close(fd)
                os.chmod(self._tmp, 0o644)
        except OSError as e:
            raise EdgeganError("cannot write %s (%s); choose another --output" % (self.path, e.strerror or e))
        return self

    def write(self, name, frame):
        """Add one frame (uint8 grey or BGR); ``name`` is its file name in a folder output."""
        frame = check_image(frame)
        if self.kind == "video":
            self._write_video(frame)
        elif self.kind == "image" and self.frames:
            raise InputError("%s is a single image file but more than one frame was written" % self.path)
        else:
            target = self._tmp if self.kind == "image" else os.path.join(self._tmp, name)
            if not cv2_module().imwrite(target, frame):
                raise InputError("cannot write %s: OpenCV has no encoder for %s" % (name, _extension(name)))
        self.frames += 1

    def _write_video(self, frame):
        cv2 = cv2_module()
        if self._video is None:
            height, width = frame.shape[:2]
            self._video = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(self.fps),
                                          (width, height), True)
            if not self._video.isOpened():
                raise EdgeganError("cannot write video %s: this OpenCV build has no mp4v encoder" % self.path)
        self._video.write(to_channels(frame, 3))

    def _release(self):
        if self._video is not None:
            self._video.release()
            self._video = None

    def __exit__(self, exc_type, exc, tb):
        self._release()
        try:
            if exc_type is None:
                if not self.frames:
                    raise InputError("no frames to write to %s" % self.path)
                move_into_place(self._tmp, self.path, force=self.force)
        finally:
            if os.path.isdir(self._tmp):
                shutil.rmtree(self._tmp, ignore_errors=True)
            elif os.path.lexists(self._tmp):
                os.remove(self._tmp)
        return False
