"""The Core ML compiler: PyTorch → ``.mlpackage`` (``mlprogram``) with coremltools.

* **Program**: ``mlprogram`` at the profile's ``[coreml] minimum_deployment_target`` (iOS15 or later),
  compute precision FP16 by default (``--precision fp32`` keeps fp32), ``compute_units`` recorded.
* **I/O**: ``input`` is an image (``[coreml] input = "image"``, a grey or RGB ``CVPixelBuffer`` in an app)
  with the model's input normalisation folded in (``x = pixel · (high − low)/255 + low``), or a float
  tensor in the model's input range (``"tensor"``). ``output`` is an image (``"image"``, iOS16+: the
  output range mapped back to 0..255 inside the model) or a tensor in the model's output range.
  Names, ranges and the I/O kind are written to the model's metadata (``edgegan.*``) so the
  ``coreml`` runtime backend converts between them and the float arrays ``Runtime`` users pass.
* **Bundle**: the package is a directory, ``w1.mlpackage`` (drop it into Xcode); the variant's
  ``file`` is its ``Manifest.json`` and every file inside is in the manifest's ``files`` with a sha256.
* **Parity**: Core ML predicts only on macOS. There, parity is measured with ``MLModel.predict`` on the
  CPU. Elsewhere the saved spec is loaded back and checked (inputs, outputs, op list, precision,
  specification version) and parity records ``"predicted": false`` with the reason; ``build`` adds the
  torch-fp16 estimate (``parity_fp16_emulated``) for fp16 builds.

coremltools is the ``[coreml]`` extra, imported only when a Core ML artifact is built or checked.
"""

import copy
import os
import platform

import numpy as np
import torch
import torch.nn as nn

from ..errors import TargetError, install_hint
from .onnx import psnr
from .registry import Compiler, register_compiler

INPUT_NAME, OUTPUT_NAME = "input", "output"
IO_KINDS = ("image", "tensor")
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")
PLATFORMS = {"iOS": 15, "macOS": 12, "tvOS": 15, "watchOS": 8}  # first release that runs mlprogram
IMAGE_OUTPUT_FROM = {"iOS": 16, "macOS": 13, "tvOS": 16, "watchOS": 9}
INSTALL = install_hint("coreml", "coremltools")
DEFAULTS = {"minimum_deployment_target": "iOS16", "input": "image", "output": "image", "compute_units": "ALL"}
PACKAGE_MANIFEST = "Manifest.json"
# the ops that carry the network's weights: their dtype is the model's compute precision (the image
# pre-processing mul/add that coremltools inserts before the first cast stays fp32 by design)
WEIGHT_OPS = ("conv", "conv_transpose", "linear", "matmul", "batch_norm", "instance_norm")


def parse_target(name):
    """``"iOS16"`` → ``("iOS", 16)``; ``ValueError`` for anything else."""
    for platform_name in PLATFORMS:
        if name.startswith(platform_name) and name[len(platform_name):].isdigit():
            return platform_name, int(name[len(platform_name):])
    raise ValueError(name)


def validate_section(section):
    """Check and complete a profile's ``[coreml]`` table; returns a list of problems (empty if fine)."""
    problems = []
    for key, value in DEFAULTS.items():
        section.setdefault(key, value)
    try:
        platform_name, version = parse_target(section["minimum_deployment_target"])
    except (ValueError, TypeError):
        return ["minimum_deployment_target must be like \"iOS16\" or \"macOS13\", got %r"
                % (section["minimum_deployment_target"],)]
    if version < PLATFORMS[platform_name]:
        problems.append("mlprogram needs %s%d or later, got %s%d" % (platform_name, PLATFORMS[platform_name],
                                                                      platform_name, version))
    for key in ("input", "output"):
        if section[key] not in IO_KINDS:
            problems.append("%s must be one of %s, got %r" % (key, list(IO_KINDS), section[key]))
    if section["output"] == "image" and version < IMAGE_OUTPUT_FROM[platform_name]:
        problems.append("output = \"image\" needs %s%d or later (or use output = \"tensor\")"
                        % (platform_name, IMAGE_OUTPUT_FROM[platform_name]))
    if section["compute_units"] not in COMPUTE_UNITS:
        problems.append("compute_units must be one of %s, got %r" % (list(COMPUTE_UNITS), section["compute_units"]))
    return problems


def _ct():
    try:
        import coremltools as ct
    except ImportError as e:
        raise TargetError("Core ML targets need coremltools (%s): %s" % (e, INSTALL))
    return ct


