"""PPCD's defining behaviour (METHODS.md §4).

* pruning removes exactly the channels whose masks binarize to 0: the pruned generator computes the
  masked one's function with the other channels' weights, and costs strictly fewer parameters and MACs
  than both the masked and the unpruned generator;
* the transition 1×1 convs fold into their block's last conv (or stay, where a narrow pair is cheaper),
  so nothing pruned costs exactly what the unpruned generator costs;
* the default loss is the paper's: L = 0.01·L_PP + L_CD + L_ADV.
"""

import inspect

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import with_bn_statistics
from method_grads import assert_grads_equal, frozen_optimizer, reference_grads, settled_discriminator, step_grads
from pairs_data import Pairs

from edgegan.models import MobileResnetGenerator, ResnetGenerator, SharedTrunkPatchGAN
from edgegan.models.pruned import PrunableBlock
from edgegan.nn.masks import ChannelMask, mask_stats, masks, sparsity_loss, update_masks
from edgegan.subnet import cost, extract
from edgegan.train.prune import insert_masks, physically_prune, ppcd_step, prune_report, train_ppcd

SHAPE = (1, 1, 16, 16)
KEEP1 = [0, 3, 4, 9, 15]          # of the 16 channels after each block's first (or first pointwise) conv
KEEP2 = [1, 2, 5, 6, 7, 8, 10, 12, 13, 14, 15]  # of the 16 after its last conv


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


def _generator(cls, norm, seed=0):
    torch.manual_seed(seed)
    return with_bn_statistics(cls(1, 1, ngf=4, n_blocks=2, norm=norm), (4, 1, 16, 16), seed=seed)


def _masked(g, keeps, seed=1):
    """``insert_masks(g)`` with BatchNorm statistics of its own, transition convs moved away from the identity
    (as training leaves them) and every mask binarized to keep ``keeps`` (one list per mask)."""
    model = insert_masks(g, input_shape=SHAPE)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.train()
        for _ in range(2):
            model(torch.randn(4, 1, 16, 16, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.in_channels == m.out_channels == 16:
                m.weight.add_(0.3 * torch.randn(m.weight.shape, generator=gen))
        for m, keep in zip(masks(model), keeps):
            w = torch.full((m.channels,), -1.0)
            w[keep] = 0.01
            m.weight.copy_(w)
            m.binarize()
    return model.eval()


CASES = [(ResnetGenerator, "bn"), (ResnetGenerator, "in"), (MobileResnetGenerator, "bn"), (MobileResnetGenerator, "in")]
IDS = ["resnet-bn", "resnet-in", "mobile-bn", "mobile-in"]


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_pruning_removes_exactly_the_zero_mask_channels(cls, norm):
    g = _generator(cls, norm)
    masked = _masked(g, [KEEP1, KEEP2] * 2)
    pruned = physically_prune(masked)
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), atol=1e-5, rtol=1e-4)
    assert pruned.pruned_channels == {"blocks.0": [len(KEEP1), len(KEEP2)], "blocks.1": [len(KEEP1), len(KEEP2)]}
    for mb, pb in zip([b for b in masked.modules() if isinstance(b, PrunableBlock)],
                      [b for b in pruned.modules() if isinstance(b, PrunableBlock)]):
        # the first regular conv keeps exactly the rows of the channels whose mask is 1, and its norm their entries
        i = next(i for i, m in enumerate(mb.body) if isinstance(m, ChannelMask))
        producer = [m for m in list(mb.body)[:i] if isinstance(m, nn.Conv2d) and m.groups == 1][-1]
        kept_conv = [m for m in pb.body if isinstance(m, nn.Conv2d) and m.out_channels == len(KEEP1)][0]
        assert torch.equal(kept_conv.weight, producer.weight[KEEP1])
        if norm == "bn":
            src = mb.body[i - 1]
            dst = pb.body[list(pb.body).index(kept_conv) + 1]
            assert torch.equal(dst.running_mean, src.running_mean[KEEP1]) and torch.equal(dst.weight, src.weight[KEEP1])
        assert not any(isinstance(m, ChannelMask) for m in pb.modules())
    unpruned = extract(g, 1.0, input_shape=SHAPE, fold_bn=False)
    c_pruned, c_masked, c_unpruned = cost(pruned, SHAPE), cost(masked, SHAPE), cost(unpruned, SHAPE)
    for key in ("macs", "params"):
        assert c_pruned[key] < c_masked[key] and c_pruned[key] < c_unpruned[key], key


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_nothing_pruned_folds_back_to_the_unpruned_cost(cls, norm):
    """Every mask 1: the only change left is the (trained) transition convs, folded into the last convs."""
    g = _generator(cls, norm)
    masked = _masked(g, [list(range(16))] * 4)
    pruned = physically_prune(masked)
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), atol=1e-5, rtol=1e-4)
    assert pruned.folded_transitions == ["blocks.0", "blocks.1"]
    unpruned = extract(g, 1.0, input_shape=SHAPE, fold_bn=False)
    assert cost(pruned, SHAPE) == cost(unpruned, SHAPE)
    assert sum(isinstance(m, nn.Conv2d) for m in pruned.modules()) == sum(
        isinstance(m, nn.Conv2d) for m in unpruned.modules())
    rep = prune_report(masked, pruned, SHAPE, unpruned=unpruned)
    assert (rep["folded_transitions"], rep["blocks"], rep["unpruned_params_ratio"], rep["unpruned_macs_ratio"]) == (2, 2, 1.0, 1.0)


