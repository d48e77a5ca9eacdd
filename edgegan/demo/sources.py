"""Frame sources for the demos: a camera index, a video file, a GStreamer pipeline, a drawing canvas.

``open_source(spec)`` picks one from a command-line string:

=====================  ==========================================================================
``0``, ``1``, ...      a camera by index (V4L2 on Linux); ``/dev/video0`` works too
``clip.mp4``           a video file; with ``loop=True`` it starts over when it ends
``gst:PIPELINE``       a GStreamer pipeline ending in ``appsink`` (OpenCV built with GStreamer,
                       as JetPack's is); a string containing `` ! `` is taken as one as well
``csi`` / ``csi:N``    the Jetson CSI camera N through ``nvarguscamerasrc`` (``nvargus_pipeline``)
``canvas``             a white canvas drawn on with the mouse (clear / undo)
=====================  ==========================================================================

Every source has ``read()`` → a uint8 frame (H×W grey or H×W×3 BGR) or ``None`` when it has ended,
and ``close()``. A live source (camera, pipeline) that stops delivering frames raises ``SourceLost``;
one that cannot be opened raises ``SourceError``. Both are ``InputError``s, so the CLI prints them as
one line and exits with status 2.

Torch-free and Python 3.6-compatible; OpenCV is imported lazily.
"""

import os
import threading
import time

import numpy as np

from ..errors import EdgeganError, InputError
from ..runtime.imageio import quiet_opencv

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
DEFAULT_FPS = 30.0
#: A live source that returns no frame this many times in a row, and for at least ``LOST_AFTER_S``, is lost.
LOST_AFTER_FAILURES = 10
LOST_AFTER_S = 2.0


class SourceError(InputError):
    """A frame source cannot be opened (no such camera, unreadable video, bad pipeline)."""


class SourceLost(InputError):
    """A live source stopped delivering frames (camera unplugged, pipeline died)."""


def cv2_module():
    """``cv2``, or an ``EdgeganError`` saying how to install it (the demo window needs the GUI build)."""
    try:
        import cv2
    except ImportError:
        raise EdgeganError("the demo needs OpenCV: pip install opencv-python (the [demo] extra; "
                           "opencv-python-headless is enough for --headless); on a Jetson use JetPack's OpenCV, "
                           "built with GStreamer for the CSI camera (on the SD-card image; else "
                           "`sudo apt install nvidia-opencv`)")
    quiet_opencv(cv2)  # an unreadable source is reported in one line, without FFmpeg's own messages
    return cv2


def build_information(cv2=None):
    """``cv2.getBuildInformation()`` as text ("" when unavailable)."""
    cv2 = cv2 or cv2_module()
    try:
        return cv2.getBuildInformation()
    except Exception:  # noqa: BLE001 - a stripped build; treat as unknown
        return ""


def has_gstreamer(cv2=None):
    """Whether this OpenCV was built with GStreamer (JetPack's is; the pip wheels are not)."""
    for line in build_information(cv2).splitlines():
        if line.strip().startswith("GStreamer:"):
            return line.split(":", 1)[1].strip().upper().startswith("YES")
    return False


def nvargus_pipeline(sensor_id=0, capture_width=1280, capture_height=720, framerate=30, flip_method=0,
                     width=640, height=360):
    """The GStreamer pipeline for a Jetson CSI camera (``nvarguscamerasrc``), delivering BGR to OpenCV.

    The camera captures ``capture_width``×``capture_height`` at ``framerate`` in NVMM memory;
    ``nvvidconv`` flips (``flip_method`` 0..7; 2 = rotate 180°) and scales to ``width``×``height`` on the
    hardware converter; ``appsink drop=true max-buffers=1`` keeps only the newest frame, so a slow
    model never falls behind the camera.
    """
    return ("nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM), width=(int)%d, height=(int)%d, "
            "framerate=(fraction)%d/1, format=(string)NV12 ! nvvidconv flip-method=%d ! "
            "video/x-raw, width=(int)%d, height=(int)%d, format=(string)BGRx ! videoconvert ! "
            "video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1"
            % (sensor_id, capture_width, capture_height, framerate, flip_method, width, height))


