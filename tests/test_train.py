"""The slimmable recipe: losses, metrics, a smoke run, and the `edgegan train` command."""

import json
import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgegan.checkpoint import load_checkpoint, load_generator, save_checkpoint
from edgegan.cli import main
from edgegan.errors import EdgeganError
from edgegan.data import FMNIST_DEBIAN_ROOT, FashionMnistShoes
from edgegan.train.losses import d_hinge_loss, g_hinge_loss, inplace_distillation
from edgegan.train.metrics import evaluate_widths, psnr, ssim
from edgegan.train.slimmable import SlimmableConfig, resolve_device, train_slimmable

WIDTHS = (0.25, 0.5, 0.75, 1.0)


def test_hinge_losses():
    assert float(d_hinge_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert float(d_hinge_loss(torch.zeros(4), torch.zeros(4))) == 2.0
    assert float(g_hinge_loss(torch.full((4,), 3.0))) == -3.0


def test_distillation_target_is_detached():
    narrow = torch.zeros(2, 1, 4, 4, requires_grad=True)
    wide = torch.ones(2, 1, 4, 4, requires_grad=True)
    inplace_distillation([narrow, wide], "stepwise").backward()
    assert wide.grad is None  # no gradient reaches the wider width through its own teacher role
    assert narrow.grad is not None and float(narrow.grad.abs().sum()) > 0


def test_stepwise_and_naive_teachers():
    outs = [torch.full((1, 1, 2, 2), v) for v in (0.0, 1.0, 3.0)]  # narrowest → widest
    stepwise = (F.mse_loss(outs[0], outs[1]) + F.mse_loss(outs[1], outs[2])) / 2
    naive = (F.mse_loss(outs[0], outs[2]) + F.mse_loss(outs[1], outs[2])) / 2
    assert torch.isclose(inplace_distillation(outs, "stepwise"), stepwise)
    assert torch.isclose(inplace_distillation(outs, "naive"), naive)
    assert float(inplace_distillation(outs, "none")) == 0.0
    with pytest.raises(ValueError):
        inplace_distillation(outs, "sideways")


def test_psnr_ssim_values():
    a = torch.zeros(3, 1, 16, 16)
    assert psnr(a, a + 0.2) == pytest.approx(20.0)  # data range 2 of [-1, 1]: 10·log10(4 / 0.04)
    u = np.full((2, 1, 16, 16), 100, np.uint8)
    assert psnr(u, u + 10) == pytest.approx(10 * np.log10(255 ** 2 / 100))  # uint8: data range 255
    noise = torch.rand(2, 2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert ssim(noise[0], noise[0]) == pytest.approx(1.0)
    assert abs(ssim(noise[0], noise[1])) < 0.2  # independent noise: no structure in common


TINY = dict(ngf=4, n_blocks=2, ndf=8, steps=3, batch_size=16, eval_every=2, eval_images=16, recalibrate_bn=2,
            seed=1)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


@pytest.fixture(scope="module")
def few_shoes():
    """A few hundred Fashion-MNIST shoes for training, 64 held out."""
    if not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    return FashionMnistShoes("train", limit=256), FashionMnistShoes("test", limit=64)


@pytest.fixture(scope="module")
def tiny_run(few_shoes):
    """A 3-step run of a tiny model."""
    train, test = few_shoes
    return train_slimmable(SlimmableConfig(**TINY), train, test, progress=False), test


def test_smoke_run_writes_a_loadable_checkpoint(tiny_run, tmp_path):
    ckpt, test = tiny_run
    path = save_checkpoint(str(tmp_path / "tiny.pt"), ckpt)
    generator, loaded = load_generator(path)
    assert loaded["widths"] == list(WIDTHS)
    assert sorted(loaded["metrics"]) == sorted(["w0.25", "w0.5", "w0.75", "w1"])
    for scores in loaded["metrics"].values():
        assert set(scores) == {"psnr", "ssim", "l1"} and all(np.isfinite(v) for v in scores.values())
    assert loaded["data"]["name"] == "fmnist-shoes" and loaded["data"]["edges"]["low"] == 100
    assert loaded["train"]["steps"] == 3 and loaded["train"]["recipe"] == "slimmable"
    assert [h["step"] for h in loaded["train"]["history"]] == [2]
    assert "discriminator" in load_checkpoint(path)
    # the reloaded generator reproduces the recorded held-out metrics
    for key, scores in evaluate_widths(generator, test, WIDTHS).items():
        assert scores == pytest.approx(loaded["metrics"][key])


def test_training_is_seeded(tiny_run, few_shoes):
    again = train_slimmable(SlimmableConfig(**TINY), *few_shoes, progress=False)
    first = tiny_run[0]["generator"]["state_dict"]
    for name, tensor in again["generator"]["state_dict"].items():
        assert torch.equal(tensor, first[name]), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(EdgeganError, match="CUDA is not available"):
        resolve_device("cuda")
    code = main(["train", "slimmable", "--data", "fmnist-shoes", "--device", "cuda", "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "CUDA is not available" in err and "--device cpu" in err
    assert "Traceback" not in err and not (tmp_path / "x.pt").exists()


def test_cli_refuses_existing_out_without_force(tmp_path, capsys):
    out = tmp_path / "model.pt"
    out.write_bytes(b"keep me")
    code = main(["train", "slimmable", "--data", "fmnist-shoes", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err and "--force" in err and "Traceback" not in err
    assert out.read_bytes() == b"keep me"


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "slimmable", "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_cli_train_without_recipe_prints_help(capsys):
    assert main(["train"]) == 2
    assert "slimmable" in capsys.readouterr().out


def _aligned_folder(root):
    """A tiny grey aligned data set: A = a disc's outline, B = the filled disc."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 6)):
        os.makedirs(os.path.join(root, split))
        for i in range(n):
            b = np.zeros((32, 32), np.uint8)
            cv2.circle(b, (int(rng.integers(10, 22)), int(rng.integers(10, 22))), int(rng.integers(4, 9)), 220, -1)
            a = 255 - cv2.Canny(b, 100, 200)
            cv2.imwrite(os.path.join(root, split, "%02d.png" % i), np.concatenate([a, b], 1))


def test_cli_trains_on_an_aligned_folder(tmp_path, capsys):
    _aligned_folder(str(tmp_path / "discs"))
    out = str(tmp_path / "discs.pt")
    code = main(["train", "slimmable", "--data", str(tmp_path / "discs"), "--ngf", "4", "--n-blocks", "1",
                 "--ndf", "8", "--widths", "0.5,1", "--steps", "2", "--batch-size", "8", "--eval-every", "0",
                 "--generator-only", "--json", "--out", out])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["out"] == out and sorted(result["metrics"]) == ["w0.5", "w1"] and result["test_images"] == 6
    ckpt = load_checkpoint(out)
    assert "discriminator" not in ckpt and ckpt["data"]["name"] == "aligned:discs"
    assert ckpt["data"]["in_channels"] == 1 and ckpt["widths"] == [0.5, 1.0]
