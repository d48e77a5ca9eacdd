"""The TensorRT backend: runs the engines ``build_engines.py`` (or ``edgegan build`` with TensorRT) built.

TensorRT 8.x and 10.x differ: 8.x runs engines through binding indices (``num_bindings``,
``execute_async_v2(bindings, stream)``); 8.5 added tensor names and addresses
(``num_io_tensors``, ``set_tensor_address``, ``execute_async_v3(stream)``), and 10.0 removed the
bindings. The API is chosen by feature detection (``choose_api``), the tensor API when both exist.
Device memory goes through whichever CUDA binding imports (``choose_cuda_binding``): cuda-python,
PyCUDA, or ctypes on ``libcudart.so`` (always there with TensorRT). Host buffers are pinned when the
binding can allocate pinned memory. tensorrt is imported lazily; Python 3.6-compatible.

The backend is given a variant's artifact path. For an ONNX file it finds the engine through the
bundle's ``manifest.json`` (the variant's ``engine`` entry that ``build_engines.py`` records), or the
engine file the plan names if trtexec built it; a ``.engine`` / ``.plan`` path is loaded directly.

Before TensorRT deserializes anything, the engine's record is compared with this device: its TensorRT
version, and its GPU's compute capability (an engine does not load on another; a different GPU model
with the same compute capability loads, with a warning). A host without a CUDA GPU gets one line.
"""

import ctypes
import ctypes.util
import importlib
import json
import os
import sys
import warnings

import numpy as np

from ...errors import BundleError, EdgeganError
from . import Backend, register_backend

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
CUDA_BINDINGS = ("cuda-python", "pycuda", "ctypes")
REBUILD = "run `python3 build_engines.py` (or `sh build_engines.sh`) in the bundle on this device"
CUDA_ATTR_CC_MAJOR, CUDA_ATTR_CC_MINOR = 75, 76  # cudaDevAttrComputeCapabilityMajor / Minor


# ---------------------------------------------------------------------------------------------- pure


def choose_api(engine_attrs, context_attrs):
    """``"tensors"`` (TensorRT 8.5+: names, addresses, ``execute_async_v3``) or ``"bindings"``
    (8.x: indices, ``execute_async_v2``) from the attribute names an engine and its context have."""
    engine_attrs, context_attrs = set(engine_attrs), set(context_attrs)
    if {"num_io_tensors", "get_tensor_name", "get_tensor_mode"} <= engine_attrs and \
            {"set_tensor_address", "execute_async_v3"} <= context_attrs:
        return "tensors"
    if {"num_bindings", "get_binding_name", "binding_is_input"} <= engine_attrs and "execute_async_v2" in context_attrs:
        return "bindings"
    raise EdgeganError("this TensorRT exposes neither the tensor API (execute_async_v3) nor the bindings API "
                       "(execute_async_v2); edgegan supports TensorRT 8.x and 10.x")


def choose_cuda_binding(probe, preferred=None):
    """The first CUDA binding ``probe(name)`` says is usable, in ``CUDA_BINDINGS`` order (or ``preferred``)."""
    order = list(CUDA_BINDINGS)
    if preferred:
        if preferred not in CUDA_BINDINGS:
            raise EdgeganError("unknown CUDA binding %r; choose one of %s" % (preferred, ", ".join(CUDA_BINDINGS)))
        order = [preferred]
    for name in order:
        if probe(name):
            return name
    raise EdgeganError("the tensorrt backend needs device memory through %s, and none is usable here: pip install "
                       "cuda-python (or pycuda), or put libcudart.so on LD_LIBRARY_PATH (e.g. /usr/local/cuda/lib64)"
                       % (" or ".join(order)))