def parse_source(spec):
    """``(kind, value)`` for a source string: ``("camera", 0)``, ``("video", path)``, ``("gstreamer", pipeline)``
    or ``("canvas", None)``. Raises ``SourceError`` for a string that names none of them."""
    if spec is None:
        return "camera", 0
    text = str(spec).strip()
    if not text:
        raise SourceError("empty --source: pass a camera index (0), a video file, 'gst:PIPELINE', 'csi' or 'canvas'")
    low = text.lower()
    if low == "canvas":
        return "canvas", None
    if low == "csi" or low.startswith("csi:"):
        sensor = text[4:].strip() or "0"
        if not sensor.isdigit():
            raise SourceError("--source %s: expected csi or csi:N with N the CSI sensor id (0, 1)" % text)
        return "gstreamer", nvargus_pipeline(int(sensor))
    if low.startswith("gst:"):
        pipeline = text[4:].strip()
        if not pipeline:
            raise SourceError("--source gst: needs a pipeline, e.g. 'gst:videotestsrc ! videoconvert ! appsink'")
        return "gstreamer", pipeline
    if " ! " in text:
        return "gstreamer", text
    if text.isdigit():
        return "camera", int(text)
    if text.startswith("/dev/video"):
        return "camera", text
    if os.path.isdir(text):
        raise SourceError("--source %s is a folder; pass a video file, a camera index, 'csi' or 'canvas' "
                          "(for folders of images use `edgegan run`)" % text)
    if not os.path.exists(text):
        raise SourceError("--source %s: no such file, and not a camera index, 'gst:PIPELINE', 'csi' or 'canvas'"
                          % text)
    if os.path.splitext(text)[1].lower() not in VIDEO_EXTENSIONS:
        raise SourceError("--source %s is not a video (%s)" % (text, " ".join(VIDEO_EXTENSIONS)))
    return "video", text


def _check_frame(frame):
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        # 16-bit cameras / videos: scale to 8 bits like edgegan.runtime.imageio does
        frame = np.rint(frame / 257.0).astype(np.uint8) if frame.dtype == np.uint16 else frame.astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    return frame


class Source(object):
    """Base class. ``kind``, ``description``, ``fps`` (frames per second the source delivers, or the
    default for the output video), ``live`` (a camera or pipeline), ``drawn`` (the frame is already a
    drawing of dark strokes on white: no Canny), ``realtime`` (frames come on the device's own clock: when
    the demo falls behind it drops frames and takes the newest rather than queueing them), ``frames_read``
    and ``loops`` (times a video restarted)."""

    kind = None
    live = False
    drawn = False
    realtime = False

    def __init__(self, description):
        self.description = description
        self.fps = DEFAULT_FPS
        self.frames_read = 0
        self.loops = 0

    def read(self):
        """The next frame, or ``None`` when the source has ended."""
        raise NotImplementedError

    def close(self):
        """Release the device or file; calling it twice is harmless."""

    def info(self):
        """What the stats file records about the source."""
        return {"kind": self.kind, "description": self.description, "fps": self.fps,
                "frames_read": self.frames_read, "loops": self.loops}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False


class CaptureSource(Source):
    """An OpenCV ``VideoCapture`` that is live (camera or GStreamer pipeline).

    A failed read is retried; ``LOST_AFTER_FAILURES`` failures in a row lasting ``LOST_AFTER_S``
    seconds raise ``SourceLost`` (a USB camera unplugged, ``nvargus-daemon`` gone).
    """

    live = True
    realtime = True

    def __init__(self, target, description, api=None, lost_after_failures=LOST_AFTER_FAILURES,
                 lost_after_s=LOST_AFTER_S, clock=time.monotonic):
        Source.__init__(self, description)
        self.target = target
        self.lost_after_failures = lost_after_failures
        self.lost_after_s = lost_after_s
        self._clock = clock
        self._failures = 0
        self._failing_since = None
        self._capture = self._open(target, api)
        if self._capture is None:
            raise SourceError(self.open_hint())
        fps = self._capture.get(cv2_module().CAP_PROP_FPS)
        if fps and 1.0 <= fps <= 240.0:
            self.fps = float(fps)

    def _open(self, target, api):
        cv2 = cv2_module()
        capture = cv2.VideoCapture(target) if api is None else cv2.VideoCapture(target, api)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def open_hint(self):
        return "cannot open %s" % self.description

    def read(self):
        if self._capture is None:
            return None
        while True:
            ok, frame = self._capture.read()
            if ok and frame is not None and frame.size:
                self._failures = 0
                self._failing_since = None
                self.frames_read += 1
                return _check_frame(frame)
            now = self._clock()
            if self._failing_since is None:
                self._failing_since = now
            self._failures += 1
            if self._failures >= self.lost_after_failures and now - self._failing_since >= self.lost_after_s:
                self.close()
                if self.frames_read:
                    raise SourceLost("%s stopped delivering frames after %d frame%s (unplugged, or taken by "
                                     "another program?)" % (self.description, self.frames_read,
                                                            "" if self.frames_read == 1 else "s"))
                raise SourceLost("%s opened but delivered no frame in %.0f s; %s"
                                 % (self.description, self.lost_after_s, self.open_hint()))
            time.sleep(0.01)

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class CameraSource(CaptureSource):
    """A camera by index (``0``) or device path (``/dev/video0``); ``width``/``height`` request a capture size."""

    kind = "camera"

    def __init__(self, index=0, width=None, height=None, **kwargs):
        self.index = index
        description = "camera %s" % (index,)
        CaptureSource.__init__(self, index, description, **kwargs)
        cv2 = cv2_module()
        if width:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        if height:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))

    def open_hint(self):
        devices = sorted(name for name in (os.listdir("/dev") if os.path.isdir("/dev") else [])
                         if name.startswith("video"))
        found = ("cameras here: %s" % ", ".join("/dev/" + d for d in devices)) if devices else \
            "no /dev/video* device here"
        return ("cannot open %s: %s; is it plugged in, or used by another program? For the Jetson CSI camera "
                "use --source csi; for a file, --source clip.mp4" % (self.description, found))


