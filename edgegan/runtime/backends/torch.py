"""The PyTorch backend: TorchScript artifacts (``edgegan build --target torch``) on CPU or CUDA.

For devices that have PyTorch but no TensorRT (NVIDIA ships torch wheels for Jetson). torch is
imported lazily, inside methods. Options, as constructor keywords or as ``providers`` strings
(``Runtime(bundle, backend="torch", providers=["cuda", "fp16", "cuda-graphs"])``):

``device``       ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (``"cuda"`` falls back to the CPU with a
                 warning where CUDA is missing).
``fp16``         run in half precision (default: on CUDA, the artifact's precision; on the CPU, fp32 —
                 half convolutions on a CPU are slow).
``cuda_graphs``  capture the forward pass once into a ``torch.cuda.CUDAGraph`` and replay it: batch-1
                 latency without the per-kernel launch overhead. Each variant holds its own graph and
                 static input, so switching variants stays a dict lookup.

``event_timer()`` gives CUDA-event timing for ``edgegan.runtime.fps.measure(timer=...)``.
"""

import json
import warnings

import numpy as np

from ...errors import BundleError, EdgeganError
from . import Backend, register_backend

META_FILE = "edgegan.json"
GRAPH_WARMUP = 3
_WARNED = set()


def _warn_once(message):
    """One warning per message and process (a runtime creates one backend per variant)."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


def parse_providers(providers):
    """``{"device", "fp16", "cuda_graphs"}`` from provider strings: ``cpu``, ``cuda``, ``cuda:N``,
    ``fp16``, ``fp32``, ``cuda-graphs`` (implies ``cuda``)."""
    options = {"device": None, "fp16": None, "cuda_graphs": None}
    for p in providers or ():
        key = str(p).strip().lower().replace("_", "-")
        if key in ("cpu", "cpuexecutionprovider"):
            options["device"] = "cpu"
        elif key in ("cuda", "gpu", "cudaexecutionprovider") or key.startswith("cuda:"):
            options["device"] = "cuda" if key in ("gpu", "cudaexecutionprovider") else key
        elif key in ("fp16", "half"):
            options["fp16"] = True
        elif key in ("fp32", "float"):
            options["fp16"] = False
        elif key in ("cuda-graphs", "cudagraphs", "graphs"):
            options["cuda_graphs"] = True
            options["device"] = options["device"] or "cuda"
        else:
            raise EdgeganError("the torch backend does not know the option %r; use cpu, cuda, cuda:N, fp16, fp32 "
                               "or cuda-graphs" % p)
    return options


class CudaEventTimer(object):
    """Times device work between ``start()`` and ``stop()`` with CUDA events on the current stream."""

    def __init__(self, torch, device):
        self._torch = torch
        self.device = device
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self):
        self._start.record()

    def stop(self):
        self._end.record()

    def elapsed_s(self):
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3


@register_backend
class TorchBackend(Backend):
    """Runs a TorchScript file written by the ``torchscript`` compiler."""

    name = "torch"
    library = "torch"
    package = "torch (on a Jetson, NVIDIA's torch wheel for its JetPack)"

    def __init__(self, path, threads=None, layout=None, providers=None, device=None, fp16=None, cuda_graphs=None):
        torch = self.import_library()
        self.torch = torch
        options = parse_providers(providers)
        device = device or options["device"] or "cpu"
        fp16 = options["fp16"] if fp16 is None else fp16
        cuda_graphs = options["cuda_graphs"] if cuda_graphs is None else cuda_graphs
        if device.startswith("cuda") and not torch.cuda.is_available():
            _warn_once("torch %s here has no CUDA; the torch backend runs on the CPU" % torch.__version__)
            device = "cpu"
        if cuda_graphs and not device.startswith("cuda"):
            _warn_once("CUDA graphs need a CUDA device; running eagerly on the CPU")
            cuda_graphs = False
        if threads:
            torch.set_num_threads(int(threads))
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*deprecated.*")  # torch.jit in torch >= 2.9
                module = torch.jit.load(path, map_location=device, _extra_files=extra)
        except Exception as e:  # torch raises RuntimeError / ValueError with long C++ traces
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BundleError("torch %s cannot load %s as TorchScript (%s); re-run `edgegan build --target torch`"
                              % (torch.__version__, path, reason))
        meta_text = extra[META_FILE]
        meta = json.loads(meta_text.decode("utf-8") if isinstance(meta_text, bytes) else meta_text or "{}")
        self.meta = meta
        self.device = torch.device(device)
        artifact_fp16 = meta.get("precision") == "fp16"
        if fp16 is None:
            fp16 = artifact_fp16 and self.device.type == "cuda"
        self.fp16 = bool(fp16)
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.module = module.to(self.dtype).eval()
        self.input_name = meta.get("input_name", "input")
        self.output_name = meta.get("output_name", "output")
        shape = meta.get("input_shape")
        self.input_shape = tuple(shape) if shape else (None, None, None, None)
        self.input_dtype = np.dtype(np.float32)
        recorded = meta.get("inputs") or []  # several inputs (noise, label): [{"name", "shape", "dtype"}]
        if len(recorded) > 1:
            self.inputs = [{"name": i["name"], "shape": tuple(i["shape"]), "dtype": np.dtype(i["dtype"])}
                           for i in recorded]
        self.layout = layout
        self.threads = threads
        self.providers = [str(self.device)] + (["fp16"] if self.fp16 else []) + (["cuda-graphs"] if cuda_graphs else [])
        self.cuda_graphs = bool(cuda_graphs)
        self._graph = None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self.cuda_graphs:
            if not shape or any(d is None for d in shape):
                raise BundleError("%s records no static input shape; CUDA graphs need one (rebuild the bundle)" % path)
            self._capture(self.input_specs())

    def _tensor_dtype(self, dtype):
        """The torch dtype an input of numpy ``dtype`` runs in: floats in the module's, integers (labels) as int64."""
        return self.torch.int64 if np.dtype(dtype).kind in "iu" else self.dtype

    def _capture(self, specs):
        """Warm up on a side stream, then capture one forward pass into a CUDA graph."""
        torch = self.torch
        self._static_in = [torch.zeros(tuple(s["shape"]), device=self.device, dtype=self._tensor_dtype(s["dtype"]))
                           for s in specs]
        stream = torch.cuda.Stream(device=self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(GRAPH_WARMUP):
                self.module(*self._static_in)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            self._static_out = self.module(*self._static_in)
        self._graph = graph

    def run_tensor(self, *xs):
        """Run on torch tensors already on the device (no host copies), one per input; returns a device tensor.

        With CUDA graphs the returned tensor is the graph's static output: copy it before the next run."""
        torch = self.torch
        with torch.inference_mode():
            if self._graph is not None:
                for static, x in zip(self._static_in, xs):
                    static.copy_(x)
                self._graph.replay()
                return self._static_out
            return self.module(*[x if x.dtype in (torch.int64, torch.int32) else x.to(self.dtype) for x in xs])

    def _run(self, x):
        return self._run_inputs([x])

    def _run_inputs(self, arrays):
        torch = self.torch
        tensors = []
        for x in arrays:
            t = torch.from_numpy(x)
            if t.dtype == torch.int32:
                t = t.long()
            if self.device.type != "cpu":
                t = t.to(self.device, non_blocking=False)
            tensors.append(t)
        out = self.run_tensor(*tensors)
        if out.dtype != torch.float32:
            out = out.float()
        return out.cpu().numpy()

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def event_timer(self):
        """A ``CudaEventTimer`` on this backend's device, or ``None`` on the CPU."""
        if self.device.type != "cuda":
            return None
        return CudaEventTimer(self.torch, self.device)

    def close(self):
        self._graph = None
        self.module = None