def test_a_narrow_pair_is_kept_when_cheaper_than_folding():
    """One channel kept after a 16→16 3×3 conv: 16·1·9 + 1·16 MACs per pixel for the pair, 16·16·9 folded."""
    g = _generator(ResnetGenerator, "bn")
    masked = _masked(g, [list(range(16)), [7]] * 2)
    pruned = physically_prune(masked)
    assert pruned.folded_transitions == []
    for block in [b for b in pruned.modules() if isinstance(b, PrunableBlock)]:
        convs = [m for m in block.body if isinstance(m, nn.Conv2d)]
        assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs[-2:]] == [(16, 1, (3, 3)), (1, 16, (1, 1))]
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), atol=1e-5, rtol=1e-4)
    assert cost(pruned, SHAPE)["macs"] < cost(extract(g, 1.0, input_shape=SHAPE, fold_bn=False), SHAPE)["macs"]


@pytest.mark.parametrize("cls,norm", [CASES[0], CASES[3]], ids=[IDS[0], IDS[3]])
def test_physically_prune_keeps_the_models_dtype(cls, norm):
    """A float64 masked model prunes to a float64 model computing its function to float64 precision."""
    masked = _masked(_generator(cls, norm), [KEEP1, KEEP2] * 2).double()
    pruned = physically_prune(masked)
    assert {p.dtype for p in pruned.parameters()} == {torch.float64}
    assert not any(p.requires_grad for p in pruned.parameters())  # a finished model: frozen
    x = torch.randn(3, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), atol=1e-12, rtol=1e-10)


def _attention(feature):
    a = (feature ** 2).sum(1).flatten(1)
    return a / a.norm(dim=1, keepdim=True)


def test_ppcd_step_default_loss_is_the_papers():
    """L_G = −D(x, G(x)) + 0.01·Σ|w + 1| + mean over the distilled layers of ‖F_T/‖F_T‖ − F_S/‖F_S‖‖₂."""
    from edgegan.train.distill import capture, distill_layers

    teacher = _generator(ResnetGenerator, "in", seed=2)
    masked = insert_masks(_generator(MobileResnetGenerator, "bn"), input_shape=SHAPE).train()
    disc = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1), torch.randn(2, 2, 16, 16))
    data = Pairs(4, size=16)
    ppcd_step(masked, teacher, disc, frozen_optimizer(masked), frozen_optimizer(disc), data.x, data.y, alpha=1.0)
    g_step = step_grads(masked)
    layers = distill_layers(masked)
    with torch.no_grad(), capture(teacher, layers) as t:
        teacher(data.x)
        t = dict(t)
    with capture(masked, layers) as s:
        fake = masked(data.x)
        s = dict(s)
    cd = sum((_attention(s[n]) - _attention(t[n])).norm(dim=1).mean() for n in layers) / len(layers)
    pp = sum((m.weight + 1).abs().sum() for m in masks(masked))
    loss_g = -disc(torch.cat([data.x, fake], 1)).mean() + 0.01 * pp + cd
    assert_grads_equal(g_step, reference_grads(loss_g, masked))
    # and the recipe and the command default to it: no L1 to the teacher unless asked
    assert inspect.signature(train_ppcd).parameters["lambda_recon"].default == 0.0
    from edgegan.cli import build_parser

    args = build_parser().parse_args(["train", "ppcd", "--teacher", "t.pt", "--data", "d", "--out", "o.pt"])
    assert (args.lambda_pp, args.lambda_cd, args.lambda_recon) == (0.01, 1.0, 0.0)


