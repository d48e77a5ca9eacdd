"""The TFLite (LiteRT) compiler: PyTorch → ``.tflite`` with litert-torch, NHWC in and out.

* **Lowering.** litert-torch cannot convert ``ConvTranspose2d(k3, s2, p1, output_padding=1)``;
  ``lowering.lower_transposed_convs`` rewrites it as a 2×2 conv + depth-to-space with the same
  weights (same function, tested) before conversion. ``ConvTranspose2d(k4, s2, p1)`` (the UNet's
  up-convs: the output is exactly twice the input) converts as it is, to ``TRANSPOSE_CONV``.
* **Layout.** The network is wrapped so its signature takes and returns NHWC tensors named
  ``input`` and ``output`` (signature ``serving_default``); the bundle's manifest says
  ``"layout": "NHWC"`` (``io_spec``).
* **fp32**: the converted flatbuffer. **fp16**: the same with float16 weights (ai-edge-quantizer's
  float casting; DEQUANTIZE ops turn them back to fp32, so on the CPU — XNNPACK — the model computes
  in fp32; the GPU delegate computes in fp16). **int8**: full-integer static quantization
  (ai-edge-quantizer ``static_wi8_ai8``: int8 weights per channel, int8 activations per tensor,
  min/max calibration on the ``CalibrationSet``, activation ranges widened by a margin chosen on the
  held-out inputs — min/max over a few dozen inputs clips unseen ones) with **int8 input and output
  tensors**, what an Android app feeding NNAPI / the Hexagon or Edge TPU delegates uses; the scale and
  zero point of both are in the variant's ``tflite`` entry and the ``tflite`` runtime backend
  (de)quantizes, so ``Runtime`` users keep passing floats. The INT8 quality gate
  (``edgegan.calibrate.quality_gate``) keeps sensitive convolutions in float when PSNR against fp32 on
  held-out inputs falls below ``[calibrate] min_psnr_db`` (QUANTIZE/DEQUANTIZE around them; the model's
  input and output stay int8).
* **Parity** of every artifact is measured with the LiteRT interpreter against the PyTorch network.

litert-torch, ai-edge-litert and ai-edge-quantizer are the ``[tflite]`` extra; they are imported
only when a TFLite artifact is built.
"""

import copy
import os
import re
import shutil
import tempfile

import numpy as np
import torch
import torch.nn as nn

from ..errors import TargetError, install_hint
from ..runtime.backends.tflite import dequantize, quantize
from .lowering import lower_transposed_convs, remaining_transposed_convs
from .onnx import psnr
from .registry import Compiler, register_compiler

INPUT_NAME, OUTPUT_NAME = "input", "output"
SIGNATURE = "serving_default"
INSTALL = install_hint("tflite", "litert-torch, ai-edge-litert and ai-edge-quantizer")
QUANTIZABLE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
TFLITE_OBSERVERS = ("minmax",)
# ai-edge-quantizer's names of the ops whose weights the fp16 variant casts (TRANSPOSE_CONV is CONV_2D_TRANSPOSE)
FP16_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CONV_2D_TRANSPOSE")


def _require(module_name):
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise TargetError("TFLite targets need %s (%s): %s" % (module_name.split(".")[0], e, INSTALL))


