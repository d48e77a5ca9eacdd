"""TensorRT targets: the bundle carries ONNX files plus the exact steps that build engines on the device.

Engines are built on the device they run on (they do not move across GPUs or TensorRT versions),
so ``edgegan build`` writes the trtexec command line per variant and a ``build_engines.sh`` that
runs them. The workspace flag follows the profile's TensorRT version: ``--workspace=MiB`` before
8.4, ``--memPoolSize=workspace:MiB`` from 8.4 on (10.x removed ``--workspace``).
"""

import os
import shlex

from .onnx import OnnxCompiler
from .registry import register_compiler

SCRIPT_NAME = "build_engines.sh"


def _version_tuple(version):
    return tuple(int(p) for p in version.split(".")[:2])


def engine_name(variant, precision):
    return "%s.%s.engine" % (variant["name"], precision)


def trtexec_command(onnx_file, engine_file, precision, trt):
    """The trtexec command line that builds one engine from one ONNX file."""
    cmd = ["trtexec", "--onnx=" + onnx_file, "--saveEngine=" + engine_file]
    if precision == "fp16":
        cmd.append("--fp16")
    elif precision == "int8":
        cmd += ["--int8", "--fp16"]
    mib = int(trt["workspace_mib"])
    if _version_tuple(trt["version"]) >= (8, 4):
        cmd.append("--memPoolSize=workspace:%dM" % mib)
    else:
        cmd.append("--workspace=%d" % mib)
    return " ".join(shlex.quote(c) for c in cmd)


def device_steps(variants, precision, profile):
    """Commands per variant, in the order the script runs them."""
    trt = profile["tensorrt"]
    return [{"variant": v["name"], "engine": engine_name(v, precision),
             "trtexec": trtexec_command(v["file"], engine_name(v, precision), precision, trt)}
            for v in variants]


def write_build_script(bundle_dir, steps, profile):
    """A POSIX shell script that builds every engine next to the ONNX files; run it on the device."""
    lines = ["#!/bin/sh",
             "# Builds the TensorRT engines of this bundle. Run it on the %s itself (TensorRT %s):"
             % (profile["name"], profile["tensorrt"]["version"]),
             "# engines are specific to the GPU and TensorRT version that build them.",
             "set -e",
             'cd "$(dirname "$0")"',
             'command -v trtexec >/dev/null 2>&1 || PATH="$PATH:/usr/src/tensorrt/bin"']
    for step in steps:
        lines.append('echo "building %s"' % step["engine"])
        lines.append(step["trtexec"])
    path = os.path.join(bundle_dir, SCRIPT_NAME)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)
    return SCRIPT_NAME


@register_compiler
class TensorRTCompiler(OnnxCompiler):
    """ONNX files checked against the profile's TensorRT version, plus the device steps that build engines."""

    name = "tensorrt"

    def finish(self, bundle_dir, variants, profile, precision):
        steps = device_steps(variants, precision, profile)
        script = write_build_script(bundle_dir, steps, profile)
        return {"device_steps": {"tensorrt_version": profile["tensorrt"]["version"], "script": script,
                                 "engines": steps}}
