"""One demo frame: centre crop → resize → edges → generator → input | edges | output.

The edges are computed the way training computed them (``edgegan.runtime.edges.edges_from_image``
on the image already resized to the model's input size, with the bundle's Canny parameters from
the manifest's ``input.edges``, dark edges on white), so the model sees on the device what it saw
in training. A canvas drawing is already an edge map: it is resized and binarised, not Canny'd.

Torch-free and Python 3.6-compatible.
"""

import threading
import time

import numpy as np

from ..errors import EdgeganError, InputError
from ..runtime.edges import DEFAULT_EDGES, edges_from_image
from ..runtime.imageio import spec_geometry
from .sources import cv2_module

CAPTION_H = 22
STATUS_H = 58
BACKGROUND = (32, 32, 32)
CAPTION_COLOUR = (235, 235, 235)


def centre_crop(image):
    """The largest centred square of ``image``."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top:top + side, left:left + side]


def edge_settings(bundle, low=None, high=None, blur=None):
    """The Canny parameters: the manifest's ``input.edges`` (else ``DEFAULT_EDGES``), overridden by the
    arguments that are not ``None``."""
    recorded = dict(DEFAULT_EDGES)
    recorded.update(bundle.input.get("edges") or {})
    if recorded.get("method", "canny") != "canny":
        raise InputError("%s was trained on %r edges; the demo computes only canny edges"
                         % (bundle.path, recorded["method"]))
    for key, value in (("low", low), ("high", high), ("blur", blur)):
        if value is not None:
            recorded[key] = value
    check_thresholds(recorded["low"], recorded["high"])
    if recorded.get("blur") and recorded["blur"] > 1 and recorded["blur"] % 2 == 0:
        raise InputError("--blur must be an odd kernel size (or 0 for none), got %r" % (recorded["blur"],))
    return recorded


def check_thresholds(low, high):
    if not (0 <= low <= high <= 1000):
        raise InputError("Canny thresholds need 0 <= low <= high (gradient magnitude, typically <= 255); "
                         "got low %r, high %r" % (low, high))


class Prepared(object):
    """A frame ready for the model (``Pipeline.prepare``): ``crop`` (the centred square, at source
    resolution), ``edges`` (model size), ``x`` (the model input) and ``edges_ms`` (crop, resize, Canny and
    preprocessing). ``read_ms``: the source's read (decode), filled in by the caller."""

    __slots__ = ("crop", "edges", "x", "edges_ms", "read_ms", "reader_cpu_ms")

    def __init__(self, crop, edges, x, edges_ms, read_ms=0.0, reader_cpu_ms=0.0):
        self.crop = crop
        self.edges = edges
        self.x = x
        self.edges_ms = edges_ms
        self.read_ms = read_ms
        self.reader_cpu_ms = reader_cpu_ms


class FrameResult(object):
    """What ``Pipeline.process`` made of one frame: ``crop`` (the square the model saw, at source
    resolution), ``edges`` and ``output`` (model size), ``variant`` and the times in milliseconds.
    ``keys``: display keys a key script pressed before this frame (applied where the frame is shown)."""

    __slots__ = ("crop", "edges", "output", "variant", "edges_ms", "infer_ms", "read_ms", "reader_cpu_ms", "keys")

    def __init__(self, crop, edges, output, variant, edges_ms, infer_ms, read_ms=0.0, reader_cpu_ms=0.0):
        self.crop = crop
        self.edges = edges
        self.output = output
        self.variant = variant
        self.edges_ms = edges_ms
        self.infer_ms = infer_ms
        self.read_ms = read_ms
        self.reader_cpu_ms = reader_cpu_ms
        self.keys = ()


