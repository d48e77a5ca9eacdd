"""Training at scale (issue 3): resumable checkpoints, CSV logs, ``torchrun`` data parallelism."""

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch

from edgegan.checkpoint import save_checkpoint
from edgegan.train.slimgan import SlimGANConfig, train_slimgan


def _data(n=24):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 32, 32, generator=g) * 2 - 1, torch.arange(n) % 10


def _config(steps, **kw):
    kw = dict(dict(nz=8, ngf=4, ndf=4, n_classes=10, steps=steps, batch_size=8, eval_images=0, log_every=1), **kw)
    return SlimGANConfig(**kw)


def _assert_same_weights(a, b):
    for key in ("generator", "discriminator"):
        sa, sb = a[key]["state_dict"], b[key]["state_dict"]
        assert sa.keys() == sb.keys()
        for name in sa:
            assert torch.equal(sa[name], sb[name]), (key, name)


def test_slimgan_resume_equals_straight_run(tmp_path, one_thread):
    images, labels = _data()
    straight = train_slimgan(_config(5), images, labels)  # 5 steps: crosses an epoch (3 batches per epoch)
    path = str(tmp_path / "part.pt")
    save_checkpoint(path, train_slimgan(_config(2), images, labels))
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # resumable state is weights_only-safe
    assert ckpt["resume"]["step"] == 2 and set(ckpt["resume"]["rng"]) >= {"torch", "numpy", "python"}
    resumed = train_slimgan(_config(5), images, labels, resume=path)
    _assert_same_weights(straight, resumed)
    assert [h["step"] for h in resumed["train"]["history"]] == [1, 2, 3, 4, 5]
    assert resumed["resume"]["step"] == 5
    # without the optimizer / RNG state the run would differ: resuming really restored them
    ckpt["resume"]["rng"]["torch"] = torch.Generator().manual_seed(123).get_state()
    torch.save(ckpt, path)
    other = train_slimgan(_config(5), images, labels, resume=path)
    assert any(not torch.equal(v, other["generator"]["state_dict"][k])
               for k, v in straight["generator"]["state_dict"].items())


def test_slimgan_save_every_and_csv_log(tmp_path, one_thread):
    images, labels = _data()
    out, log = str(tmp_path / "run.pt"), str(tmp_path / "log.csv")
    seen = []
    import edgegan.checkpoint as checkpoint

    real_save = checkpoint.save_checkpoint

    def spy(path, ckpt):
        seen.append(ckpt["resume"]["step"])
        return real_save(path, ckpt)

    checkpoint.save_checkpoint = spy
    try:
        train_slimgan(_config(4, log_every=2), images, labels, save_path=out, save_every=1, log_csv=log)
    finally:
        checkpoint.save_checkpoint = real_save
    assert seen == [1, 2, 3]  # the final one is the caller's to write
    assert torch.load(out, weights_only=True)["resume"]["step"] == 3
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # atomic: no temporary left behind
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert {"seconds", "d", "g", "distill", "d/w0.25", "g/w1"} <= set(rows[0])
    assert all(float(r["seconds"]) >= 0 for r in rows)
    # resuming appends to the log (no second header)
    train_slimgan(_config(6, log_every=2), images, labels, resume=out, log_csv=log)
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 4, 6]  # step 4 re-run after resuming from step 3


def test_resume_rejects_a_checkpoint_without_state_or_with_another_model(tmp_path):
    from edgegan.errors import CheckpointError

    images, labels = _data()
    ckpt = train_slimgan(_config(1), images, labels)
    path = str(tmp_path / "c.pt")
    save_checkpoint(path, dict(ckpt, resume=None))
    with pytest.raises(CheckpointError, match="no training state"):
        train_slimgan(_config(2), images, labels, resume=path)
    save_checkpoint(path, ckpt)
    with pytest.raises(CheckpointError, match="differs"):
        train_slimgan(_config(2, ngf=8), images, labels, resume=path)


def test_rng_state_roundtrip():
    import random

    import numpy as np

    from edgegan.train.checkpointing import rng_state, set_rng_state

    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_distributed_is_a_no_op_unlaunched(monkeypatch):
    from edgegan.train import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.setup("cpu")
    assert not info.enabled and info.is_main
    m = torch.nn.Linear(2, 2)
    assert distributed.wrap(m, info) is m and distributed.unwrap(m) is m


def _fmnist_or_skip():
    try:
        from edgegan.data import fmnist_paths

        fmnist_paths(None, "train")
    except Exception as e:
        pytest.skip("Fashion-MNIST not available: %s" % e)


