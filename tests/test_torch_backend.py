"""The TorchScript compiler (`--target torch`) and the PyTorch runtime backend: parity, switching,
fp16 artifacts, options, and (where CUDA exists) CUDA graphs."""

import os
import warnings

import numpy as np
import pytest
from conftest import write_tiny_checkpoint
import torch

from edgegan.checkpoint import load_generator
from edgegan.errors import BundleError, EdgeganError, InputError
from edgegan.nn import set_width
from edgegan.runtime import Runtime
from edgegan.runtime.backends import get_backend
from edgegan.runtime.backends.torch import parse_providers
from edgegan.runtime.fps import measure
from edgegan.subnet import extract
from edgegan.targets.build import build_bundle
from edgegan.targets.profiles import load_profile
from edgegan.targets.torchscript import compile_torchscript, measure_parity

SIZE = 32
CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def torch_bundle(tmp_path_factory):
    """A `--target torch` bundle of a tiny slimmable ResNet generator (widths 0.25, 0.5, 1)."""
    root = tmp_path_factory.mktemp("torch")
    ckpt = write_tiny_checkpoint(str(root / "tiny.pt"), {"w0.5": {"psnr": 14.0}})
    g, _ = load_generator(ckpt)
    out, manifest = build_bundle("torch", checkpoint=ckpt, out=str(root / "bundle"), widths=[0.25, 0.5, 1.0],
                                 progress=False)
    return out, manifest, g


def _x(seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (1, 1, SIZE, SIZE)).astype(np.float32)


def test_torch_profile_and_bundle(torch_bundle):
    out, manifest, _ = torch_bundle
    profile = load_profile("torch")
    assert profile["compiler"] == "torchscript" and profile["runtime"]["backend"] == "torch"
    assert manifest["backend"] == "torch" and [v["file"] for v in manifest["variants"]] == ["w0.25.pt", "w0.5.pt",
                                                                                            "w1.pt"]
    for v in manifest["variants"]:
        assert v["format"] == "pt" and v["parity"]["backend"] == "torch.jit.load"
        assert v["parity"]["psnr_db"] >= 100 and v["parity"]["max_abs"] < 1e-5


def test_runtime_runs_and_switches_torchscript_variants(torch_bundle):
    out, _, g = torch_bundle
    x = _x()
    with Runtime(out, threads=1) as rt:
        assert rt.backend_name == "torch" and rt.backend.providers == ["cpu"] and rt.variant == "w1"
        for name, width in [("w0.5", 0.5), ("w1", 1.0), ("w0.25", 0.25)]:
            rt.set_variant(name)
            set_width(g, width)
            with torch.no_grad():
                ref = g(torch.from_numpy(x)).numpy()
            np.testing.assert_allclose(rt(x), ref, atol=1e-5)
        assert rt.backend.describe_input() == "[1,1,32,32] (NCHW float32)"
        with pytest.raises(InputError, match=r"expected input of shape \[1,1,32,32\]"):
            rt(np.zeros((1, 3, SIZE, SIZE), np.float32))
        assert rt.backend.event_timer() is None
        stats = measure(lambda: rt(x), warmup=2, warmup_s=0.0, runs=5, sync=rt.sync)
        assert stats["fps"] > 0 and stats["latency_clock"] == "host"
    set_width(g, 1.0)


def test_fp16_artifact(torch_bundle, tmp_path):
    _, _, g = torch_bundle
    sub = extract(g, 0.5, input_shape=(1, 1, SIZE, SIZE))
    path = str(tmp_path / "w0.5.fp16.pt")
    compile_torchscript(sub, (1, 1, SIZE, SIZE), path, precision="fp16")
    parity = measure_parity(path, sub, [_x(1), _x(2)], 2.0, precision="fp16")
    assert 50 < parity["psnr_db"] < 200 and parity["measured_precision"] == "fp16"
    backend_cls = get_backend("torch")
    cpu = backend_cls(path)  # fp16 artifact on a CPU: run in fp32
    assert cpu.dtype == torch.float32 and cpu.run(_x()).dtype == np.float32
    half = backend_cls(path, providers=["fp16"])
    assert half.fp16 and half.providers == ["cpu", "fp16"]
    np.testing.assert_allclose(half.run(_x()), cpu.run(_x()), atol=5e-2)
    assert not os.path.exists(path + ".tmp")


def test_options_and_errors(torch_bundle, tmp_path):
    assert parse_providers(["cuda-graphs"]) == {"device": "cuda", "fp16": None, "cuda_graphs": True}
    assert parse_providers(["cuda:1", "fp32"]) == {"device": "cuda:1", "fp16": False, "cuda_graphs": None}
    assert parse_providers(["CPUExecutionProvider"])["device"] == "cpu"
    with pytest.raises(EdgeganError, match="does not know the option 'tpu'"):
        parse_providers(["tpu"])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript file")
    with pytest.raises(BundleError, match="cannot load .*bad.pt as TorchScript"):
        get_backend("torch")(str(bad))
    out = torch_bundle[0]
    if not CUDA:
        from edgegan.runtime.backends import torch as torch_backend

        torch_backend._WARNED.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Runtime(out, providers=["cuda", "cuda-graphs"]) as rt:
                assert rt.backend.providers == ["cpu"] and rt(_x()).shape == (1, 1, SIZE, SIZE)
        messages = [str(w.message) for w in caught]
        assert sum("no CUDA" in m for m in messages) == 1 and sum("CUDA graphs need" in m for m in messages) == 1


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_graphs_match_eager(torch_bundle):
    out = torch_bundle[0]
    x = _x()
    with Runtime(out, providers=["cuda"]) as eager, Runtime(out, providers=["cuda-graphs"]) as graphs:
        for name in eager.variants:
            eager.set_variant(name)
            graphs.set_variant(name)
            np.testing.assert_allclose(graphs(x), eager(x), atol=1e-5)
            np.testing.assert_allclose(graphs(_x(3)), eager(_x(3)), atol=1e-5)  # the static input is refilled
        timer = graphs.backend.event_timer()
        stats = measure(lambda: graphs(x), warmup=5, warmup_s=0.0, runs=10, sync=graphs.sync, timer=timer)
        assert stats["latency_clock"] == "device" and stats["median_ms"] > 0