def io_specs(entries):
    """``(inputs, output)`` from ``[(name, is_input, shape, numpy dtype)]``: ``[{"name", "shape", "dtype"}]``
    of the inputs in engine order (one image; or noise and a class label) and the one output; static shapes.

    A class label is an int64 ONNX input: TensorRT 10 keeps it int64, the 8.x parser imports it as int32
    (``Backend.check_inputs`` casts the labels to whichever the engine has)."""
    inputs = [e for e in entries if e[1]]
    outputs = [e for e in entries if not e[1]]
    if not inputs or len(outputs) != 1:
        raise BundleError("the engine has %d inputs and %d outputs; edgegan engines have one output and one "
                          "input or more" % (len(inputs), len(outputs)))
    specs = []
    for name, _, shape, dtype in inputs + outputs:
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise BundleError("the engine's tensor %s has a dynamic shape %s; edgegan builds static engines"
                              % (name, list(shape)))
        specs.append({"name": name, "shape": shape, "dtype": np.dtype(dtype)})
    return specs[:-1], specs[-1]


def split_io(entries):
    """``(input, output)`` of a one-input engine from ``[(name, is_input, shape, numpy dtype)]`` (``io_specs``
    takes several inputs)."""
    inputs = [e for e in entries if e[1]]
    outputs = [e for e in entries if not e[1]]
    if len(inputs) != 1 or len(outputs) != 1:
        raise BundleError("the engine has %d inputs and %d outputs; edgegan engines have one of each"
                          % (len(inputs), len(outputs)))
    ins, out = io_specs(entries)
    return ins[0], out


def resolve_engine(manifest, artifact_file, exists):
    """``(engine file, engine record or None)`` for the variant whose artifact is ``artifact_file``.

    The variant's ``engine`` entry (written by ``build_engines.py``) wins; else the engine file the
    bundle's plan names, if ``exists(file)`` (built by ``build_engines.sh``, unrecorded).
    """
    for variant in manifest.get("variants", []):
        if variant.get("file") != artifact_file and variant.get("name") != artifact_file:
            continue
        if variant.get("engine"):
            return variant["engine"]["file"], variant["engine"]
        for step in (manifest.get("device_steps") or {}).get("engines", []):
            if step.get("variant") == variant["name"] and exists(step["engine"]):
                return step["engine"], None
        if not (manifest.get("device_steps") or {}).get("engines"):
            raise BundleError("this bundle (target %s) has no TensorRT build steps; build it for a TensorRT target"
                              % manifest.get("target"))
        raise BundleError("variant %s has no TensorRT engine yet; %s" % (variant["name"], REBUILD))
    raise BundleError("%s is not a variant of this bundle" % artifact_file)


def engine_version_problem(record, installed):
    """A message when the engine was built by another TensorRT version than ``installed``, else ``None``."""
    built = (record or {}).get("tensorrt_version")
    if not built or built == installed:
        return None
    return ("the engine %s was built by TensorRT %s, this is TensorRT %s; engines do not move across versions: %s"
            % (record.get("file"), built, installed, REBUILD))


def gpu_mismatch(recorded, here):
    """How the GPU an engine was built on (``recorded``: ``{"name", "compute_capability"}``, or a name from
    older manifests) differs from the GPU ``here``: ``("compute_capability", message)`` (TensorRT cannot
    deserialize the engine), ``("name", message)`` (it loads; its tactics were timed on another GPU model),
    or ``None``. The same rule as ``build_engines.py``'s."""
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


def engine_gpu_problem(record, here):
    """``(error or None, warning or None)`` for running the engine of ``record`` on the GPU ``here``."""
    mismatch = gpu_mismatch((record or {}).get("gpu"), here)
    if mismatch is None:
        return None, None
    message = "the engine %s was %s" % ((record or {}).get("file"), mismatch[1])
    if mismatch[0] == "compute_capability":
        return "%s; engines do not move across GPUs: %s" % (message, REBUILD), None
    return None, "%s; it runs, but its kernels were chosen on the other GPU (%s for this one)" % (message, REBUILD)


