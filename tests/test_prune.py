"""PPCD masks and physical pruning."""

import pytest
import torch
import torch.nn as nn

from edgegan.models import MobileResnetGenerator, ResnetGenerator
from edgegan.nn import set_width
from edgegan.nn.masks import ChannelMask, mask_stats, masks, sparsity_loss, update_masks

from edgegan.train.prune import PrunableBlock, _masked_body, insert_masks, physically_prune, ppcd_regularizer, prune_report

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
    with pytest.raises(ValueError, match=r"^mask 3 is not binarized; call update_masks\(\)/binarize\(\) first$"):
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
    total = sum(float((m.weight.detach() + 1).abs().sum()) for m in masks(model))
    assert float(ppcd_regularizer(model).detach()) == pytest.approx(0.01 * total, rel=1e-6)
    assert float(ppcd_regularizer(model, weight=0.5).detach()) == pytest.approx(0.5 * total, rel=1e-6)


# --- the pieces of physical removal, on single layers -----------------------------------------------------------

@pytest.mark.parametrize("channels", [2, 4])
@pytest.mark.parametrize("which", ["out_idx", "in_idx"])
def test_conv_like_slices_a_depthwise_conv_by_channel(channels, which):
    from edgegan.train.prune import _conv_like

    torch.manual_seed(0)
    conv = nn.Conv2d(channels, channels, 3, stride=2, padding=2, dilation=2, groups=channels, padding_mode="reflect")
    idx = torch.tensor([channels - 1, 0])
    new = _conv_like(conv, **{which: idx})
    assert (new.in_channels, new.out_channels, new.groups) == (2, 2, 2)
    assert (new.stride, new.padding, new.dilation, new.padding_mode) == ((2, 2), (2, 2), (2, 2), "reflect")
    x = torch.randn(2, channels, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(new(x[:, idx]), conv(x)[:, idx])


def test_conv_like_slices_a_regular_conv_and_keeps_its_geometry():
    from edgegan.train.prune import _conv_like

    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, (3, 1), stride=(2, 1), padding=(2, 0), dilation=(2, 1), padding_mode="circular")
    rows, cols = torch.tensor([5, 1, 2]), torch.tensor([0, 3])
    new = _conv_like(conv, in_idx=cols, out_idx=rows)
    assert (new.in_channels, new.out_channels, new.kernel_size) == (2, 3, (3, 1))
    x = torch.randn(2, 4, 9, 9)
    x[:, [1, 2]] = 0.0  # the input channels left out carry nothing
    with torch.no_grad():
        torch.testing.assert_close(new(x[:, cols]), conv(x)[:, rows])


