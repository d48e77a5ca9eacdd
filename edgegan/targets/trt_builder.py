#!/usr/bin/env python3
"""Build TensorRT engines from ONNX files with the ``tensorrt`` Python API (TensorRT 8.2 to 10.x).

This module is ``edgegan.targets.trt_builder``. ``edgegan build`` copies it, unchanged, into every
TensorRT bundle as ``build_engines.py``, so that the device builds its own engines without edgegan:
it needs Python >= 3.6, numpy and the ``tensorrt`` package (JetPack ships both), and libcudart
(through ctypes) only to calibrate INT8 from data. On the device::

    python3 build_engines.py                 # every engine the manifest plans
    python3 build_engines.py --variant w1 --force --verbose

Each engine is recorded in ``manifest.json`` (the variant's ``engine``: file, sha256, precision,
TensorRT version, GPU; the file in ``files``) and the bundle's ``backend`` becomes ``tensorrt``, so
``Runtime(bundle)`` runs the engines. Exit status: 0 built, 2 on any error (message on stderr).

Version differences handled here: explicit-batch network flag (required before 10.0, gone in 10.x),
workspace through ``max_workspace_size`` (before 8.4) or ``set_memory_pool_limit`` (8.4+), INT8 from
a Q/DQ model (explicit) or an entropy calibrator with a cache (implicit: the only INT8 DLA takes),
timing cache load/save, DLA core with GPU fallback. The configuration is computed by pure functions
(``config_plan``) and applied to the live objects by ``apply_plan``.
"""

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import os
import sys
import time

MANIFEST = "manifest.json"
PRECISIONS = ("fp32", "fp16", "int8")
INT8_MODES = ("qdq", "calibration_cache")
CACHE_ALGORITHM = "EntropyCalibration2"


class BuildError(Exception):
    """A build that cannot go on; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------- pure


def version_tuple(text):
    """``"8.2.1.8"`` → ``(8, 2, 1)``; missing parts are 0."""
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def cache_version_number(version):
    """The number in a calibration cache header: NV_TENSORRT_VERSION, which is major*1000+minor*100+patch
    before TensorRT 10 (8.2.1 → 8201) and major*10000+minor*100+patch from 10 on (10.3.0 → 100300)."""
    major, minor, patch = version_tuple(version)
    return (major * 10000 if major >= 10 else major * 1000) + minor * 100 + patch


def restamp_cache(text, version):
    """A calibration cache's text with its header rewritten for TensorRT ``version``.

    TensorRT skips a cache whose header names another version; the per-tensor scales below the header
    do not depend on the version, so a cache written for the profile's version serves the device's.
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("TRT-"):
        raise BuildError("not a TensorRT calibration cache (its first line is %r)" % (lines[0] if lines else ""))
    algorithm = lines[0].split("-", 2)[2] if lines[0].count("-") >= 2 else CACHE_ALGORITHM
    lines[0] = "TRT-%d-%s" % (cache_version_number(version), algorithm)
    return "\n".join(lines) + "\n"


