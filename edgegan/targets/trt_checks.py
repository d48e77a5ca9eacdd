"""What a TensorRT version can take: profile validation and checks of exported ONNX graphs.

Facts used here (from the ONNX-TensorRT parser sources of each release, ``builtin_op_importers.cpp``,
their operator matrices, and the TensorRT release notes):

* Highest ONNX opset the parser takes: 8.0–8.2 → 13, 8.4–8.6 → 17, 9.x → 19, 10.x → 20 (10.x takes
  more; 20 is the most torch's exporter writes, so the limit is never the one that bites).
* A profile may name several TensorRT versions (``[tensorrt] versions``: JetPack 4.6 ships 8.0.1 and
  4.6.1+ ship 8.2.1, and one Nano bundle serves both): every graph is checked against each of them.
* ``QuantizeLinear`` / ``DequantizeLinear``: signed INT8 with zero point 0 (TensorRT quantization is
  symmetric); an unsigned/asymmetric Q/DQ model (onnxruntime's CPU default) is refused by the parser.
  DQ inputs must be activations: an int32 bias DQ (onnxruntime quantizes biases by default) is
  refused ("only activation types allowed as input", onnx-tensorrt #850, onnxruntime #14229), and
  TensorRT 8.x wants weights stored in float behind a Q→DQ pair (onnxruntime ``AddQDQPairToWeight``);
  ``edgegan.calibrate.quantize_qdq`` with ``activation="int8"`` writes that form.
* Reflect ``Pad``: the 8.0 parser takes constant zero padding only; from 8.2 it imports reflect ``Pad``
  as an ``ISliceLayer`` in ``kREFLECT`` mode. Before 8.2 the Slice/Concat decomposition (profile
  ``[export] padding = "decompose"``, bit-identical) is required; from 8.2 on it is an option.
* ``InstanceNormalization``: 8.0–8.5 import it as the ``InstanceNormalization_TRT`` plugin, whose kernels
  (8.2–8.5) compute the statistics in fp32 for fp16 tensors, so fp16 (and INT8 engines, which keep
  unquantized layers in fp16) are fine there. 8.0's plugin and the normalization layer of 8.6+ (native
  InstanceNorm) run in fp16, where the variance overflows / loses precision on image generators: those
  builds are refused with advice: train with ``norm="bn"`` (BatchNorm folds into the conv) or build fp32.
* ConvTranspose weights in a Q/DQ model: TensorRT 8.x quantizes deconvolution weights per input channel
  (axis 0) or per tensor; it has no per-output-channel kernels, which is what onnxruntime's quantizer
  writes (axis 1), and the engines compute wrong results (TensorRT issues 1694, 2380). The DQ axis of
  ConvTranspose weights is checked before 10.0; ``edgegan.calibrate.quantize_qdq`` quantizes them per
  tensor for TensorRT.
* Operators the parser does not import at all (no importer in any release), ops imported only from a
  given release (Shrink 8.4; Mod, OneHot, NonZero, RoiAlign, … 8.5; IsInf 8.6; Hardmax 9.2), ops from
  non-default domains (onnxruntime contrib ops), dynamic input shapes (the builder here sets no
  optimization profile) and non-float network I/O are refused — except integer inputs that only index
  (``Gather``): the class label of a conditional generator. The parser imports an INT64 input as INT32
  before TensorRT 10 (onnx-tensorrt ``convertDtype``), as INT64 from 10.0; the runtime feeds either.
* DLA (Xavier): FP16 or INT8 only, with implicit quantization (an entropy calibration cache on the
  fp32 network): TensorRT 8.x DLA does not take Q/DQ models.

Everything here is plain Python over ``onnx`` protos; nothing needs TensorRT.
"""

import re

from ..errors import TargetError

MIN_VERSION = (8, 0)
OPSET_LIMITS = (((10, 0), 20), ((9, 0), 19), ((8, 4), 17), ((8, 0), 13))
REFLECT_PAD_OK_FROM = (8, 2)
INSTANCENORM_FP32_STATS = ((8, 2), (8, 5))   # the plugin's kernels keep fp32 statistics in these releases
PER_CHANNEL_DECONV_FROM = (10, 0)   # before: ConvTranspose weight DQ per tensor or on axis 0 only
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
NEVER_IMPORTED = frozenset([
    "BitShift", "Compress", "ConcatFromSequence", "ConvInteger", "Det", "DynamicQuantizeLinear", "MatMulInteger",
    "MaxRoiPool", "MaxUnpool", "Multinomial", "NegativeLogLikelihoodLoss", "Optional", "OptionalGetElement",
    "OptionalHasElement", "QLinearConv", "QLinearMatMul", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
    "SequenceErase", "SequenceInsert", "SequenceLength", "SoftmaxCrossEntropyLoss", "SplitToSequence",
    "StringNormalizer", "TfIdfVectorizer", "Unique"])