@pytest.mark.parametrize("make", [
    lambda: nn.BatchNorm2d(5, eps=1e-2, momentum=0.3),
    lambda: nn.BatchNorm2d(5, eps=1e-2, momentum=None),  # cumulative average: counts num_batches_tracked
    lambda: nn.BatchNorm2d(5, eps=1e-2, affine=False, track_running_stats=False),
    lambda: nn.InstanceNorm2d(5, eps=1e-2, momentum=0.3, affine=True, track_running_stats=True),
    lambda: nn.InstanceNorm2d(5, eps=1e-2, momentum=None, affine=True, track_running_stats=True),
    lambda: nn.InstanceNorm2d(5, eps=1e-2),
], ids=["bn", "bn-cumulative", "bn-batch-stats", "in-stats", "in-cumulative", "in"])
def test_norm_like_keeps_the_channels_statistics_and_settings(make):
    """The kept channels' norm behaves as the original on them: in eval mode and through a further training pass."""
    from edgegan.train.prune import _norm_like

    torch.manual_seed(0)
    norm = make()
    with torch.no_grad():
        if norm.affine:
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
        for _ in range(3):
            norm.train()(torch.randn(4, 5, 6, 6) * 3 + 1)
    idx = torch.tensor([4, 1, 2])
    new = _norm_like(norm, idx)
    assert type(new) is type(norm) and new.num_features == 3
    assert (new.eps, new.momentum, new.affine, new.track_running_stats) == (
        norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    assert len(list(new.parameters())) == len(list(norm.parameters()))
    x = torch.randn(2, 5, 6, 6) * 2 + 0.5
    with torch.no_grad():
        torch.testing.assert_close(new.eval()(x[:, idx]), norm.eval()(x)[:, idx])
        new.train()(x[:, idx])
        norm.train()(x)
    for name in ("running_mean", "running_var"):
        if norm.track_running_stats:
            torch.testing.assert_close(getattr(new, name), getattr(norm, name)[idx])
        else:
            assert getattr(new, name) is None
    if norm.track_running_stats:
        assert int(new.num_batches_tracked) == int(norm.num_batches_tracked) == (4 if isinstance(norm, nn.BatchNorm2d) else 0)


def test_compose_1x1_is_t_after_conv_with_both_biases():
    """``W' = T·W``, ``b' = T·b + b_T``: one conv computing ``t(conv(x))``, whichever of the two has a bias."""
    from edgegan.train.prune import compose_1x1

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    for conv_bias, t_bias in ((True, True), (False, True), (True, False), (False, False)):
        conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect", bias=conv_bias)
        t = nn.Conv2d(4, 5, 1, bias=t_bias)
        if t_bias:
            with torch.no_grad():
                t.bias.uniform_(1.0, 2.0)
        c = compose_1x1(conv, t)
        assert (c.bias is not None) == (conv_bias or t_bias)
        with torch.no_grad():
            torch.testing.assert_close(c(x), t(conv(x)), atol=1e-5, rtol=1e-5)


def _fold_case(kernel, kept, cin=4, cout=8):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, kept, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
    t = nn.Conv2d(kept, cout, 1)
    return [nn.ReLU(), conv, t]


@pytest.mark.parametrize("kernel,kept,fold,cin,cout", [
    # fold iff in·out·kh·kw ≤ in·c·kh·kw + c·out (in 4, out 8): 1×3: 96 ≤ 12c + 8c from c = 5 on
    ((1, 3), 2, False, 4, 8), ((1, 3), 4, False, 4, 8), ((1, 3), 5, True, 4, 8), ((1, 3), 6, True, 4, 8),
    ((3, 1), 4, False, 4, 8), ((3, 1), 5, True, 4, 8),
    # 3×3: 288 ≤ 36c + 8c from c = 7 on
    ((3, 3), 6, False, 4, 8), ((3, 3), 7, True, 4, 8),
    # a tie folds (one conv): 1×1, in 3, out 6, c 2: 3·6 = 3·2 + 2·6
    ((1, 1), 2, True, 3, 6),
])
def test_fold_transition_only_where_it_costs_fewer_macs(kernel, kept, fold, cin, cout):
    from edgegan.train.prune import _fold_transition

    layers = _fold_case(kernel, kept, cin, cout)
    ref = nn.Sequential(*layers)
    x = torch.randn(2, cin, 6, 6)
    with torch.no_grad():
        expected = ref(x)
    new, did = _fold_transition(list(layers), 2)
    assert did is fold
    assert len(new) == (2 if fold else 3)
    if fold:
        assert (new[1].in_channels, new[1].out_channels, new[1].kernel_size) == (cin, cout, kernel)
    with torch.no_grad():
        torch.testing.assert_close(nn.Sequential(*new)(x), expected, atol=1e-5, rtol=1e-5)


def test_fold_transition_leaves_a_transition_after_a_depthwise_conv():
    from edgegan.train.prune import _fold_transition

    layers = [nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 4, 1)]
    new, did = _fold_transition(list(layers), 1)
    assert did is False and new == layers


class _Ramp(nn.Module):
    """Adds row + 10·column: a spatially varying response to an all-zero input."""

    def forward(self, x):
        h, w = x.shape[2:]
        return x + torch.arange(h).view(1, 1, -1, 1) + 10 * torch.arange(w).view(1, 1, 1, -1)


def test_zero_channel_constants_reads_the_centre_and_checks_uniformity():
    from edgegan.train.prune import _zero_channel_constants

    const, uniform = _zero_channel_constants([nn.ReLU(), nn.ConstantPad2d(1, 0.0), nn.Conv2d(2, 2, 3, groups=2)],
                                             2, "cpu")
    assert uniform  # a depthwise conv of zeros: its bias everywhere
    # a response that varies: the 7×7 zeros padded to 9×7 read at the centre, row 4, column 3
    const, uniform = _zero_channel_constants([nn.ZeroPad2d((0, 0, 0, 2)), _Ramp()], 1, "cpu")
    assert (const.tolist(), uniform) == ([34.0], False)
    # spatial deviations up to 1e-6 count as uniform
    for dev, expected in ((1e-6, True), (2e-6, False)):
        const, uniform = _zero_channel_constants([nn.ConstantPad2d(1, dev)], 1, "cpu")
        assert (const.tolist(), uniform) == ([0.0], expected)


