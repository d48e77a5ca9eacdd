"""`edgegan train supernet` and `edgegan train ppcd`: smoke runs on tiny models, then search / build."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from edgegan.checkpoint import load_checkpoint, load_generator
from edgegan.cli import main


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


def _aligned_folder(root):
    """A tiny grey aligned data set: A = a disc's outline, B = the filled disc."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 4)):
        os.makedirs(os.path.join(root, split))
        for i in range(n):
            b = np.zeros((32, 32), np.uint8)
            cv2.circle(b, (int(rng.integers(10, 22)), int(rng.integers(10, 22))), int(rng.integers(4, 9)), 220, -1)
            a = 255 - cv2.Canny(b, 100, 200)
            cv2.imwrite(os.path.join(root, split, "%02d.png" % i), np.concatenate([a, b], 1))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 2-step slimmable teacher (with its discriminator) on a tiny aligned folder."""
    root = tmp_path_factory.mktemp("recipes")
    data = str(root / "discs")
    _aligned_folder(data)
    out = str(root / "teacher.pt")
    assert main(["train", "slimmable", "--data", data, "--ngf", "8", "--n-blocks", "2", "--ndf", "8",
                 "--widths", "0.5,1", "--steps", "2", "--batch-size", "4", "--eval-every", "0", "--json",
                 "--out", out]) == 0
    return data, out


def test_train_supernet_then_search_and_build(teacher, tmp_path, capsys):
    from edgegan.targets.build import build_bundle
    from edgegan.train.search import SearchSpace, search

    data, tpath = teacher
    capsys.readouterr()
    out = str(tmp_path / "supernet.pt")
    assert main(["train", "supernet", "--teacher", tpath, "--data", data, "--steps", "2", "--batch-size", "4",
                 "--eval-images", "4", "--val-images", "4", "--search-configs", "2", "--search-mode", "evolution",
                 "--population", "4", "--generations", "1", "--json", "--out", out]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recipe"] == "supernet" and result["steps"] == 2 and "w1" in result["metrics"]
    gen, ckpt = load_generator(out)
    assert ckpt["generator"]["arch"]["name"] == "mobile_resnet_generator"
    assert ckpt["train"]["teacher"] == tpath and ckpt["search"]["step"] == 8
    # paired data: L1 to the real target; 4 of the 16 training pairs held out, and they chose the stored configs,
    # which are reported on the 4 test pairs
    assert ckpt["train"]["recon_target"] == "real" and ckpt["train"]["train_images"] == 12
    assert ckpt["train"]["validation"] == {"split": "train", "images": 4, "seed": 0}
    found = ckpt["search"]["result"]
    assert found["validation"]["images"] == 4 and found["test"] == {"split": "test", "images": 4}
    assert ckpt["configs"] and all(e["quality"] is not None and e["test_quality"] is not None for e in ckpt["configs"])
    assert main(["train", "supernet", "--teacher", tpath, "--data", data, "--steps", "1", "--val-images", "16",
                 "--force", "--out", out]) == 2
    assert "--val-images 16" in capsys.readouterr().err
    # `edgegan search` reads it: a small front, built into a bundle
    space = SearchSpace.from_model(gen, choices=[0.5, 1.0],
                                   fixed={k: v[-1] for k, v in SearchSpace.from_model(gen).choices.items()
                                          if k != "stream"})
    x = torch.randn(2, 1, 32, 32)
    res = search(gen, lambda cfg: float(gen(x).mean()) + cfg.channels["stream"], (1, 1, 32, 32),
                 budget_macs=1e12, space=space)
    front = tmp_path / "front.json"
    front.write_text(json.dumps(res.to_dict()))
    _, manifest = build_bundle("cpu", checkpoint=out, out=str(tmp_path / "b"), configs=str(front), progress=False,
                               n_parity_inputs=1)
    assert len(manifest["variants"]) == len(res.front)
    assert all(v["parity"]["psnr_db"] >= 40.0 and v["width"] is None for v in manifest["variants"])


def test_train_ppcd_writes_a_pruned_checkpoint_that_builds(teacher, tmp_path, capsys):
    from edgegan.targets.build import build_bundle

    data, tpath = teacher
    capsys.readouterr()
    out = str(tmp_path / "ppcd.pt")
    assert main(["train", "ppcd", "--teacher", tpath, "--data", data, "--steps", "3", "--batch-size", "4",
                 "--mask-lr", "0.01", "--alpha", "0.1", "--eval-images", "4", "--generator-only", "--out", out]) == 0
    text = capsys.readouterr().out
    assert "pruned:" in text and "w1" in text
    gen, ckpt = load_generator(out)
    assert ckpt["generator"]["arch"]["name"] == "pruned_generator" and ckpt["train"]["recipe"] == "ppcd"
    assert "discriminator" not in load_checkpoint(out)
    prune = ckpt["train"]["prune"]
    assert ckpt["train"]["lambda_recon"] == 0.0  # PPCD's own loss by default
    # masks binarized after a few steps of --mask-lr 0.01: channels were removed, so the pruned generator is
    # strictly smaller than the masked one and than the teacher it was cut from
    assert prune["masks"]["kept"] < prune["masks"]["total"]
    for key in ("params", "macs"):
        assert prune["pruned"][key] < prune["masked"][key] and prune["pruned"][key] < prune["unpruned"][key]
    assert sum(p.numel() for p in gen.parameters()) == prune["pruned"]["params"]
    _, manifest = build_bundle("cpu", checkpoint=out, out=str(tmp_path / "b"), progress=False, n_parity_inputs=1,
                               quality_images=4)
    (v,) = manifest["variants"]
    # the same 4 held-out pairs, through the fp32 ONNX artifact instead of PyTorch: the same quality
    assert v["parity"]["psnr_db"] >= 40.0 and v["quality"]["measured_on"].startswith("this artifact")
    assert v["quality"]["psnr"] == pytest.approx(ckpt["metrics"]["w1"]["psnr"], abs=1e-3)


def test_recipes_need_a_teacher(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "supernet", "--data", "fmnist-shoes", "--out", "/tmp/x.pt"])
    assert e.value.code == 2
    assert "--teacher" in capsys.readouterr().err