def config_plan(version, precision, workspace_mib, int8_mode=None, dla_core=None, gpu_fallback=True,
                calibration_cache=None, has_calibration_data=False):
    """The builder configuration for TensorRT ``version`` as data: a list of ``(step, value)``.

    Steps: ``network_flags`` ("explicit_batch" or "none"), ``workspace`` ((API, bytes)), ``flag``
    (a ``BuilderFlag`` name), ``calibrator`` ((cache file, calibrate from data?)), ``dla_core``.
    Raises ``BuildError`` for combinations TensorRT cannot build.
    """
    v = version_tuple(version)
    if v[:2] < (8, 0):
        raise BuildError("TensorRT %s is too old; this builder needs 8.0 or newer" % version)
    if precision not in PRECISIONS:
        raise BuildError("unknown precision %r (one of %s)" % (precision, ", ".join(PRECISIONS)))
    steps = [("network_flags", "explicit_batch" if v[0] < 10 else "none")]
    api = "set_memory_pool_limit" if v[:2] >= (8, 4) else "max_workspace_size"
    steps.append(("workspace", (api, int(workspace_mib) << 20)))
    if precision in ("fp16", "int8"):
        steps.append(("flag", "FP16"))  # int8: layers left unquantized run in fp16, not fp32
    if precision == "int8":
        if int8_mode not in INT8_MODES:
            raise BuildError("int8 needs a mode, one of %s; got %r" % (", ".join(INT8_MODES), int8_mode))
        steps.append(("flag", "INT8"))
        if int8_mode == "calibration_cache":
            if not calibration_cache and not has_calibration_data:
                raise BuildError("implicit INT8 needs a calibration cache or calibration data")
            steps.append(("calibrator", (calibration_cache, bool(has_calibration_data))))
        elif dla_core is not None:
            raise BuildError("DLA takes implicit INT8 only (an entropy calibration cache on the fp32 ONNX), "
                             "not a Q/DQ model")
    if dla_core is not None:
        if precision == "fp32":
            raise BuildError("DLA runs fp16 or int8 only; build fp16 or int8, or leave out the DLA core")
        steps.append(("dla_core", int(dla_core)))
        if gpu_fallback:
            steps.append(("flag", "GPU_FALLBACK"))
    return steps


def format_parser_errors(errors):
    """``[(node index, node name, operator, description)]`` → one readable line per ONNX parser error."""
    lines = []
    for node, name, op, desc in errors:
        where = "node %s" % node if node is not None and node >= 0 else "graph"
        if name or op:
            where += " (%s%s)" % (name or "", (" " + op) if op else "")
        lines.append("  %s: %s" % (where, desc))
    return "\n".join(lines)


def engine_record(step, engine_sha256, trt_version, gpu, seconds):
    """What the manifest says about one built engine."""
    return {"file": step["engine"], "sha256": engine_sha256, "precision": step["precision"],
            "int8": step.get("int8"), "onnx": step["onnx"], "dla_core": step.get("dla_core"),
            "tensorrt_version": trt_version, "gpu": gpu, "seconds": round(seconds, 1),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "builder": "build_engines.py"}


def update_manifest(manifest, records, extra_files=None):
    """``manifest`` with the engines in ``records`` (``{variant name: engine record}``) recorded:
    each variant's ``engine``, the ``engines`` list, the ``files`` map (engine and ``extra_files``
    sha256s) and ``backend`` = ``tensorrt``. Returns the same dict."""
    files = manifest.setdefault("files", {})
    for variant in manifest["variants"]:
        record = records.get(variant["name"])
        if record is not None:
            variant["engine"] = record
            files[record["file"]] = record["sha256"]
    for rel, digest in (extra_files or {}).items():
        files[rel] = digest
    manifest["engines"] = [dict(v["engine"], variant=v["name"]) for v in manifest["variants"] if v.get("engine")]
    if manifest["engines"]:
        manifest.setdefault("backend_before_engines", manifest.get("backend"))
        manifest["backend"] = "tensorrt"
    return manifest


# -------------------------------------------------------------------------------------------- TensorRT


def import_tensorrt():
    """The ``tensorrt`` module, or a ``BuildError`` saying how to get it."""
    try:
        import tensorrt
    except ImportError as e:
        raise BuildError("the tensorrt Python package is not importable here (%s). On a Jetson it comes with "
                         "JetPack (apt install python3-libnvinfer); elsewhere: pip install tensorrt. Without it, "
                         "build the engines with trtexec: sh build_engines.sh" % e)
    return tensorrt


_LOGGERS = {}


def trt_logger(trt, verbose=False):
    """One logger per severity (TensorRT warns when several loggers are created)."""
    severity = trt.Logger.VERBOSE if verbose else trt.Logger.WARNING
    if severity not in _LOGGERS:
        _LOGGERS[severity] = trt.Logger(severity)
    return _LOGGERS[severity]