def checked_context(engine, engine_path, trt_version):
    """``engine.create_execution_context()``, or one ``BundleError`` when TensorRT answers ``None``."""
    context = engine.create_execution_context()
    if context is None:
        raise BundleError("TensorRT %s could not create an execution context for %s (not enough GPU memory for its "
                          "activations? close other GPU programs, or use a narrower variant)" % (trt_version, engine_path))
    return context


def nptype(trt, dtype):
    """numpy dtype of a ``trt.DataType``."""
    if hasattr(trt, "nptype"):
        return np.dtype(trt.nptype(dtype))
    names = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_,
             "UINT8": np.uint8, "INT64": np.int64}
    return np.dtype(names[str(dtype).split(".")[-1]])


# ------------------------------------------------------------------------------------ CUDA bindings


def _libcudart():
    names = ["libcudart.so"]
    found = ctypes.util.find_library("cudart")
    if found:
        names.append(found)
    roots = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/aarch64-linux/lib"]
    roots += [os.path.join(p, "nvidia", "cuda_runtime", "lib") for p in sys.path if p]  # pip's tensorrt wheels
    for root in roots:
        if os.path.isdir(root):
            names += sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith("libcudart.so"))
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def probe_cuda_binding(name):
    """Whether the CUDA binding ``name`` imports here."""
    try:
        if name == "cuda-python":
            try:
                importlib.import_module("cuda.bindings.runtime")
            except ImportError:
                importlib.import_module("cuda.cudart")
        elif name == "pycuda":
            importlib.import_module("pycuda.driver")
        else:
            return _libcudart() is not None
    except ImportError:
        return False
    return True


def _host_array(ptr, shape, dtype):
    dtype = np.dtype(dtype)
    count = int(np.prod(shape)) * dtype.itemsize
    buf = (ctypes.c_byte * count).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


