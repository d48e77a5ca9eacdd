"""The 256² recipe's parts, at toy sizes: pix2pix jitter / flip, the resumable batch sampler with loader workers,
AMP (bf16 on the CPU; fp16 refused there), channels-last, and held-out FID with the FID Inception-v3 (random
weights of the same structure saved to a temporary file: the numbers are not real FIDs)."""

import json
import os

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from edgegan.cli import main
from edgegan.data import AlignedFolder, load_pair
from edgegan.data.augment import jitter_flip, load_size
from edgegan.errors import EdgeganError
from edgegan.train.batches import EndlessBatchSampler, endless_batches
from edgegan.train.precision import Precision
from edgegan.train.slimmable import SlimmableConfig, train_slimmable

TINY = dict(ngf=4, n_blocks=1, ndf=4, batch_size=4, eval_every=0, eval_images=4, seed=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A pix2pix aligned folder whose A and B halves are the same picture (so a shared crop keeps them equal)."""
    root = tmp_path_factory.mktemp("aligned")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("val", 2)):
        os.makedirs(str(root / split))
        for k in range(n):
            half = cv2.GaussianBlur(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), (5, 5), 0)
            cv2.imwrite(str(root / split / ("%d_AB.png" % k)), np.concatenate([half, half], axis=1))
    return str(root)


def test_jitter_flip_is_pix2pix_and_seeded():
    assert load_size(256) == 286 and load_size(128) == 143
    ramp = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))  # brighter to the right
    a, b = jitter_flip([ramp, ramp.copy()], 16, seed=(1, 2, 3))
    assert a.shape == (16, 16) and np.array_equal(a, b)  # one window and flip for every image of a sample
    again = jitter_flip([ramp], 16, seed=(1, 2, 3))[0]
    assert np.array_equal(again, a)
    outs = [jitter_flip([ramp], 16, seed=s)[0] for s in range(24)]
    flipped = [o[0, 0] > o[0, -1] for o in outs]
    assert any(flipped) and not all(flipped)  # flips about half of the time
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    crops = {jitter_flip([noise], 64, seed=s)[0].tobytes() for s in range(24)}
    assert len(crops) > 12  # and the 64² window moves inside the 72² resized image


def test_aligned_folder_augments_only_seeded_samples(folder):
    train, test = load_pair(folder, size=16, augment=True)
    assert train.augment and not test.augment  # held-out data is never augmented
    plain = AlignedFolder(folder, "train", size=16)
    x, y = train[0]
    assert torch.equal(x, plain[0][0]) and torch.equal(y, plain[0][1])  # an index alone: no jitter
    seeded = [train[(0, (0, 0, p, 0))] for p in range(6)]
    assert all(torch.equal(a, b) for a, b in seeded)  # A and B share the crop and the flip
    assert any(not torch.equal(a, x) for a, _ in seeded)


class Indices(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return i


def test_batch_sampler_is_the_shuffled_loaders_order_and_resumes_anywhere():
    legacy = DataLoader(Indices(), batch_size=3, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(7))
    expected = [b.tolist() for _ in range(3) for b in legacy]  # three epochs, as the recipes read them before
    sampler = iter(EndlessBatchSampler(10, 3, seed=7))
    assert [next(sampler) for _ in range(9)] == expected
    resumed = iter(EndlessBatchSampler(10, 3, seed=7, start=4))  # mid-epoch 1, without reading batches 0–3
    assert [next(resumed) for _ in range(5)] == expected[4:]
    shards = [iter(EndlessBatchSampler(10, 2, seed=7, rank=r, world_size=2)) for r in range(2)]
    first = [next(s) for s in shards]
    assert sorted(first[0] + first[1]) == sorted(set(first[0] + first[1]))  # ranks read disjoint samples


def test_augmented_batches_do_not_depend_on_loader_workers(folder):
    train, _ = load_pair(folder, size=16, augment=True)
    inline = endless_batches(train, 4, seed=5, start=1)
    workers = endless_batches(train, 4, seed=5, start=1, workers=2)
    for _ in range(3):  # crosses an epoch (10 samples, 2 batches of 4 per epoch)
        (xa, ya), (xb, yb) = next(inline), next(workers)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def _same_weights(a, b):
    for key in ("generator", "discriminator"):
        for name, value in a[key]["state_dict"].items():
            assert torch.equal(value, b[key]["state_dict"][name]), (key, name)


def test_resume_with_augmentation_is_bit_identical(folder, tmp_path, one_thread):
    train, test = load_pair(folder, size=16, augment=True)
    straight = train_slimmable(SlimmableConfig(steps=4, **TINY), train, test, progress=False)
    assert straight["train"]["augment"] is True
    from edgegan.checkpoint import save_checkpoint

    path = str(tmp_path / "part.pt")
    save_checkpoint(path, train_slimmable(SlimmableConfig(steps=2, **TINY), train, test, progress=False))
    resumed = train_slimmable(SlimmableConfig(steps=4, **TINY), train, test, progress=False, resume=path)
    _same_weights(straight, resumed)
    plain = train_slimmable(SlimmableConfig(steps=4, **TINY), load_pair(folder, size=16)[0], test, progress=False)
    weights = straight["generator"]["state_dict"]
    assert any(not torch.equal(v, weights[k]) for k, v in plain["generator"]["state_dict"].items())  # it jitters


def test_amp_bf16_on_the_cpu_and_fp16_needs_cuda(folder, capsys):
    with pytest.raises(EdgeganError, match="fp16 needs --device cuda"):
        Precision("fp16", "cpu")
    with pytest.raises(EdgeganError, match="--amp must be one of"):
        SlimmableConfig(amp="fp8").validate()
    from edgegan.models import ResnetGenerator

    generator = ResnetGenerator(3, 3, ngf=4, n_blocks=1, widths=(0.5, 1.0))
    with Precision("bf16", "cpu").autocast():
        assert generator(torch.zeros(1, 3, 16, 16)).dtype == torch.bfloat16
    train, test = load_pair(folder, size=16, augment=True)
    ckpt = train_slimmable(SlimmableConfig(steps=2, amp="bf16", widths=(0.5, 1.0), **TINY), train, test,
                           progress=False)
    assert all(v.dtype in (torch.float32, torch.int64) for v in ckpt["generator"]["state_dict"].values())
    assert all(np.isfinite(m["psnr"]) for m in ckpt["metrics"].values()) and ckpt["train"]["amp"] == "bf16"
    assert "scaler" not in ckpt["resume"]  # loss scaling is fp16's

    code = main(["train", "slimmable", "--data", folder, "--size", "16", "--amp", "fp16", "--out", "/tmp/x.pt"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--amp fp16 needs --device cuda" in err


def test_channels_last_trains_and_saves_the_default_layout(folder, one_thread):
    train, test = load_pair(folder, size=16)
    config = dict(TINY, widths=(0.5, 1.0))
    nhwc = train_slimmable(SlimmableConfig(steps=2, channels_last=True, **config), train, test, progress=False)
    nchw = train_slimmable(SlimmableConfig(steps=2, **config), train, test, progress=False)
    for name, value in nhwc["generator"]["state_dict"].items():
        assert value.is_contiguous(), name
        assert torch.allclose(value.float(), nchw["generator"]["state_dict"][name].float(), atol=2e-3), name


# --- FID -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory):
    """A random FID Inception-v3 whose BatchNorm statistics fit random images, saved like pytorch-fid's file."""
    from edgegan.train.inception import FIDInceptionV3

    torch.manual_seed(0)
    net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative: one batch sets the statistics
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 16, 16) * 2 - 1)
    path = str(tmp_path_factory.mktemp("fid") / "pt_inception-random.pth")
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)  # without the BatchNorm counters, as files saved by old PyTorch versions
    return path


