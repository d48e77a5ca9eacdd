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


def quantize_qdq(fp32_path, out_path, calibration, input_name="input", observer="entropy", exclude=(),
                 activation="int8", per_channel=True, cache_path=None):
    """Write a Q/DQ INT8 model of ``fp32_path`` to ``out_path``; ``exclude`` nodes stay in float.

    ``activation``: ``int8`` (symmetric, TensorRT explicit quantization) or ``uint8`` (asymmetric, CPU).
    An excluded node's feeding data-movement ops stay in float too (``with_feeding_ops``).
    ``cache_path``: onnxruntime's calibration cache (JSON); reused when it exists.
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
    with _quiet():
        quantize_static(fp32_path, out_path, calibration.reader(input_name), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=with_feeding_ops(fp32_path, exclude),
                        calibrate_method=_method(observer), extra_options=extra, calibration_cache_path=cache_path)
    return out_path


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
