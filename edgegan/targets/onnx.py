"""The ONNX compiler: export a static sub-network, simplify it, check it, measure its parity.

Export uses torch's TorchScript-based exporter (``dynamo=False``), which honours opsets 11–20;
the dynamo exporter silently raises the opset to 18, which the TensorRT 8.2 parser refuses, so the
opset of the written file is verified against the profile either way.
"""

import io
import warnings

import numpy as np
import onnx
import torch

from ..errors import TargetError
from .registry import Compiler, register_compiler

INPUT_NAME, OUTPUT_NAME = "input", "output"
PSNR_CAP_DB = 200.0  # reported when outputs are bit-identical (an infinite PSNR is not valid JSON)


def export(module, input_shape, opset):
    """Trace ``module`` at ``input_shape`` to an ``onnx.ModelProto`` at exactly ``opset``."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.zeros(tuple(input_shape)), buf, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def simplify(model):
    """Fold constants and shape arithmetic with onnxsim; refuse a model onnxsim cannot validate."""
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise TargetError("onnxsim could not validate the simplified graph; report this model")
    return simplified


def opset_of(model):
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def op_names(model):
    """Op types in the graph; a Pad is reported as ``Pad:<mode>`` too."""
    names = set()
    for node in model.graph.node:
        names.add(node.op_type)
        if node.op_type == "Pad":
            mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
            names.add("Pad:" + mode)
    return names


def check(model, opset, forbid_ops=()):
    """``onnx.checker`` with full shape inference, the exact opset, and no forbidden op."""
    onnx.checker.check_model(model, full_check=True)
    got = opset_of(model)
    if got != opset:
        raise TargetError("the exported graph has opset %d, the profile asks for %d" % (got, opset))
    bad = sorted(op_names(model) & set(forbid_ops))
    if bad:
        raise TargetError("the graph contains %s, which this target cannot take; change the profile's "
                          "[export] settings (e.g. padding = \"decompose\") or the model" % ", ".join(bad))


def compile_onnx(module, input_shape, path, opset, forbid_ops=()):
    """Export, simplify, check and save ``module``; returns the saved ``ModelProto``."""
    model = simplify(export(module, input_shape, opset))
    check(model, opset, forbid_ops)
    onnx.save(model, path)
    return model


def psnr(reference, test, data_range):
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * np.log10(data_range ** 2 / mse))


def parity_inputs(input_shape, value_range, n=8, seed=0):
    """Fixed inputs for parity: sparse binary maps (like edge maps) and uniform noise, in ``value_range``."""
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    out = []
    for i in range(n):
        if i % 2 == 0:
            x = np.where(rng.random(input_shape) < 0.15, lo, hi)
        else:
            x = rng.uniform(lo, hi, size=input_shape)
        out.append(x.astype(np.float32))
    return out


@torch.no_grad()
def measure_parity(path, module, inputs, data_range, threads=1):
    """PSNR and max-abs error of the ONNX file under onnxruntime against ``module`` on ``inputs``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    refs, outs = [], []
    for x in inputs:
        refs.append(module(torch.from_numpy(x)).numpy())
        outs.append(session.run(None, {INPUT_NAME: x})[0])
    ref, out = np.stack(refs), np.stack(outs)
    return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
            "n_inputs": len(inputs), "backend": "onnxruntime", "measured_precision": "fp32"}


@torch.no_grad()
def measure_fp16_emulation(module, inputs, data_range):
    """PSNR of the sub-network run in fp16 (torch on CPU) against fp32: what fp16 arithmetic costs.

    An estimate for targets whose fp16 engine is built on the device; not a measurement of that engine.
    """
    import copy

    half = copy.deepcopy(module).half()
    refs = np.stack([module(torch.from_numpy(x)).numpy() for x in inputs])
    outs = np.stack([half(torch.from_numpy(x).half()).float().numpy() for x in inputs])
    return {"psnr_db": round(psnr(refs, outs, data_range), 2), "max_abs": float(np.max(np.abs(refs - outs))),
            "n_inputs": len(inputs), "how": "torch fp16 on CPU vs fp32 (estimate; the engine is built on the device)"}


@register_compiler
class OnnxCompiler(Compiler):
    """ONNX at the profile's opset, simplified and checked; parity under ONNX Runtime."""

    name = "onnx"
    extension = ".onnx"
    bundle_backend = "onnxruntime"

    def compile(self, module, input_shape, path, profile, precision):
        export = profile["export"]
        compile_onnx(module, input_shape, path, export["opset"], export["forbid_ops"])

    def parity(self, path, module, inputs, data_range, profile, precision):
        return measure_parity(path, module, inputs, data_range)