class ToPixels(nn.Module):
    """``module`` followed by the map of its output range onto 0..255 (for an image output)."""

    def __init__(self, module, value_range):
        super().__init__()
        self.module = module
        low, high = value_range
        self.scale = 255.0 / (high - low)
        self.low = float(low)

    def forward(self, x):
        return (self.module(x) - self.low) * self.scale


def _color_layout(ct, channels, spec):
    if channels == 1:
        return ct.colorlayout.GRAYSCALE
    if channels == 3:
        return ct.colorlayout.BGR if spec.get("channel_order") == "BGR" else ct.colorlayout.RGB
    raise TargetError("Core ML image I/O takes 1 or 3 channels, the model has %d; set [coreml] input/output = "
                      "\"tensor\"" % channels)


def io_types(ct, input_shape, input_spec, output_spec, section):
    """The ``inputs`` and ``outputs`` arguments of ``ct.convert`` for the profile's I/O kinds."""
    channels = input_shape[1]
    low, high = input_spec["range"]
    if section["input"] == "image":
        inp = ct.ImageType(name=INPUT_NAME, shape=tuple(input_shape), scale=(high - low) / 255.0,
                           bias=[float(low)] * channels, color_layout=_color_layout(ct, channels, input_spec))
    else:
        inp = ct.TensorType(name=INPUT_NAME, shape=tuple(input_shape), dtype=np.float32)
    if section["output"] == "image":
        out = ct.ImageType(name=OUTPUT_NAME, color_layout=_color_layout(ct, output_spec["shape"][1], output_spec))
    else:
        out = ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)
    return [inp], [out]


def channel_order(input_spec, output_spec):
    """The colour order of the model's 3-channel images (``RGB``, or ``BGR`` when the spec says so), or
    ``GRAYSCALE`` when neither input nor output has three channels (a grey model has no channel order)."""
    channels = [(spec.get("shape") or [None, None])[1] for spec in (input_spec, output_spec)]
    if 3 not in channels:
        return "GRAYSCALE"
    return "BGR" if input_spec.get("channel_order") == "BGR" else "RGB"


def metadata(input_spec, output_spec, section, precision):
    """``user_defined_metadata`` the runtime backend reads back (strings only)."""
    return {"edgegan.input": INPUT_NAME, "edgegan.output": OUTPUT_NAME,
            "edgegan.input_kind": section["input"], "edgegan.output_kind": section["output"],
            "edgegan.input_range": "%r,%r" % tuple(float(v) for v in input_spec["range"]),
            "edgegan.output_range": "%r,%r" % tuple(float(v) for v in output_spec["range"]),
            "edgegan.channel_order": channel_order(input_spec, output_spec),
            "edgegan.precision": precision}


@torch.no_grad()
def convert(module, input_shape, path, precision="fp16", section=None, input_spec=None, output_spec=None):
    """Convert a static NCHW ``module`` to an ``mlprogram`` package at ``path``; returns the spec summary."""
    ct = _ct()
    section = dict(section or {})
    problems = validate_section(section)
    if problems:
        raise TargetError("[coreml]: %s" % "; ".join(problems))
    if precision not in ("fp16", "fp32"):
        raise TargetError("Core ML builds fp16 or fp32, not %r" % precision)
    input_spec = input_spec or {"range": [-1.0, 1.0], "shape": list(input_shape)}
    module = copy.deepcopy(module).eval()
    example = torch.zeros(tuple(input_shape))
    if output_spec is None:
        output_spec = {"range": [-1.0, 1.0], "shape": list(module(example).shape)}
    if section["output"] == "image":
        module = ToPixels(module, output_spec["range"]).eval()
    traced = torch.jit.trace(module, example)
    inputs, outputs = io_types(ct, input_shape, input_spec, output_spec, section)
    try:
        model = ct.convert(traced, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                           minimum_deployment_target=getattr(ct.target, section["minimum_deployment_target"]),
                           compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
                           compute_units=getattr(ct.ComputeUnit, section["compute_units"]))
    except Exception as e:  # coremltools raises ValueError, RuntimeError, NotImplementedError...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:400]
        raise TargetError("coremltools %s could not convert the network: %s" % (ct.__version__, first))
    model.short_description = "edgegan generator (%s)" % precision
    model.input_description[INPUT_NAME] = (
        "image; normalised inside the model to %s" % list(input_spec["range"]) if section["input"] == "image"
        else "float tensor in %s, NCHW" % list(input_spec["range"]))
    model.output_description[OUTPUT_NAME] = (
        "image (model output range %s mapped to 0..255)" % list(output_spec["range"]) if section["output"] == "image"
        else "float tensor in %s, NCHW" % list(output_spec["range"]))
    model.user_defined_metadata.update(metadata(input_spec, output_spec, section, precision))
    model.save(path)
    summary = inspect_package(path)
    check_spec(summary, input_shape, section, precision)
    return summary


