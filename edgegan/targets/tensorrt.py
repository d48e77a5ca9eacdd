"""TensorRT targets: checked ONNX files, plus the exact steps that build engines on the device.

Engines are built on the device they run on (they do not move across GPUs or TensorRT versions), so
a TensorRT bundle carries, next to the ONNX files:

* ``build_engines.py`` — ``edgegan.targets.trt_builder`` copied verbatim (numpy + tensorrt, Python
  3.6): builds every engine with the TensorRT Python API and records it in ``manifest.json``
  (the variant's ``engine``), which makes ``Runtime(bundle)`` run the engines;
* ``build_engines.sh`` — the same builds as trtexec command lines (``manifest["device_steps"]``).

Before anything is written the graph is checked against the profile's TensorRT version
(``trt_checks``). INT8 artifacts are Q/DQ ONNX models (TensorRT explicit quantization, built with
``--int8``) plus a calibration cache ``<variant>.calib`` and the fp32 ONNX, which DLA builds use
(implicit quantization: DLA does not take Q/DQ models). ``edgegan build`` builds the engines itself only
where this host is the target: ``import tensorrt`` works, its version is one of the profile's
(``[tensorrt] versions``) and the host's GPU has the profile's ``compute_capability``; the bundle's
backend then becomes ``tensorrt``. Otherwise the manifest's ``device_steps.built_at_build_time`` says in
one line why not (no tensorrt, another version, no GPU, another GPU).

trtexec flags per version: workspace ``--workspace=MiB`` before 8.4, ``--memPoolSize=workspace:MiB``
from 8.4 (10.x removed ``--workspace``); ``--buildOnly`` before 8.6, ``--skipInference`` from 8.6;
``--timingCacheFile`` (8.0+); DLA ``--useDLACore=N --allowGPUFallback``; implicit INT8 ``--calib``.
"""

import os
import shlex
import shutil

import torch.nn as nn

from ..errors import TargetError
from . import trt_builder, trt_checks
from .onnx import OnnxCompiler, compile_onnx
from .registry import register_compiler

SCRIPT_NAME = "build_engines.sh"
BUILDER_NAME = "build_engines.py"
TIMING_CACHE = "tensorrt.timing.cache"


def _version_tuple(version):
    return trt_checks.parse_version(version)[:2]


def engine_name(variant, precision, dla_core=None):
    suffix = "" if dla_core is None else ".dla%d" % dla_core
    return "%s.%s%s.engine" % (variant["name"], precision, suffix)


def workspace_flag(trt):
    """The trtexec workspace flag for the profile's TensorRT version (sizes in MiB either way)."""
    mib = int(trt["workspace_mib"])
    if _version_tuple(trt["version"]) >= (8, 4):
        return "--memPoolSize=workspace:%d" % mib  # no unit suffix: MiB in 8.4/8.5 and in 8.6+ alike
    return "--workspace=%d" % mib


def trtexec_command(onnx_file, engine_file, precision, trt, int8=None, calibration_cache=None, dla_core=None,
                    timing_cache=None):
    """The trtexec command line that builds one engine from one ONNX file.

    ``int8``: ``"qdq"`` (a Q/DQ model: ``--int8`` makes TensorRT honour its scales) or
    ``"calibration_cache"`` (an fp32 model quantized with ``--calib``); both add ``--fp16`` so layers
    left in float run in fp16. No ``--shapes``: edgegan's graphs are static (``trt_checks`` refuses dynamic
    inputs) and trtexec refuses explicit shapes for a static model in every version ("Static model does not
    take explicit shapes since the shape of inference tensors will be determined by the model itself").
    """
    cmd = ["trtexec", "--onnx=" + onnx_file, "--saveEngine=" + engine_file]
    if precision == "fp16":
        cmd.append("--fp16")
    elif precision == "int8":
        if int8 not in trt_builder.INT8_MODES:
            raise TargetError("int8 engines need a mode (%s), got %r" % ("/".join(trt_builder.INT8_MODES), int8))
        cmd += ["--int8", "--fp16"]
        if int8 == "calibration_cache":
            if not calibration_cache:
                raise TargetError("implicit INT8 needs a calibration cache")
            cmd.append("--calib=" + calibration_cache)
    cmd.append(workspace_flag(trt))
    if dla_core is not None:
        if precision == "fp32":
            raise TargetError("DLA runs fp16 or int8 only")
        cmd.append("--useDLACore=%d" % dla_core)
        if trt.get("gpu_fallback", True):
            cmd.append("--allowGPUFallback")
    if timing_cache:
        cmd.append("--timingCacheFile=" + timing_cache)
    cmd.append("--skipInference" if _version_tuple(trt["version"]) >= (8, 6) else "--buildOnly")
    return " ".join(shlex.quote(c) for c in cmd)