def test_lambda_recon_adds_l1_to_the_teachers_output():
    teacher = _generator(ResnetGenerator, "in", seed=2)
    data = Pairs(4, size=16)
    grads = []
    for lam in (0.0, 3.0):
        masked = insert_masks(_generator(MobileResnetGenerator, "in"), input_shape=SHAPE).train()
        disc = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1), torch.randn(2, 2, 16, 16))
        ppcd_step(masked, teacher, disc, frozen_optimizer(masked), frozen_optimizer(disc), data.x, data.y, alpha=1.0,
                  lambda_recon=lam)
        grads.append(step_grads(masked))
    with torch.no_grad():
        t_out = teacher(data.x)
    extra = reference_grads(3.0 * F.l1_loss(masked(data.x), t_out), masked)
    assert_grads_equal({k: grads[1][k] - grads[0][k] for k in extra}, extra, atol=1e-5, rtol=1e-3)


# --- the masks at their boundaries: m = sigmoid(δ·w); off when m ≤ pivot (w = 0, pivot 0.5 sits on it) ----------

def _mask(weights, pivot=0.5):
    m = ChannelMask(len(weights), pivot=pivot)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weights))
    return m


def test_mask_is_sigmoid_of_delta_times_w():
    m = _mask([0.001, -0.002, 0.0])
    torch.testing.assert_close(m.mask(), torch.sigmoid(torch.tensor([1.0, -2.0, 0.0])))


def test_forward_scales_each_channel_and_keeps_the_input_dtype():
    m = _mask([0.001, -0.001])
    x = torch.ones(2, 2, 3, 3, dtype=torch.bfloat16)
    y = m(x)
    assert y.dtype == torch.bfloat16
    expected = torch.sigmoid(torch.tensor([1.0, -1.0])).to(torch.bfloat16)
    assert torch.equal(y[:, 0], torch.full((2, 3, 3), float(expected[0]), dtype=torch.bfloat16))
    assert torch.equal(y[:, 1], torch.full((2, 3, 3), float(expected[1]), dtype=torch.bfloat16))


def test_a_mask_at_the_pivot_is_off():
    m = _mask([0.0, 1.0])  # masks 0.5 (= pivot) and 1.0
    assert m.ratio() == 0.5
    assert m.kept().tolist() == [1]
    m.binarize()
    assert m.binary.tolist() == [0.0, 1.0] and bool(m.frozen)


def test_binarize_uses_sigmoid_of_delta_times_w():
    m = _mask([-0.001, 0.001], pivot=0.005)  # sigmoid(∓1) = 0.27, 0.73: both on
    m.binarize()
    assert m.binary.tolist() == [1.0, 1.0]
    assert not m.weight.requires_grad


def test_a_frozen_mask_stays_as_it_was_binarized():
    m = _mask([1.0, 1.0])
    m.binarize()
    with torch.no_grad():
        m.weight.fill_(-1.0)
    m.binarize()
    assert m.binary.tolist() == [1.0, 1.0]
    assert m.update(alpha=0.0) and m.binary.tolist() == [1.0, 1.0]
    assert float(m.sparsity_loss()) == 0.0


def test_update_binarizes_once_the_ratio_exceeds_alpha():
    m = _mask([-1.0, 1.0, 1.0, 1.0])  # ratio 0.25
    assert not m.update(alpha=0.25) and not bool(m.frozen)
    assert m.update(alpha=0.2) and m.binary.tolist() == [0.0, 1.0, 1.0, 1.0]


def test_model_level_helpers():
    model = nn.Sequential(nn.Conv2d(1, 3, 1), _mask([-1.0, 1.0, 1.0]), nn.Conv2d(3, 2, 1), _mask([1.0, 1.0]))
    assert float(sparsity_loss(model).detach()) == pytest.approx(0.0 + 2.0 + 2.0 + 2.0 + 2.0)
    assert update_masks(model, alpha=0.3) == 1
    assert mask_stats(model) == {"kept": 4, "total": 5, "frozen": 1, "masks": 2}
    with pytest.raises(ValueError, match=r"^the model has no ChannelMask$"):
        sparsity_loss(nn.Conv2d(1, 1, 1))


