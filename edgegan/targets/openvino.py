"""The OpenVINO compiler: the ONNX artifact of the ``onnx`` compiler, run and measured by OpenVINO.

OpenVINO reads ONNX directly, so the artifact is the same simplified, checked ONNX file (fp32, or the
Q/DQ INT8 model that passed the quality gate); what differs is the engine and its precision. A
``bf16`` variant is the fp32 file compiled with ``INFERENCE_PRECISION_HINT=bf16`` (AMX / AVX512-BF16),
and its parity is measured that way, against the ``[parity] min_psnr_db_bf16`` gate. Where the build
machine has no bf16 unit, OpenVINO runs f32 and the parity says so (``measured_precision``).

The manifest records the build machine's engine (``openvino``: version, device capabilities, CPU
flags), and each variant what OpenVINO compiled it to (``openvino_precision``).
"""

import numpy as np
import torch

from ..errors import TargetError
from ..runtime.backends import get_backend
from .onnx import OnnxCompiler, as_tuple, psnr, torch_call
from .registry import register_compiler


@register_compiler
class OpenVinoCompiler(OnnxCompiler):
    """ONNX at the profile's opset (fp32 or INT8 Q/DQ); parity under OpenVINO at the variant's precision."""

    name = "openvino"
    extension = ".onnx"
    bundle_backend = "openvino"
    noise_inputs = True

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        if precision not in ("fp32", "bf16", "int8"):
            raise TargetError("the openvino compiler builds fp32, bf16 and int8 variants, not %s" % precision)
        # bf16 is a compile setting of the engine, not of the file: the artifact stays fp32 ONNX
        return OnnxCompiler.compile(self, module, input_shape, path, profile,
                                    "int8" if precision == "int8" else "fp32", calibration) or {}

    @torch.no_grad()
    def parity(self, path, module, inputs, data_range, profile, precision):
        threads = profile.get("runtime", {}).get("threads") or None
        backend = get_backend("openvino")(path, threads=threads, precision=precision)
        try:
            ref = np.stack([torch_call(module, x) for x in inputs])
            out = np.stack([backend.run(x if len(as_tuple(x)) == 1 else tuple(as_tuple(x))) for x in inputs])
            ran = backend.inference_precision
        finally:
            backend.close()
        if precision == "int8":
            measured = "int8"
        else:
            measured = "bf16" if ran == "bf16" else "fp32"
        return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
                "n_inputs": len(inputs), "backend": "openvino", "measured_precision": measured,
                "openvino_precision": ran}

    def predict(self, path, inputs, profile, precision):
        threads = profile.get("runtime", {}).get("threads") or None
        backend = get_backend("openvino")(path, threads=threads, precision=precision)
        try:
            out = np.concatenate([backend.run(x if len(as_tuple(x)) == 1 else tuple(as_tuple(x))) for x in inputs])
            ran = backend.inference_precision
        finally:
            backend.close()
        measured = "int8" if precision == "int8" else ("bf16" if ran == "bf16" else "fp32")
        return out, {"backend": "openvino", "measured_precision": measured}

    def finish(self, bundle_dir, variants, profile, precision):
        from ..runtime.backends.openvino import describe

        return {"openvino": describe()}