class ChannelsLast(nn.Module):
    """``module`` with an NHWC input called ``input`` and an NHWC output called ``output``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, input):  # noqa: A002 — the signature's input name
        return {OUTPUT_NAME: self.module(input.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)}


def to_nhwc(x):
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))


def nhwc_shape(shape):
    n, c, h, w = shape
    return (n, h, w, c)


# -- conversion --------------------------------------------------------------------------------

def converts_natively(layer):
    """Whether litert-torch converts this transposed convolution to ``TRANSPOSE_CONV`` as it is: the
    k=4, stride 2, padding 1 form (no output padding) of the pix2pix UNet."""
    return (isinstance(layer, nn.ConvTranspose2d) and tuple(layer.kernel_size) == (4, 4)
            and tuple(layer.stride) == (2, 2) and tuple(layer.padding) == (1, 1)
            and tuple(layer.output_padding) == (0, 0) and tuple(layer.dilation) == (1, 1)
            and layer.groups == 1 and layer.padding_mode == "zeros")


def prepare(module):
    """A copy of ``module`` that litert-torch converts: lowerable transposed convs rewritten."""
    module = copy.deepcopy(module).eval()
    lower_transposed_convs(module)
    left = [name for name in remaining_transposed_convs(module) if not converts_natively(module.get_submodule(name))]
    if left:
        raise TargetError("litert-torch cannot convert the transposed convolution(s) %s (it takes "
                          "ConvTranspose2d(k=4, stride=2, padding=1) and edgegan lowers ConvTranspose2d(k=3, "
                          "stride=2, padding=1, output_padding=1)); train with --upsample resize" % ", ".join(left))
    return module


def convert_fp32(module, input_shape, path):
    """Convert a static NCHW ``module`` to an NHWC fp32 ``.tflite`` at ``path``."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    litert_torch = _require("litert_torch")
    wrapped = ChannelsLast(prepare(module)).eval()
    sample = torch.zeros(nhwc_shape(input_shape), dtype=torch.float32)
    try:
        with torch.no_grad():
            model = litert_torch.convert(wrapped, sample_kwargs={INPUT_NAME: sample})
    except Exception as e:  # the converter raises many types (ValueError, RuntimeError, MLIR errors)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:400]
        raise TargetError("litert-torch %s could not convert the network: %s"
                          % (getattr(litert_torch, "__version__", "?"), first))
    model.export(path)
    return path


def _quantizer():
    _require("ai_edge_quantizer")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    return quantizer, recipe, qtyping, algorithm_manager.AlgorithmName


def fp16_weights(fp32_path, path):
    """Write ``fp32_path`` with float16 conv/FC weights (and DEQUANTIZE ops) to ``path``."""
    quantizer, _, qtyping, algorithms = _quantizer()
    qt = quantizer.Quantizer(fp32_path)
    for op in FP16_WEIGHT_OPS:
        qt.add_weight_only_config(regex=".*", operation_name=getattr(qtyping.TFLOperationName, op), num_bits=16,
                                  algorithm_key=algorithms.FLOAT_CASTING)
    result = qt.quantize(enable_progress_report=False)
    _write(path, result.quantized_model)
    return path


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(bytes(data))
    os.replace(tmp, path)


# -- interpreter ------------------------------------------------------------------------------

def interpreter(path_or_bytes, threads=1, delegates=True):
    """A LiteRT interpreter with allocated tensors (``delegates=False``: built-in kernels only, no XNNPACK)."""
    lite = _require("ai_edge_litert.interpreter")
    kwargs = {"num_threads": int(threads)} if threads else {}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(path_or_bytes, (bytes, bytearray)):
        interp = lite.Interpreter(model_content=bytes(path_or_bytes), **kwargs)
    else:
        interp = lite.Interpreter(model_path=path_or_bytes, **kwargs)
    interp.allocate_tensors()
    return interp


def tensor_quantization(detail):
    """``{"dtype", "scale", "zero_point"}`` of an interpreter input/output detail (scale 0: not quantized)."""
    scale, zero_point = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}


class _Runner(object):
    """Runs a ``.tflite`` on float NHWC arrays, (de)quantizing integer I/O."""

    def __init__(self, path, threads=1):
        self.interp = interpreter(path, threads)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.qin, self.qout = tensor_quantization(self.inp), tensor_quantization(self.out)

    def __call__(self, x_nhwc):
        self.interp.set_tensor(self.inp["index"], quantize(np.asarray(x_nhwc, np.float32), self.qin))
        self.interp.invoke()
        return dequantize(self.interp.get_tensor(self.out["index"]), self.qout)


def op_list(path):
    """Op names of the model in execution order (built-in kernels, so delegation does not hide them)."""
    interp = interpreter(path, threads=1, delegates=False)
    return [op["op_name"] for op in interp._get_ops_details()]


