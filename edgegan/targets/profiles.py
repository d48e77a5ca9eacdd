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


# -- the schema every profile is checked against (shipped or a user's own) ---------------------------------------

MIN_PSNR_DB, MAX_PSNR_DB = 10.0, 200.0  # a gate below 10 dB passes noise; identical outputs measure ~140 dB
REQUIRED = object()


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in_range(low, high, integer=False):
    kind = "an integer" if integer else "a number"

    def check(v):
        if not (_is_int(v) if integer else _is_number(v)):
            return "must be %s, got %r" % (kind, v)
        if (low is not None and v < low) or (high is not None and v > high):
            return "must be %s %s, got %r" % (kind, "in %g..%g" % (low, high) if high is not None else
                                             ">= %g" % low, v)
    return check


def _opset(v):
    if not _is_int(v) or not MIN_OPSET <= v <= MAX_OPSET:
        return "must be an integer %d..%d (the range torch's exporter honours), got %r" % (MIN_OPSET, MAX_OPSET, v)


def _one_of(choices):
    def check(v):
        if v not in choices:
            return "must be one of %s, got %r" % (list(choices), v)
    return check


def _string(v):
    if not isinstance(v, str) or not v:
        return "must be a non-empty string, got %r" % (v,)


def _text(v):
    if not isinstance(v, str):
        return "must be a string, got %r" % (v,)


def _string_list(v):
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return "must be a list of strings such as [\"Pad:reflect\"], got %r" % (v,)


def _precisions(v):
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        return "must be a non-empty list such as [\"fp32\", \"fp16\"], got %r" % (v,)
    unknown = [x for x in v if x not in PRECISIONS]
    if unknown:
        return "unknown precision %r (known: %s)" % (unknown[0], list(PRECISIONS))
    if len(set(v)) != len(v):
        return "lists a precision twice: %r" % (v,)


def _width(v):
    if not _is_number(v) or not 0 < v <= 1:
        return "width must be in (0, 1], got %r" % (v,)


def _backend(v):
    from ..runtime.backends import available_backends

    if not isinstance(v, str) or v not in available_backends():
        return "must be one of the runtime backends %s, got %r" % (available_backends(), v)


def _table_of(check_value, what):
    def check(v):
        if not isinstance(v, dict):
            return "must be a table of %s, got %r" % (what, v)
        for key, value in v.items():
            problem = check_value(value)
            if problem:
                return "%s: %s" % (key, problem)
    return check


def _power_mode(v):
    if not isinstance(v, dict):
        return "must be a table such as { name = \"MAXN\", watts = 10, cpu_cores = 4 }, got %r" % (v,)
    return _check_keys(v, POWER_MODE_KEYS)


def _battery_rules(v):
    if not isinstance(v, list):
        return "must be a list of tables such as [[policy.battery]] below = 20, width = 0.25, got %r" % (v,)
    for rule in v:
        if not isinstance(rule, dict):
            return "must hold tables { below = 20, width = 0.25 }, got %r" % (rule,)
        problem = _check_keys(rule, BATTERY_KEYS)
        if problem:
            return problem


POWER_MODE_KEYS = {"name": (None, _string), "watts": (None, _in_range(0.1, None)),
                   "cpu_cores": (None, _in_range(1, None, integer=True)),
                   "gpu_max_mhz": (None, _in_range(1, None, integer=True))}
BATTERY_KEYS = {"below": (REQUIRED, _in_range(0, 100)), "width": (REQUIRED, _width)}

#: section -> key -> (default or REQUIRED or None for optional, check returning a problem or None)
SCHEMA = {
    "export": {"opset": (REQUIRED, _opset),
               "padding": ("keep", _one_of(PADDINGS)), "forbid_ops": ([], _string_list)},
    "build": {"precisions": (["fp32"], _precisions), "precision": (None, _string)},
    "calibrate": {"observer": ("entropy", _one_of(OBSERVERS)), "activation": ("int8", _one_of(ACTIVATIONS)),
                  "min_psnr_db": (30.0, _in_range(MIN_PSNR_DB, MAX_PSNR_DB)),
                  "samples": (64, _in_range(1, 100000, integer=True)),
                  "held_out": (16, _in_range(1, 100000, integer=True))},
    "runtime": {"backend": (None, _backend), "threads": (0, _in_range(0, 1024, integer=True))},
    "parity": {"min_psnr_db": (40.0, _in_range(MIN_PSNR_DB, MAX_PSNR_DB)),
               "min_psnr_db_fp16": (35.0, _in_range(MIN_PSNR_DB, MAX_PSNR_DB)),
               "min_psnr_db_bf16": (35.0, _in_range(MIN_PSNR_DB, MAX_PSNR_DB))},
    "policy": {"default": (1.0, _width), "modes": ({}, _table_of(_width, "mode = width")),
               "battery": (None, _battery_rules), "on_battery": (None, _width),
               "target_fps": (None, _in_range(0.001, None))},
    "power": {"modes": (None, _table_of(_power_mode, "mode id = { name, watts, cpu_cores }"))},
    # compiler-specific tables: their keys are checked here, their values by the compiler's module
    "tensorrt": {"version": (None, None), "versions": (None, None), "compute_capability": (None, None),
                 "workspace_mib": (None, None), "dla_cores": (None, None),
                 "dla": (None, None), "dla_core": (None, None), "gpu_fallback": (None, None),
                 "timing_cache": (None, None)},
    "coreml": {"minimum_deployment_target": (None, None), "input": (None, None), "output": (None, None),
               "compute_units": (None, None)},
}
TOP_LEVEL = {"name": (REQUIRED, _string), "description": ("", _text), "compiler": (REQUIRED, _string),
             "source": (None, _text)}  # ``source``: written by ``load_profile`` ("shipped" or the file)