# -- spec inspection (works on any OS) -----------------------------------------------------------

def _feature(ct, feature):
    kind = feature.type.WhichOneof("Type")
    info = {"name": feature.name, "type": kind}
    if kind == "imageType":
        t = feature.type.imageType
        info.update({"width": int(t.width), "height": int(t.height),
                     "color_space": ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(t.colorSpace)})
    elif kind == "multiArrayType":
        t = feature.type.multiArrayType
        info.update({"shape": [int(d) for d in t.shape],
                     "dtype": ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.dataType)})
    return info


def _deployment_target(ct, spec_version):
    names = [m.name for m in ct.target if m.value == spec_version and m.name.startswith("iOS")]
    return names[0] if names else None


def package_dir(path):
    """The ``.mlpackage`` directory for ``path`` (the package itself or a file inside it)."""
    path = os.path.abspath(path)
    probe = path
    while probe and probe != os.path.dirname(probe):
        if probe.endswith(".mlpackage"):
            return probe
        probe = os.path.dirname(probe)
    return path


def inspect_package(path):
    """What a saved package holds: ``inputs``, ``outputs``, ``ops`` (with counts), ``precision`` of its
    weight-carrying ops (fp16 / fp32 / mixed), ``specification_version``, ``deployment_target`` and ``metadata``."""
    ct = _ct()
    from coremltools.proto import MIL_pb2

    spec = ct.utils.load_spec(package_dir(path))
    summary = {"specification_version": int(spec.specificationVersion),
               "deployment_target": _deployment_target(ct, int(spec.specificationVersion)),
               "model_type": spec.WhichOneof("Type"),
               "inputs": [_feature(ct, f) for f in spec.description.input],
               "outputs": [_feature(ct, f) for f in spec.description.output],
               "metadata": dict(spec.description.metadata.userDefined)}
    if summary["model_type"] != "mlProgram":
        return summary
    main = spec.mlProgram.functions["main"]
    block = main.block_specializations[main.opset]
    counts, dtypes = {}, set()
    for op in block.operations:
        counts[op.type] = counts.get(op.type, 0) + 1
        if op.type in WEIGHT_OPS:
            for out in op.outputs:
                if out.type.WhichOneof("type") == "tensorType":
                    dtypes.add(MIL_pb2.DataType.Name(out.type.tensorType.dataType))
    summary["opset"] = main.opset
    summary["ops"] = dict(sorted(counts.items()))
    summary["compute_dtypes"] = sorted(dtypes)
    summary["precision"] = {frozenset(["FLOAT16"]): "fp16", frozenset(["FLOAT32"]): "fp32"}.get(frozenset(dtypes),
                                                                                               "mixed")
    return summary


def check_spec(summary, input_shape, section, precision):
    """Raise ``TargetError`` unless the saved spec has the asked-for I/O, precision and deployment target."""
    problems = []
    if summary["model_type"] != "mlProgram":
        problems.append("the package holds a %s, not an mlProgram" % summary["model_type"])
    want_in = "imageType" if section["input"] == "image" else "multiArrayType"
    want_out = "imageType" if section["output"] == "image" else "multiArrayType"
    ins, outs = summary["inputs"], summary["outputs"]
    if [f["name"] for f in ins] != [INPUT_NAME] or ins[0]["type"] != want_in:
        problems.append("input is %s, expected one %s called %r" % (ins, want_in, INPUT_NAME))
    elif want_in == "imageType" and (ins[0]["height"], ins[0]["width"]) != tuple(input_shape[2:]):
        problems.append("input image is %dx%d, expected %dx%d" % (ins[0]["width"], ins[0]["height"],
                                                                 input_shape[3], input_shape[2]))
    elif want_in == "multiArrayType" and ins[0]["shape"] != list(input_shape):
        problems.append("input shape is %s, expected %s" % (ins[0]["shape"], list(input_shape)))
    if [f["name"] for f in outs] != [OUTPUT_NAME] or outs[0]["type"] != want_out:
        problems.append("output is %s, expected one %s called %r" % (outs, want_out, OUTPUT_NAME))
    if summary.get("precision") != precision:
        problems.append("compute ops are %s (%s), expected %s" % (summary.get("precision"),
                                                                   summary.get("compute_dtypes"), precision))
    platform_name, version = parse_target(section["minimum_deployment_target"])
    if platform_name == "iOS" and summary["deployment_target"] and \
            parse_target(summary["deployment_target"])[1] < version:
        problems.append("specification version %d is older than %s" % (summary["specification_version"],
                                                                        section["minimum_deployment_target"]))
    if problems:
        raise TargetError("the saved Core ML spec is not what was asked for: %s" % "; ".join(problems))