def describe(path):
    """What a written ``.tflite`` holds: signature, I/O tensors (shape, dtype, quantization), ops."""
    interp = interpreter(path, threads=1, delegates=False)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def tensor(detail):
        info = tensor_quantization(detail)
        info["shape"] = [int(d) for d in detail["shape"]]
        return info

    ops = [op["op_name"] for op in interp._get_ops_details()]
    return {"signature": interp.get_signature_list(), "input": tensor(inp), "output": tensor(out),
            "ops": sorted(set(ops)), "n_ops": len(ops)}


# -- INT8 --------------------------------------------------------------------------------------

def _module_path(location):
    """``stem.1`` from a litert-torch location such as ``...ChannelsLast/...ResnetGenerator_module/
    torch.nn.modules.container.Sequential_stem/torch.nn.modules.conv.Conv2d_1``; ``None`` if it has none."""
    names = []
    for segment in location.split("/"):
        cls_and_attr = segment.rsplit(".", 1)[-1]
        if "_" not in cls_and_attr:
            return None
        names.append(cls_and_attr.split("_", 1)[1])
    if names[:2] == ["", "module"] or names[:1] == ["module"]:
        names = names[names.index("module") + 1:]
    return ".".join(names) or None


def layer_label(tensor_name):
    """A readable name for a conv op's output tensor: the PyTorch module path of its conv (``blocks.0.body.1``)."""
    parts = [p for p in tensor_name.split(";") if "/" in p]
    convs = [p for p in parts if "Conv" in p.rsplit("/", 1)[-1]]
    for part in reversed(convs or parts):
        path = _module_path(part.split("/", 1)[1] if part.startswith("edgegan.targets.tflite.ChannelsLast/") else part)
        if path:
            return path
    return tensor_name


def quantizable_layers(fp32_path):
    """``[(label, output tensor name)]`` of the conv / FC ops in execution order (the quality gate's layers)."""
    interp = interpreter(fp32_path, threads=1, delegates=False)
    names = dict((t["index"], t["name"]) for t in interp.get_tensor_details())
    layers, seen = [], set()
    for op in interp._get_ops_details():
        if op["op_name"] in QUANTIZABLE_OPS:
            tensor = names[op["outputs"][0]]
            label = layer_label(tensor)
            if label in seen:
                label = "%s#%d" % (label, len(layers))
            seen.add(label)
            layers.append((label, tensor))
    return layers


def _calibration_data(calibration):
    return {SIGNATURE: [{INPUT_NAME: batch[0]} for batch in calibration.representative_dataset("NHWC")()]}


def calibrate(fp32_path, calibration):
    """Min/max ranges of every tensor of ``fp32_path`` over the calibration inputs (ai-edge-quantizer's
    calibration result: ``{tensor name: {"min", "max", ...}}``)."""
    quantizer, recipe, _, _ = _quantizer()
    qt = quantizer.Quantizer(fp32_path)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    return qt.calibrate(_calibration_data(calibration), num_threads=min(4, os.cpu_count() or 1))


def widen_ranges(qsvs, margin, keep=()):
    """``qsvs`` with every activation range scaled by ``margin`` about zero (tensors in ``keep``, e.g. the
    model input whose range is known, unchanged)."""
    if margin == 1.0:
        return qsvs
    out = {}
    for name, value in qsvs.items():
        value = dict(value)
        if name not in keep and "min" in value and "max" in value:
            value["min"] = np.asarray(value["min"]) * margin
            value["max"] = np.asarray(value["max"]) * margin
        out[name] = value
    return out


def quantize_int8(fp32_path, path, calibration, kept_float=(), qsvs=None):
    """Full-integer static quantization of ``fp32_path`` to ``path``; ``kept_float``: layer output tensor
    names left in float. ``qsvs``: a previous calibration result (reused: calibration does not depend on
    which layers are kept; see ``calibrate``). Returns the calibration result used."""
    quantizer, recipe, qtyping, algorithms = _quantizer()
    qt = quantizer.Quantizer(fp32_path)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    for name in kept_float:
        # an op's scope is its output tensor names joined by ";" plus a trailing ";"
        qt.update_quantization_recipe(regex="^%s;$" % re.escape(name),
                                      operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                      algorithm_key=algorithms.NO_QUANTIZE)
    if qsvs is None:
        qsvs = calibrate(fp32_path, calibration)
    result = qt.quantize(qsvs, enable_progress_report=False)
    _write(path, result.quantized_model)
    return qsvs


