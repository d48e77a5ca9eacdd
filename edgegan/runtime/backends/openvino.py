"""The OpenVINO backend: one compiled model per artifact (an ONNX file, fp32 or INT8 Q/DQ), on the CPU.

OpenVINO reads the same ONNX files as ONNX Runtime and compiles them for the CPU it runs on: AMX or
AVX512-BF16 matrix units run bf16, VNNI / AMX-INT8 run the Q/DQ INT8 models. The settings:

- ``precision`` (the variant's, from the manifest): ``fp32`` compiles with
  ``INFERENCE_PRECISION_HINT=f32`` (OpenVINO would otherwise pick bf16 by itself on an AMX CPU);
  ``bf16`` with ``bf16`` where the CPU reports ``BF16`` in ``OPTIMIZATION_CAPABILITIES``, else f32
  with a warning (the bundle still runs, at fp32 speed); ``int8``: the Q/DQ graph, the layers kept in
  float run in f32 as the quality gate measured them.
- ``threads``: ``INFERENCE_NUM_THREADS`` (``None``: OpenVINO's choice, one per physical core).
- ``PERFORMANCE_HINT=LATENCY``: one stream, batch 1, as the FPS protocol measures.
- ``CACHE_DIR``: compiled models are cached (``$EDGEGAN_OPENVINO_CACHE``, else
  ``$XDG_CACHE_HOME/edgegan/openvino``, else ``~/.cache/edgegan/openvino``; ``""`` turns it off),
  so a second load skips the compilation.

``inference_precision`` says what the compiled model really runs (read back from OpenVINO).
Torch-free and Python 3.6-compatible syntax (OpenVINO itself needs a newer Python).
"""

import os
import warnings

import numpy as np

from ...errors import BundleError, InputError
from ..fps import cpu_isa_flags
from . import Backend, register_backend

DEVICE = "CPU"
#: manifest precision → OpenVINO ``INFERENCE_PRECISION_HINT``
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32", None: "f32"}
ELEMENT_TYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32,
                 "u8": np.uint8}


def cache_dir():
    """Where compiled models are cached (``None``: no cache)."""
    configured = os.environ.get("EDGEGAN_OPENVINO_CACHE")
    if configured is not None:
        return configured or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgegan", "openvino")


_CORE = None


def core():
    """The process's ``openvino.Core`` (created once: it owns the plugin and the cache settings)."""
    global _CORE
    if _CORE is None:
        ov = OpenVinoBackend.import_library()
        created = ov.Core()
        path = cache_dir()
        if path:
            try:
                if not os.path.isdir(path):
                    os.makedirs(path)
                created.set_property({"CACHE_DIR": path})
            except (OSError, RuntimeError) as e:
                warnings.warn("OpenVINO model cache off (%s: %s); every load compiles anew" % (path, e))
        _CORE = created
    return _CORE


def capabilities(device=DEVICE):
    """``OPTIMIZATION_CAPABILITIES`` of ``device`` (e.g. ``['BF16', 'FP32', 'INT8', ...]``)."""
    try:
        return [str(c) for c in core().get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except RuntimeError:
        return []


def has_bf16(device=DEVICE):
    """Whether OpenVINO runs bf16 natively on ``device`` (AMX-BF16 or AVX512-BF16 on a CPU)."""
    return "BF16" in capabilities(device)


def describe(device=DEVICE):
    """What a manifest or a benchmark records about the OpenVINO engine here."""
    ov = OpenVinoBackend.import_library()
    try:
        name = str(core().get_property(device, "FULL_DEVICE_NAME"))
    except RuntimeError:
        name = None
    return {"version": getattr(ov, "__version__", None), "device": device, "device_name": name,
            "capabilities": capabilities(device), "bf16": has_bf16(device), "cpu_flags": cpu_isa_flags()}


def _element_type(port):
    name = port.get_element_type().to_string()
    return np.dtype(ELEMENT_TYPES.get(name, np.float32))


def _shape(port):
    shape = port.get_partial_shape()
    return tuple(d.get_length() if d.is_static else None for d in shape)


def compile_config(precision=None, threads=None, hint="LATENCY", device=DEVICE):
    """The ``compile_model`` settings for a variant of ``precision`` (see the module docstring)."""
    if precision not in PRECISION_HINTS:
        raise BundleError("the openvino backend runs fp32, bf16 and int8 variants, not %r" % (precision,))
    wanted = PRECISION_HINTS[precision]
    if wanted == "bf16" and not has_bf16(device):
        warnings.warn("this CPU has no bf16 unit (OpenVINO reports %s); the bf16 variant runs in f32"
                      % ", ".join(capabilities(device)))
        wanted = "f32"
    config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": wanted}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


@register_backend
class OpenVinoBackend(Backend):
    """Runs an ONNX file with OpenVINO on the CPU.

    ``threads``: ``INFERENCE_NUM_THREADS``. ``precision``: the variant's precision (``fp32``,
    ``bf16``, ``int8``). ``layout``: the input layout, only for messages. ``perf_counters``: collect
    OpenVINO's per-layer times (``profile()``), for profiling only.
    """

    name = "openvino"
    library = "openvino"
    package = "openvino (the [openvino] extra)"
    takes_precision = True

    def __init__(self, path, threads=None, layout=None, precision=None, perf_counters=False, device=DEVICE):
        self.precision = precision
        self.config = compile_config(precision, threads, device=device)
        if perf_counters:
            self.config["PERF_COUNT"] = True
        try:
            self.compiled = core().compile_model(path, device, self.config)
        except RuntimeError as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BundleError("OpenVINO %s cannot load %s (%s); re-run `edgegan build`"
                              % (getattr(self.import_library(), "__version__", "?"), path, reason))
        self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.threads = threads
        self.layout = layout
        ports = list(self.compiled.inputs)
        specs = [{"name": p.get_any_name(), "shape": _shape(p), "dtype": _element_type(p)} for p in ports]
        self.input_name, self.input_shape, self.input_dtype = specs[0]["name"], specs[0]["shape"], specs[0]["dtype"]
        self.inputs = specs if len(specs) > 1 else None
        self.output_name = self.compiled.outputs[0].get_any_name()
        self.providers = ["OpenVINO %s (%s)" % (DEVICE, self.inference_precision)]
        self._request = self.compiled.create_infer_request()

    def _infer(self, feeds):
        if self._request is None:
            raise InputError("this OpenVINO model was closed")
        result = self._request.infer(feeds, share_inputs=True, share_outputs=False)
        return result[0]

    def _run(self, x):
        return self._infer({0: x})

    def _run_inputs(self, arrays):
        return self._infer(dict(enumerate(arrays)))

    @classmethod
    def engine_info(cls):
        """``describe()``: what ``edgegan.runtime.fps.environment`` records about this engine."""
        return describe()

    def profile(self):
        """Per-layer times of the last inference (``perf_counters=True``): ``[{"name", "type", "exec_type",
        "ms"}]``, slowest first."""
        rows = []
        for info in self._request.profiling_info:
            ms = info.real_time.total_seconds() * 1e3
            if ms > 0:
                rows.append({"name": info.node_name, "type": info.node_type, "exec_type": info.exec_type, "ms": ms})
        return sorted(rows, key=lambda r: -r["ms"])

    def close(self):
        self._request = None
        self.compiled = None
