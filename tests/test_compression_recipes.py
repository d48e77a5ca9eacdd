"""Supernet → stored search configs → build; fine-tuning the searched winner; periodic evaluation."""

import json
import os

import pytest
import torch
from pairs_data import Pairs

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.cli import main
from edgegan.models import MobileResnetGenerator, ResnetGenerator
from edgegan.subnet import SubnetConfig, cost
from edgegan.data import FMNIST_DEBIAN_ROOT
from edgegan.train.distill import evaluate_config, finetune_subnet, train_supernet
from edgegan.train.search import search_checkpoint_configs, select_front

needs_fmnist = pytest.mark.skipif(not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")),
                                  reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed")
QUIET = {"log": lambda line: None}


def _teacher():
    torch.manual_seed(0)
    return ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").eval()


def test_select_front_spreads_and_keeps_best():
    front = list(range(7))
    assert select_front(front, 1) == [6]
    assert select_front(front, 3) == [0, 3, 6]
    assert select_front(front, None) == front and select_front(front, 10) == front


def test_supernet_stored_configs_build_with_parity(tmp_path):
    from edgegan.targets.build import build_bundle

    train, test = Pairs(16, size=16), Pairs(8, size=16, seed=1)
    ckpt = train_supernet(_teacher(), train, steps=3, batch_size=4, step=4, eval_set=test, eval_every=2,
                          eval_images=4, **QUIET)
    assert len(ckpt["train"]["evals"]) == 1 and set(ckpt["train"]["evals"][0]["metrics"]) >= {"w1"}
    gen = MobileResnetGenerator(**ckpt["generator"]["arch"]["kwargs"])
    gen.load_state_dict(ckpt["generator"]["state_dict"])
    full = cost(gen, (1, 1, 16, 16))["macs"]
    with torch.no_grad():
        result, entries = search_checkpoint_configs(gen.eval(), test.x, test.y, (1, 1, 16, 16), budget_macs=0.7 * full,
                                                    n_configs=2, step=4, mode="evolution", population=4, generations=1)
    assert 1 <= len(entries) <= 2 and entries[-1]["config"] == result.best.config.to_dict()
    assert all(e["macs"] <= 0.7 * full for e in entries)
    assert json.loads(json.dumps(entries)) == entries  # plain JSON values, like an `edgegan search --out` front
    ckpt["configs"] = entries
    path = save_checkpoint(str(tmp_path / "supernet.pt"), ckpt)
    _, manifest = build_bundle("cpu", checkpoint=path, out=str(tmp_path / "b"), progress=False, n_parity_inputs=2)
    assert [v["name"] for v in manifest["variants"]] == [e["config"]["name"] for e in entries]
    for v, e in zip(manifest["variants"], entries):
        assert v["channels"] == e["config"]["channels"] and v["macs"] == e["macs"]
        assert v["parity"]["psnr_db"] >= 40.0
        assert v["quality"]["psnr"] == e["quality"]


def test_finetune_subnet_changes_only_the_winner_slices():
    torch.manual_seed(0)
    gen = MobileResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in")
    config = SubnetConfig(channels={"stream": 8, "block0": 8, "up1": 4})
    train = Pairs(16, size=16)
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    q0 = evaluate_config(gen, train, config)
    history = finetune_subnet(gen, config, train, 15, teacher=_teacher(), batch_size=8, lr=3e-3)
    assert len(history) == 10 and all("distill" in h for h in history)
    after = gen.state_dict()
    w = "blocks.0.body.3.weight"  # block0's first pointwise conv: 8 of its 16 outputs, 8 of 16 stream inputs
    assert not torch.equal(after[w][:8, :8], before[w][:8, :8])
    assert torch.equal(after[w][8:], before[w][8:]) and torch.equal(after[w][:, 8:], before[w][:, 8:])
    assert evaluate_config(gen, train, config)["l1"] < q0["l1"]


def test_ppcd_eval_every_prints_held_out_psnr():
    from edgegan.train.prune import train_ppcd

    lines = []
    train, test = Pairs(8, size=16), Pairs(4, size=16, seed=1)
    ckpt, _ = train_ppcd(_teacher(), train, 2, batch_size=4, eval_set=test, eval_every=1, eval_images=2,
                         log=lines.append)
    (entry,) = ckpt["train"]["evals"]
    assert entry["step"] == 1 and "psnr" in entry["metrics"]["w1"] and entry["masks"]["total"] > 0
    assert any("held-out" in line and "dB" in line for line in lines)


def _fmnist_supernet(path):
    from edgegan.data import FashionMnistShoes

    torch.manual_seed(0)
    teacher = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in")
    ckpt = train_supernet(teacher, FashionMnistShoes("train", size=32, limit=8), steps=1, batch_size=4, **QUIET)
    return save_checkpoint(path, ckpt)


@needs_fmnist
def test_train_supernet_cli_budget_stores_configs(tmp_path, tiny_checkpoint, capsys):
    out = str(tmp_path / "sn.pt")
    assert main(["train", "supernet", "--teacher", tiny_checkpoint, "--data", "fmnist-shoes", "--steps", "2",
                 "--batch-size", "4", "--step", "4", "--eval-every", "1", "--eval-images", "8",
                 "--budget-macs", "3e6", "--search-configs", "2", "--search-mode", "evolution", "--population", "4",
                 "--generations", "1", "--search-images", "8", "--threads", "1", "--out", out]) == 0
    captured = capsys.readouterr()
    assert "stored config" in captured.out and "held-out" in captured.err
    _, ckpt = load_generator(out)
    assert 1 <= len(ckpt["configs"]) <= 2 and all(e["macs"] <= 3e6 for e in ckpt["configs"])
    assert len(ckpt["train"]["evals"]) == 1 and ckpt["search"]["result"]["budget_macs"] == 3e6


@needs_fmnist
def test_search_finetune_writes_a_buildable_winner(tmp_path, tiny_checkpoint, capsys):
    from edgegan.targets.build import build_bundle

    sn = _fmnist_supernet(str(tmp_path / "sn.pt"))
    out = str(tmp_path / "winner.pt")
    assert main(["search", "--checkpoint", sn, "--budget-macs", "2e6", "--choices", "0.5,1.0", "--mode", "evolution",
                 "--population", "4", "--generations", "1", "--eval-images", "8", "--finetune-steps", "3",
                 "--finetune-out", out, "--teacher", tiny_checkpoint, "--finetune-images", "16",
                 "--finetune-batch-size", "4", "--threads", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ft = res["finetune"]
    assert ft["steps"] == 3 and ft["images"] == 16 and ft["macs"] <= 2e6
    assert ft["before"]["psnr"] > 0 and ft["after"]["psnr"] > 0 and "distillation" in ft["losses"]
    gen, ckpt = load_generator(out)
    (entry,) = ckpt["configs"]
    assert entry["config"] == res["front"][-1]["config"] == ft["config"]
    assert ckpt["metrics"][entry["config"]["name"]]["psnr"] == ft["after"]["psnr"]
    _, manifest = build_bundle("cpu", checkpoint=out, out=str(tmp_path / "b"), progress=False, n_parity_inputs=2,
                               quality_images=8)
    (v,) = manifest["variants"]
    assert v["name"] == entry["config"]["name"] and v["parity"]["psnr_db"] >= 40.0
    # measured through the fp32 ONNX artifact on the first 8 held-out pairs (the fine-tuning scored the pairs after
    # the search's): the same network, other images
    assert v["quality"]["measured_on"].startswith("this artifact (onnxruntime, fp32) on 8 held-out pairs")
    assert v["quality"]["psnr"] == pytest.approx(ft["after"]["psnr"], abs=1.0)
    assert main(["search", "--checkpoint", sn, "--budget-macs", "2e6", "--finetune-steps", "3"]) == 2