class Pipeline(object):
    """Frames through a ``Runtime``: ``process(frame, drawn)`` → ``FrameResult``, in two halves that
    may run in different threads: ``prepare`` (crop, resize, Canny, preprocessing) and ``infer`` (the
    model at the current variant, then postprocessing).

    ``low``/``high``/``blur`` override the bundle's Canny parameters; ``set_thresholds`` changes
    them live. ``invert`` follows the manifest (the training convention, dark edges on white).
    ``lock`` is held during an inference: a variant switch from another thread takes it, so a frame's
    recorded variant is the one that ran it.
    """

    def __init__(self, runtime, low=None, high=None, blur=None, clock=time.perf_counter):
        self.runtime = runtime
        if runtime.bundle.takes_noise:
            raise EdgeganError("%s generates images from noise; the edges2shoes demo needs an edges → image bundle "
                               "(`edgegan run %s --out grid.png` shows a noise bundle's images)"
                               % (runtime.bundle.path, runtime.bundle.path))
        settings = edge_settings(runtime.bundle, low, high, blur)
        self.low = int(settings["low"])
        self.high = int(settings["high"])
        self.blur = int(settings.get("blur") or 0)
        self.invert = bool(settings.get("invert", True))
        self.channels, self.height, self.width = spec_geometry(runtime.bundle.input)
        self._clock = clock
        self.lock = threading.Lock()

    def set_thresholds(self, low, high):
        """Change the Canny thresholds (clamped to 0..255 with low <= high); returns them."""
        low = min(max(int(low), 0), 255)
        high = min(max(int(high), 0), 255)
        if low > high:
            low, high = high, low
        self.low, self.high = low, high
        return low, high

    def edges(self, crop, drawn=False):
        """The model-size edge map (H×W uint8) of a square crop: Canny, or a drawing binarised.

        As training prepares a photo (``edgegan.data``: grey, ``fit_square`` to the model size — area
        filter when shrinking, cubic when enlarging — then ``edges_from_image``), so Canny runs at the
        model's resolution, never on the full frame. Grey is OpenCV's BGR→grey, the conversion
        ``edges_from_image`` itself applies to a colour image."""
        cv2 = cv2_module()
        grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if grey.shape[:2] != (self.height, self.width):
            shrink = self.height < max(grey.shape[:2])
            grey = cv2.resize(grey, (self.width, self.height),
                              interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        if drawn:
            dark = grey < 180  # a stroke thinner than a model pixel averages to grey: keep it
            if self.invert:
                return np.where(dark, 0, 255).astype(np.uint8)
            return np.where(dark, 255, 0).astype(np.uint8)
        return edges_from_image(grey, self.low, self.high, self.blur, self.invert)

    def prepare(self, frame, drawn=False, edges=None):
        """Crop, model-size edges and the model input of one frame → ``Prepared``; ``edges``: a ready
        model-size edge map (a canvas's strokes redrawn at that size) instead of computing one."""
        t0 = self._clock()
        crop = centre_crop(frame)
        if edges is None:
            edges = self.edges(crop, drawn)
        elif not self.invert:
            edges = 255 - edges
        x = self.runtime.preprocess(edges)
        return Prepared(crop, edges, x, (self._clock() - t0) * 1e3)

    def infer(self, prepared):
        """One inference of the current variant on a ``Prepared`` frame → ``FrameResult``."""
        with self.lock:
            variant = self.runtime.variant
            t1 = self._clock()
            y = self.runtime.run(prepared.x)
            self.runtime.sync()
            t2 = self._clock()
        output = self.runtime.postprocess(y)
        return FrameResult(prepared.crop, prepared.edges, output, variant, prepared.edges_ms, (t2 - t1) * 1e3,
                           prepared.read_ms, prepared.reader_cpu_ms)

    def set_variant(self, name):
        """``runtime.set_variant`` between two inferences (waits for one in progress); returns the name."""
        with self.lock:
            return self.runtime.set_variant(name)

    def process(self, frame, drawn=False, edges=None):
        """``infer(prepare(...))``: crop, edges and one inference of the current variant."""
        return self.infer(self.prepare(frame, drawn, edges))


class Layout(object):
    """Where things go in the composed frame: three ``panel``-pixel squares under a caption band,
    a status band below them."""

    def __init__(self, panel=256, panels=3):
        if panel < 64:
            raise InputError("--panel must be at least 64 pixels, got %d" % panel)
        self.panel = int(panel)
        self.panels = panels
        self.width = self.panel * panels
        self.height = CAPTION_H + self.panel + STATUS_H

    def panel_origin(self, index):
        """(x, y) of the top-left pixel of panel ``index`` (its image, below the caption)."""
        return index * self.panel, CAPTION_H

    def to_panel(self, index, x, y):
        """Window coordinates → pixel in panel ``index``, or ``None`` when outside it."""
        x0, y0 = self.panel_origin(index)
        px, py = x - x0, y - y0
        if 0 <= px < self.panel and 0 <= py < self.panel:
            return px, py
        return None

    @property
    def status_top(self):
        return CAPTION_H + self.panel


def _panel_image(image, panel, interpolation):
    """``image`` as a ``panel``² BGR square: resized first (one channel is cheaper), then coloured."""
    cv2 = cv2_module()
    if image.shape[:2] != (panel, panel):
        image = cv2.resize(image, (panel, panel), interpolation=interpolation)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def compose(result, layout, captions=None, out=None):
    """The three panels (input crop, edges, output) with captions, as one BGR frame of the layout's size.

    ``out``: a frame of that size to draw into (reused between frames), else a new one. The status
    band is left empty for ``overlay.draw_status``.
    """
    cv2 = cv2_module()
    if out is None or out.shape != (layout.height, layout.width, 3):
        out = np.empty((layout.height, layout.width, 3), dtype=np.uint8)
    _fill(out[:CAPTION_H])  # the panels are overwritten below: only the bands need the background
    _fill(out[layout.status_top:])
    # the input panel is a preview: bilinear (5-10x cheaper than the area filter the model's input gets)
    images = (_panel_image(result.crop, layout.panel, cv2.INTER_LINEAR),
              _panel_image(result.edges, layout.panel, cv2.INTER_NEAREST),
              _panel_image(result.output, layout.panel, cv2.INTER_LINEAR))
    captions = captions or ("input", "edges", "output")
    for index, (image, caption) in enumerate(zip(images, captions)):
        x0, y0 = layout.panel_origin(index)
        out[y0:y0 + layout.panel, x0:x0 + layout.panel] = image
        cv2.putText(out, caption, (x0 + 6, CAPTION_H - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, CAPTION_COLOUR, 1,
                    cv2.LINE_AA)
    for index in range(1, layout.panels):
        x = index * layout.panel
        _fill(out[:layout.status_top, x:x + 1])
    return out


def _fill(region):
    """``region`` set to ``BACKGROUND`` (a memset when the colour is a grey)."""
    if BACKGROUND[0] == BACKGROUND[1] == BACKGROUND[2]:
        region.fill(BACKGROUND[0])
    else:
        region[:] = BACKGROUND