class GStreamerSource(CaptureSource):
    """A GStreamer pipeline ending in ``appsink``, through OpenCV's GStreamer backend."""

    kind = "gstreamer"

    def __init__(self, pipeline, **kwargs):
        cv2 = cv2_module()
        self.pipeline = pipeline
        if not has_gstreamer(cv2):
            raise SourceError("this OpenCV (%s) was built without GStreamer, so it cannot open a pipeline; the pip "
                              "wheels lack it: on a Jetson use JetPack's OpenCV (on the SD-card image, else `sudo apt "
                              "install nvidia-opencv`; `pip uninstall opencv-python` if a wheel shadows it), "
                              "elsewhere pass a camera index or a video"
                              % cv2.__version__)
        short = pipeline if len(pipeline) <= 60 else pipeline[:57] + "..."
        CaptureSource.__init__(self, pipeline, "GStreamer pipeline '%s'" % short, api=cv2.CAP_GSTREAMER, **kwargs)

    def open_hint(self):
        hint = "cannot open the GStreamer pipeline '%s'; test it with `gst-launch-1.0 %s` (with fakesink for appsink)" \
               % (self.pipeline, self.pipeline.replace("appsink", "fakesink", 1))
        if "nvarguscamerasrc" in self.pipeline:
            hint += ("; for the CSI camera check the ribbon cable and sensor id, and restart the daemon: "
                     "`sudo systemctl restart nvargus-daemon`")
        return hint


class VideoSource(Source):
    """A video file; with ``loop`` it is reopened when it ends, so it never ends."""

    kind = "video"

    def __init__(self, path, loop=False):
        Source.__init__(self, "video %s" % os.path.basename(path))
        self.path = path
        self.loop = loop
        cv2 = cv2_module()
        self._capture = self._open()
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        if fps and 1.0 <= fps <= 240.0:
            self.fps = float(fps)
        self.frame_count = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))) or None
        self._frames_this_pass = 0

    def _open(self):
        capture = cv2_module().VideoCapture(self.path)
        if not capture.isOpened():
            capture.release()
            raise SourceError("cannot open video %s: unsupported codec or not a video (try an mp4)" % self.path)
        return capture

    def read(self):
        while self._capture is not None:
            ok, frame = self._capture.read()
            if ok and frame is not None and frame.size:
                self.frames_read += 1
                self._frames_this_pass += 1
                return _check_frame(frame)
            self._capture.release()
            self._capture = None
            if not self._frames_this_pass:
                raise SourceError("no readable frames in video %s" % self.path)
            if not self.loop:
                return None
            self._capture = self._open()
            self._frames_this_pass = 0
            self.loops += 1
        return None

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def info(self):
        info = Source.info(self)
        info.update({"path": self.path, "loop": self.loop, "frame_count": self.frame_count})
        return info


# -- the drawing canvas ---------------------------------------------------------------------------

#: A side view of a sneaker (toe to the left, as in Fashion-MNIST), in 0..1 canvas coordinates:
#: what the canvas shows before the first stroke in headless runs and screenshots.
EXAMPLE_STROKES = (
    # upper: toe, vamp, lace area, collar, heel
    ((0.10, 0.68), (0.12, 0.60), (0.20, 0.55), (0.32, 0.50), (0.44, 0.42), (0.55, 0.34), (0.64, 0.30),
     (0.74, 0.31), (0.82, 0.30), (0.88, 0.36), (0.90, 0.48), (0.91, 0.62), (0.90, 0.68)),
    # sole
    ((0.08, 0.68), (0.93, 0.68), (0.93, 0.74), (0.12, 0.74), (0.08, 0.68)),
    # collar opening
    ((0.64, 0.30), (0.70, 0.38), (0.80, 0.39), (0.82, 0.30)),
    # laces
    ((0.42, 0.44), (0.50, 0.50)), ((0.49, 0.38), (0.57, 0.44)), ((0.56, 0.33), (0.63, 0.39)),
)