def test_fid_from_features_equals_the_sqrtm_formula():
    from edgegan.train.gan_metrics import fid_from_features, frechet_distance, gaussian_stats

    rng = np.random.default_rng(0)
    for n, d in ((12, 40), (90, 8)):  # fewer samples than features (the SVD path), and more (the eigh path)
        a, b = rng.normal(size=(n, d)), rng.normal(size=(n + 5, d)) * 1.5 + 0.2
        assert fid_from_features(a, b) == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)),
                                                        rel=1e-6)
        assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9)


def test_fid_inception_has_pytorch_fid_structure(fid_weights, tmp_path):
    from edgegan.train.gan_metrics import fid_inception, load_fid_inception

    net = load_fid_inception(fid_weights)
    assert sum(p.numel() for p in net.parameters()) == 23850960  # torchvision's 27,161,264 − aux head, 1008 classes
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3) and shapes["fc.weight"] == (1008, 2048)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["Mixed_7c.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
    assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)

    g = torch.Generator().manual_seed(1)
    real = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1  # grey: repeated to RGB
    assert fid_inception(fid_weights, real, (real * 0.3 + 0.5).clamp(-1, 1)) > 1e-2

    other = str(tmp_path / "other.pth")
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(EdgeganError, match="does not fit pytorch-fid's Inception-v3"):
        load_fid_inception(other)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>not found</html>")
    with pytest.raises(EdgeganError, match="garbage.pth is not Inception-v3 weights: it is neither a torch archive nor a pickle"):
        load_fid_inception(str(garbage))


def test_paired_recipe_reports_held_out_fid_per_width(fid_weights, folder, tmp_path, capsys):
    train, test = load_pair(folder, size=16)
    config = SlimmableConfig(steps=1, widths=(0.5, 1.0), fid_weights=fid_weights, **TINY)
    ckpt = train_slimmable(config, train, test, progress=False)
    fids = [ckpt["metrics"][k]["fid"] for k in ("w0.5", "w1")]
    assert all(np.isfinite(f) and f >= 0 for f in fids) and fids[0] != fids[1]

    from edgegan.checkpoint import save_checkpoint

    path = str(tmp_path / "fid.pt")
    save_checkpoint(path, ckpt)
    assert main(["eval", path, "--data", folder, "--fid-weights", fid_weights, "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["widths"]  # `edgegan eval` scores the same outputs the same way
    assert [scored[k]["fid"] for k in ("w0.5", "w1")] == pytest.approx(fids, rel=1e-6)
    with pytest.raises(EdgeganError, match="no Inception weights"):  # before training, not after it
        train_slimmable(SlimmableConfig(steps=1, fid_weights=str(tmp_path / "nope.pth"), **TINY), train, test,
                        progress=False)
