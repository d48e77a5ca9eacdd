"""The ONNX compiler: export a static sub-network, simplify it, check it, measure its parity.

Export uses torch's TorchScript-based exporter (``dynamo=False``), which honours opsets 11–20;
the dynamo exporter silently raises the opset to 18, which the TensorRT 8.2 parser refuses, so the
opset of the written file is verified against the profile either way.
"""

import io
import os
import tempfile
import warnings

import numpy as np
import onnx
import torch

from ..calibrate import quality_gate, quantizable_nodes, quantize_qdq, tensor_ranges
from ..errors import TargetError
from .registry import Compiler, register_compiler

INPUT_NAME, OUTPUT_NAME = "input", "output"
LABEL_NAME = "label"  # the second input of a class-conditional generator
PSNR_CAP_DB = 200.0  # reported when outputs are bit-identical (an infinite PSNR is not valid JSON)


def input_names_for(n):
    """Graph input names for ``n`` inputs: ``input``; or ``input``, ``label`` (noise + class of a
    conditional generator); or ``input``, ``input1``, ..."""
    if n == 1:
        return [INPUT_NAME]
    if n == 2:
        return [INPUT_NAME, LABEL_NAME]
    return [INPUT_NAME] + ["input%d" % i for i in range(1, n)]


def export(module, input_shape, opset, example_inputs=None, input_names=None):
    """Trace ``module`` at ``input_shape`` to an ``onnx.ModelProto`` at exactly ``opset``.

    ``example_inputs`` (a tuple of tensors, e.g. noise and an int64 label for a conditional
    generator) replaces the single zero input of ``input_shape``; the graph inputs are then named
    ``input_names`` (default ``input_names_for(len(example_inputs))``).
    """
    if example_inputs is None:
        args, names = torch.zeros(tuple(input_shape)), [INPUT_NAME]
    else:
        args = tuple(example_inputs)
        names = list(input_names or input_names_for(len(args)))
        if len(names) != len(args):
            raise TargetError("%d input names for %d example inputs" % (len(names), len(args)))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, buf, dynamo=False, opset_version=opset,
                          input_names=names, output_names=[OUTPUT_NAME], do_constant_folding=True)
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


def compile_onnx(module, input_shape, path, opset, forbid_ops=(), example_inputs=None, input_names=None):
    """Export, simplify, check and save ``module``; returns the saved ``ModelProto``.

    ``example_inputs`` / ``input_names``: several inputs (see ``export``)."""
    model = simplify(export(module, input_shape, opset, example_inputs=example_inputs, input_names=input_names))
    check(model, opset, forbid_ops)
    onnx.save(model, path)
    return model


def psnr(reference, test, data_range):
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(data_range ** 2 / mse)))


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


def _session(path, threads=1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def as_tuple(x):
    """One model input as a tuple of arrays: ``x`` itself when it already is one (several graph inputs)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def torch_call(module, x, half=False):
    """``module`` on one input (an array, or a tuple of arrays for several inputs), as a float32 numpy array;
    ``half``: float inputs in fp16 (integer inputs such as class labels stay int64)."""
    args = []
    for a in as_tuple(x):
        t = torch.from_numpy(np.asarray(a))
        if t.is_floating_point() and half:
            t = t.half()
        args.append(t)
    return module(*args).float().numpy()


@torch.no_grad()
def measure_parity(path, module, inputs, data_range, measured_precision="fp32"):
    """PSNR and max-abs error of the ONNX file under onnxruntime against ``module`` on ``inputs``.

    Each item of ``inputs`` is an array, or — for a graph with several inputs — a tuple of arrays in
    the graph's input order."""
    session = _session(path)
    names = [i.name for i in session.get_inputs()]
    ref = np.stack([torch_call(module, x) for x in inputs])
    out = np.stack([session.run(None, dict(zip(names, as_tuple(x))))[0] for x in inputs])
    return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
            "n_inputs": len(inputs), "backend": "onnxruntime", "measured_precision": measured_precision}


