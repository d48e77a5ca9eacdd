"""INT8 post-training quantization of ONNX files with onnxruntime's quantizer (QDQ format).

A Q/DQ model serves two targets: TensorRT builds it with explicit quantization (``--int8``,
symmetric int8 activations and weights, no zero point), and ONNX Runtime runs it on CPUs (u8
activations with s8 weights is the fast path on x86 VNNI). Tensor ranges are calibrated once per
artifact and cached (onnxruntime's JSON calibration cache), so re-quantizing with some layers kept in
float — the quality gate's retries — does not recalibrate.
"""

import contextlib
import io
import json
import logging
import os
import struct

import onnx

from ..errors import TargetError

OBSERVERS = ("minmax", "percentile", "entropy")
ACTIVATIONS = ("int8", "uint8")
QUANTIZABLE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _method(observer):
    from onnxruntime.quantization import CalibrationMethod

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if observer not in methods:
        raise TargetError("unknown observer %r; choose one of %s" % (observer, ", ".join(OBSERVERS)))
    return methods[observer]


def quantizable_nodes(onnx_path):
    """Names of the compute nodes a quantizer turns to INT8, in graph order (first = input side)."""
    model = onnx.load(onnx_path, load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in QUANTIZABLE_OPS]


PASS_THROUGH_OPS = ("Pad", "Slice", "Concat", "Resize", "Upsample", "Reshape", "Transpose", "Identity")


def with_feeding_ops(onnx_path, nodes):
    """``nodes`` plus the data-movement ops (pad, slice, concat, resize…) that feed them.

    The quantizer puts Q/DQ around such ops when their input is quantized; a layer kept in float
    must also read a float input, so its feeding ops are kept in float with it.
    """
    model = onnx.load(onnx_path, load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    keep, todo = list(nodes), list(nodes)
    by_name = {n.name: n for n in model.graph.node}
    while todo:
        node = by_name.get(todo.pop())
        for name in (node.input if node is not None else []):
            feeder = producer.get(name)
            if feeder is not None and feeder.op_type in PASS_THROUGH_OPS and feeder.name not in keep:
                keep.append(feeder.name)
                todo.append(feeder.name)
    return keep


def weights_of(onnx_path, op_types):
    """Names of the weight initializers (input 1) of the nodes of ``op_types`` in ``onnx_path``."""
    if not op_types:
        return []
    model = onnx.load(onnx_path, load_external_data=False)
    inits = set(i.name for i in model.graph.initializer)
    return [n.input[1] for n in model.graph.node if n.op_type in op_types and len(n.input) > 1 and n.input[1] in inits]


def quantize_qdq(fp32_path, out_path, calibration, input_name="input", observer="entropy", exclude=(),
                 activation="int8", per_channel=True, cache_path=None, per_tensor_ops=()):
    """Write a Q/DQ INT8 model of ``fp32_path`` to ``out_path``; ``exclude`` nodes stay in float.

    ``activation``: ``int8`` (symmetric, TensorRT explicit quantization) or ``uint8`` (asymmetric, CPU).
    An excluded node's feeding data-movement ops stay in float too (``with_feeding_ops``).
    ``cache_path``: onnxruntime's calibration cache (JSON); reused when it exists.
    ``per_tensor_ops``: op types whose weights get one scale even with ``per_channel`` (TensorRT 8.x has no
    per-output-channel ConvTranspose kernels, which is the axis onnxruntime's quantizer picks for it).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if activation not in ACTIVATIONS:
        raise TargetError("activation must be one of %s, got %r" % (ACTIVATIONS, activation))
    symmetric = activation == "int8"
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    if symmetric:  # the form TensorRT's explicit quantization parses: float weights behind Q/DQ, float bias
        extra.update({"QuantizeBias": False, "AddQDQPairToWeight": True, "DedicatedQDQPair": True})
    if observer == "percentile":
        extra["CalibPercentile"] = 99.99
    per_tensor = weights_of(fp32_path, per_tensor_ops) if per_channel else []
    if per_tensor:  # a tensor override without "axis" is per tensor (onnxruntime TensorQuantOverrides)
        extra["TensorQuantOverrides"] = dict((name, [{"symmetric": True}]) for name in per_tensor)
    with _quiet():
        quantize_static(fp32_path, out_path, calibration.reader(input_name), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=with_feeding_ops(fp32_path, exclude),
                        calibrate_method=_method(observer), extra_options=extra, calibration_cache_path=cache_path)
    if per_tensor:
        _check_per_tensor(out_path, per_tensor)
    return out_path


def _check_per_tensor(path, weights):
    """Every weight in ``weights`` dequantized with one scale (an onnxruntime that ignores per-tensor
    overrides would leave them per channel: say so rather than write a model TensorRT computes wrongly)."""
    from onnx import numpy_helper

    model = onnx.load(path, load_external_data=False)
    inits = dict((i.name, i) for i in model.graph.initializer)
    wanted = set(weights)
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in wanted:
            scale = inits.get(node.input[1])
            if scale is not None and numpy_helper.to_array(scale).size > 1:
                import onnxruntime

                raise TargetError("onnxruntime %s quantized %s per channel despite a per-tensor override; upgrade "
                                  "onnxruntime (pip install -U onnxruntime)" % (onnxruntime.__version__, node.input[0]))


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantizer prints progress and root-logger warnings; keep the build's output clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def tensor_ranges(cache_path):
    """``{tensor name: (low, high)}`` from an onnxruntime calibration cache written by ``quantize_qdq``."""
    with open(cache_path) as f:
        raw = json.load(f)
    tensors = raw.get("data", raw)
    ranges = {}
    for name, value in tensors.items():
        if isinstance(value, dict) and "lowest" in value and "highest" in value:
            ranges[name] = (_scalar(value["lowest"]), _scalar(value["highest"]))
    if not ranges:
        raise TargetError("%s holds no tensor ranges" % cache_path)
    return ranges


def _scalar(value):
    """A cached range bound: a number, a list, or a serialised array ``{"data": [...], ...}``."""
    while isinstance(value, (dict, list, tuple)):
        value = value["data"] if isinstance(value, dict) else value[0]
    return float(value)


def trt_version_number(version):
    """TensorRT's integer version as written in calibration caches: "8.2.1" → 8201, "10.3" → 100300
    (TensorRT 10 widened the major field)."""
    major, minor, patch = [int(p) for p in (version.split(".") + ["0", "0"])[:3]]
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def write_trt_cache(path, ranges, trt_version, algorithm="EntropyCalibration2"):
    """A TensorRT calibration cache: a header line, then ``tensor: scale`` with the scale as the
    big-endian hex of a float32, scale = max(|low|, |high|) / 127 (symmetric INT8)."""
    lines = ["TRT-%d-%s" % (trt_version_number(trt_version), algorithm)]
    for name in sorted(ranges):
        low, high = ranges[name]
        scale = max(abs(low), abs(high)) / 127.0
        if scale <= 0.0:
            scale = 1.0 / 127.0
        lines.append("%s: %s" % (name, struct.pack(">f", scale).hex()))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