class CudaRuntime(object):
    """The few libcudart calls calibration needs, through ctypes (no PyCUDA / cuda-python required)."""

    HOST_TO_DEVICE = 1

    def __init__(self):
        self.lib = None
        names = ["libcudart.so"]
        found = ctypes.util.find_library("cudart")
        if found:
            names.append(found)
        for root in ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/aarch64-linux/lib"):
            if os.path.isdir(root):
                names += sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith("libcudart.so"))
        for name in names:
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if self.lib is None:
            raise BuildError("calibrating from data needs libcudart.so (tried %s); add the CUDA libraries to "
                             "LD_LIBRARY_PATH, or build from the bundle's calibration cache" % ", ".join(names))
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p

    def check(self, status, call):
        if status != 0:
            raise BuildError("%s failed: %s" % (call, self.lib.cudaGetErrorString(status).decode()))

    def malloc(self, nbytes):
        ptr = ctypes.c_void_p()
        self.check(self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(nbytes)), "cudaMalloc")
        return ptr.value

    def copy_to_device(self, ptr, array):
        self.check(self.lib.cudaMemcpy(ctypes.c_void_p(ptr), ctypes.c_void_p(array.ctypes.data),
                                       ctypes.c_size_t(array.nbytes), self.HOST_TO_DEVICE), "cudaMemcpy")

    def free(self, ptr):
        self.lib.cudaFree(ctypes.c_void_p(ptr))

    def device_name(self, index=0):
        props = ctypes.create_string_buffer(16384)  # cudaDeviceProp starts with char name[256]
        if self.lib.cudaGetDeviceProperties(props, index) != 0:
            return None
        return props.raw[:256].split(b"\0", 1)[0].decode("utf-8", "replace") or None


def gpu_name():
    """The CUDA device's name, else the Jetson board's model, else ``"unknown"``."""
    try:
        name = CudaRuntime().device_name()
        if name:
            return name
    except (BuildError, OSError, AttributeError):
        pass
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return f.read().strip(b"\0 \n").decode("utf-8", "replace")
    except (IOError, OSError):
        return "unknown"


def make_calibrator(trt, cache_file, batches=None, trt_version=None):
    """An ``IInt8EntropyCalibrator2`` (the calibrator DLA requires; deprecated from TensorRT 10.1 in favour
    of Q/DQ models). With ``batches`` (float32 NCHW arrays, batch 1) it calibrates from data and writes
    ``cache_file``; without, it serves ``cache_file`` re-stamped for ``trt_version``."""
    base = trt.IInt8EntropyCalibrator2

    class EntropyCalibrator(base):
        def __init__(self):
            base.__init__(self)
            self.batches = list(batches or [])
            self.index = 0
            self.cuda = CudaRuntime() if self.batches else None
            self.device = self.cuda.malloc(max(b.nbytes for b in self.batches)) if self.batches else None

        def get_batch_size(self):
            return 1

        def get_batch(self, names, p_str=None):
            if self.index >= len(self.batches):
                return None
            import numpy as np
            batch = np.ascontiguousarray(self.batches[self.index], dtype=np.float32)
            self.cuda.copy_to_device(self.device, batch)
            self.index += 1
            return [int(self.device)]

        def read_calibration_cache(self):
            if self.batches or not cache_file or not os.path.isfile(cache_file):
                return None
            with open(cache_file) as f:
                return restamp_cache(f.read(), trt_version or trt.__version__).encode()

        def write_calibration_cache(self, cache):
            if self.batches and cache_file:
                with open(cache_file, "wb") as f:
                    f.write(bytes(cache))

        def release(self):
            if self.device is not None:
                self.cuda.free(self.device)
                self.device = None

    return EntropyCalibrator()


