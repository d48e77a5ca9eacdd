"""Device profiles: TOML files that say how to export, build and run for one device.

Shipped profiles live in ``edgegan/targets/profiles/*.toml``; ``--target my-board.toml`` loads a
user's file the same way. A profile is validated on load and every mistake names the file and key.
"""

import glob
import os

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

from ..calibrate.quantize import ACTIVATIONS, OBSERVERS
from ..errors import TargetError
from .registry import get_compiler

PROFILE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
PADDINGS = ("keep", "decompose")
MIN_OPSET, MAX_OPSET = 11, 20  # what torch's TorchScript-based exporter honours


def shipped_profiles():
    """Names of the profiles that ship with edgegan."""
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(PROFILE_DIR, "*.toml")))


def _path_for(target):
    if target.endswith(".toml") or os.sep in target:
        if not os.path.isfile(target):
            raise TargetError("no profile file at %s" % target)
        return target
    path = os.path.join(PROFILE_DIR, target + ".toml")
    if not os.path.isfile(path):
        raise TargetError("unknown target %r; known targets: %s (or pass a profile .toml file; "
                          "`edgegan targets` lists them)" % (target, ", ".join(shipped_profiles())))
    return path


def _require(cond, where, message):
    if not cond:
        raise TargetError("%s: %s" % (where, message))


def validate_profile(profile, where):
    """Check types and allowed values; fill defaults. Returns the profile."""
    _require(isinstance(profile.get("name"), str) and profile["name"], where, "needs a string `name`")
    _require(isinstance(profile.get("compiler"), str), where, "needs a string `compiler` (e.g. \"onnx\")")
    try:
        get_compiler(profile["compiler"])
    except TargetError as e:
        _require(False, where, "`compiler`: %s" % e)
    export = profile.setdefault("export", {})
    opset = export.get("opset")
    _require(isinstance(opset, int) and MIN_OPSET <= opset <= MAX_OPSET, where,
             "[export] opset must be an integer %d..%d (the range torch's exporter honours), got %r"
             % (MIN_OPSET, MAX_OPSET, opset))
    export.setdefault("padding", "keep")
    _require(export["padding"] in PADDINGS, where,
             "[export] padding must be one of %s, got %r" % (list(PADDINGS), export["padding"]))
    export.setdefault("forbid_ops", [])
    _require(isinstance(export["forbid_ops"], list), where, "[export] forbid_ops must be a list of op names")
    build = profile.setdefault("build", {})
    build.setdefault("precisions", ["fp32"])
    build.setdefault("precision", build["precisions"][0])
    for p in build["precisions"]:
        _require(p in PRECISIONS, where, "[build] precisions: unknown precision %r (known: %s)" % (p, list(PRECISIONS)))
    _require(build["precision"] in build["precisions"], where,
             "[build] precision %r is not among precisions %s" % (build["precision"], build["precisions"]))
    runtime = profile.setdefault("runtime", {})
    runtime.setdefault("backend", "onnxruntime")
    runtime.setdefault("threads", 0)
    parity = profile.setdefault("parity", {})
    parity.setdefault("min_psnr_db", 40.0)
    parity.setdefault("min_psnr_db_fp16", 35.0)
    parity.setdefault("min_psnr_db_bf16", 35.0)
    calibrate = profile.setdefault("calibrate", {})
    calibrate.setdefault("observer", "entropy")
    calibrate.setdefault("activation", "int8")
    calibrate.setdefault("min_psnr_db", 30.0)
    calibrate.setdefault("samples", 64)
    calibrate.setdefault("held_out", 16)
    for key, value in (("[parity] min_psnr_db", parity["min_psnr_db"]),
                       ("[parity] min_psnr_db_fp16", parity["min_psnr_db_fp16"]),
                       ("[parity] min_psnr_db_bf16", parity["min_psnr_db_bf16"]),
                       ("[calibrate] min_psnr_db", calibrate["min_psnr_db"])):
        _require(isinstance(value, (int, float)), where, "%s must be a number, got %r" % (key, value))
    _require(calibrate["observer"] in OBSERVERS, where, "[calibrate] observer must be one of %s, got %r"
             % (list(OBSERVERS), calibrate["observer"]))
    _require(calibrate["activation"] in ACTIVATIONS, where, "[calibrate] activation must be one of %s, got %r"
             % (list(ACTIVATIONS), calibrate["activation"]))
    for key in ("samples", "held_out"):
        _require(isinstance(calibrate[key], int) and calibrate[key] >= 1, where,
                 "[calibrate] %s must be a positive integer" % key)
    policy = profile.setdefault("policy", {})
    policy.setdefault("default", 1.0)
    modes = policy.setdefault("modes", {})
    for mode, width in list(modes.items()) + [("default", policy["default"])]:
        _require(isinstance(width, (int, float)) and 0 < width <= 1, where,
                 "[policy] mode %s: width must be in (0, 1], got %r" % (mode, width))
    if profile["compiler"] == "coreml":
        from .coreml import validate_section

        coreml = profile.setdefault("coreml", {})
        for problem in validate_section(coreml):
            _require(False, where, "[coreml] %s" % problem)
    if profile["compiler"] == "tensorrt":
        from .trt_checks import validate_tensorrt_section  # [tensorrt] version, workspace, DLA; opset vs parser

        validate_tensorrt_section(profile, where)
    return profile


def parity_threshold(profile, precision):
    """The PSNR (dB) an artifact measured at ``precision`` must reach against the PyTorch fp32 network."""
    if precision == "int8":
        return float(profile["calibrate"]["min_psnr_db"])
    if precision == "fp16":
        return float(profile["parity"]["min_psnr_db_fp16"])
    if precision == "bf16":
        return float(profile["parity"]["min_psnr_db_bf16"])
    return float(profile["parity"]["min_psnr_db"])


def load_profile(target):
    """Load and validate a shipped profile by name, or a profile ``.toml`` file by path."""
    path = _path_for(target)
    try:
        with open(path, "rb") as f:
            profile = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise TargetError("%s is not valid TOML: %s" % (path, e))
    profile = validate_profile(profile, path)
    profile["source"] = path if not path.startswith(PROFILE_DIR) else "shipped"
    return profile