def package_size(path):
    total = 0
    for directory, _, names in os.walk(path):
        total += sum(os.path.getsize(os.path.join(directory, n)) for n in names)
    return total


# -- prediction (macOS only) ---------------------------------------------------------------------

def can_predict():
    """``(True, None)`` where Core ML can run predictions (macOS with coremltools), else ``(False, why)``."""
    if platform.system() != "Darwin":
        return False, "Core ML predicts only on macOS (this is %s); the saved spec was checked instead" % platform.system()
    try:
        import coremltools.libcoremlpython  # noqa: F401 — the native binding that predicts
    except ImportError as e:
        return False, "coremltools here cannot predict (%s)" % e
    return True, None


def _to_pixels(x, value_range):
    low, high = value_range
    return np.clip(np.rint((x - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)


def _from_pixels(p, value_range):
    low, high = value_range
    return (p.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)).astype(np.float32)


@torch.no_grad()
def measure_parity(path, module, inputs, data_range, precision, input_spec, output_spec, section):
    """PSNR of Core ML predictions (CPU) against ``module`` on macOS; elsewhere ``psnr_db`` is ``None`` and
    ``predicted`` is ``False``. With image input the reference sees the same 8-bit input Core ML does."""
    ok, why = can_predict()
    if not ok:
        return {"psnr_db": None, "max_abs": None, "n_inputs": 0, "backend": "coremltools", "predicted": False,
                "why": why, "measured_precision": precision, "spec_checked": True}
    from ..runtime.backends import get_backend

    backend = get_backend("coreml")(package_dir(path), compute_units="CPU_ONLY")
    refs, outs = [], []
    for x in inputs:
        if section["input"] == "image":
            x = _from_pixels(_to_pixels(x, input_spec["range"]), input_spec["range"])
        refs.append(module(torch.from_numpy(x)).numpy())
        outs.append(backend.run(x))
    ref, out = np.stack(refs), np.stack(outs)
    return {"psnr_db": round(psnr(ref, out, data_range), 2), "max_abs": float(np.max(np.abs(ref - out))),
            "n_inputs": len(inputs), "backend": "coremltools (CPU_ONLY)", "predicted": True,
            "measured_precision": precision}


@register_compiler
class CoreMLCompiler(Compiler):
    """``mlprogram`` packages (FP16 by default) with image or tensor I/O; parity on macOS, spec checks elsewhere."""

    name = "coreml"
    extension = ".mlpackage"
    bundle_backend = "coreml"

    def _specs(self, input_shape):
        """The specs ``build`` gave (``set_io``), else a [-1, 1] tensor of ``input_shape``."""
        default = {"shape": list(input_shape), "range": [-1.0, 1.0]}
        return dict(self.input_spec or default), dict(self.output_spec or default)

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        section = profile.setdefault("coreml", {})
        input_spec, output_spec = self._specs(input_shape)
        with torch.no_grad():
            output_spec["shape"] = list(module(torch.zeros(tuple(input_shape))).shape)
        summary = convert(module, input_shape, path, precision, section, input_spec, output_spec)
        name = os.path.basename(path)
        return {"file": "%s/%s" % (name, PACKAGE_MANIFEST), "package": name, "size_bytes": package_size(path),
                "coreml": {"spec": summary, "input": section["input"], "output": section["output"],
                           "minimum_deployment_target": section["minimum_deployment_target"],
                           "compute_units": section["compute_units"], "coremltools": _ct().__version__}}

    def parity(self, path, module, inputs, data_range, profile, precision):
        input_spec, output_spec = self._specs(inputs[0].shape)
        return measure_parity(path, module, inputs, data_range, precision, input_spec, output_spec,
                              profile.setdefault("coreml", {}))

    def predict(self, path, inputs, profile, precision):
        if not can_predict()[0]:
            return None
        from ..runtime.backends import get_backend

        backend = get_backend("coreml")(package_dir(path), compute_units="CPU_ONLY")
        return np.concatenate([backend.run(x) for x in inputs]), {"backend": "coremltools (CPU_ONLY)",
                                                                   "measured_precision": precision}

    def finish(self, bundle_dir, variants, profile, precision):
        ok, why = can_predict()
        return {"coreml": {"packages": [v["package"] for v in variants], "predicted": ok,
                           "note": why or "parity measured with Core ML predictions on this Mac (CPU_ONLY)",
                           "xcode": "drag a .mlpackage into the app target; Xcode compiles it to .mlmodelc"}}
