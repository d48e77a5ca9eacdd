#!/usr/bin/env python3
"""Build TensorRT engines from ONNX files with the ``tensorrt`` Python API (TensorRT 8.2 to 10.x).

This module is ``edgegan.targets.trt_builder``. ``edgegan build`` copies it, unchanged, into every
TensorRT bundle as ``build_engines.py``, so that the device builds its own engines without edgegan:
it needs Python >= 3.6, numpy and the ``tensorrt`` package (JetPack ships both), and libcudart
(through ctypes) only to calibrate INT8 from data. On the device::

    python3 build_engines.py                 # every engine the manifest plans
    python3 build_engines.py --variant w1 --force --verbose

Each engine is recorded in ``manifest.json`` (the variant's ``engine``: file, sha256, precision,
TensorRT version, GPU name and compute capability; the file in ``files``) and the bundle's ``backend``
becomes ``tensorrt``, so ``Runtime(bundle)`` runs the engines. An engine counts as up to date only for the
same TensorRT version and the same GPU (x86 and JetPack 5.1 both report TensorRT 8.5.2.2, but an engine
does not move between their GPUs). Exit status: 0 built, 2 on any error (one message on stderr).

Version differences handled here: explicit-batch network flag (required before 10.0, gone in 10.x),
workspace through ``max_workspace_size`` (before 8.4) or ``set_memory_pool_limit`` (8.4+), INT8 from
a Q/DQ model (explicit) or an entropy calibrator with a cache (implicit: the only INT8 DLA takes),
timing cache load/save, DLA core with GPU fallback. The configuration is computed by pure functions
(``config_plan``) and applied to the live objects by ``apply_plan``; every TensorRT call that reports
failure by returning ``None`` or ``False`` is checked.
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
CUDA_ATTR_CC_MAJOR, CUDA_ATTR_CC_MINOR = 75, 76  # cudaDevAttrComputeCapabilityMajor / Minor
NO_GPU_HINT = ("TensorRT engines are built on the GPU that runs them: run build_engines.py (or build_engines.sh) on "
               "the device")


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


def gpu_mismatch(recorded, here):
    """How the GPU an engine was built on (``recorded``: ``{"name", "compute_capability"}``, or a name from
    older manifests) differs from the GPU ``here``: ``("compute_capability", message)`` (the engine cannot
    be deserialized), ``("name", message)`` (it loads, but its tactics were timed on another GPU model), or
    ``None`` when they agree."""
    if not recorded:
        return None
    if not isinstance(recorded, dict):
        recorded = {"name": str(recorded)}
    built_cc, here_cc = recorded.get("compute_capability"), (here or {}).get("compute_capability")
    if built_cc and here_cc and built_cc != here_cc:
        return ("compute_capability", "built for %s (compute capability %s), this GPU is %s (compute capability %s)"
                % (recorded.get("name"), built_cc, here.get("name"), here_cc))
    if recorded.get("name") and here.get("name") and recorded["name"] != here["name"]:
        return ("name", "built on %s, this GPU is %s" % (recorded["name"], here["name"]))
    return None


def engine_staleness(record, trt_version, gpu, engine_sha256):
    """Why the engine of ``record`` (a variant's manifest ``engine``, or ``None``) must be built again here
    (TensorRT ``trt_version``, GPU ``gpu``; ``engine_sha256`` of the file on disk, ``None`` if missing), or
    ``None`` when it is up to date. The TensorRT version alone does not do: x86 and JetPack 5.1 both report
    8.5.2.2, and an engine built on the one fails to deserialize on the other's GPU."""
    if not record:
        return "not built yet"
    if record.get("tensorrt_version") != trt_version:
        return "built by TensorRT %s, this is %s" % (record.get("tensorrt_version"), trt_version)
    if not record.get("gpu"):
        return "its GPU is not recorded"
    mismatch = gpu_mismatch(record["gpu"], gpu)
    if mismatch is not None:
        return mismatch[1]
    if engine_sha256 is None:
        return "the file %s is missing" % record.get("file")
    if engine_sha256 != record.get("sha256"):
        return "the file %s does not match its sha256" % record.get("file")
    return None


def engine_record(step, engine_sha256, trt_version, gpu, seconds):
    """What the manifest says about one built engine (``gpu``: ``{"name", "compute_capability"}``)."""
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


def cudart_candidates():
    """Where libcudart may be: the loader's search path, the CUDA toolkit (JetPack: /usr/local/cuda), and the
    nvidia-cuda-runtime wheel that pip's tensorrt packages install."""
    names = ["libcudart.so"]
    found = ctypes.util.find_library("cudart")
    if found:
        names.append(found)
    roots = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/aarch64-linux/lib"]
    roots += [os.path.join(p, "nvidia", "cuda_runtime", "lib") for p in sys.path if p]
    for root in roots:
        if os.path.isdir(root):
            names += sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith("libcudart.so"))
    return names