# --- physical removal on hand-built blocks: layouts the generators do not produce ------------------------------

def _binarize(model, keeps):
    for m, keep in zip(masks(model), keeps):
        with torch.no_grad():
            w = torch.full((m.channels,), -1.0)
            w[keep] = 0.01
            m.weight.copy_(w)
        m.binarize()


def _with_statistics(model, channels=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.uniform_(-1.0, 1.0, generator=gen)
        model.train()
        for _ in range(2):
            model(torch.randn(4, channels, 8, 8, generator=gen) * 2 + 1)
    return model.eval()


def _bn(c):
    return nn.BatchNorm2d(c)


@pytest.mark.parametrize("mask_last", [False, True], ids=["norm-after-last-mask", "mask-last"])
def test_prune_a_block_whose_transition_conv_sits_outside_its_body(mask_last):
    """The layout of earlier checkpoints: ``x + T(body(x))``, the last mask inside the body, ``T`` (with a bias) the
    block's ``transition``; what the removed channels still carry through the norm after the mask folds into T's
    bias."""
    torch.manual_seed(0)
    body = [nn.Conv2d(8, 8, 3, padding=1, bias=False), _bn(8), ChannelMask(8), nn.ReLU(),
            nn.Conv2d(8, 6, 3, padding=1, bias=False), ChannelMask(6)] + ([] if mask_last else [_bn(6)])
    model = _with_statistics(nn.Sequential(PrunableBlock(body, transition=nn.Conv2d(6, 8, 1)),
                                           PrunableBlock(_masked_body([nn.Conv2d(8, 8, 3, padding=1)], 0.01))))
    _binarize(model, [[0, 2, 5], [1, 3, 4], list(range(8))])
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        ref = model(x)
        pruned = physically_prune(model)
        torch.testing.assert_close(pruned(x), ref, atol=1e-5, rtol=1e-4)
    assert pruned.pruned_channels == {"0": [3, 3], "1": [8]}
    t = pruned[0].transition
    assert (t.in_channels, t.out_channels, t.bias is not None) == (3, 8, True)
    assert pruned.folded_transitions == ["1"]  # the single-mask block's transition (inside its body) folds
    # pruning again changes nothing
    with torch.no_grad():
        again = physically_prune(pruned)
        torch.testing.assert_close(again(x), ref, atol=1e-5, rtol=1e-4)
    assert again.pruned_channels == {"0": [], "1": []} and again.folded_transitions == []


@pytest.mark.parametrize("pivot", [0.005, 0.0])
def test_prune_slices_the_depthwise_layers_right_after_a_mask(pivot):
    """A mask directly followed by a depthwise conv (with a bias) and its norm: both keep the mask's channels, and
    the constants the removed channels still produce fold into the 1×1 consumer's bias. (At pivot 0 a channel is
    off where its sigmoid underflows to exactly 0.)"""
    torch.manual_seed(0)
    layers = [nn.Conv2d(8, 8, 1, bias=False), _bn(8), nn.Conv2d(8, 8, 3, padding=1, groups=8), _bn(8), nn.ReLU(),
              nn.Conv2d(8, 8, 1, bias=False)]
    model = _with_statistics(nn.Sequential(PrunableBlock(_masked_body(layers, 0.01))))
    for m in masks(model):
        m.pivot = pivot
    _binarize(model, [[1, 4, 7], [0, 1, 2, 3, 5]])
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        ref = model(x)
        pruned = physically_prune(model)
        torch.testing.assert_close(pruned(x), ref, atol=1e-5, rtol=1e-4)
    dw = [m for m in pruned[0].body if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)][0]
    assert (dw.in_channels, dw.out_channels, dw.groups) == (3, 3, 3)