# operator → the first release whose parser has an importer for it
IMPORTED_FROM = {"Shrink": (8, 4), "MeanVarianceNormalization": (8, 5), "Mod": (8, 5), "NonZero": (8, 5),
                 "OneHot": (8, 5), "RandomNormal": (8, 5), "RandomNormalLike": (8, 5), "RoiAlign": (8, 5),
                 "IsInf": (8, 6), "Hardmax": (9, 2)}
FLOAT_IO = (1, 10)  # onnx.TensorProto.FLOAT, FLOAT16
INDEX_INPUTS = {6: "int32", 7: "int64"}  # onnx.TensorProto.INT32, INT64: class labels, as Gather indices
DEFAULT_DOMAINS = ("", "ai.onnx")


def parse_version(text, where="[tensorrt] version"):
    """``"8.2"`` / ``"10.3.0.26"`` → ``(8, 2, 0)``; ``TargetError`` for anything else."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*$", str(text).strip())
    if not match:
        raise TargetError("%s must look like \"8.2\" or \"10.3.0\", got %r" % (where, text))
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def max_opset(version):
    """The highest ONNX opset the parser of TensorRT ``version`` (a tuple or a string) takes."""
    version = parse_version(version) if isinstance(version, str) else tuple(version)
    for since, opset in OPSET_LIMITS:
        if version[:2] >= since:
            return opset
    raise TargetError("TensorRT %s is older than %d.%d, which edgegan supports" % (
        ".".join(str(v) for v in version), MIN_VERSION[0], MIN_VERSION[1]))


def _label(version):
    return "%d.%d" % tuple(version[:2])


def profile_versions(profile):
    """Every TensorRT version a profile's bundles are built with, as version tuples (``[tensorrt] versions``,
    else ``version``)."""
    trt = profile["tensorrt"]
    return [parse_version(v) for v in trt.get("versions") or [trt["version"]]]


def validate_tensorrt_section(profile, where):
    """Validate and default a profile's ``[tensorrt]`` table (called by ``validate_profile``).

    Keys: ``version`` (required: the oldest TensorRT the bundle is built with; trtexec flags and
    calibration-cache headers follow it), ``versions`` (every TensorRT the bundle is built with, e.g.
    ``["8.0", "8.2"]`` for JetPack 4.6 and 4.6.1+; default ``[version]``; one major version),
    ``compute_capability`` (the target GPU's, e.g. ``"5.3"``: ``edgegan build`` builds engines itself
    only on a host whose GPU has it), ``workspace_mib`` (1024), ``dla_cores`` (hardware, 0), ``dla``
    (false), ``dla_core`` (0), ``gpu_fallback`` (true), ``timing_cache`` (true).
    """
    def require(cond, message):
        if not cond:
            raise TargetError("%s: %s" % (where, message))

    trt = profile.setdefault("tensorrt", {})
    require(isinstance(trt, dict), "[tensorrt] must be a table")
    require(isinstance(trt.get("version"), str), "[tensorrt] needs a `version` string such as \"8.2\"")
    versions = trt.setdefault("versions", [trt["version"]])
    require(isinstance(versions, list) and versions and all(isinstance(v, str) for v in versions),
            "[tensorrt] versions must be a list of version strings such as [\"8.0\", \"8.2\"]")
    try:
        version = parse_version(trt["version"])
        parsed = [parse_version(v, "[tensorrt] versions") for v in versions]
        limit = min(max_opset(v) for v in parsed)
    except TargetError as e:
        raise TargetError("%s: %s" % (where, e))
    require(version[:2] in [v[:2] for v in parsed] and version[:2] == min(v[:2] for v in parsed),
            "[tensorrt] version %s must be the oldest of versions %s (trtexec flags and calibration caches "
            "follow it)" % (trt["version"], ", ".join(versions)))
    require(len(set(v[0] for v in parsed)) == 1, "[tensorrt] versions %s span major versions; one bundle's "
            "trtexec lines and builder serve one major version: make a profile per major version"
            % ", ".join(versions))
    capability = trt.get("compute_capability")
    require(capability is None or (isinstance(capability, str) and re.match(r"^\d+\.\d+$", capability)),
            "[tensorrt] compute_capability must be a string such as \"7.2\", got %r" % (capability,))
    trt.setdefault("workspace_mib", 1024)
    trt.setdefault("dla_cores", 0)
    trt.setdefault("dla", False)
    trt.setdefault("dla_core", 0)
    trt.setdefault("gpu_fallback", True)
    trt.setdefault("timing_cache", True)
    for key in ("workspace_mib", "dla_cores", "dla_core"):
        require(isinstance(trt[key], int) and not isinstance(trt[key], bool) and trt[key] >= 0,
                "[tensorrt] %s must be a non-negative integer, got %r" % (key, trt[key]))
    require(trt["workspace_mib"] >= 16, "[tensorrt] workspace_mib must be at least 16 (MiB), got %d"
            % trt["workspace_mib"])
    for key in ("dla", "gpu_fallback", "timing_cache"):
        require(isinstance(trt[key], bool), "[tensorrt] %s must be true or false, got %r" % (key, trt[key]))
    if trt["dla"]:
        require(trt["dla_cores"] > 0, "[tensorrt] dla = true, but this board has no DLA (dla_cores = 0)")
        require(trt["dla_core"] < trt["dla_cores"], "[tensorrt] dla_core %d does not exist; the board has "
                "DLA cores 0..%d" % (trt["dla_core"], trt["dla_cores"] - 1))
        require([p for p in profile["build"]["precisions"] if p != "fp32"],
                "[tensorrt] dla = true needs fp16 or int8 among [build] precisions (DLA has no fp32)")
    opset = profile["export"]["opset"]
    oldest = min(parsed, key=max_opset)
    require(opset <= limit, "[export] opset %d is above what the ONNX parser of TensorRT %s takes (<= %d); "
            "set opset = %d" % (opset, _label(oldest) if len(parsed) > 1 else trt["version"], limit, limit))
    if "int8" in profile["build"]["precisions"]:
        activation = profile.get("calibrate", {}).get("activation", "int8")
        require(activation == "int8", "[calibrate] activation = %r: TensorRT takes only symmetric signed "
                "int8 Q/DQ models; set activation = \"int8\"" % activation)
    return trt


def check_precision(profile, precision):
    """Refuse a precision the profile's TensorRT settings cannot build (DLA has no fp32)."""
    trt = profile["tensorrt"]
    if trt.get("dla") and precision == "fp32":
        raise TargetError("%s builds for DLA core %d, which runs fp16 or int8 only; pass --precision fp16 or int8, "
                          "or set [tensorrt] dla = false" % (profile["name"], trt["dla_core"]))


