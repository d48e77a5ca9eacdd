"""The Torch-TensorRT compiler: TensorRT engines embedded in a TorchScript file, compiled on this machine.

An alternative to the ONNX → engine path for machines that have torch-tensorrt (and so a CUDA GPU and
TensorRT): ``torch_tensorrt.compile`` (dynamo frontend, or TorchScript for torch-tensorrt 1.x) turns
the static sub-network into a module whose TensorRT engines run inside PyTorch, saved as TorchScript
for the ``torch`` runtime backend (which must ``import torch_tensorrt`` before loading it). As with
any TensorRT engine, the file only runs on the GPU and TensorRT version that compiled it.

A profile selects it with ``compiler = "torch_tensorrt"``; ``[tensorrt] workspace_mib`` applies.
Without torch-tensorrt or without CUDA it refuses with a message naming the ONNX path instead.
"""

import copy
import json
import os

import numpy as np
import torch

from .. import __version__
from ..errors import TargetError
from .onnx import INPUT_NAME, OUTPUT_NAME, psnr
from .registry import Compiler, register_compiler

META_FILE = "edgegan.json"  # the torch backend reads the artifact's metadata from this extra file
PRECISIONS = ("fp32", "fp16")


def import_torch_tensorrt():
    """``torch_tensorrt``, or a ``TargetError`` saying what is missing and what to use instead."""
    try:
        import torch_tensorrt
    except ImportError as e:
        raise TargetError("the torch_tensorrt compiler needs torch-tensorrt (%s): pip install torch-tensorrt (the "
                          "release matching torch %s; it needs a CUDA GPU and TensorRT). Without it, use a TensorRT "
                          "profile (e.g. --target jetson-orin-nano): ONNX files whose engines are built on the device"
                          % (e, torch.__version__))
    if not torch.cuda.is_available():
        raise TargetError("torch-tensorrt %s is installed but torch %s sees no CUDA GPU; Torch-TensorRT compiles "
                          "for the GPU it runs on" % (getattr(torch_tensorrt, "__version__", "?"), torch.__version__))
    return torch_tensorrt


def compile_settings(precision, input_shape, workspace_mib):
    """The keyword arguments of ``torch_tensorrt.compile`` (without ``inputs``) for ``precision``."""
    if precision not in PRECISIONS:
        raise TargetError("the torch_tensorrt compiler builds %s, not %s (INT8 goes through the ONNX Q/DQ path)"
                          % ("/".join(PRECISIONS), precision))
    enabled = {torch.float32, torch.float16} if precision == "fp16" else {torch.float32}
    return {"enabled_precisions": enabled, "workspace_size": int(workspace_mib) << 20, "truncate_long_and_double": True}


@torch.no_grad()
def compile_torch_tensorrt(module, input_shape, path, precision, workspace_mib=1024):
    """Compile ``module`` for this GPU and save it as TorchScript at ``path``; returns the saved metadata."""
    tt = import_torch_tensorrt()
    settings = compile_settings(precision, input_shape, workspace_mib)
    model = copy.deepcopy(module).eval().cuda()
    example = torch.zeros(tuple(input_shape), device="cuda")
    tmp = path + ".tmp"
    try:
        if hasattr(tt, "save"):  # torch-tensorrt 2.x: dynamo frontend, saved as TorchScript
            compiled = tt.compile(model, ir="dynamo", inputs=[example], **settings)
            tt.save(compiled, tmp, output_format="torchscript", inputs=[example])
            scripted = torch.jit.load(tmp)
        else:  # torch-tensorrt 1.x: TorchScript frontend
            scripted = tt.compile(torch.jit.trace(model, example), ir="ts",
                                  inputs=[tt.Input(tuple(input_shape))], **settings)
        meta = {"format": "edgegan-torchscript/1", "input_shape": list(input_shape), "input_name": INPUT_NAME,
                "output_name": OUTPUT_NAME, "input_dtype": "float32", "precision": precision,
                "requires": ["torch_tensorrt"], "device": torch.cuda.get_device_name(0),
                "torch_version": torch.__version__, "torch_tensorrt_version": getattr(tt, "__version__", None),
                "edgegan_version": __version__}
        torch.jit.save(scripted, tmp, _extra_files={META_FILE: json.dumps(meta)})
        os.replace(tmp, path)
    except TargetError:
        raise
    except Exception as e:  # torch-tensorrt raises many types, with long C++ traces
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TargetError("torch-tensorrt could not compile the sub-network at %s (%s); the ONNX path (a TensorRT "
                          "profile) may take it" % (precision, reason))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return meta


@torch.no_grad()
def measure_parity(path, module, inputs, data_range, precision):
    """PSNR / max-abs of the compiled file (on the GPU) against ``module`` (fp32 on the CPU)."""
    import_torch_tensorrt()
    loaded = torch.jit.load(path, map_location="cuda")
    refs, outs = [], []
    for x in inputs:
        t = torch.from_numpy(x)
        refs.append(module(t).numpy())
        outs.append(loaded(t.cuda()).float().cpu().numpy())
    ref, out = np.stack(refs), np.stack(outs)
    return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
            "n_inputs": len(inputs), "backend": "torch_tensorrt", "measured_precision": precision}


@register_compiler
class TorchTensorRTCompiler(Compiler):
    """TorchScript with embedded TensorRT engines, compiled and measured on this machine's GPU."""

    name = "torch_tensorrt"
    extension = ".pt"
    bundle_backend = "torch"

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        workspace = (profile.get("tensorrt") or {}).get("workspace_mib", 1024)
        meta = compile_torch_tensorrt(module, input_shape, path, precision, workspace)
        return {"torch_tensorrt": {"device": meta["device"], "version": meta["torch_tensorrt_version"]}}

    def parity(self, path, module, inputs, data_range, profile, precision):
        return measure_parity(path, module, inputs, data_range, precision)

    @torch.no_grad()
    def predict(self, path, inputs, profile, precision):
        if not torch.cuda.is_available():
            return None
        import_torch_tensorrt()
        loaded = torch.jit.load(path, map_location="cuda")
        out = np.concatenate([loaded(torch.from_numpy(x).cuda()).float().cpu().numpy() for x in inputs])
        return out, {"backend": "torch_tensorrt", "measured_precision": precision}