def apply_plan(trt, builder, config, steps, calibrator=None):
    """Apply ``config_plan`` steps to a live ``IBuilderConfig`` (feature-detected where the API moved)."""
    for step, value in steps:
        if step == "workspace":
            api, nbytes = value
            if api == "set_memory_pool_limit" and hasattr(config, "set_memory_pool_limit"):
                config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, nbytes)
            else:
                config.max_workspace_size = nbytes
        elif step == "flag":
            if value == "FP16" and getattr(builder, "platform_has_fast_fp16", True) is False:
                raise BuildError("this GPU has no fast fp16; build fp32")
            if value == "INT8" and getattr(builder, "platform_has_fast_int8", True) is False:
                raise BuildError("this GPU has no fast int8 (e.g. the Nano's Maxwell); build fp16")
            config.set_flag(getattr(trt.BuilderFlag, value))
        elif step == "calibrator":
            config.int8_calibrator = calibrator
        elif step == "dla_core":
            if getattr(builder, "num_DLA_cores", 0) <= value:
                raise BuildError("DLA core %d requested, this device has %d DLA core(s)"
                                 % (value, getattr(builder, "num_DLA_cores", 0)))
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = value


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path, data):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def build_engine(onnx_path, engine_path, precision, workspace_mib=1024, int8_mode=None, calibration_cache=None,
                 calibration_batches=None, dla_core=None, gpu_fallback=True, timing_cache=None, verbose=False):
    """Build one engine from ``onnx_path`` into ``engine_path``; returns ``(sha256, tensorrt version,
    seconds)``. ``BuildError`` with the ONNX parser's or builder's messages when it fails."""
    trt = import_tensorrt()
    start = time.time()
    steps = config_plan(trt.__version__, precision, workspace_mib, int8_mode, dla_core, gpu_fallback,
                        calibration_cache, bool(calibration_batches))
    logger = trt_logger(trt, verbose)
    builder = trt.Builder(logger)
    flags = 0
    if dict(steps)["network_flags"] == "explicit_batch":
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        ok = parser.parse(f.read(), os.path.abspath(onnx_path))
    if not ok:
        errors = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            name = e.node_name() if hasattr(e, "node_name") else None
            op = e.node_operator() if hasattr(e, "node_operator") else None
            errors.append((e.node(), name, op, e.desc()))
        raise BuildError("the ONNX parser of TensorRT %s refused %s:\n%s"
                         % (trt.__version__, onnx_path, format_parser_errors(errors)))
    config = builder.create_builder_config()
    calibrator = None
    if dict(steps).get("calibrator"):
        calibrator = make_calibrator(trt, calibration_cache, calibration_batches, trt.__version__)
    apply_plan(trt, builder, config, steps, calibrator)
    cache = None
    if timing_cache:
        data = b""
        if os.path.isfile(timing_cache):
            with open(timing_cache, "rb") as f:
                data = f.read()
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, False)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.release()
    if serialized is None:
        raise BuildError("TensorRT %s could not build %s at %s (see its messages above; --verbose shows more)"
                         % (trt.__version__, onnx_path, precision))
    _write_atomic(engine_path, bytes(serialized))
    if cache is not None:
        _write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return sha256_file(engine_path), trt.__version__, time.time() - start


# ------------------------------------------------------------------------------------------ the bundle


def load_manifest(bundle_dir):
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.isfile(path):
        raise BuildError("%s has no %s; run build_engines.py inside an edgegan bundle" % (bundle_dir, MANIFEST))
    with open(path) as f:
        manifest = json.load(f)
    if not (manifest.get("device_steps") or {}).get("engines"):
        raise BuildError("%s plans no TensorRT engines (it was built for %s)" % (path, manifest.get("target")))
    return manifest


def expected_sha256(manifest, rel):
    for v in manifest["variants"]:
        if v["file"] == rel:
            return v.get("sha256")
    return (manifest.get("files") or {}).get(rel)


