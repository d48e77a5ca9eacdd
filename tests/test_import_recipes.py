"""An imported (one-width, RGB, 256²-style) generator as `--teacher` of supernet / ppcd and `--init` of anycost."""

import os

import cv2
import numpy as np
import pytest
import torch
from reference_generators import pix2pix_resnet, randomise

from edgegan.checkpoint import load_checkpoint, load_generator
from edgegan.cli import main
from edgegan.models import ResnetGenerator
from edgegan.nn import at_width
from edgegan.train.anycost import resolve_widths

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


def _aligned_folder(root, n_train=6, n_test=3, seed=0):
    """A pix2pix aligned folder (A|B side by side): A dark lines on white, B a colour image."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        os.makedirs(os.path.join(root, split))
        for i in range(n):
            a = np.full((SIZE, SIZE, 3), 255, np.uint8)
            start, end = (tuple(int(v) for v in rng.integers(0, SIZE, 2)) for _ in range(2))
            cv2.line(a, start, end, (0, 0, 0), 1)
            b = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            cv2.imwrite(os.path.join(root, split, "%03d.png" % i), np.hstack([a, b]))
    return str(root)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """An imported pix2pix resnet_6blocks (ngf 4, BatchNorm, RGB) whose path names edges2shoes, and its data."""
    root = tmp_path_factory.mktemp("import")
    folder = root / "edges2shoes_pix2pix"
    folder.mkdir()
    torch.manual_seed(0)
    source = str(folder / "latest_net_G.pth")
    torch.save(randomise(pix2pix_resnet(ngf=4, n_blocks=6, norm="batch", dropout=False)).state_dict(), source)
    out = str(root / "teacher.pt")
    assert main(["import", source, "--format", "pix2pix", "--netG", "resnet_6blocks", "--norm", "batch",
                 "--size", str(SIZE), "--out", out]) == 0
    return out, _aligned_folder(root / "edges2shoes")


def _assert_edges_model(path):
    data = load_checkpoint(path)["data"]
    assert data["in_channels"] == 3 and data["out_channels"] == 3 and data["size"] == SIZE
    assert data["input"]["content"] == "edges" and data["edges"]["method"] == "canny"  # carried from the import


def test_supernet_and_ppcd_take_an_imported_teacher(imported, tmp_path):
    teacher, data = imported
    common = ["--teacher", teacher, "--data", data, "--steps", "1", "--batch-size", "2", "--eval-images", "2",
              "--threads", "1", "--json"]
    assert main(["train", "supernet", *common, "--ngf", "4", "--step", "2", "--val-images", "2",
                 "--out", str(tmp_path / "s.pt")]) == 0
    _assert_edges_model(str(tmp_path / "s.pt"))
    assert main(["train", "ppcd", *common, "--out", str(tmp_path / "p.pt")]) == 0
    _assert_edges_model(str(tmp_path / "p.pt"))
    gen, _ = load_generator(str(tmp_path / "p.pt"))
    assert gen(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 3, SIZE, SIZE)


def test_anycost_makes_an_imported_generator_slimmable(imported, tmp_path, capsys):
    teacher, data = imported
    out = str(tmp_path / "a.pt")
    assert main(["train", "anycost", "--init", teacher, "--data", data, "--steps", "2", "--batch-size", "2",
                 "--recalibrate-bn", "1", "--eval-images", "2", "--threads", "1", "--out", out, "--json"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt["widths"] == [0.25, 0.5, 0.75, 1.0] and set(ckpt["metrics"]) == {"w0.25", "w0.5", "w0.75", "w1"}
    _assert_edges_model(out)
    gen, _ = load_generator(out)
    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    outs = []
    with torch.no_grad():
        for w in ckpt["widths"]:
            with at_width(gen, w):
                outs.append(gen(x))
    assert all(o.shape == x.shape and torch.isfinite(o).all() for o in outs)
    assert len({round(float((o - outs[-1]).abs().mean()), 6) for o in outs[:-1]}) == 3  # four different networks
    capsys.readouterr()
    assert main(["train", "anycost", "--init", teacher, "--steps", "1", "--out", str(tmp_path / "b.pt")]) == 2
    assert "--data DIR" in capsys.readouterr().err


def test_one_width_batchnorm_generator_gets_a_batchnorm_per_width():
    torch.manual_seed(0)
    g = randomise(ResnetGenerator(3, 3, ngf=8, n_blocks=1, norm="bn", widths=[1.0]))
    widths, slim = resolve_widths(g, None)
    assert widths == [0.25, 0.5, 0.75, 1.0] and slim.widths == (0.25, 0.5, 0.75, 1.0)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        assert torch.equal(slim.eval()(x), g(x))
    full, narrow = slim.stem[2].bn[-1], slim.stem[2].bn[0]
    assert narrow.num_features == 2 and torch.equal(narrow.running_var, full.running_var[:2])
    assert torch.equal(full.running_mean, g.stem[2].bn[0].running_mean)
    trained = randomise(ResnetGenerator(3, 3, ngf=8, n_blocks=1, norm="bn"))  # slimmable: its own widths only
    with pytest.raises(Exception, match="BatchNorm"):
        resolve_widths(trained, [0.3])
