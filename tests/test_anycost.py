"""Anycost consistency training: sorting keeps the full width, sub-widths move toward it, the checkpoint builds."""

import copy
import json
import math
import os

import pytest
import torch
from conftest import with_bn_statistics
from pairs_data import Pairs

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.cli import main
from edgegan.errors import EdgeganError
from edgegan.models import ResnetGenerator
from edgegan.nn import at_width
from edgegan.train.anycost import (PerceptualFeatures, consistency_error, consistency_loss, resolve_widths,
                                   sort_preserving, train_anycost)
from edgegan.data import FMNIST_DEBIAN_ROOT
from edgegan.train.recalibrate import recalibrate_bn

needs_fmnist = pytest.mark.skipif(not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")),
                                  reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed")


def _tiny(norm="bn", ngf=8, seed=0):
    torch.manual_seed(seed)  # independent of the tests that ran before
    return with_bn_statistics(ResnetGenerator(1, 1, ngf=ngf, n_blocks=1, norm=norm), (4, 1, 16, 16))


def test_sorted_default_model_keeps_its_full_width():
    gen, _ = load_generator()
    original = copy.deepcopy(gen)
    x = (torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)) < 0.15).float() * 2 - 1
    perms, diff = sort_preserving(gen, x)
    assert diff <= 1e-4
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms)
    with torch.no_grad():
        assert (gen(x) - original(x)).abs().max().item() <= 1e-4
        with at_width(gen, 0.25), at_width(original, 0.25):
            assert (gen(x) - original(x)).abs().max().item() > 1e-3  # the narrow slices hold other channels now


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consistency_training_moves_sub_widths_toward_full_width(seed):
    g = _tiny(ngf=16, seed=seed)  # 0.25× keeps 4 channels: enough to follow the full width
    train, test = Pairs(64), Pairs(16, seed=1)
    ref = copy.deepcopy(g)
    sort_preserving(ref, test.x)
    recalibrate_bn(ref, [train.x[:16], train.x[16:32]])
    before = consistency_error(ref, test.x)
    ckpt = train_anycost(g, train, 20, test_set=test, batch_size=8, lr=1e-3, lambda_l1=0.0, sample="all",
                         recalibrate_batches=2, log=lambda line: None)
    losses = [r["consistency"] for r in ckpt["train"]["last_steps"]]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    gen = ResnetGenerator(**ckpt["generator"]["arch"]["kwargs"])
    gen.load_state_dict(ckpt["generator"]["state_dict"])
    after = consistency_error(gen, test.x)
    assert all(after[k] < before[k] for k in before), (before, after)
    assert set(ckpt["metrics"]) == {"w0.25", "w0.5", "w0.75", "w1"}
    assert ckpt["train"]["recipe"] == "anycost" and ckpt["train"]["recalibrate_bn"] == 2


def test_two_step_checkpoint_loads_and_builds(tmp_path):
    from edgegan.targets.build import build_bundle

    g = _tiny(ngf=4)
    train, test = Pairs(16), Pairs(4, seed=1)
    ckpt = train_anycost(g, train, 2, test_set=test, batch_size=4, widths=[0.5], lambda_gan=1.0,
                         recalibrate_batches=1, log=lambda line: None)
    assert ckpt["widths"] == [0.5, 1.0] and set(ckpt["metrics"]) == {"w0.5", "w1"}
    assert ckpt["discriminator"]["arch"]["kwargs"]["n_heads"] == 1
    path = save_checkpoint(str(tmp_path / "anycost.pt"), ckpt)
    gen, loaded = load_generator(path)
    assert isinstance(gen, ResnetGenerator) and loaded["train"]["recipe"] == "anycost"
    _, manifest = build_bundle("cpu", checkpoint=path, out=str(tmp_path / "b"), progress=False, n_parity_inputs=2)
    assert [v["name"] for v in manifest["variants"]] == ["w0.5", "w1"]
    assert all(v["parity"]["psnr_db"] >= 40.0 for v in manifest["variants"])
    assert manifest["variants"][0]["quality"]["psnr"] == ckpt["metrics"]["w0.5"]["psnr"]


def test_no_sort_keeps_the_channel_order():
    g = _tiny(ngf=4)
    ckpt = train_anycost(g, Pairs(8), 0, sort=False, recalibrate_batches=0, log=lambda line: None)
    assert ckpt["train"]["sorted"] is False and ckpt["train"]["sort_max_abs_diff"] is None
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in ckpt["generator"]["state_dict"].items())


def test_perceptual_term_uses_classifier_features():
    phi = PerceptualFeatures()
    full = torch.rand(2, 1, 16, 16) * 2 - 1
    total, mse, perc = consistency_loss(full.clone(), full, phi, 0.5)
    assert float(total) == 0.0 and float(perc) == 0.0
    sub = (torch.rand(2, 1, 16, 16) * 2 - 1).requires_grad_(True)
    total, mse, perc = consistency_loss(sub, full, phi, 0.5)
    assert float(perc.detach()) > 0 and torch.isclose(total, mse + 0.5 * perc)
    total.backward()
    assert sub.grad is not None and torch.isfinite(sub.grad).all()
    assert not any(p.requires_grad for p in phi.parameters())


def test_widths_resolution():
    with pytest.raises(EdgeganError, match="BatchNorm"):
        resolve_widths(_tiny(ngf=4), [0.3])
    widths, gen = resolve_widths(_tiny(norm="in", ngf=4), [0.3, 0.6])
    assert widths == [0.3, 0.6, 1.0] and gen.widths == (0.3, 0.6, 1.0)
    with pytest.raises(EdgeganError):
        resolve_widths(_tiny(ngf=4), [1.0])


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "anycost", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "edgegan train anycost" in out and "--lambda-perceptual" in out


@needs_fmnist
def test_cli_smoke(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "anycost.pt"
    assert main(["train", "anycost", "--init", tiny_checkpoint, "--data", "fmnist-shoes", "--steps", "2",
                 "--batch-size", "4", "--recalibrate-bn", "1", "--threads", "1", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["recipe"] == "anycost" and set(res["metrics"]) == {"w0.25", "w0.5", "w0.75", "w1"}
    gen, ckpt = load_generator(str(out))
    assert ckpt["train"]["data"] == "fmnist-shoes" and ckpt["train"]["init"]["checkpoint"] == tiny_checkpoint