# Min/max over a few dozen calibration inputs under-covers unseen inputs: held-out images, and far more
# inputs unlike the calibration data (other sketches, noise), exceed the calibrated ranges and are
# clipped. Every activation range is widened by the largest margin whose held-out PSNR stays within
# MARGIN_TOLERANCE_DB of the best margin's: a little in-distribution resolution buys headroom for inputs
# the calibration set did not cover.
RANGE_MARGINS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
MARGIN_TOLERANCE_DB = 3.0


@torch.no_grad()
def quantize_with_gate(module, fp32_path, path, calibration, profile, margins=RANGE_MARGINS):
    """INT8 through ``edgegan.calibrate.quality_gate``; returns the gate's report (the artifact at ``path``).

    Ranges are calibrated once; the range margin (``RANGE_MARGINS``, every layer in int8) is the largest
    within ``MARGIN_TOLERANCE_DB`` of the best held-out PSNR, and is kept for the gate's rounds."""
    from ..calibrate import quality_gate

    cal = profile["calibrate"]
    if cal.get("observer", "minmax") not in TFLITE_OBSERVERS:
        raise TargetError("TFLite INT8 calibrates with min/max ranges (ai-edge-quantizer); set [calibrate] "
                          "observer = \"minmax\" in the profile (got %r)" % cal.get("observer"))
    refs = np.stack([to_nhwc(module(torch.from_numpy(x)).numpy()) for x in calibration.held_out])
    workdir = tempfile.mkdtemp(prefix="edgegan-tflite-int8-", dir=os.path.dirname(os.path.abspath(path)))
    layers = quantizable_layers(fp32_path)
    tensors = dict(layers)
    input_tensor = interpreter(fp32_path, threads=1, delegates=False).get_input_details()[0]["name"]
    state = {"qsvs": None, "n": 0}

    def quantize(kept_float):
        out = os.path.join(workdir, "int8-%d.tflite" % state["n"])
        state["n"] += 1
        quantize_int8(fp32_path, out, calibration, [tensors[k] for k in kept_float], state["qsvs"])
        return out

    def evaluate(candidate):
        run = _Runner(candidate)
        outs = np.stack([run(to_nhwc(x)) for x in calibration.held_out])
        return psnr(refs, outs, calibration.output_range)

    try:
        measured = calibrate(fp32_path, calibration)
        by_margin = {}
        for margin in margins:
            state["qsvs"] = widen_ranges(measured, margin, keep=(input_tensor,))
            by_margin[margin] = round(float(evaluate(quantize([]))), 2)
        best = max(by_margin.values())
        margin = max(m for m in margins if by_margin[m] >= best - MARGIN_TOLERANCE_DB)
        state["qsvs"] = widen_ranges(measured, margin, keep=(input_tensor,))
        report = quality_gate(quantize, evaluate, [label for label, _ in layers], float(cal["min_psnr_db"]))
        os.replace(report.pop("path"), path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.update({"observer": "minmax", "range_margin": margin,
                   "range_margin_rule": "largest within %g dB of the best held-out PSNR" % MARGIN_TOLERANCE_DB,
                   "psnr_db_by_range_margin": dict(("%g" % m, v) for m, v in sorted(by_margin.items())),
                   "activation": "int8", "weights": "int8 per channel", "calibration": calibration.describe()})
    return report


# -- compile + parity ---------------------------------------------------------------------------

def compile_tflite(module, input_shape, path, precision, profile=None, calibration=None):
    """Write ``module`` (static, NCHW, eval) as an NHWC ``.tflite`` at ``precision``; returns the manifest
    fields ``{"tflite": {...}}`` (+ ``"int8"``: the quality gate's report)."""
    extra = {}
    if precision == "fp32":
        convert_fp32(module, input_shape, path)
    else:
        fd, fp32 = tempfile.mkstemp(suffix=".fp32.tflite", dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
        try:
            convert_fp32(module, input_shape, fp32)
            if precision == "fp16":
                fp16_weights(fp32, path)
            elif precision == "int8":
                if calibration is None:
                    raise TargetError("TFLite int8 needs calibration data (an edgegan.calibrate.CalibrationSet)")
                profile = profile or {"calibrate": {"min_psnr_db": 30.0, "observer": "minmax"}}
                extra["int8"] = quantize_with_gate(module, fp32, path, calibration, profile)
            else:
                raise TargetError("TFLite builds fp32, fp16 or int8, not %r" % precision)
        finally:
            os.remove(fp32)
    info = describe(path)
    info["weights"] = {"fp32": "float32", "fp16": "float16 (dequantized to fp32 at load on CPU)",
                       "int8": "int8 per-channel"}[precision]
    info["litert_torch"] = _version("litert_torch")
    extra["tflite"] = info
    return extra


def _version(name):
    try:
        import importlib

        return getattr(importlib.import_module(name), "__version__", None)
    except ImportError:
        return None


@torch.no_grad()
def measure_parity(path, module, inputs, data_range, precision, threads=1):
    """PSNR and max-abs error of the ``.tflite`` under the LiteRT interpreter against ``module`` on NCHW
    ``inputs`` (compared in NHWC)."""
    run = _Runner(path, threads)
    ref = np.stack([to_nhwc(module(torch.from_numpy(x)).numpy()) for x in inputs])
    out = np.stack([run(to_nhwc(x)) for x in inputs])
    return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
            "n_inputs": len(inputs), "backend": "ai_edge_litert %s (interpreter, CPU)" % _version("ai_edge_litert"),
            "measured_precision": precision, "input_dtype": run.qin["dtype"], "output_dtype": run.qout["dtype"]}


@register_compiler
class TFLiteCompiler(Compiler):
    """NHWC ``.tflite`` via litert-torch (fp32, fp16 weights, full int8); parity under the LiteRT interpreter."""

    name = "tflite"
    extension = ".tflite"
    bundle_backend = "tflite"

    def io_spec(self, spec):
        spec = dict(spec)
        spec["shape"] = list(nhwc_shape(spec["shape"]))
        spec["layout"] = "NHWC"
        return spec

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        return compile_tflite(module, input_shape, path, precision, profile, calibration)

    def parity(self, path, module, inputs, data_range, profile, precision):
        return measure_parity(path, module, inputs, data_range, precision)

    def predict(self, path, inputs, profile, precision):
        run = _Runner(path, 1)
        out = np.concatenate([run(to_nhwc(x)) for x in inputs]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out), {"backend": "ai_edge_litert %s (interpreter, CPU)"
                                           % _version("ai_edge_litert"), "measured_precision": precision}

    def finish(self, bundle_dir, variants, profile, precision):
        return {"tflite": {"signature": SIGNATURE, "input": INPUT_NAME, "output": OUTPUT_NAME,
                           "threads": profile.get("runtime", {}).get("threads", 0),
                           "io": "NHWC; int8 variants take and return int8 tensors (scale/zero_point per "
                                 "variant under tflite.input / tflite.output); the tflite backend converts"}}


# -- benchmark ---------------------------------------------------------------------------------

def benchmark(path, threads=None, warmup=10, warmup_s=1.0, runs=20, seed=0):
    """Time a ``.tflite`` with the LiteRT interpreter through the ``tflite`` runtime backend (float NHWC
    input, (de)quantization of int8 I/O included) with ``edgegan.runtime.fps.measure``; returns its
    statistics plus ``threads``, ``input`` / ``output`` quantization and the library version."""
    from ..runtime.backends import get_backend
    from ..runtime.fps import measure

    backend = get_backend("tflite")(path, threads=threads)
    x = np.random.default_rng(seed).uniform(-1, 1, size=backend.input_shape).astype(np.float32)
    try:
        stats = measure(lambda: backend.run(x), warmup=warmup, warmup_s=warmup_s, runs=runs)
    finally:
        backend.close()
    stats.update({"threads": threads, "input": backend.input_quantization, "output": backend.output_quantization,
                  "library": backend.library_name})
    return stats