class CanvasSource(Source):
    """A ``size``×``size`` white canvas with dark strokes drawn with the mouse.

    ``begin(x, y)`` / ``extend(x, y)`` / ``end()`` draw a stroke in canvas pixels (the demo's mouse
    callback calls them), ``undo()`` removes the last stroke, ``clear()`` all of them. ``read()``
    returns the drawing (H×W grey, dark strokes on white) for display; it is already an edge map,
    so the pipeline skips Canny (``drawn = True``) and takes ``render_edges(h, w)``: the same strokes
    one pixel wide at the model's size, like training's Canny edges. ``example=True`` starts with a
    drawn sneaker.
    """

    kind = "canvas"
    drawn = True

    def __init__(self, size=256, thickness=None, example=False):
        Source.__init__(self, "drawing canvas")
        self.size = int(size)
        self.thickness = int(thickness or max(2, self.size // 40))
        self.strokes = []
        self._current = None
        self._image = None
        self.lock = threading.RLock()  # the mouse (window thread) draws while the edges stage reads
        if example:
            self.load_example()

    def load_example(self):
        """Replace the drawing with ``EXAMPLE_STROKES``."""
        with self.lock:
            return self._load_example()

    def _load_example(self):
        s = self.size - 1
        self.strokes = [[(int(round(x * s)), int(round(y * s))) for x, y in stroke] for stroke in EXAMPLE_STROKES]
        self._current = None
        self._image = None

    def _clamp(self, x, y):
        return min(max(int(x), 0), self.size - 1), min(max(int(y), 0), self.size - 1)

    def begin(self, x, y):
        with self.lock:
            return self._begin(x, y)

    def _begin(self, x, y):
        self._current = [self._clamp(x, y)]
        self.strokes.append(self._current)
        self._image = None

    def extend(self, x, y):
        with self.lock:
            return self._extend(x, y)

    def _extend(self, x, y):
        if self._current is None:
            return
        point = self._clamp(x, y)
        if point != self._current[-1]:
            self._current.append(point)
            self._image = None

    def end(self):
        with self.lock:
            self._current = None

    @property
    def drawing(self):
        """Whether a stroke is in progress."""
        return self._current is not None

    def undo(self):
        with self.lock:
            return self._undo()

    def _undo(self):
        if self.strokes:
            self.strokes.pop()
        self._current = None
        self._image = None

    def clear(self):
        with self.lock:
            return self._clear()

    def _clear(self):
        self.strokes = []
        self._current = None
        self._image = None

    def render(self):
        """The drawing as an H×W uint8 image (cached until the strokes change)."""
        with self.lock:
            return self._render()

    def _render(self):
        if self._image is None:
            cv2 = cv2_module()
            image = np.full((self.size, self.size), 255, dtype=np.uint8)
            for stroke in self.strokes:
                if len(stroke) == 1:
                    cv2.circle(image, stroke[0], max(1, self.thickness // 2), 0, -1)
                else:
                    cv2.polylines(image, [np.array(stroke, dtype=np.int32).reshape(-1, 1, 2)], False, 0,
                                  self.thickness, cv2.LINE_8)
            self._image = image
        return self._image

    def render_edges(self, height, width):
        """The strokes redrawn at ``height``×``width`` one pixel wide (dark on white): an edge map like the
        one-pixel Canny edges the model was trained on, rather than the thick strokes shrunk."""
        with self.lock:
            return self._render_edges(height, width)

    def _render_edges(self, height, width):
        cv2 = cv2_module()
        image = np.full((height, width), 255, dtype=np.uint8)
        sx, sy = float(width) / self.size, float(height) / self.size
        for stroke in self.strokes:
            points = np.array([(min(int(x * sx), width - 1), min(int(y * sy), height - 1)) for x, y in stroke],
                              dtype=np.int32)
            if len(points) == 1:
                image[points[0][1], points[0][0]] = 0
            else:
                cv2.polylines(image, [points.reshape(-1, 1, 2)], False, 0, 1, cv2.LINE_8)
        return image

    def read(self):
        with self.lock:
            self.frames_read += 1
            return self._render().copy()

    def info(self):
        info = Source.info(self)
        info.update({"size": self.size, "strokes": len(self.strokes)})
        return info


def open_source(spec, loop=False, canvas_size=256, canvas_example=False, width=None, height=None):
    """Open the source a ``--source`` string names (see the module docstring)."""
    kind, value = parse_source(spec)
    if kind == "canvas":
        return CanvasSource(canvas_size, example=canvas_example)
    if kind == "video":
        return VideoSource(value, loop=loop)
    if kind == "gstreamer":
        return GStreamerSource(value)
    return CameraSource(value, width=width, height=height)