#: the compilers that read a compiler-specific table
SECTION_COMPILERS = {"tensorrt": ("tensorrt", "torch_tensorrt"), "coreml": ("coreml",)}


def _unknown_key(key, known, where_in):
    import difflib

    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    return "%sunknown key %r%s; known keys: %s" % (where_in, key, " (did you mean %r?)" % close[0] if close else "",
                                                   ", ".join(sorted(known)))


def _check_keys(table, spec, where_in=""):
    """The first problem of ``table`` against ``spec`` (unknown key, missing key, bad value), or ``None``;
    fills defaults."""
    for key in table:
        if key not in spec:
            return _unknown_key(key, spec, where_in)
    for key, (default, check) in spec.items():
        if key not in table:
            if default is REQUIRED:
                return "%sneeds `%s`" % (where_in, key)
            if default is not None:
                table[key] = list(default) if isinstance(default, list) else \
                    dict(default) if isinstance(default, dict) else default
            continue
        problem = check(table[key]) if check else None
        if problem:
            return "%s%s %s" % (where_in, key, problem)
    return None


def validate_profile(profile, where):
    """Check ``profile`` against the schema (known keys, with "did you mean"; types; ranges; allowed values)
    and fill defaults. Every problem raises ``TargetError`` naming ``where`` and the key. Returns the profile."""
    _require(isinstance(profile.get("name"), str) and profile["name"], where, "needs a string `name`")
    _require(isinstance(profile.get("compiler"), str), where, "needs a string `compiler` (e.g. \"onnx\")")
    try:
        compiler = get_compiler(profile["compiler"])
    except TargetError as e:
        _require(False, where, "`compiler`: %s" % e)
    for key in profile:
        if key not in TOP_LEVEL and key not in SCHEMA:
            _require(False, where, _unknown_key(key, list(TOP_LEVEL) + ["[%s]" % k for k in SCHEMA], ""))
    problem = _check_keys(dict((k, v) for k, v in profile.items() if k in TOP_LEVEL), TOP_LEVEL)
    _require(problem is None, where, problem)
    for section, spec in SCHEMA.items():
        if section in SECTION_COMPILERS and section in profile:
            _require(profile["compiler"] in SECTION_COMPILERS[section], where,
                     "[%s] is read only when compiler = %s; this profile's compiler is %r: remove the table"
                     % (section, " or ".join('"%s"' % c for c in SECTION_COMPILERS[section]), profile["compiler"]))
        if section in SECTION_COMPILERS and section not in profile:
            continue
        table = profile.setdefault(section, {})
        _require(isinstance(table, dict), where, "[%s] must be a table, got %r" % (section, table))
        problem = _check_keys(table, spec, "[%s] " % section)
        _require(problem is None, where, problem)
    build = profile["build"]
    build.setdefault("precision", build["precisions"][0])
    _require(build["precision"] in build["precisions"], where,
             "[build] precision %r is not among precisions %s" % (build["precision"], build["precisions"]))
    profile["runtime"].setdefault("backend", compiler.bundle_backend or "onnxruntime")
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
    except UnicodeDecodeError as e:
        raise TargetError("%s is not a TOML text file (not UTF-8: %s at byte %d); a profile is UTF-8 TOML like "
                          "the shipped ones in %s" % (path, e.reason, e.start, PROFILE_DIR))
    except OSError as e:
        raise TargetError("cannot read the profile %s (%s)" % (path, e.strerror or e))
    profile = validate_profile(profile, path)
    profile["source"] = path if not path.startswith(PROFILE_DIR) else "shipped"
    return profile