def engine_plan(variants, precision, profile):
    """One build step per variant: what to build from what, with which settings, and its trtexec line.

    This is what ``build_engines.py`` reads from the manifest (``device_steps.engines``).
    """
    trt = profile["tensorrt"]
    dla_core = trt["dla_core"] if trt.get("dla") else None
    int8 = trt_checks.int8_mode(profile) if precision == "int8" else None
    timing = TIMING_CACHE if trt.get("timing_cache", True) else None
    steps = []
    for v in variants:
        source = v["file"]
        cache = None
        if precision == "int8":
            extra = v.get("tensorrt") or {}
            cache = extra.get("calibration_cache")
            if int8 == "calibration_cache":
                source = extra.get("fp32_onnx")
                if not source or not cache:
                    raise TargetError("%s: a DLA INT8 build needs the fp32 ONNX and the calibration cache" % v["name"])
        engine = engine_name(v, precision, dla_core)
        step = {"variant": v["name"], "onnx": source, "engine": engine, "precision": precision, "int8": int8,
                "calibration_cache": cache, "dla_core": dla_core, "gpu_fallback": bool(trt.get("gpu_fallback", True)),
                "workspace_mib": int(trt["workspace_mib"]), "timing_cache": timing}
        calib_arg = (cache + ".local") if int8 == "calibration_cache" else None
        step["trtexec"] = trtexec_command(source, engine, precision, trt, int8, calib_arg, dla_core, timing)
        steps.append(step)
    return steps


def write_build_script(bundle_dir, steps, profile):
    """A POSIX shell script that builds every engine with trtexec next to the ONNX files; run it on the device.

    Implicit-INT8 (DLA) steps first copy the calibration cache re-stamped for the installed TensorRT
    (TensorRT skips a cache written for another version, and trtexec would then calibrate on random data).
    """
    lines = ["#!/bin/sh",
             "# Builds the TensorRT engines of this bundle with trtexec. Run it on the %s itself (profile: "
             "TensorRT %s):" % (profile["name"], "/".join(profile["tensorrt"].get("versions")
                                                           or [profile["tensorrt"]["version"]])),
             "# engines are specific to the GPU and TensorRT version that build them. The same builds, recorded in",
             "# manifest.json so that the edgegan runtime finds the engines: python3 %s" % BUILDER_NAME,
             "set -e",
             'cd "$(dirname "$0")"',
             'command -v trtexec >/dev/null 2>&1 || PATH="$PATH:/usr/src/tensorrt/bin"']
    for step in steps:
        lines.append('echo "building %s"' % step["engine"])
        if step.get("int8") == "calibration_cache":
            lines.append("python3 %s --stamp-cache %s %s" % (BUILDER_NAME, shlex.quote(step["calibration_cache"]),
                                                             shlex.quote(step["calibration_cache"] + ".local")))
        lines.append(step["trtexec"])
    path = os.path.join(bundle_dir, SCRIPT_NAME)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)
    return SCRIPT_NAME