def test_train_slimgan_cli_resume_in_place(tmp_path, capsys):
    _fmnist_or_skip()
    from edgegan.cli.train_slimgan import main

    out, log = str(tmp_path / "s.pt"), str(tmp_path / "s.csv")
    common = ["--nz", "8", "--ngf", "4", "--ndf", "4", "--batch-size", "4", "--eval-images", "0", "--threads", "1",
              "--log-every", "1", "--log-csv", log, "--out", out, "--json"]
    assert main(common + ["--steps", "2", "--save-every", "1"]) == 0
    assert main(common + ["--steps", "3", "--resume", out]) == 0  # resuming in place needs no --force
    capsys.readouterr()
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["resume"]["step"] == 3 and [h["step"] for h in ckpt["train"]["history"]] == [1, 2, 3]
    with open(log) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_on_cpu(tmp_path):
    """``torchrun --nproc_per_node 2`` (gloo): DDP over both ranks, rank 0 alone writes."""
    _fmnist_or_skip()
    from edgegan.checkpoint import load_generator

    out, log = str(tmp_path / "ddp.pt"), str(tmp_path / "ddp.csv")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "edgegan.cli.train_slimgan",
           "--n-classes", "10", "--nz", "8", "--ngf", "4", "--ndf", "4", "--batch-size", "4", "--steps", "2",
           "--eval-images", "0", "--log-every", "1", "--log-csv", log, "--out", out]
    proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("wrote %s" % out) == 1  # only rank 0 reports and saves
    g, ckpt = load_generator(out)
    assert ckpt["resume"]["step"] == 2 and g.n_classes == 10
    with open(log) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2]


def test_paired_recipe_resume_equals_straight_run(tmp_path, one_thread):
    """The paired (edges → image) recipe: 2 steps + resume 3 equals 5 straight (crosses an epoch)."""
    from edgegan.data import FMNIST_DEBIAN_ROOT, FashionMnistShoes
    from edgegan.train.slimmable import SlimmableConfig, train_slimmable

    if not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    train, test = FashionMnistShoes("train", limit=48), FashionMnistShoes("test", limit=8)
    tiny = dict(ngf=4, n_blocks=1, ndf=4, batch_size=16, eval_every=0, eval_images=8, seed=1)
    straight = train_slimmable(SlimmableConfig(steps=5, **tiny), train, test, progress=False)
    path, log = str(tmp_path / "p.pt"), str(tmp_path / "p.csv")
    part = train_slimmable(SlimmableConfig(steps=5, **tiny), train, test, progress=False, save_path=path,
                           save_every=2, log_csv=log, log_every=1)
    _assert_same_weights(straight, part)
    assert torch.load(path, weights_only=True)["resume"]["step"] == 4
    save_checkpoint(path, train_slimmable(SlimmableConfig(steps=2, **tiny), train, test, progress=False))
    resumed = train_slimmable(SlimmableConfig(steps=5, **tiny), train, test, progress=False, resume=path)
    _assert_same_weights(straight, resumed)
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5] and "l1/w0.25" in rows[0]


def test_same_d_ablation_scores_every_width_with_one_head(one_thread):
    """``same_d``: one discriminator head for all widths (SlimGAN's "same D" ablation), both recipes."""
    from edgegan.train.slimgan import build_gan
    from edgegan.train.slimmable import SlimmableConfig, build_models

    _, d = build_gan(_config(1, same_d=True))
    assert len(d.heads) == 1
    ckpt = train_slimgan(_config(2, same_d=True), *_data())
    assert ckpt["discriminator"]["arch"]["kwargs"]["n_heads"] == 1
    meta = {"size": 32, "in_channels": 1, "out_channels": 1}
    _, d = build_models(SlimmableConfig(ngf=4, n_blocks=1, ndf=4, same_d=True), meta, "cpu")
    assert len(d.heads) == 1
    _, d = build_models(SlimmableConfig(ngf=4, n_blocks=1, ndf=4, d_share=0), meta, "cpu")
    assert len(d.heads) == 4 and len(d.trunk) == 0  # a discriminator per width


def test_paired_cli_resume_in_place_and_csv(tmp_path, capsys):
    """``edgegan train slimmable`` has --save-every / --resume / --log-csv like the noise recipe."""
    _fmnist_or_skip()
    from edgegan.cli import main

    out, log = str(tmp_path / "p.pt"), str(tmp_path / "p.csv")
    common = ["train", "slimmable", "--data", "fmnist-shoes", "--ngf", "4", "--n-blocks", "1", "--ndf", "4",
              "--batch-size", "4", "--eval-every", "0", "--threads", "1", "--log-every", "1", "--log-csv", log,
              "--out", out, "--json"]
    assert main(common + ["--steps", "2", "--save-every", "1"]) == 0
    assert main(common + ["--steps", "3", "--resume", out]) == 0
    capsys.readouterr()
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["resume"]["step"] == 3
    with open(log) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3]
    assert main(common[:-1] + ["--steps", "1", "--d-share", "9", "--force"]) == 2  # a clear error, no traceback
    assert "--d-share 9" in capsys.readouterr().err


def test_torchrun_two_processes_paired_recipe(tmp_path):
    """``torchrun -m edgegan train slimmable``: each rank reads its DistributedSampler shard, rank 0 writes."""
    _fmnist_or_skip()
    out, log = str(tmp_path / "p.pt"), str(tmp_path / "p.csv")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "edgegan", "train", "slimmable", "--data", "fmnist-shoes",
           "--ngf", "4", "--n-blocks", "1", "--ndf", "4", "--batch-size", "4", "--steps", "2", "--eval-every", "0",
           "--log-every", "1", "--log-csv", log, "--out", out, "--json"]
    proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count('"out"') == 1  # only rank 0 reports
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["resume"]["step"] == 2 and ckpt["train"]["recipe"] == "slimmable"
    with open(log) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2]
