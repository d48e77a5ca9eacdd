"""GAN Compression feature distillation and once-for-all supernet steps (smoke)."""

import math
import random

import torch

from edgegan.models import MobileResnetGenerator, ResnetGenerator, SharedTrunkPatchGAN
from edgegan.train.distill import FeatureAdapters, capture, distill_layers, supernet_step
from edgegan.train.search import SearchSpace


def test_distill_layers_split_blocks_in_three_groups():
    assert distill_layers(ResnetGenerator(3, 3, ngf=4, n_blocks=9)) == ["down", "blocks.2", "blocks.5", "blocks.8"]
    assert len(distill_layers(MobileResnetGenerator(3, 3, ngf=4, n_blocks=6))) == 4


def test_adapters_map_any_student_width_to_teacher_channels():
    teacher = ResnetGenerator(1, 1, ngf=8, n_blocks=3, norm="in").eval()
    student = MobileResnetGenerator(1, 1, ngf=4, n_blocks=3, norm="in").eval()
    adapters = FeatureAdapters(student, teacher)
    x = torch.randn(2, 1, 16, 16)
    space = SearchSpace.from_model(student, step=4)
    from edgegan.nn import set_width
    set_width(student, space.smallest())
    with torch.no_grad(), capture(student, adapters.layers) as s, capture(teacher, adapters.layers) as t:
        student(x)
        teacher(x)
        assert s["down"].shape[1] == 4 and t["down"].shape[1] == 32
        loss = adapters.loss(s, t)
    assert math.isfinite(float(loss)) and float(loss) > 0


def test_supernet_smoke_three_steps():
    torch.manual_seed(0)
    teacher = ResnetGenerator(1, 1, ngf=8, n_blocks=3, norm="in").eval()
    student = MobileResnetGenerator(1, 1, ngf=8, n_blocks=3, norm="in")
    disc = SharedTrunkPatchGAN(2, ndf=8, n_layers=2, n_heads=1)
    adapters = FeatureAdapters(student, teacher)
    opt_g = torch.optim.Adam(list(student.parameters()) + list(adapters.parameters()), lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    space = SearchSpace.from_model(student)
    rng = random.Random(0)
    before = [p.detach().clone() for p in adapters.parameters()]
    x, y = torch.randn(2, 1, 16, 16), torch.rand(2, 1, 16, 16) * 2 - 1
    configs = []
    for _ in range(3):
        out = supernet_step(student, teacher, disc, adapters, opt_g, opt_d, x, y, space, rng)
        assert all(math.isfinite(out[k]) for k in ("d", "g", "recon", "distill"))
        configs.append(out["config"])
    assert len(set(configs)) > 1
    assert any(not torch.equal(a, b) for a, b in zip(before, adapters.parameters()))
    assert not any(p.grad is not None and not torch.isfinite(p.grad).all() for p in student.parameters())


def test_attention_distillation():
    from edgegan.train.distill import attention_distillation, attention_map
    s = {"a": torch.randn(2, 4, 5, 5)}
    assert float(attention_distillation(s, {"a": s["a"].repeat(1, 2, 1, 1)})) < 1e-6  # same map, more channels
    t = {"a": torch.randn(2, 8, 5, 5)}
    loss = attention_distillation(s, t)
    assert 0 < float(loss) <= 2 ** 0.5 + 1e-6
    assert torch.allclose(attention_map(t["a"]).norm(dim=1), torch.ones(2))
    small = 1e-3 * t["a"]  # a map whose norm is far below 1 is normalised too
    torch.testing.assert_close(attention_map(small), attention_map(t["a"]))


def test_train_supernet_checkpoint_loads_and_searches(tmp_path):
    import os

    import pytest

    from edgegan.checkpoint import load_generator, save_checkpoint
    from edgegan.cli import main
    from edgegan.data import FMNIST_DEBIAN_ROOT, FashionMnistShoes
    from edgegan.train.distill import train_supernet

    if not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Fashion-MNIST not installed")
    torch.manual_seed(0)
    teacher = ResnetGenerator(1, 1, ngf=8, n_blocks=3, norm="in")
    ckpt = train_supernet(teacher, FashionMnistShoes("train", size=32, limit=8), steps=3, batch_size=4)
    path = save_checkpoint(str(tmp_path / "supernet.pt"), ckpt)
    gen, loaded = load_generator(path)
    assert isinstance(gen, MobileResnetGenerator) and loaded["train"]["recipe"] == "supernet"
    out = tmp_path / "front.json"
    assert main(["search", "--checkpoint", path, "--budget-macs", "1e9", "--choices", "0.5,1.0",
                 "--mode", "evolution", "--population", "4", "--generations", "1", "--eval-images", "4",
                 "--out", str(out)]) == 0


def test_inherit_discriminator_copies_trunk_and_widest_head():
    from edgegan.train.distill import inherit_discriminator

    torch.manual_seed(0)
    d = SharedTrunkPatchGAN(2, ndf=8, n_layers=2, n_heads=4).eval()
    s = inherit_discriminator({"arch": d.arch(), "state_dict": d.state_dict()}).eval()
    assert s.hparams["n_heads"] == 1
    x = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(s(x), d(x, 3))
