"""Shared fixtures."""

import os
import shutil
import warnings

import pytest

TINY_SIZE = 32
TINY_WIDTHS = {"w0.25": (0.25, 4), "w0.5": (0.5, 8), "w1": (1.0, 16)}


def _tiny_generator(channels, seed):
    """A small conv net 1×32×32 → 1×32×32 in [-1, 1], weights fixed by ``seed``."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(channels, 1, 3, padding=1), nn.Tanh()).eval()


def _tensor_spec(name, content):
    return {"name": name, "shape": [1, 1, TINY_SIZE, TINY_SIZE], "layout": "NCHW", "dtype": "float32",
            "range": [-1.0, 1.0], "content": content}


def write_tiny_bundle(out_dir):
    """Export three tiny generators to ONNX and write them as a bundle with ``BundleWriter``."""
    import torch

    from edgegan.runtime import BundleWriter

    variants = []
    with BundleWriter(out_dir) as writer:
        for seed, (name, (width, channels)) in enumerate(sorted(TINY_WIDTHS.items())):
            model = _tiny_generator(channels, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter, on purpose
                torch.onnx.export(model, (torch.zeros(1, 1, TINY_SIZE, TINY_SIZE),),
                                  os.path.join(writer.path, name + ".onnx"), input_names=["input"],
                                  output_names=["output"], opset_version=13, dynamo=False)
            variants.append({"name": name, "width": width, "channels": None, "macs": 2 * 9 * channels * TINY_SIZE ** 2,
                             "params": 2 * 9 * channels + channels + 1, "file": name + ".onnx", "format": "onnx",
                             "precision": "fp32", "sha256": None,
                             "parity": {"psnr_db": 90.0, "max_abs": 1e-6, "n_inputs": 8, "backend": "onnxruntime"}})
        with open(os.path.join(writer.path, "README.txt"), "w") as f:
            f.write("tiny test bundle\n")
        input_spec = _tensor_spec("input", "edges")
        input_spec["edges"] = {"method": "canny", "low": 100, "high": 200, "blur": 0, "invert": True}
        writer.commit({"target": "cpu", "profile": {"name": "cpu"}, "backend": "onnxruntime",
                       "source": {"checkpoint": "none", "checkpoint_sha256": "0" * 64, "arch": {}},
                       "input": input_spec, "output": _tensor_spec("output", "image"),
                       "variants": variants, "default_variant": "w1",
                       "policy": {"default": "w1", "modes": {"0": "w1", "1": "w0.5"}}})
    return out_dir


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """Path of a read-only-by-convention bundle with variants w0.25, w0.5, w1 (ONNX, 1×32×32, onnxruntime)."""
    return write_tiny_bundle(str(tmp_path_factory.mktemp("bundles") / "tiny"))


@pytest.fixture
def tiny_bundle_copy(tiny_bundle, tmp_path):
    """A private copy of ``tiny_bundle`` that a test may modify."""
    return shutil.copytree(tiny_bundle, str(tmp_path / "tiny"))


def write_tiny_checkpoint(path, metrics=None):
    """A tiny slimmable edges→image checkpoint (1→1 channel, 32², ngf 4, 1 block, BatchNorm statistics
    for every width), as `edgegan train` would write it."""
    import torch

    from edgegan.checkpoint import save_checkpoint
    from edgegan.models import ResnetGenerator
    from edgegan.nn import set_width

    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn", padding="reflect")
    g.train()
    for w in g.widths:
        set_width(g, w)
        for _ in range(3):
            g(torch.randn(4, 1, TINY_SIZE, TINY_SIZE))
    set_width(g, 1.0)
    data = {"name": "synthetic", "size": TINY_SIZE, "in_channels": 1, "out_channels": 1,
            "input": {"range": [-1.0, 1.0], "content": "edges"}, "output": {"range": [-1.0, 1.0], "content": "image"}}
    ckpt = {"generator": {"arch": g.arch(), "state_dict": g.eval().state_dict()}, "widths": list(g.widths),
            "data": data}
    if metrics:
        ckpt["metrics"] = metrics
    save_checkpoint(path, ckpt)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Path of a tiny slimmable checkpoint (read-only for tests), with held-out metrics for w0.5."""
    return write_tiny_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "tiny.pt"), {"w0.5": {"psnr": 12.5}})


def with_bn_statistics(g, shape, batches=2, seed=0):
    """``g`` after a few training-mode passes at every width (so each switchable BatchNorm holds its own,
    non-trivial statistics), at full width and in eval mode."""
    import torch

    from edgegan.nn import set_width

    torch.manual_seed(seed)
    g.train()
    for w in g.widths:
        set_width(g, w)
        for _ in range(batches):
            g(torch.randn(*shape) * 2 + 0.5)
    set_width(g, 1.0)
    return g.eval()


@pytest.fixture(scope="module")
def one_thread():
    """One torch intra-op thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny
    models on a shared 2-core machine run faster without the thread pool."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