class CudaPython(object):
    """Device memory through cuda-python's runtime bindings."""

    name = "cuda-python"

    def __init__(self):
        try:
            self.rt = importlib.import_module("cuda.bindings.runtime")
        except ImportError:
            self.rt = importlib.import_module("cuda.cudart")
        self.h2d = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.d2h = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost

    def _call(self, what, result):
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            raise EdgeganError("%s failed: %s" % (what, self.rt.cudaGetErrorString(err)[1]))
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    def gpu(self, device=0):
        count = self._call("cudaGetDeviceCount", self.rt.cudaGetDeviceCount())
        if int(count) <= device:
            raise EdgeganError("no CUDA GPU %d here (%d device(s))" % (device, int(count)))
        props = self._call("cudaGetDeviceProperties", self.rt.cudaGetDeviceProperties(device))
        name = props.name.split(b"\0", 1)[0].decode("utf-8", "replace") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name, "compute_capability": "%d.%d" % (props.major, props.minor)}

    def alloc(self, nbytes):
        return int(self._call("cudaMalloc", self.rt.cudaMalloc(nbytes)))

    def free(self, ptr):
        self.rt.cudaFree(ptr)

    def pinned(self, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(self._call("cudaMallocHost", self.rt.cudaMallocHost(nbytes)))
        return _host_array(ptr, shape, dtype), ptr

    def free_pinned(self, ptr):
        self.rt.cudaFreeHost(ptr)

    def stream(self):
        return self._call("cudaStreamCreate", self.rt.cudaStreamCreate())

    def handle(self, stream):
        return int(stream)

    def htod(self, ptr, host, stream):
        self._call("cudaMemcpyAsync", self.rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, self.h2d, stream))

    def dtoh(self, host, ptr, stream):
        self._call("cudaMemcpyAsync", self.rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, self.d2h, stream))

    def synchronize(self, stream):
        self._call("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream))

    def destroy(self, stream):
        self.rt.cudaStreamDestroy(stream)

    def close(self):
        pass


class PyCuda(object):
    """Device memory through PyCUDA, in the device's primary context (the one TensorRT uses)."""

    name = "pycuda"

    def __init__(self, device=0):
        self.cuda = importlib.import_module("pycuda.driver")
        try:
            self.cuda.init()
            if self.cuda.Device.count() <= device:
                raise EdgeganError("no CUDA GPU %d here (%d device(s))" % (device, self.cuda.Device.count()))
        except self.cuda.Error as e:
            raise EdgeganError("CUDA does not start here (%s)" % e)
        self.context = self.cuda.Device(device).retain_primary_context()
        self.context.push()
        self._allocations = {}

    def gpu(self, device=0):
        dev = self.cuda.Device(device)
        return {"name": dev.name(), "compute_capability": "%d.%d" % dev.compute_capability()}

    def alloc(self, nbytes):
        allocation = self.cuda.mem_alloc(nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr):
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def pinned(self, shape, dtype):
        return self.cuda.pagelocked_empty(shape, dtype), None

    def free_pinned(self, ptr):
        pass

    def stream(self):
        return self.cuda.Stream()

    def handle(self, stream):
        return int(stream.handle)

    def htod(self, ptr, host, stream):
        self.cuda.memcpy_htod_async(ptr, host, stream)

    def dtoh(self, host, ptr, stream):
        self.cuda.memcpy_dtoh_async(host, ptr, stream)

    def synchronize(self, stream):
        stream.synchronize()

    def destroy(self, stream):
        pass

    def close(self):
        if self.context is not None:
            self.context.pop()
            self.context = None


class CtypesCudart(object):
    """Device memory through ``libcudart.so`` with ctypes: no Python package beyond numpy."""

    name = "ctypes"
    H2D, D2H = 1, 2

    def __init__(self):
        self.lib = _libcudart()
        if self.lib is None:
            raise EdgeganError("libcudart.so is not loadable; put the CUDA libraries on LD_LIBRARY_PATH")
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p

    def _check(self, what, status):
        if status != 0:
            raise EdgeganError("%s failed: %s" % (what, self.lib.cudaGetErrorString(status).decode()))

    def gpu(self, device=0):
        count = ctypes.c_int(0)
        self._check("cudaGetDeviceCount", self.lib.cudaGetDeviceCount(ctypes.byref(count)))
        if count.value <= device:
            raise EdgeganError("no CUDA GPU %d here (%d device(s))" % (device, count.value))
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        self._check("cudaDeviceGetAttribute", self.lib.cudaDeviceGetAttribute(ctypes.byref(major), CUDA_ATTR_CC_MAJOR, device))
        self._check("cudaDeviceGetAttribute", self.lib.cudaDeviceGetAttribute(ctypes.byref(minor), CUDA_ATTR_CC_MINOR, device))
        props = ctypes.create_string_buffer(16384)  # cudaDeviceProp starts with char name[256] in every CUDA
        get = getattr(self.lib, "cudaGetDeviceProperties_v2", None) or self.lib.cudaGetDeviceProperties
        name = props.raw[:256].split(b"\0", 1)[0].decode("utf-8", "replace") if get(props, device) == 0 else ""
        return {"name": name or "unknown", "compute_capability": "%d.%d" % (major.value, minor.value)}

    def alloc(self, nbytes):
        ptr = ctypes.c_void_p()
        self._check("cudaMalloc", self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(nbytes)))
        return ptr.value

    def free(self, ptr):
        self.lib.cudaFree(ctypes.c_void_p(ptr))

    def pinned(self, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = ctypes.c_void_p()
        self._check("cudaMallocHost", self.lib.cudaMallocHost(ctypes.byref(ptr), ctypes.c_size_t(nbytes)))
        return _host_array(ptr.value, shape, dtype), ptr.value

    def free_pinned(self, ptr):
        self.lib.cudaFreeHost(ctypes.c_void_p(ptr))

    def stream(self):
        stream = ctypes.c_void_p()
        self._check("cudaStreamCreate", self.lib.cudaStreamCreate(ctypes.byref(stream)))
        return stream

    def handle(self, stream):
        return stream.value or 0

    def _copy(self, dst, src, nbytes, kind, stream):
        self._check("cudaMemcpyAsync", self.lib.cudaMemcpyAsync(ctypes.c_void_p(dst), ctypes.c_void_p(src),
                                                                ctypes.c_size_t(nbytes), kind, stream))

    def htod(self, ptr, host, stream):
        self._copy(ptr, host.ctypes.data, host.nbytes, self.H2D, stream)

    def dtoh(self, host, ptr, stream):
        self._copy(host.ctypes.data, ptr, host.nbytes, self.D2H, stream)

    def synchronize(self, stream):
        self._check("cudaStreamSynchronize", self.lib.cudaStreamSynchronize(stream))

    def destroy(self, stream):
        self.lib.cudaStreamDestroy(stream)

    def close(self):
        pass


def open_cuda_binding(name, device=0):
    if name == "cuda-python":
        return CudaPython()
    if name == "pycuda":
        return PyCuda(device)
    return CtypesCudart()


# ------------------------------------------------------------------------------------------ backend

_LOGGER = []


@register_backend
class TensorRTBackend(Backend):
    """Runs one TensorRT engine (batch 1, one output; one input, or noise and a class label).

    ``path``: a variant's ONNX file in a bundle (its engine is looked up in the manifest) or an engine
    file. ``providers``: may name the CUDA binding (``"cuda-python"``, ``"pycuda"``, ``"ctypes"``).
    ``pinned``: page-locked host buffers where the binding offers them.
    """

    name = "tensorrt"
    library = "tensorrt"
    package = "tensorrt (on a Jetson it comes with JetPack: apt install python3-libnvinfer)"

    def __init__(self, path, threads=None, layout=None, providers=None, cuda=None, pinned=True, device=0):
        trt = self.import_library()
        self.trt = trt
        self.layout = layout
        self.threads = threads
        self._memory = None
        self._device = []
        self._pinned = []
        self._stream = None
        engine_path, record = self._find_engine(path)
        problem = engine_version_problem(record, trt.__version__)
        if problem:
            raise BundleError(problem)
        preferred = next((p for p in providers or () if p in CUDA_BINDINGS), None) or cuda
        self.cuda_binding = choose_cuda_binding(probe_cuda_binding, preferred)
        try:
            self._memory = open_cuda_binding(self.cuda_binding, device)
            self.gpu = self._memory.gpu(device)
        except EdgeganError as e:
            self.close()
            raise EdgeganError("the tensorrt backend needs a CUDA GPU, and there is none usable here: %s" % e)
        try:
            self._load(trt, engine_path, record, pinned)
        except BaseException:
            self.close()
            raise
        self.providers = [self.cuda_binding, self.api]

    def _load(self, trt, engine_path, record, pinned):
        """Check the engine's GPU against this one, deserialize it, create its context and buffers."""
        error, warning = engine_gpu_problem(record, self.gpu)
        if error:
            raise BundleError(error)
        if warning:
            warnings.warn(warning)
        if not _LOGGER:
            _LOGGER.append(trt.Logger(trt.Logger.WARNING))
        self.runtime = trt.Runtime(_LOGGER[0])
        if record and record.get("dla_core") is not None:
            self.runtime.DLA_core = int(record["dla_core"])
        with open(engine_path, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise BundleError("TensorRT %s cannot load %s (built for another GPU or TensorRT version?); %s"
                              % (trt.__version__, engine_path, REBUILD))
        self.engine_path = engine_path
        self.context = checked_context(self.engine, engine_path, trt.__version__)
        self.api = choose_api(dir(self.engine), dir(self.context))
        entries = self._io_entries()
        ins, out = io_specs(entries)
        inp = ins[0]
        self.input_name, self.output_name = inp["name"], out["name"]
        self.input_shape, self.input_dtype = inp["shape"], inp["dtype"]
        self.inputs = ins if len(ins) > 1 else None
        self._input_names = [i["name"] for i in ins]
        self._allocate(ins + [out], pinned, [e[0] for e in entries])

    @staticmethod
    def _find_engine(path):
        if path.endswith(ENGINE_SUFFIXES):
            if not os.path.isfile(path):
                raise BundleError("no TensorRT engine at %s; %s" % (path, REBUILD))
            return path, None
        bundle_dir = os.path.dirname(os.path.abspath(path))
        manifest_path = os.path.join(bundle_dir, "manifest.json")
        if not os.path.isfile(manifest_path):
            raise BundleError("%s is not an engine and has no manifest.json next to it; pass an engine file or a "
                              "variant of a TensorRT bundle" % path)
        with open(manifest_path) as f:
            manifest = json.load(f)
        rel, record = resolve_engine(manifest, os.path.basename(path),
                                     lambda name: os.path.isfile(os.path.join(bundle_dir, name)))
        return os.path.join(bundle_dir, rel), record

    def _io_entries(self):
        trt, engine = self.trt, self.engine
        entries = []
        if self.api == "tensors":
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                entries.append((name, is_input, tuple(engine.get_tensor_shape(name)),
                                nptype(trt, engine.get_tensor_dtype(name))))
        else:
            for i in range(engine.num_bindings):
                entries.append((engine.get_binding_name(i), engine.binding_is_input(i),
                                tuple(engine.get_binding_shape(i)), nptype(trt, engine.get_binding_dtype(i))))
        return entries

    def _allocate(self, specs, pinned, names):
        mem = self._memory
        self._stream = mem.stream()
        self._handle = mem.handle(self._stream)
        self._host = {}
        self._dev = {}
        for spec in specs:
            host = None
            if pinned:
                try:
                    host, ptr = mem.pinned(spec["shape"], spec["dtype"])
                    if ptr is not None:
                        self._pinned.append(ptr)
                except EdgeganError:
                    host = None
            if host is None:
                host = np.empty(spec["shape"], spec["dtype"])
            self._host[spec["name"]] = host
            ptr = mem.alloc(max(1, host.nbytes))
            self._device.append(ptr)
            self._dev[spec["name"]] = ptr
        if self.api == "tensors":
            for name, ptr in self._dev.items():
                self.context.set_tensor_address(name, ptr)
        else:
            self._bindings = [int(self._dev[name]) for name in names]

    def _run(self, x):
        return self._run_inputs([x])

    def _run_inputs(self, arrays):
        mem = self._memory
        for name, x in zip(self._input_names, arrays):
            host_in = self._host[name]
            np.copyto(host_in, x.reshape(host_in.shape))
            mem.htod(self._dev[name], host_in, self._stream)
        host_out = self._host[self.output_name]
        if self.api == "tensors":
            ok = self.context.execute_async_v3(self._handle)
        else:
            ok = self.context.execute_async_v2(self._bindings, self._handle)
        if not ok:
            raise EdgeganError("TensorRT failed to run %s" % self.engine_path)
        mem.dtoh(host_out, self._dev[self.output_name], self._stream)
        mem.synchronize(self._stream)
        return host_out.astype(np.float32) if host_out.dtype != np.float32 else host_out.copy()

    def sync(self):
        if self._memory is not None and self._stream is not None:
            self._memory.synchronize(self._stream)

    def close(self):
        mem = self._memory
        if mem is not None:
            for ptr in self._device:
                mem.free(ptr)
            for ptr in self._pinned:
                mem.free_pinned(ptr)
            if self._stream is not None:
                mem.destroy(self._stream)
            mem.close()
        self._device, self._pinned, self._stream, self._memory = [], [], None, None
        self._host = {}  # pinned host arrays point into freed memory now
        self.context = None
        self.engine = None