@torch.no_grad()
def measure_fp16_emulation(module, inputs, data_range):
    """PSNR of the sub-network run in fp16 (torch on CPU) against fp32: what fp16 arithmetic costs.

    An estimate for targets whose fp16 engine is built on the device; not a measurement of that engine.
    """
    import copy

    half = copy.deepcopy(module).half()
    refs = np.stack([torch_call(module, x) for x in inputs])
    outs = np.stack([torch_call(half, x, half=True) for x in inputs])
    return {"psnr_db": round(psnr(refs, outs, data_range), 2), "max_abs": float(np.max(np.abs(refs - outs))),
            "n_inputs": len(inputs), "how": "torch fp16 on CPU vs fp32 (estimate; the engine is built on the device)"}


@register_compiler
class OnnxCompiler(Compiler):
    """ONNX at the profile's opset, simplified and checked; parity under ONNX Runtime."""

    name = "onnx"
    extension = ".onnx"
    bundle_backend = "onnxruntime"
    noise_inputs = True
    per_tensor_weight_ops = ()   # op types whose INT8 weights get one scale (TensorRT: ConvTranspose)

    def export_inputs(self):
        """``compile_onnx`` keywords for a model with ``input_specs`` (noise, label); none for one image input."""
        if not self.input_specs:
            return {}
        return {"example_inputs": self.example_inputs(), "input_names": self.input_names()}

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        export = profile["export"]
        if precision != "int8":
            compile_onnx(module, input_shape, path, export["opset"], export["forbid_ops"], **self.export_inputs())
            return {}
        if calibration is None:
            raise TargetError("int8 needs calibration data (edgegan.calibrate.CalibrationSet)")
        with tempfile.TemporaryDirectory(prefix="edgegan-int8-") as tmp:
            fp32 = os.path.join(tmp, "fp32.onnx")
            compile_onnx(module, input_shape, fp32, export["opset"], export["forbid_ops"], **self.export_inputs())
            report = quantize_with_gate(module, fp32, tmp, calibration, profile, self.input_names(),
                                        self.per_tensor_weight_ops)
            gated = report.pop("path")
            check(onnx.load(gated), export["opset"], export["forbid_ops"])
            os.replace(gated, path)
            self.after_int8(path, tensor_ranges(os.path.join(tmp, "calibration.json")), profile)
        return {"int8": report}

    def after_int8(self, path, ranges, profile):
        """Hook for targets that need the calibrated tensor ranges too (TensorRT writes a cache)."""

    def parity(self, path, module, inputs, data_range, profile, precision):
        return measure_parity(path, module, inputs, data_range, "int8" if precision == "int8" else "fp32")

    def predict(self, path, inputs, profile, precision):
        session = _session(path)
        names = [i.name for i in session.get_inputs()]
        out = np.concatenate([session.run(None, dict(zip(names, as_tuple(x))))[0] for x in inputs])
        return out, {"backend": "onnxruntime", "measured_precision": "int8" if precision == "int8" else "fp32"}


@torch.no_grad()
def quantize_with_gate(module, fp32_path, workdir, calibration, profile, input_names=None, per_tensor_ops=()):
    """Q/DQ-quantize ``fp32_path`` through the quality gate; returns the gate's report (``path``: the
    accepted model, inside ``workdir``). ``input_names``: the graph's inputs when there are several
    (the calibration items are then tuples in that order). ``per_tensor_ops``: op types whose weights are
    quantized per tensor (``quantize_qdq``)."""
    cal = profile["calibrate"]
    cache = os.path.join(workdir, "calibration.json")
    names = list(input_names or [INPUT_NAME])
    refs = np.stack([torch_call(module, x) for x in calibration.held_out])
    attempts = []

    def quantize(kept_float):
        out = os.path.join(workdir, "int8-%d.onnx" % len(attempts))
        attempts.append(out)
        return quantize_qdq(fp32_path, out, calibration, names if input_names else INPUT_NAME, cal["observer"],
                            kept_float, cal["activation"], cache_path=cache, per_tensor_ops=per_tensor_ops)

    def evaluate(path):
        session = _session(path)
        outs = np.stack([session.run(None, dict(zip(names, as_tuple(x))))[0] for x in calibration.held_out])
        return psnr(refs, outs, calibration.output_range)

    report = quality_gate(quantize, evaluate, quantizable_nodes(fp32_path), float(cal["min_psnr_db"]))
    report.update({"observer": cal["observer"], "activation": cal["activation"],
                   "calibration": calibration.describe()})
    return report
