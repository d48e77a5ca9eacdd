"""The TorchScript compiler: one traced ``.pt`` per variant, for the ``torch`` runtime backend.

For devices with PyTorch but no TensorRT (a Jetson with NVIDIA's torch wheel, a GPU server, a CPU).
The artifact records its input shape and precision in an extra file (``edgegan.json``) so the
torch-free runtime side can check inputs without the manifest. Parity: the file reloaded with
``torch.jit.load`` against the PyTorch sub-network, in the artifact's precision, on the CPU.
"""

import copy
import json
import os
import warnings

import numpy as np
import torch

from .. import __version__
from ..errors import TargetError
from ..runtime.backends.torch import META_FILE
from .onnx import INPUT_NAME, OUTPUT_NAME, as_tuple, psnr
from .registry import Compiler, register_compiler

PRECISIONS = ("fp32", "fp16")


def _dtype(precision):
    if precision not in PRECISIONS:
        raise TargetError("the torchscript compiler writes %s, not %s" % ("/".join(PRECISIONS), precision))
    return torch.float16 if precision == "fp16" else torch.float32


@torch.no_grad()
def compile_torchscript(module, input_shape, path, precision="fp32", inputs=None):
    """Trace ``module`` at ``input_shape`` and save it to ``path`` (temporary file, then rename); returns
    the traced ``ScriptModule``.

    ``inputs``: input specs (``[{"name", "shape", "dtype"}]``) of a model with noise (and label) inputs,
    traced on zeros of each and recorded in the artifact's ``edgegan.json`` (``"inputs"``); integer
    inputs (class labels) stay int64 in an fp16 artifact.

    Not frozen: freezing bakes the weights into graph constants, which ``.to(dtype)`` and
    ``map_location`` cannot convert, and the runtime casts (fp16 artifact → fp32 on a CPU). The
    sub-network's BatchNorm is already folded by ``extract``."""
    dtype = _dtype(precision)
    module = copy.deepcopy(module).eval().to(dtype)
    if inputs:
        example = tuple(torch.zeros(tuple(s["shape"]), dtype=getattr(torch, s["dtype"]) if "int" in s["dtype"]
                                    else dtype) for s in inputs)
    else:
        example = torch.zeros(tuple(input_shape), dtype=dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated.*")  # torch.jit in torch >= 2.9
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # input-shape checks, static here
        traced = torch.jit.trace(module, example, check_trace=False)
    first = inputs[0] if inputs else {"name": INPUT_NAME, "shape": list(input_shape)}
    meta = {"format": "edgegan-torchscript/1", "input_shape": list(first["shape"]), "input_name": first["name"],
            "output_name": OUTPUT_NAME, "input_dtype": "float32", "precision": precision,
            "torch_version": torch.__version__, "edgegan_version": __version__}
    if inputs:
        meta["inputs"] = [{"name": s["name"], "shape": list(s["shape"]), "dtype": s["dtype"]} for s in inputs]
    tmp = path + ".tmp"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deprecated.*")
            torch.jit.save(traced, tmp, _extra_files={META_FILE: json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return traced


@torch.no_grad()
def measure_parity(path, module, inputs, data_range, precision="fp32"):
    """PSNR and max-abs error of the file reloaded with ``torch.jit.load`` against ``module`` (fp32)."""
    dtype = _dtype(precision)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        loaded = torch.jit.load(path, map_location="cpu")
    refs, outs = [], []
    for x in inputs:
        ts = [torch.from_numpy(np.asarray(a)) for a in as_tuple(x)]
        refs.append(module(*ts).numpy())
        outs.append(loaded(*[t.to(dtype) if t.is_floating_point() else t for t in ts]).float().numpy())
    ref, out = np.stack(refs), np.stack(outs)
    return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
            "n_inputs": len(inputs), "backend": "torch.jit.load", "measured_precision": precision}


@register_compiler
class TorchScriptCompiler(Compiler):
    name = "torchscript"
    extension = ".pt"
    bundle_backend = "torch"
    noise_inputs = True

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        compile_torchscript(module, input_shape, path, precision, inputs=self.input_specs)
        return {}

    def parity(self, path, module, inputs, data_range, profile, precision):
        return measure_parity(path, module, inputs, data_range, precision)

    @torch.no_grad()
    def predict(self, path, inputs, profile, precision):
        dtype = _dtype(precision)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deprecated.*")
            loaded = torch.jit.load(path, map_location="cpu")
        outs = []
        for x in inputs:
            ts = [torch.from_numpy(np.asarray(a)) for a in as_tuple(x)]
            outs.append(loaded(*[t.to(dtype) if t.is_floating_point() else t for t in ts]).float().numpy())
        return np.concatenate(outs), {"backend": "torch.jit.load (CPU)", "measured_precision": precision}
