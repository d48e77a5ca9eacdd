"""The onnxruntime backend: one ``InferenceSession`` per ONNX artifact."""

import warnings

import numpy as np

from ...errors import BundleError
from . import Backend, register_backend

CPU = "CPUExecutionProvider"
PROVIDER_ALIASES = {"cpu": CPU, "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
TENSOR_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def resolve_providers(requested, available):
    """Execution providers to use: the ``requested`` ones (aliases ``cpu``/``cuda``/``tensorrt`` allowed)
    that ``available`` lists, in order, then the CPU provider as fallback. Default: CPU only.

    Unavailable providers are dropped with a warning.
    """
    if not requested:
        return [CPU]
    names = [PROVIDER_ALIASES.get(p.lower(), p) for p in requested]
    missing = [n for n in names if n not in available]
    if missing:
        warnings.warn("onnxruntime here has no %s (it has %s); install onnxruntime-gpu for CUDA. Using %s"
                      % (", ".join(missing), ", ".join(available), CPU))
    chosen = [n for n in names if n in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


@register_backend
class OnnxRuntimeBackend(Backend):
    """Runs an ONNX file with onnxruntime.

    ``threads``: intra-op threads (``None``: onnxruntime's default, one per physical core).
    ``providers``: execution providers, e.g. ``["cuda"]``; default CPU.
    ``layout``: the input layout, only for messages.
    """

    name = "onnxruntime"
    library = "onnxruntime"
    package = "onnxruntime (or onnxruntime-gpu for CUDA)"

    def __init__(self, path, threads=None, providers=None, layout=None):
        ort = self.import_library()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, sess_options=options,
                                                providers=resolve_providers(providers, ort.get_available_providers()))
        except Exception as e:  # onnxruntime raises its own exception types
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BundleError("onnxruntime %s cannot load %s (%s); re-run `edgegan build`"
                              % (ort.__version__, path, reason))
        specs = [{"name": i.name, "shape": tuple(d if isinstance(d, int) else None for d in i.shape),
                  "dtype": np.dtype(TENSOR_TYPES.get(i.type, np.float32))} for i in self.session.get_inputs()]
        self.input_name, self.input_shape, self.input_dtype = specs[0]["name"], specs[0]["shape"], specs[0]["dtype"]
        self.inputs = specs if len(specs) > 1 else None
        self._input_names = [s["name"] for s in specs]
        self.output_name = self.session.get_outputs()[0].name
        self.layout = layout
        self.threads = threads
        self.providers = self.session.get_providers()
        self._output_names = [self.output_name]

    def _run(self, x):
        return self.session.run(self._output_names, {self.input_name: x})[0]

    def _run_inputs(self, arrays):
        return self.session.run(self._output_names, dict(zip(self._input_names, arrays)))[0]

    def close(self):
        self.session = None
