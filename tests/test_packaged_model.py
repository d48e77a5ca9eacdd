"""The packaged default model: loadable with ``weights_only=True``, generator only, and meeting the SlimGAN
goal on the held-out metrics stored in it (width 0.25 within 1 dB PSNR of width 1.0), metrics that its
weights reproduce."""

import os

import pytest
import torch

from edgegan.checkpoint import DEFAULT_CHECKPOINT, load_generator
from edgegan.data import FMNIST_DEBIAN_ROOT, FashionMnistShoes
from edgegan.subnet import cost
from edgegan.train.metrics import evaluate_widths

WIDTHS = [0.25, 0.5, 0.75, 1.0]
KEYS = ["w0.25", "w0.5", "w0.75", "w1"]
needs_fmnist = pytest.mark.skipif(not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")),
                                  reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed")


@pytest.fixture(scope="module")
def ckpt():
    return torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)


def test_packaged_model_is_a_generator_only_checkpoint(ckpt):
    assert "discriminator" not in ckpt and "resume" not in ckpt
    assert ckpt["widths"] == WIDTHS and ckpt["data"]["name"] == "fmnist-shoes"
    gen, _ = load_generator()
    # 0.25× is a ngf-8 network: the architecture that the individually trained baseline has
    assert cost(gen, (1, 1, 32, 32), config=0.25)["macs"] == 9060352


def test_packaged_model_meets_the_slimgan_goal_on_all_held_out_pairs(ckpt):
    assert ckpt["train"]["test_images"] == 3000  # every Fashion-MNIST test shoe
    psnr = [ckpt["metrics"][k]["psnr"] for k in KEYS]
    assert psnr == sorted(psnr)  # wider is better
    assert psnr[-1] - psnr[0] <= 1.0


@needs_fmnist
def test_stored_metrics_are_those_of_the_weights(ckpt):
    gen, _ = load_generator()
    held_out = FashionMnistShoes("test", limit=300)
    measured = evaluate_widths(gen, held_out, [0.25, 1.0])
    for key in ("w0.25", "w1"):  # the first 300 of the 3,000 pairs: +0.14 / +0.01 dB from the stored values
        assert abs(measured[key]["psnr"] - ckpt["metrics"][key]["psnr"]) < 0.3
    assert measured["w1"]["psnr"] - measured["w0.25"]["psnr"] <= 1.0
