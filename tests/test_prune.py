"""PPCD masks and physical pruning."""

import pytest
import torch
import torch.nn as nn

from edgegan.models import MobileResnetGenerator, ResnetGenerator
from edgegan.nn import set_width
from edgegan.nn.masks import ChannelMask, mask_stats, masks, sparsity_loss, update_masks

from edgegan.train.prune import PrunableBlock, insert_masks, physically_prune, ppcd_regularizer, prune_report

SHAPE = (1, 3, 32, 32)


def _gen(cls, seed=0, **kw):
    torch.manual_seed(seed)
    g = cls(3, 3, ngf=8, n_blocks=2, **kw)
    g.train()
    for _ in range(2):
        g(torch.randn(4, 3, 32, 32))
    set_width(g, 1.0)
    return g.eval()


def _random_binary_masks(model, seed=0, all_zero_first=False):
    gen = torch.Generator().manual_seed(seed)
    for i, m in enumerate(masks(model)):
        with torch.no_grad():
            m.weight.copy_(torch.where(torch.rand(m.channels, generator=gen) < 0.5, -1.0, 0.01))
            if all_zero_first and i == 0:
                m.weight.fill_(-1.0)
        m.binarize()


def test_channel_mask_soft_sparsity_and_binarization():
    m = ChannelMask(4)
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(m(x), x, atol=1e-3)
    assert torch.isclose(m.sparsity_loss(), torch.tensor(4 * 1.01))
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.01, -0.01, -0.02, 0.003]))
    assert m.ratio() == 0.5
    assert not m.update(alpha=0.5)  # ratio ≤ α: soft masks stay
    assert m.update(alpha=0.4)      # ratio > α: binarize and freeze
    assert torch.equal(m.mask(), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert not m.weight.requires_grad and float(m.sparsity_loss()) == 0.0
    assert torch.equal(m.kept(), torch.tensor([0, 3]))


def test_sparsity_loss_drives_masks_down():
    m = ChannelMask(8)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    for _ in range(5):
        opt.zero_grad()
        m.sparsity_loss().backward()
        opt.step()
    assert m.ratio() == 1.0


@pytest.mark.parametrize("cls,kw", [(ResnetGenerator, dict(norm="bn")), (ResnetGenerator, dict(norm="in", padding="zero")),
                                     (MobileResnetGenerator, dict(norm="bn")), (MobileResnetGenerator, dict(norm="in"))],
                         ids=["resnet-bn", "resnet-in", "mobile-bn", "mobile-in"])
def test_prune_removes_exactly_zero_channels_and_keeps_function(cls, kw):
    g = _gen(cls, **kw)
    model = insert_masks(g, input_shape=SHAPE)
    blocks = [b for b in model.modules() if isinstance(b, PrunableBlock)]
    assert len(blocks) == 2 and len(masks(model)) == 4
    x = torch.randn(2, 3, 32, 32)
    # soft masks near 1 and identity transitions: close to the original generator
    with torch.no_grad():
        assert (model(x) - g(x)).abs().max() < 1e-2
    # train a few steps in train mode so BN stats and masks move
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        (model(x).pow(2).mean() + ppcd_regularizer(model)).backward()
        opt.step()
    model.eval()
    _random_binary_masks(model, all_zero_first=True)
    expected = [[int(m.binary.sum()) for m in masks(b)] for b in blocks]
    with torch.no_grad():
        ref = model(x)
    pruned = physically_prune(model)
    assert not any(isinstance(m, ChannelMask) for m in pruned.modules())
    assert [max(1, c) for cs in expected for c in cs] == [c for cs in pruned.pruned_channels.values() for c in cs]
    # the channel counts of the pruned convs are exactly the kept counts; the transition conv is folded into the
    # block's last conv (which then writes the whole stream) or, where that is cheaper, kept after it
    for b, counts in zip([b for b in pruned.modules() if isinstance(b, PrunableBlock)], expected):
        depthwise_3x3 = cls is MobileResnetGenerator  # (a 1-channel depthwise conv has groups == 1 too)
        regular = [m for m in b.body if isinstance(m, nn.Conv2d) and m.groups == 1
                   and not (depthwise_3x3 and m.kernel_size == (3, 3))]
        assert regular[0].out_channels == max(1, counts[0]) and regular[1].in_channels == max(1, counts[0])
        if len(regular) == 2:  # folded
            assert regular[1].out_channels == 8 * 4
        else:
            assert len(regular) == 3 and regular[1].out_channels == regular[2].in_channels == max(1, counts[1])
    with torch.no_grad():
        assert (pruned(x) - ref).abs().max().item() <= 1e-5
    rep = prune_report(model, pruned, SHAPE)
    assert rep["pruned"]["params"] < rep["masked"]["params"] and rep["pruned"]["macs"] < rep["masked"]["macs"]


def test_update_masks_and_stats():
    model = insert_masks(_gen(ResnetGenerator, norm="in"), input_shape=SHAPE)
    assert mask_stats(model)["frozen"] == 0
    with torch.no_grad():
        for m in masks(model):
            m.weight.fill_(-1.0)
    assert update_masks(model, alpha=0.5) == 4
    assert mask_stats(model)["kept"] == 0
    assert float(sparsity_loss(model)) == 0.0


def test_pruning_needs_binarized_masks():
    model = insert_masks(_gen(ResnetGenerator, norm="in"), input_shape=SHAPE)
    with pytest.raises(ValueError):
        physically_prune(model)


def test_ppcd_smoke_three_steps_then_prune():
    from edgegan.models import SharedTrunkPatchGAN
    from edgegan.train.prune import ppcd_step

    torch.manual_seed(0)
    teacher = _gen(ResnetGenerator, norm="in")
    student = insert_masks(_gen(MobileResnetGenerator, seed=1, norm="in"), input_shape=SHAPE)
    disc = SharedTrunkPatchGAN(6, ndf=8, n_layers=2, n_heads=1)
    opt_g = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    x, y = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32) * 2 - 1
    student.train()
    pp = []
    for _ in range(3):
        out = ppcd_step(student, teacher, disc, opt_g, opt_d, x, y, alpha=0.5)
        pp.append(out["pp"])
    assert pp[-1] < pp[0]  # the sparsity loss drives the mask parameters toward -1
    assert 0 <= out["frozen_masks"] <= len(masks(student))
    for m in masks(student):
        m.binarize()
    student.eval()
    with torch.no_grad():
        ref = student(x)
        assert (physically_prune(student)(x) - ref).abs().max().item() <= 1e-5


def test_ppcd_regularizer_is_weight_times_the_sum_of_abs_w_plus_one():
    model = insert_masks(_gen(ResnetGenerator, norm="in"), input_shape=SHAPE)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in masks(model):
            m.weight.copy_(torch.randn(m.channels, generator=gen))
    total = sum(float((m.weight + 1).abs().sum()) for m in masks(model))
    assert float(ppcd_regularizer(model)) == pytest.approx(0.01 * total, rel=1e-6)
    assert float(ppcd_regularizer(model, weight=0.5)) == pytest.approx(0.5 * total, rel=1e-6)