def test_mask_repr():
    m = _mask([1.0, 1.0], pivot=0.005)
    assert repr(m) == "ChannelMask(channels=2, delta=1000, pivot=0.005, frozen=False)"
    m.binarize()
    assert repr(m) == "ChannelMask(channels=2, delta=1000, pivot=0.005, frozen=True)"


# --- the report: costs at the given input shape, exact differences counted by hand -----------------------------

def test_prune_report_counts_and_ratios():
    """ResNet, ngf 4, 16×16 input: two blocks of 16 channels at 4×4 (16 pixels). Masked block per pixel:
    two 16→16 3×3 convs and the 16→16 transition; pruned (5 then 11 kept, the narrow pair kept since
    5·16·9 > 5·11·9 + 11·16): 16→5 3×3, 5→11 3×3, 11→16 1×1."""
    g = _generator(ResnetGenerator, "bn")
    masked = _masked(g, [KEEP1, KEEP2] * 2)
    pruned = physically_prune(masked)
    unpruned = extract(g, 1.0, input_shape=SHAPE, fold_bn=False)
    rep = prune_report(masked, pruned, SHAPE, unpruned=unpruned)
    assert set(rep) == {"masked", "pruned", "masks", "params_ratio", "macs_ratio", "folded_transitions", "blocks",
                        "unpruned", "unpruned_params_ratio", "unpruned_macs_ratio"}
    assert (rep["masked"], rep["pruned"], rep["unpruned"]) == (cost(masked, SHAPE), cost(pruned, SHAPE),
                                                                cost(unpruned, SHAPE))
    pixels, masked_block, pruned_block = 16, 16 * 16 * 9 * 2 + 16 * 16, 16 * 5 * 9 + 5 * 11 * 9 + 11 * 16
    assert rep["masked"]["macs"] - rep["pruned"]["macs"] == 2 * pixels * (masked_block - pruned_block)
    assert rep["masked"]["macs"] - rep["unpruned"]["macs"] == 2 * pixels * 16 * 16  # the transition convs
    # params per block: the convs' weights, 2 BatchNorm affine entries per channel of the first norm, the masks
    masked_params = 16 * 16 * 9 * 2 + 16 * 16 + 2 * 16 + 2 * 16
    pruned_params = 16 * 5 * 9 + 5 * 11 * 9 + 11 * 16 + 2 * 5
    assert rep["masked"]["params"] - rep["pruned"]["params"] == 2 * (masked_params - pruned_params)
    assert rep["masked"]["params"] - rep["unpruned"]["params"] == 2 * (16 * 16 + 2 * 16)
    for prefix, num in (("", rep["masked"]), ("unpruned_", rep["unpruned"])):
        assert rep[prefix + "params_ratio"] == pytest.approx(num["params"] / rep["pruned"]["params"], rel=1e-12)
        assert rep[prefix + "macs_ratio"] == pytest.approx(num["macs"] / rep["pruned"]["macs"], rel=1e-12)
        assert rep[prefix + "params_ratio"] > 1.5 and rep[prefix + "macs_ratio"] > 1.4
    assert rep["masks"] == {"kept": 2 * (len(KEEP1) + len(KEEP2)), "total": 64, "frozen": 4, "masks": 4}
    assert (rep["folded_transitions"], rep["blocks"]) == (0, 2)
    # without the unpruned generator: no unpruned entries
    assert set(prune_report(masked, pruned, SHAPE)) == set(rep) - {"unpruned", "unpruned_params_ratio",
                                                                   "unpruned_macs_ratio"}


# --- ppcd_step: the discriminator's step, what it returns, what it leaves behind ---------------------------------

def _step_setup(seed=0):
    teacher = _generator(ResnetGenerator, "in", seed=2)
    masked = insert_masks(_generator(MobileResnetGenerator, "bn", seed=seed), input_shape=SHAPE).train()
    disc = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1), torch.randn(2, 2, 16, 16))
    return teacher, masked, disc, Pairs(4, size=16)