class CudaRuntime(object):
    """The few libcudart calls the builder needs (the GPU, calibration), through ctypes (no PyCUDA /
    cuda-python required). ``lib``: an already loaded library (tests pass another implementation)."""

    HOST_TO_DEVICE = 1

    def __init__(self, purpose="calibrating from data", lib=None):
        self.lib = lib
        names = [] if lib is not None else cudart_candidates()
        for name in names:
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if self.lib is None:
            raise BuildError("%s needs libcudart.so (tried %s); add the CUDA libraries to LD_LIBRARY_PATH "
                             "(export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH)" % (purpose, ", ".join(names)))
        if lib is None:
            self.lib.cudaGetErrorString.restype = ctypes.c_char_p

    def error(self, status):
        text = self.lib.cudaGetErrorString(status)
        return text.decode() if isinstance(text, bytes) else str(text)

    def check(self, status, call):
        if status != 0:
            raise BuildError("%s failed: %s" % (call, self.error(status)))

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
        props = ctypes.create_string_buffer(16384)  # cudaDeviceProp starts with char name[256] in every CUDA
        get = getattr(self.lib, "cudaGetDeviceProperties_v2", None) or self.lib.cudaGetDeviceProperties  # CUDA 12
        if get(props, index) != 0:
            return None
        return props.raw[:256].split(b"\0", 1)[0].decode("utf-8", "replace") or None

    def gpu(self, index=0):
        """``{"name", "compute_capability"}`` of device ``index``; ``BuildError`` (one line) where there is none."""
        count = ctypes.c_int(0)
        status = self.lib.cudaGetDeviceCount(ctypes.byref(count))
        if status != 0 or count.value <= index:
            why = self.error(status) if status != 0 else "%d CUDA device(s)" % count.value
            raise BuildError("no CUDA GPU is visible here (cudaGetDeviceCount: %s). %s" % (why, NO_GPU_HINT))
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        self.check(self.lib.cudaDeviceGetAttribute(ctypes.byref(major), CUDA_ATTR_CC_MAJOR, index),
                   "cudaDeviceGetAttribute")
        self.check(self.lib.cudaDeviceGetAttribute(ctypes.byref(minor), CUDA_ATTR_CC_MINOR, index),
                   "cudaDeviceGetAttribute")
        return {"name": self.device_name(index) or "unknown", "compute_capability": "%d.%d" % (major.value, minor.value)}


def gpu_info(index=0):
    """The GPU engines are built for here: ``{"name", "compute_capability"}``. ``BuildError`` in one line on
    a host without a CUDA GPU (or without libcudart), before TensorRT is asked for anything."""
    return CudaRuntime("telling which GPU this is").gpu(index)


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


def load_timing_cache(config, path, trt_version):
    """Attach the timing cache in ``path`` (empty when the file does not exist) to ``config``; returns it.
    ``create_timing_cache`` answers ``None`` and ``set_timing_cache`` ``False`` when TensorRT cannot use a
    cache: both are one ``BuildError`` saying what to do."""
    data = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    cache = config.create_timing_cache(data)
    if cache is None:
        raise BuildError("TensorRT %s could not %s; delete %s and build again" % (
            trt_version, "read the timing cache %s (damaged, or written by another TensorRT)" % path if data
            else "create a timing cache", path))
    if config.set_timing_cache(cache, False) is False:
        raise BuildError("TensorRT %s refused the timing cache %s (written by another TensorRT version or on another "
                         "GPU); delete it and build again" % (trt_version, path))
    return cache


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
    cache = load_timing_cache(config, timing_cache, trt.__version__) if timing_cache else None
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.release()
    if serialized is None:
        raise BuildError("TensorRT %s could not build %s at %s (see its messages above; --verbose shows more)"
                         % (trt.__version__, onnx_path, precision))
    _write_atomic(engine_path, bytes(serialized))
    updated = config.get_timing_cache() if cache is not None else None
    if updated is not None:
        _write_atomic(timing_cache, bytes(updated.serialize()))
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
    gpu = gpu_info()
    records = {}
    extra = {}
    for step in plan:
        if variants and step["variant"] not in variants:
            continue
        engine_path = os.path.join(bundle_dir, step["engine"])
        current = next((v.get("engine") for v in manifest["variants"] if v["name"] == step["variant"]), None)
        stale = engine_staleness(current, trt.__version__, gpu,
                                 sha256_file(engine_path) if os.path.isfile(engine_path) else None)
        if not force and stale is None:
            log("%s: up to date (TensorRT %s, %s); --force rebuilds it" % (step["engine"], trt.__version__, gpu["name"]))
            continue
        if current:
            log("%s: %s; rebuilding it" % (step["engine"], stale or "--force"))
        onnx_path = os.path.join(bundle_dir, step["onnx"])
        want = expected_sha256(manifest, step["onnx"])
        if not os.path.isfile(onnx_path) or (want and sha256_file(onnx_path) != want):
            raise BuildError("%s is missing or does not match its sha256 in the manifest; copy the whole bundle "
                             "again" % onnx_path)
        cache = os.path.join(bundle_dir, step["calibration_cache"]) if step.get("calibration_cache") else None
        timing = os.path.join(bundle_dir, step["timing_cache"]) if step.get("timing_cache") else None
        log("building %s from %s (%s%s, TensorRT %s, %s, compute capability %s)" % (
            step["engine"], step["onnx"], step["precision"],
            ", DLA core %d" % step["dla_core"] if step.get("dla_core") is not None else "", trt.__version__,
            gpu["name"], gpu["compute_capability"]))
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
