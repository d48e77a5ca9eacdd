"""The coreml backend: runs a Core ML ``.mlpackage`` with coremltools' ``MLModel`` — on macOS only.

Core ML predicts only on macOS (and on iOS through the Core ML framework, which this Python
package does not drive); elsewhere the backend refuses with a clear ``EdgeganError``.

Packages written by ``edgegan build --target ios`` take an image or a float tensor and return an
image or a float tensor (the metadata ``edgegan.input_kind`` / ``edgegan.output_kind`` say which, and
``edgegan.input_range`` / ``edgegan.output_range`` the value ranges). ``run`` always takes the
manifest's float NCHW input and returns a float NCHW output in the manifest's output range: images
are made from the float input (8-bit, as an app would pass them) and read back into floats.
"""

import importlib
import os
import platform

import numpy as np

from ...errors import BundleError, EdgeganError
from . import Backend, register_backend

COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def package_dir(path):
    """The ``.mlpackage`` directory for ``path`` (the package, or a file inside it such as its Manifest.json)."""
    probe = os.path.abspath(path)
    while probe != os.path.dirname(probe):
        if probe.endswith(".mlpackage"):
            return probe
        probe = os.path.dirname(probe)
    return path


def _range(text, default=(-1.0, 1.0)):
    try:
        low, high = (float(v) for v in text.split(","))
        return low, high
    except (AttributeError, ValueError):
        return default


@register_backend
class CoreMLBackend(Backend):
    """Runs an ``.mlpackage`` with ``coremltools.models.MLModel`` (macOS).

    ``compute_units``: ``ALL`` (default), ``CPU_ONLY``, ``CPU_AND_GPU`` or ``CPU_AND_NE``.
    ``threads`` is accepted for the common interface and ignored (Core ML schedules its own).
    """

    name = "coreml"
    library = "coremltools"
    package = "coremltools (macOS; Core ML predicts only on macOS)"

    @classmethod
    def import_library(cls):
        """coremltools, on macOS; ``EdgeganError`` elsewhere or when it cannot predict."""
        if platform.system() != "Darwin":
            raise EdgeganError("the coreml backend runs Core ML models, which predict only on macOS (this is %s); "
                               "run the bundle on a Mac or in an iOS app, or build for another target "
                               "(`edgegan targets`)" % platform.system())
        module = Backend.import_library.__func__(cls)
        try:
            importlib.import_module("coremltools.libcoremlpython")  # the native binding that predicts
        except ImportError as e:
            raise EdgeganError("coremltools %s here cannot predict (%s); reinstall it from a macOS wheel: "
                               "pip install coremltools" % (getattr(module, "__version__", "?"), e))
        return module

    def __init__(self, path, threads=None, layout=None, compute_units=None):
        ct = self.import_library()
        units = (compute_units or "ALL").upper()
        if units not in COMPUTE_UNITS:
            raise EdgeganError("compute_units must be one of %s, got %r" % (", ".join(COMPUTE_UNITS), compute_units))
        self.path = package_dir(path)
        try:
            self.model = ct.models.MLModel(self.path, compute_units=getattr(ct.ComputeUnit, units))
        except Exception as e:  # coremltools raises several types
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BundleError("Core ML cannot load %s (%s); re-run `edgegan build`" % (self.path, reason))
        spec = self.model.get_spec()
        meta = dict(spec.description.metadata.userDefined)
        inp, out = spec.description.input[0], spec.description.output[0]
        self.input_name, self.output_name = inp.name, out.name
        self.input_kind = "image" if inp.type.WhichOneof("Type") == "imageType" else "tensor"
        self.output_kind = "image" if out.type.WhichOneof("Type") == "imageType" else "tensor"
        self.input_range = _range(meta.get("edgegan.input_range"))
        self.output_range = _range(meta.get("edgegan.output_range"))
        self.bgr = meta.get("edgegan.channel_order") == "BGR"
        if self.input_kind == "image":
            t = inp.type.imageType
            channels = 1 if t.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.GRAYSCALE else 3
            self.input_shape = (1, channels, int(t.height), int(t.width))
        else:
            self.input_shape = tuple(int(d) for d in inp.type.multiArrayType.shape)
        self.input_dtype = np.dtype(np.float32)
        self.layout = layout or "NCHW"
        self.threads = threads
        self.compute_units = units

    def _image(self, x):
        from PIL import Image

        low, high = self.input_range
        pixels = np.clip(np.rint((x[0] - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
        if pixels.shape[0] == 1:
            return Image.fromarray(pixels[0], mode="L")
        hwc = pixels.transpose(1, 2, 0)
        return Image.fromarray(np.ascontiguousarray(hwc[:, :, ::-1] if self.bgr else hwc), mode="RGB")

    def _from_image(self, image):
        a = np.asarray(image, dtype=np.float32)
        a = a[None] if a.ndim == 2 else a[:, :, :3].transpose(2, 0, 1)
        if self.bgr and a.shape[0] == 3:
            a = a[::-1]
        low, high = self.output_range
        return (a[None] * np.float32((high - low) / 255.0) + np.float32(low)).astype(np.float32)

    def _run(self, x):
        feed = self._image(x) if self.input_kind == "image" else x
        y = self.model.predict({self.input_name: feed})[self.output_name]
        if self.output_kind == "image":
            return self._from_image(y)
        return np.asarray(y, dtype=np.float32)

    def close(self):
        self.model = None