def write_builder(bundle_dir):
    """Copy ``trt_builder.py`` into the bundle as ``build_engines.py`` (executable)."""
    source = trt_builder.__file__
    if source.endswith(".pyc"):
        source = source[:-1]
    path = os.path.join(bundle_dir, BUILDER_NAME)
    shutil.copyfile(source, path)
    os.chmod(path, 0o755)
    return BUILDER_NAME


def installed_tensorrt():
    """The installed ``tensorrt`` module, or ``None``."""
    try:
        return trt_builder.import_tensorrt()
    except trt_builder.BuildError:
        return None


def host_is_target(profile, trt, gpu_info):
    """``(None, gpu)`` when engines for ``profile`` can be built on this host: ``trt`` (the tensorrt module, or
    ``None``) is one of the profile's versions and ``gpu_info()`` (``{"name", "compute_capability"}``, or a
    ``trt_builder.BuildError`` without a GPU) has the profile's compute capability. Otherwise ``(why not, in
    one line, None)``."""
    wanted = profile["tensorrt"].get("versions") or [profile["tensorrt"]["version"]]
    if trt is None:
        return "tensorrt is not importable here", None
    if _version_tuple(trt.__version__) not in [_version_tuple(v) for v in wanted]:
        return "TensorRT %s here, the profile targets %s" % (trt.__version__, "/".join(wanted)), None
    capability = profile["tensorrt"].get("compute_capability")
    if not capability:
        return ("the profile names no [tensorrt] compute_capability, so this host cannot be recognised as its "
                "device"), None
    try:
        gpu = gpu_info()
    except trt_builder.BuildError as e:
        return str(e).replace(" " + trt_builder.NO_GPU_HINT, "").rstrip("."), None
    if gpu["compute_capability"] != capability:
        return ("this host's GPU is %s (compute capability %s), the profile's device has compute capability %s"
                % (gpu["name"], gpu["compute_capability"], capability)), None
    return None, gpu


def drop_float_layers(ranges, model, kept_float):
    """``ranges`` without the tensors touching the nodes the quality gate kept in float: with no scale,
    TensorRT's implicit quantization leaves those layers in fp16, as the Q/DQ model leaves them in float."""
    kept = set(kept_float or ())
    touched = set()
    for node in model.graph.node:
        if node.name in kept:
            touched.update(node.input)
            touched.update(node.output)
    return dict((name, r) for name, r in ranges.items() if name not in touched)


