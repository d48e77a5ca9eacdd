"""The tflite backend: one LiteRT interpreter per ``.tflite`` artifact.

Uses ``ai_edge_litert`` (LiteRT, ``pip install ai-edge-litert``) or, where that is missing,
``tflite_runtime`` (the older wheel; it is built against numpy 1.x and fails to import under
numpy 2 — ``pip install 'numpy<2'`` there). Both expose the same ``Interpreter``.

Artifacts take NHWC tensors. Full-integer (int8/uint8) artifacts take and return integer tensors;
this backend quantizes the float input with the input tensor's scale and zero point and
dequantizes the output, so ``run`` always takes and returns float32, like every other backend.
"""

import importlib
import json
import os

import numpy as np

from ...errors import BundleError, EdgeganError
from . import Backend, register_backend

LIBRARIES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")
INTEGER_TYPES = ("int8", "uint8", "int16")


def profile_threads(path):
    """The ``[runtime] threads`` of the profile recorded in the manifest of the bundle holding ``path``
    (capped at this machine's CPU count); ``None`` when there is none or it is 0."""
    manifest = os.path.join(os.path.dirname(os.path.abspath(path)), "manifest.json")
    try:
        with open(manifest) as f:
            threads = int(json.load(f).get("profile", {}).get("runtime", {}).get("threads") or 0)
    except (OSError, IOError, ValueError, TypeError, AttributeError):
        return None
    return min(threads, os.cpu_count() or threads) if threads > 0 else None


def _quantization(detail):
    scale, zero_point = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}


def quantize(x, q):
    """Float ``x`` → the tensor type ``q`` describes (``{"dtype", "scale", "zero_point"}``)."""
    if q["dtype"] not in INTEGER_TYPES:
        return x.astype(q["dtype"], copy=False)
    info = np.iinfo(q["dtype"])
    scaled = np.rint(x * np.float32(1.0 / q["scale"])) + np.float32(q["zero_point"])
    return np.clip(scaled, info.min, info.max).astype(q["dtype"])


def dequantize(y, q):
    """An output tensor of type ``q`` → float32."""
    if q["dtype"] not in INTEGER_TYPES:
        return y.astype(np.float32, copy=False)
    return (y.astype(np.float32) - np.float32(q["zero_point"])) * np.float32(q["scale"])


@register_backend
class TFLiteBackend(Backend):
    """Runs a ``.tflite`` file with the LiteRT (TFLite) interpreter on the CPU (XNNPACK).

    ``threads``: interpreter threads; ``None``: the bundle profile's ``[runtime] threads`` (read from
    the ``manifest.json`` next to the artifact, capped at the CPU count), else the interpreter's
    default. ``layout``: the input layout (``NHWC`` for edgegan bundles), only for messages.
    """

    name = "tflite"
    library = LIBRARIES[0]
    package = "ai-edge-litert (or tflite-runtime, which needs numpy<2)"
    library_name = None

    @classmethod
    def import_library(cls):
        """The ``interpreter`` module of ai_edge_litert, else of tflite_runtime; ``EdgeganError`` if neither imports."""
        reasons = []
        for name in LIBRARIES:
            try:
                module = importlib.import_module(name)
            except ImportError as e:
                reasons.append("%s: %s" % (name.split(".")[0], e))
                continue
            except Exception as e:  # tflite_runtime built for numpy 1.x raises AttributeError etc. under numpy 2
                reasons.append("%s: %s: %s" % (name.split(".")[0], type(e).__name__, e))
                continue
            cls.library_name = name.split(".")[0]
            return module
        hint = ""
        if int(np.__version__.split(".")[0]) >= 2 and any(r.startswith("tflite_runtime") and "No module" not in r
                                                        for r in reasons):
            hint = "; tflite_runtime needs numpy<2 (pip install 'numpy<2')"
        raise EdgeganError("the tflite backend needs ai_edge_litert or tflite_runtime (%s): pip install %s%s"
                           % ("; ".join(reasons), cls.package, hint))

    @classmethod
    def library_version(cls):
        try:
            cls.import_library()
        except EdgeganError:
            return None
        module = importlib.import_module(cls.library_name)
        return "%s %s" % (cls.library_name, getattr(module, "__version__", "?"))

    def __init__(self, path, threads=None, layout=None):
        lite = self.import_library()
        kwargs = {}
        if threads is None:
            threads = profile_threads(path)
        if threads:
            kwargs["num_threads"] = int(threads)
        try:
            self.interpreter = lite.Interpreter(model_path=path, **kwargs)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BundleError("%s cannot load %s (%s); re-run `edgegan build`, or update the library"
                              % (self.library_name, path, reason))
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_name, self.output_name = inp["name"], out["name"]
        self._input_index, self._output_index = inp["index"], out["index"]
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self.input_dtype = np.dtype(np.float32)  # what run() takes; integer artifacts are fed quantized values
        self.input_quantization = _quantization(inp)
        self.output_quantization = _quantization(out)
        self.layout = layout
        self.threads = threads

    def _run(self, x):
        self.interpreter.set_tensor(self._input_index, quantize(x, self.input_quantization))
        self.interpreter.invoke()
        return dequantize(self.interpreter.get_tensor(self._output_index), self.output_quantization)

    def close(self):
        self.interpreter = None