@pytest.mark.parametrize("paired", [None, True, False], ids=["default", "paired", "unpaired"])
def test_ppcd_step_discriminator_loss_and_returned_values(paired):
    """D's hinge loss has (x, y) as its real pairs on paired data (the default), (x, teacher(x)) on unpaired data;
    the step returns D's and G's losses, L_PP, ℓ_CD and the mask counts, and leaves D trainable."""
    from edgegan.train.distill import capture, distill_layers

    teacher, masked, disc, data = _step_setup()
    kw = {} if paired is None else {"paired": paired}
    out = ppcd_step(masked, teacher, disc, frozen_optimizer(masked), frozen_optimizer(disc), data.x, data.y,
                    alpha=1.0, **kw)
    d_step = step_grads(disc)
    assert all(p.requires_grad for p in disc.parameters())
    layers = distill_layers(masked)
    with torch.no_grad(), capture(teacher, layers) as t:
        t_out = teacher(data.x)
        t = dict(t)
    with torch.no_grad(), capture(masked, layers) as s:
        fake = masked(data.x)
        s = dict(s)
    real = t_out if paired is False else data.y
    loss_d = (F.relu(1.0 - disc(torch.cat([data.x, real], 1))).mean()
              + F.relu(1.0 + disc(torch.cat([data.x, fake], 1))).mean())
    assert_grads_equal(d_step, reference_grads(loss_d, disc))
    with torch.no_grad():
        cd = sum((_attention(s[n]) - _attention(t[n])).norm(dim=1).mean() for n in layers) / len(layers)
        pp = sum((m.weight + 1).abs().sum() for m in masks(masked))
        g = -disc(torch.cat([data.x, fake], 1)).mean()
    assert set(out) == {"d", "g", "pp", "cd", "frozen_masks", "kept"}
    for key, value in (("d", loss_d), ("g", g), ("pp", pp), ("cd", cd)):
        assert isinstance(out[key], float) and out[key] == pytest.approx(float(value.detach()), rel=1e-5), key
    assert (out["frozen_masks"], out["kept"]) == (0, sum(m.channels for m in masks(masked)))


def test_ppcd_step_cd_is_the_mean_over_the_given_layers():
    """``layers`` as given: a layer listed twice weighs twice in ℓ_CD = (2·d(down) + d(blocks.1)) / 3."""
    from edgegan.train.distill import capture

    teacher, masked, disc, data = _step_setup()
    out = ppcd_step(masked, teacher, disc, frozen_optimizer(masked), frozen_optimizer(disc), data.x, data.y,
                    alpha=1.0, layers=["down", "down", "blocks.1"])
    with torch.no_grad(), capture(teacher, ["down", "blocks.1"]) as t:
        teacher(data.x)
        t = dict(t)
    with torch.no_grad(), capture(masked, ["down", "blocks.1"]) as s:
        masked(data.x)
        s = dict(s)
    d = {n: float((_attention(s[n]) - _attention(t[n])).norm(dim=1).mean()) for n in ("down", "blocks.1")}
    assert d["down"] != pytest.approx(d["blocks.1"], rel=1e-2)
    assert out["cd"] == pytest.approx((2 * d["down"] + d["blocks.1"]) / 3, rel=1e-5)


def test_a_mask_frozen_in_one_step_stays_put_in_the_next():
    """Once binarized, a mask's weights leave the optimizer's updates: Adam gets no gradient for them (not a zero
    one, which its momentum would still turn into a move)."""
    teacher, masked, disc, data = _step_setup()
    first = masks(masked)[0]
    with torch.no_grad():
        first.weight[: first.channels // 2] = -0.01  # half of its channels off: ratio 0.5 > α = 0.3
    opt_g = torch.optim.Adam([p for p in masked.parameters() if p.requires_grad], lr=1e-2)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    out = ppcd_step(masked, teacher, disc, opt_g, opt_d, data.x, data.y, alpha=0.3)
    assert out["frozen_masks"] == 1 and bool(first.frozen)
    frozen_w, soft_w = first.weight.detach().clone(), masks(masked)[1].weight.detach().clone()
    ppcd_step(masked, teacher, disc, opt_g, opt_d, data.x, data.y, alpha=0.3)
    assert torch.equal(first.weight, frozen_w)
    assert not torch.equal(masks(masked)[1].weight, soft_w)  # the soft masks still learn