@register_compiler
class TensorRTCompiler(OnnxCompiler):
    """ONNX files checked against the profile's TensorRT version, plus the device steps that build engines."""

    name = "tensorrt"
    # TensorRT 8.x has no per-output-channel deconvolution kernels (onnxruntime puts ConvTranspose weight scales
    # on axis 1, the output channels); per tensor is exact for every TensorRT (trt_checks checks the DQ axis)
    per_tensor_weight_ops = ("ConvTranspose",)
    _ranges = None        # the calibrated tensor ranges of the variant being compiled (after_int8)
    _calibration = None   # the CalibrationSet, kept for building DLA engines here when TensorRT is present

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        import onnx

        trt_checks.check_precision(profile, precision)
        unsafe = [trt_checks._label(v) for v in trt_checks.profile_versions(profile)
                  if not trt_checks.instancenorm_ok(v, precision)]
        if unsafe and any(isinstance(m, nn.InstanceNorm2d) for m in module.modules()):
            raise TargetError("%s: InstanceNorm in a %s engine of TensorRT %s loses precision or overflows (its "
                              "statistics in fp16; 8.2–8.5 keep them in fp32); train with norm=\"bn\" (BatchNorm "
                              "folds into the conv), or build --precision fp32"
                              % (os.path.basename(path), precision, "/".join(unsafe)))
        self._ranges = None
        self._calibration = calibration
        extra = super(TensorRTCompiler, self).compile(module, input_shape, path, profile, precision, calibration)
        extra = dict(extra or {})
        info = {}
        model = onnx.load(path)
        info["checks"] = trt_checks.check_graph(model, profile, precision, os.path.basename(path))
        if precision == "int8":
            info.update(self._int8_files(module, input_shape, path, profile, extra.get("int8") or {}))
        extra["tensorrt"] = info
        return extra

    def after_int8(self, path, ranges, profile):
        self._ranges = ranges

    def _int8_files(self, module, input_shape, path, profile, report):
        """The fp32 ONNX and the calibration cache next to the Q/DQ model (for DLA / implicit builds)."""
        from ..calibrate import write_trt_cache

        if not self._ranges:
            raise TargetError("the INT8 path produced no calibrated tensor ranges for the TensorRT cache")
        stem = os.path.splitext(path)[0]
        fp32 = stem + ".fp32.onnx"
        export = profile["export"]
        model = compile_onnx(module, input_shape, fp32, export["opset"], export["forbid_ops"], **self.export_inputs())
        trt_checks.check_graph(model, profile, "fp16", os.path.basename(fp32))
        ranges = drop_float_layers(self._ranges, model, report.get("kept_float"))
        cache = stem + ".calib"
        version = profile["tensorrt"]["version"]
        write_trt_cache(cache, ranges, version, "EntropyCalibration2")
        return {"fp32_onnx": os.path.basename(fp32), "calibration_cache": os.path.basename(cache),
                "calibration_cache_tensors": len(ranges), "int8_mode": trt_checks.int8_mode(profile),
                "calibration_cache_source": "onnxruntime %s ranges (entropy calibrator semantics are TensorRT's; the "
                                            "build on the device re-stamps the header)" % profile["calibrate"]["observer"]}

    def finish(self, bundle_dir, variants, profile, precision):
        steps = engine_plan(variants, precision, profile)
        script = write_build_script(bundle_dir, steps, profile)
        builder = write_builder(bundle_dir)
        device_steps = {"tensorrt_version": profile["tensorrt"]["version"], "script": script, "builder": builder,
                        "engines": steps}
        device_steps["tensorrt_versions"] = list(profile["tensorrt"].get("versions") or [profile["tensorrt"]["version"]])
        extras = {"device_steps": device_steps}
        reason, gpu = host_is_target(profile, installed_tensorrt(), trt_builder.gpu_info)
        if reason is not None:
            device_steps["built_at_build_time"] = "no: %s; run %s or %s on the device" % (reason, builder, script)
            return extras
        return self._build_here(bundle_dir, variants, steps, extras, gpu)

    def _build_here(self, bundle_dir, variants, steps, extras, gpu):
        """Build every planned engine with the local TensorRT on this host's GPU (``host_is_target``)."""
        records = {}
        for step in steps:
            batches = None
            if step["int8"] == "calibration_cache" and self._calibration is not None \
                    and not self._calibration.multi_input:  # several inputs: the cache from onnxruntime's ranges
                batches = self._calibration.inputs  # TensorRT calibrates from data and rewrites the cache
            try:
                digest, version, seconds = trt_builder.build_engine(
                    os.path.join(bundle_dir, step["onnx"]), os.path.join(bundle_dir, step["engine"]),
                    step["precision"], step["workspace_mib"], step["int8"],
                    os.path.join(bundle_dir, step["calibration_cache"]) if step["calibration_cache"] else None,
                    batches, step["dla_core"], step["gpu_fallback"],
                    os.path.join(bundle_dir, step["timing_cache"]) if step["timing_cache"] else None)
            except trt_builder.BuildError as e:
                raise TargetError(str(e))
            records[step["variant"]] = trt_builder.engine_record(step, digest, version, gpu, seconds)
        for v in variants:
            v["engine"] = dict(records[v["name"]], builder="edgegan build")
        extras["device_steps"]["built_at_build_time"] = "yes"
        extras["engines"] = [dict(v["engine"], variant=v["name"]) for v in variants]
        extras["backend"] = "tensorrt"
        return extras