def int8_mode(profile):
    """How the device builds INT8: ``"qdq"`` (explicit quantization from the Q/DQ ONNX) on the GPU,
    ``"calibration_cache"`` (implicit quantization of the fp32 ONNX with the cache) on DLA."""
    return "calibration_cache" if profile["tensorrt"].get("dla") else "qdq"


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            if a.type == a.STRING:
                return a.s.decode()
            if a.type == a.INT:
                return a.i
            return a
    return default


def _constants(model):
    """``{name: TensorProto}`` of the initializers and ``Constant`` node outputs."""
    found = dict((i.name, i) for i in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = _attr(node, "value")
            if value is not None and not isinstance(value, (int, str)):
                found[node.output[0]] = value.t
    return found


def qdq_issues(model, version):
    """Q/DQ nodes TensorRT's parser refuses: unsigned / non-zero zero points, an int32 (bias) DQ, and
    before 10.0 a DQ fed by an int8 initializer (weights need float storage with a Q→DQ pair)."""
    from onnx import numpy_helper

    consts = _constants(model)
    issues = []
    seen = set()
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        name = node.name or node.output[0]
        x = consts.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if x is not None:
            dtype = numpy_helper.to_array(x).dtype.name
            if dtype == "int32":
                if "bias" in seen:
                    continue
                seen.add("bias")
                issues.append(_issue("qdq-bias", "DequantizeLinear %s dequantizes an int32 (bias) initializer; TensorRT "
                                     "takes DequantizeLinear on int8 only (and keeps biases in float)" % name,
                                     "quantize without bias quantization (onnxruntime extra option QuantizeBias=False, "
                                     "as edgegan.calibrate.quantize_qdq does for int8 activations)"))
                continue
            if dtype == "int8" and version[0] < 10:
                if "weight" in seen:
                    continue
                seen.add("weight")
                issues.append(_issue("qdq-weight", "DequantizeLinear %s reads int8 weights directly; TensorRT %d.x "
                                     "wants float weights behind a QuantizeLinear→DequantizeLinear pair" % (name, version[0]),
                                     "quantize with onnxruntime's AddQDQPairToWeight=True (edgegan.calibrate.quantize_qdq "
                                     "does for int8 activations)"))
                continue
        zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zp is None or "zero-point" in seen:
            continue
        arr = numpy_helper.to_array(zp)
        if arr.dtype.name != "int8" or arr.any():
            seen.add("zero-point")
            issues.append(_issue("qdq", "%s %s has a %s zero point%s; TensorRT takes symmetric signed int8 "
                                 "quantization only" % (node.op_type, name, arr.dtype.name, " != 0" if arr.any() else ""),
                                 "quantize with [calibrate] activation = \"int8\" (symmetric)"))
    return issues


def _issue(check, message, fix):
    return {"check": check, "message": message, "fix": fix}


def imported(op, version):
    """Whether the ONNX parser of TensorRT ``version`` (a tuple) has an importer for ``op``."""
    return op not in NEVER_IMPORTED and version[:2] >= IMPORTED_FROM.get(op, MIN_VERSION)


def instancenorm_ok(version, precision):
    """Whether TensorRT ``version`` (a tuple) runs InstanceNorm at ``precision`` with fp32 statistics."""
    low, high = INSTANCENORM_FP32_STATS
    return precision == "fp32" or low <= version[:2] <= high


def deconv_weight_axis_issues(model, version):
    """ConvTranspose weights dequantized per output channel (DQ axis != 0 on a per-channel scale), which
    TensorRT before 10.0 computes wrongly; empty from 10.0 on."""
    from onnx import numpy_helper

    if version[:2] >= PER_CHANNEL_DECONV_FROM:
        return []
    consts = _constants(model)
    producer = dict((o, n) for n in model.graph.node for o in n.output)
    bad = []
    for node in model.graph.node:
        if node.op_type != "ConvTranspose" or len(node.input) < 2:
            continue
        dq = producer.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        scale = consts.get(dq.input[1])
        if scale is None or numpy_helper.to_array(scale).size <= 1:
            continue  # per tensor
        axis = _attr(dq, "axis", 1)
        if axis != 0:
            bad.append("%s (axis %d)" % (node.name or node.output[0], axis))
    if not bad:
        return []
    return [_issue("qdq-deconv-axis", "ConvTranspose weights quantized per output channel: %s; TensorRT %s has "
                   "no per-output-channel deconvolution kernels and computes wrong results"
                   % (", ".join(bad), _label(version)),
                   "quantize ConvTranspose weights per tensor (edgegan.calibrate.quantize_qdq with "
                   "per_tensor_ops=(\"ConvTranspose\",), as TensorRT builds do) or per input channel (axis 0)")]


def graph_issues(model, trt_version, precision):
    """Everything in ``model`` (an ``onnx.ModelProto``) that TensorRT ``trt_version`` cannot build at
    ``precision``: a list of ``{"check", "message", "fix"}`` (empty when the graph is fine)."""
    version = parse_version(trt_version) if isinstance(trt_version, str) else tuple(trt_version)
    label = _label(version)
    issues = []
    opsets = dict((o.domain, o.version) for o in model.opset_import)
    opset = max(v for d, v in opsets.items() if d in DEFAULT_DOMAINS)
    limit = max_opset(version)
    if opset > limit:
        issues.append(_issue("opset", "opset %d; the ONNX parser of TensorRT %s takes opset <= %d" % (opset, label, limit),
                             "set [export] opset = %d in the profile" % limit))
    ops = set()
    foreign = set()
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            foreign.add("%s::%s" % (node.domain, node.op_type))
            continue
        ops.add(node.op_type)
        if node.op_type == "Pad" and _attr(node, "mode", "constant") == "reflect" and version[:2] < REFLECT_PAD_OK_FROM:
            ops.add("Pad:reflect")
    if foreign:
        issues.append(_issue("domain", "ops from non-standard domains: %s" % ", ".join(sorted(foreign)),
                             "export without onnxruntime-specific optimizations (no contrib ops)"))
    unsupported = set(op for op in ops if op != "Pad:reflect" and not imported(op, version))
    if unsupported:
        issues.append(_issue("operators", "the ONNX parser of TensorRT %s does not import %s"
                             % (label, ", ".join(sorted(unsupported))),
                             "change the model, or use a profile with a newer TensorRT"))
    if "Pad:reflect" in ops:
        issues.append(_issue("reflect-pad", "reflect Pad, which the ONNX parser of TensorRT %s does not import "
                             "(it takes constant zero padding only; 8.2 and later import reflect Pad)" % label,
                             "set [export] padding = \"decompose\" (Slice/Concat, bit-identical), or train "
                             "with padding=\"zero\""))
    if "InstanceNormalization" in ops and not instancenorm_ok(version, precision):
        issues.append(_issue("instancenorm-fp16", "InstanceNormalization in a %s engine: TensorRT %s runs it in "
                             "fp16, where its statistics lose precision or overflow on image generators (8.2–8.5 "
                             "keep them in fp32)" % (precision, label),
                             "train with norm=\"bn\" (BatchNorm folds into the conv), or build --precision fp32"))
    issues += qdq_issues(model, version)
    issues += deconv_weight_axis_issues(model, version)
    if ops & set(QDQ_OPS) and opset < 13:
        issues.append(_issue("qdq-opset", "Q/DQ at opset %d; per-channel weight scales need opset >= 13" % opset,
                             "set [export] opset = 13 or higher"))
    inits = set(i.name for i in model.graph.initializer)
    for value, kind in [(v, "input") for v in model.graph.input if v.name not in inits] + \
                       [(v, "output") for v in model.graph.output]:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if any(d is None or d <= 0 for d in dims):
            issues.append(_issue("dynamic-shape", "network %s %s has a dynamic shape %s" % (kind, value.name, dims),
                                 "export at a fixed input shape (batch 1)"))
        if kind == "input" and tensor.elem_type in INDEX_INPUTS:
            users = [(n.op_type, list(n.input).index(value.name)) for n in model.graph.node if value.name in n.input]
            if any(u != ("Gather", 1) for u in users):
                issues.append(_issue("io-type", "network input %s is %s and feeds %s; TensorRT takes integer "
                                     "network inputs here only as Gather indices (class labels)"
                                     % (value.name, INDEX_INPUTS[tensor.elem_type],
                                        ", ".join(sorted(set(u[0] for u in users)))),
                                     "feed float tensors, or use the integer input only to look up tables"))
        elif tensor.elem_type not in FLOAT_IO:
            issues.append(_issue("io-type", "network %s %s is not float32/float16" % (kind, value.name),
                                 "feed and return float tensors"))
    return issues


def index_inputs(model, trt_version):
    """``{name: what TensorRT makes of it}`` for the integer (class-label) inputs of ``model``."""
    version = parse_version(trt_version) if isinstance(trt_version, str) else tuple(trt_version)
    inits = set(i.name for i in model.graph.initializer)
    found = {}
    for value in model.graph.input:
        elem = value.type.tensor_type.elem_type
        if value.name not in inits and elem in INDEX_INPUTS:
            imported = "int64" if elem == 7 and version[0] >= 10 else "int32"
            found[value.name] = "%s, imported as %s by TensorRT %d.x" % (INDEX_INPUTS[elem], imported, version[0])
    return found


def profile_issues(model, profile, precision):
    """``graph_issues`` for every TensorRT version of ``profile`` (each problem once)."""
    issues, seen = [], set()
    for version in profile_versions(profile):
        for issue in graph_issues(model, version, precision):
            if (issue["check"], issue["message"]) not in seen:
                seen.add((issue["check"], issue["message"]))
                issues.append(issue)
    return issues


def check_graph(model, profile, precision, what="the graph"):
    """Raise a ``TargetError`` listing every problem ``graph_issues`` finds for any of ``profile``'s
    TensorRT versions at ``precision``; otherwise return a summary for the manifest."""
    trt = profile["tensorrt"]
    versions = profile_versions(profile)
    issues = profile_issues(model, profile, precision)
    if trt.get("dla") and precision == "int8" and any(n.op_type in QDQ_OPS for n in model.graph.node):
        issues.append(_issue("dla-qdq", "a Q/DQ model for DLA: TensorRT 8.x DLA takes implicit quantization only",
                             "build the DLA engine from the fp32 ONNX with the calibration cache"))
    if issues:
        lines = ["- %s (fix: %s)" % (i["message"], i["fix"]) for i in issues]
        raise TargetError("%s cannot be built by TensorRT %s for %s at %s:\n%s" % (
            what, "/".join(_label(v) for v in versions), profile["name"], precision, "\n".join(lines)))
    opsets = dict((o.domain, o.version) for o in model.opset_import)
    summary = {"tensorrt_version": trt["version"], "tensorrt_versions": [_label(v) for v in versions],
               "opset": opsets.get("", opsets.get("ai.onnx")), "max_opset": min(max_opset(v) for v in versions),
               "ops": sorted(set(n.op_type for n in model.graph.node)), "checked_precision": precision}
    indices = index_inputs(model, trt["version"])
    if indices:
        summary["index_inputs"] = indices
    return summary
