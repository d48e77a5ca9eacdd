"""Edge maps from images: the one function training data and live frames both go through.

The generators learn edges → image with the edges2shoes convention: dark (0) edge lines on a
white (255) background. Training (``edgegan.data``) computes its inputs with
``edges_from_image`` and the device runtime / demo call the same function on camera frames, so
what the model sees on the device matches what it saw in training. Compute the edges on the
image already resized to the model's input size, as training does: Canny's thresholds and the
blur act per pixel, so an edge map computed at another scale and then resized looks different.

Torch-free and Python 3.6-compatible (runs on a Jetson Nano with numpy and OpenCV).
"""

import numpy as np

from ..errors import EdgeganError, InputError

#: The edge parameters training used unless told otherwise (recorded in each checkpoint's ``data.edges``).
DEFAULT_EDGES = {"method": "canny", "low": 100, "high": 200, "blur": 3, "invert": True}


def _cv2():
    try:
        import cv2
    except ImportError:
        raise EdgeganError("edge maps need OpenCV: pip install opencv-python-headless")
    from .imageio import quiet_opencv

    quiet_opencv(cv2)
    return cv2


def _grey(image, cv2):
    """``image`` as a 2-D uint8 array: grey as is, BGR / BGRA converted, a single channel squeezed."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise InputError("edges_from_image takes an H×W grey or H×W×3 BGR image, got shape %s" % (image.shape,))


def edges_from_image(image_uint8, low=DEFAULT_EDGES["low"], high=DEFAULT_EDGES["high"],
                     blur=DEFAULT_EDGES["blur"], invert=DEFAULT_EDGES["invert"], method=DEFAULT_EDGES["method"]):
    """Canny edge map of a grey or BGR uint8 image, as an H×W uint8 array.

    The keyword arguments are the keys of a checkpoint's ``data.edges`` (or a bundle's
    ``input.edges``), so ``edges_from_image(frame, **data["edges"])`` reproduces training.

    Args:
        image_uint8: H×W (grey), H×W×1, H×W×3 (BGR, as OpenCV reads it) or H×W×4 (BGRA) uint8 array.
        low, high: Canny hysteresis thresholds on the 0..255 gradient magnitude.
        blur: side of the Gaussian kernel applied first to suppress texture and noise
            (odd, ≥ 3; 0 or 1 for none).
        invert: ``True`` for dark edges (0) on white (255), the training convention;
            ``False`` for white edges on black, as Canny returns them.
        method: ``canny``, the only edge detector.
    """
    if method != "canny":
        raise InputError("unknown edge method %r; edgegan computes edges with canny" % (method,))
    cv2 = _cv2()
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8:
        raise InputError("edges_from_image takes a uint8 image, got %s; scale to 0..255 and convert first"
                         % image.dtype)
    if blur and blur > 1 and blur % 2 == 0:
        raise InputError("blur must be an odd kernel size (or 0 for none), got %r" % (blur,))
    grey = np.ascontiguousarray(_grey(image, cv2))
    if blur and blur > 1:
        grey = cv2.GaussianBlur(grey, (int(blur), int(blur)), 0)
    edges = cv2.Canny(grey, float(low), float(high))
    if invert:
        edges = 255 - edges
    return edges


#: how far from pure black / white a pixel of an edge map may be (JPEG ringing, anti-aliased lines)
EDGE_MAP_TOLERANCE = 48
#: the least fraction of black-or-white pixels an image needs to pass for an edge map
EDGE_MAP_MIN_BINARY = 0.85


def binary_fraction(image):
    """The fraction of pixels of a uint8 image that are near black or near white (within
    ``EDGE_MAP_TOLERANCE`` of 0 or 255), all channels counted; 1.0 for an edge map, much less for a photo."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.size == 0:
        return 1.0
    near = (a <= EDGE_MAP_TOLERANCE) | (a >= 255 - EDGE_MAP_TOLERANCE)
    return float(near.mean())


def background_fraction(image, invert=True):
    """The fraction of pixels near white (``invert``: dark edges on white, the training convention) or near
    black (white edges on black)."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.size == 0:
        return 1.0
    return float((a >= 255 - EDGE_MAP_TOLERANCE).mean() if invert else (a <= EDGE_MAP_TOLERANCE).mean())


def looks_like_edge_map(image, invert=True):
    """Whether a uint8 image looks like an edge map, the input an edges → image model was trained on: almost
    only black and white pixels, most of them the background (white for ``invert``). A photo does not — not
    even a dark-background one, which is mostly black but not white — so compute its edges first
    (``edges_from_image``)."""
    return binary_fraction(image) >= EDGE_MAP_MIN_BINARY and background_fraction(image, invert) >= 0.5