def build_bundle_engines(bundle_dir, variants=None, force=False, verbose=False, log=None):
    """Build the engines ``bundle_dir``'s manifest plans (all, or those of ``variants``) and record them."""
    log = log or (lambda message: sys.stderr.write(message + "\n"))
    manifest = load_manifest(bundle_dir)
    plan = manifest["device_steps"]["engines"]
    known = [s["variant"] for s in plan]
    unknown = sorted(set(variants or []) - set(known))
    if unknown:
        raise BuildError("no variant %s in this bundle; it has %s" % (", ".join(unknown), ", ".join(known)))
    trt = import_tensorrt()
    gpu = gpu_name()
    records = {}
    extra = {}
    for step in plan:
        if variants and step["variant"] not in variants:
            continue
        engine_path = os.path.join(bundle_dir, step["engine"])
        current = next((v.get("engine") for v in manifest["variants"] if v["name"] == step["variant"]), None)
        if (not force and current and current.get("tensorrt_version") == trt.__version__
                and os.path.isfile(engine_path) and sha256_file(engine_path) == current.get("sha256")):
            log("%s: up to date (TensorRT %s); --force rebuilds it" % (step["engine"], trt.__version__))
            continue
        onnx_path = os.path.join(bundle_dir, step["onnx"])
        want = expected_sha256(manifest, step["onnx"])
        if not os.path.isfile(onnx_path) or (want and sha256_file(onnx_path) != want):
            raise BuildError("%s is missing or does not match its sha256 in the manifest; copy the whole bundle "
                             "again" % onnx_path)
        cache = os.path.join(bundle_dir, step["calibration_cache"]) if step.get("calibration_cache") else None
        timing = os.path.join(bundle_dir, step["timing_cache"]) if step.get("timing_cache") else None
        log("building %s from %s (%s%s, TensorRT %s, %s)" % (
            step["engine"], step["onnx"], step["precision"],
            ", DLA core %d" % step["dla_core"] if step.get("dla_core") is not None else "", trt.__version__, gpu))
        digest, version, seconds = build_engine(
            onnx_path, engine_path, step["precision"], step.get("workspace_mib", 1024), step.get("int8"), cache,
            None, step.get("dla_core"), step.get("gpu_fallback", True), timing, verbose)
        records[step["variant"]] = engine_record(step, digest, version, gpu, seconds)
        if timing:
            extra[step["timing_cache"]] = sha256_file(timing)
        log("  %s: %.1f s" % (step["engine"], seconds))
    if records:
        update_manifest(manifest, records, extra)
        text = json.dumps(manifest, indent=2) + "\n"
        _write_atomic(os.path.join(bundle_dir, MANIFEST), text.encode("utf-8"))
    return records


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(prog="build_engines.py", description="Build this bundle's TensorRT "
                                     "engines on this device and record them in manifest.json.")
    parser.add_argument("--bundle", default=here, help="the bundle directory (default: this file's directory)")
    parser.add_argument("--variant", action="append", help="build only this variant (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild engines that are up to date")
    parser.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    parser.add_argument("--stamp-cache", nargs=2, metavar=("CACHE", "OUT"),
                        help="write CACHE re-stamped for the installed TensorRT to OUT, and exit (build_engines.sh "
                             "uses it before trtexec --calib)")
    args = parser.parse_args(argv)
    try:
        if args.stamp_cache:
            trt = import_tensorrt()
            with open(args.stamp_cache[0]) as f:
                text = restamp_cache(f.read(), trt.__version__)
            with open(args.stamp_cache[1], "w") as f:
                f.write(text)
            return 0
        records = build_bundle_engines(args.bundle, args.variant, args.force, args.verbose)
    except BuildError as e:
        sys.stderr.write("build_engines.py: error: %s\n" % e)
        return 2
    sys.stderr.write("%d engine(s) built and recorded in %s\n" % (len(records), os.path.join(args.bundle, MANIFEST)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