@pytest.mark.parametrize("bias", [0.5, 0.001])
def test_prune_refuses_a_constant_carried_into_a_3x3_conv(bias):
    """Removed channels whose zeros become a non-zero constant (a depthwise conv's bias) before a 3×3 conv: no exact
    fold exists (the conv's zero padding sees the constant only inside), so pruning refuses, however small it is."""
    torch.manual_seed(0)
    dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    with torch.no_grad():
        dw.bias.fill_(bias)
    layers = [nn.Conv2d(8, 8, 1, bias=False), _bn(8), dw, nn.Conv2d(8, 8, 3, padding=1, bias=False)]
    model = nn.Sequential(PrunableBlock(_masked_body(layers, 0.01))).eval()
    _binarize(model, [[0, 1, 2], list(range(8))])
    with pytest.raises(NotImplementedError, match=r"^removed channels carry a non-zero constant into a \(3, 3\) conv$"):
        physically_prune(model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_physically_prune_on_cuda():
    """On the GPU: constants, kept indices, folded biases and the new layers all live on the model's device."""
    g = _gen(MobileResnetGenerator, norm="bn")
    model = insert_masks(g, input_shape=SHAPE)
    _random_binary_masks(model, all_zero_first=True)
    with torch.no_grad():  # one block with every mask 1: its transition folds
        for m in masks(model.blocks[1]):
            m.binary.fill_(1.0)
    model = model.cuda().eval()
    pruned = physically_prune(model)
    assert {p.device.type for p in pruned.parameters()} == {"cuda"}
    assert pruned.folded_transitions == ["blocks.1"]
    x = torch.randn(2, 3, 32, 32, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x), atol=1e-4, rtol=1e-4)
    from edgegan.train.prune import compose_1x1

    for conv_bias, t_bias in ((True, True), (False, True)):
        conv = nn.Conv2d(3, 4, 3, padding=1, bias=conv_bias).cuda()
        t = nn.Conv2d(4, 5, 1, bias=t_bias).cuda()
        c = compose_1x1(conv, t)
        assert c.weight.device.type == c.bias.device.type == "cuda"
        with torch.no_grad():
            torch.testing.assert_close(c(x), t(conv(x)), atol=1e-4, rtol=1e-4)


def test_masked_body_puts_a_mask_after_each_regular_conv_or_its_norm():
    """Plain ``conv → ReLU → conv`` (mask right after the first conv) and a pre-activation body that starts with a
    norm (no mask there: no conv before it); every mask starts at ``init``, the transition is the identity."""
    def kinds(layers):
        return [type(m).__name__ for m in layers]

    plain = _masked_body([nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Conv2d(6, 5, 3)], 0.3)
    assert kinds(plain) == ["Conv2d", "ChannelMask", "ReLU", "Conv2d", "ChannelMask", "Conv2d"]
    pre = _masked_body([_bn(4), nn.ReLU(), nn.Conv2d(4, 6, 3), _bn(6), nn.ReLU(), nn.Conv2d(6, 4, 3)], 0.3)
    assert kinds(pre) == ["BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ChannelMask", "ReLU", "Conv2d",
                          "ChannelMask", "Conv2d"]
    for body, channels in ((plain, [6, 5]), (pre, [6, 4])):
        assert [m.channels for m in masks(nn.Sequential(*body))] == channels
        assert all(torch.equal(m.weight, torch.full((m.channels,), 0.3)) for m in masks(nn.Sequential(*body)))
        t = body[-1]
        assert t.bias is None and torch.equal(t.weight[:, :, 0, 0], torch.eye(t.in_channels))


def test_insert_masks_traces_at_the_given_shape_and_marks_the_config():
    """The sub-network is cut out by a forward pass at ``input_shape`` (default: 1×C×32×32); the masks start at
    ``init`` (default 0.01, the paper's) and the model's config says it is masked."""
    from edgegan.subnet import extract

    g = _gen(ResnetGenerator, norm="in")
    seen = []
    g.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))  # kept by the deep copies
    model = insert_masks(g)
    assert seen == [(1, 3, 32, 32)]
    assert all(torch.equal(m.weight, torch.full((m.channels,), 0.01)) for m in masks(model))
    assert model.subnet_config == dict(extract(g, 1.0, input_shape=SHAPE, fold_bn=False).subnet_config, masked=True)
    assert model.subnet_config["masked"] is True and len(model.subnet_config) > 1
    del seen[:]
    model = insert_masks(g, input_shape=(1, 3, 16, 24), init=0.2)
    assert seen[0] == (1, 3, 16, 24)
    assert all(torch.equal(m.weight, torch.full((m.channels,), 0.2)) for m in masks(model))
