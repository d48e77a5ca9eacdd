"""SlimGAN's defining behaviour (METHODS.md §1), pinned on single steps of both recipes.

* stepwise inplace distillation: width i learns from width i+1, naive: from the widest; the teacher is
  detached (stop-gradient);
* one discriminator head per width on a shared trunk: head i scores width i only;
* switchable BatchNorm: each width normalises with, and updates, its own statistics;
* sliceable conditional BN: the first s entries of the shared per-class vectors, in training and in
  the exported (ONNX) graph.

A step's gradients (left by zero-learning-rate optimizers) are compared with those of the losses as
METHODS.md writes them, computed here independently of ``edgegan.train``.
"""

import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from method_grads import (assert_grads_equal, frozen_optimizer, nonzero, reference_grads, settled_discriminator,
                          step_grads)
from pairs_data import Pairs

from edgegan.models import DCGANGenerator, ResnetGenerator, SharedTrunkPatchGAN, SharedTrunkProjectionD
from edgegan.nn import SwitchableBatchNorm2d, at_width, set_width
from edgegan.nn.cond_norm import SliceableConditionalBatchNorm2d
from edgegan.train.losses import inplace_distillation

WIDTHS = (0.25, 0.5, 0.75, 1.0)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


# --- inplace distillation, by hand ------------------------------------------------------------------

@pytest.mark.parametrize("mode,expected", [("stepwise", [-1.0, -2.0, 0.0]), ("naive", [-3.0, -2.0, 0.0])])
def test_inplace_distillation_gradients_by_hand(mode, expected):
    """Outputs 0, 1, 3 (narrowest → widest), one element each. Stepwise: L = ((a−sg b)² + (b−sg c)²)/2, so
    ∂L/∂a = a−b = −1, ∂L/∂b = b−c = −2, ∂L/∂c = 0; naive: L = ((a−sg c)² + (b−sg c)²)/2: −3, −2, 0. Without
    the stop-gradient b would also get −(a−b) and c would get −(b−c)."""
    outs = [torch.tensor([[v]], requires_grad=True) for v in (0.0, 1.0, 3.0)]
    loss = inplace_distillation(outs, mode)
    loss.backward()
    assert float(loss.detach()) == pytest.approx({"stepwise": (1 + 4) / 2, "naive": (9 + 4) / 2}[mode])
    assert [float(o.grad) if o.grad is not None else 0.0 for o in outs] == expected


# --- the paired recipe (edgegan.train.slimmable) -------------------------------------------------------

def _paired_models(norm="in"):
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm=norm, widths=WIDTHS).train()
    # eval mode: spectral norm takes no power-iteration step, so re-running D gives the same σ
    d = SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_share=2, n_heads=len(WIDTHS))
    for i in range(len(WIDTHS)):  # every head's spectral norms
        settled_discriminator(d, torch.randn(2, 2, 16, 16), i)
    return g, d


def _at_every_width(g, *args):
    """``g(*args)`` at each of WIDTHS, narrowest first."""
    outs = []
    for w in WIDTHS:
        with at_width(g, w):
            outs.append(g(*args))
    return outs


def _paired_reference(g, d, x, y, lambda_l1, lambda_distill, mode):
    """METHODS.md §1 for pix2pix: D_i scores width i (hinge); G: Σ_i −D_i(x, G_i) + λ_L1·|G_i − y| +
    λ_d/(N−1)·Σ_i ‖G_i − sg(teacher_i)‖²."""
    fakes = _at_every_width(g, x)
    real = torch.cat([x, y], 1)
    loss_d = sum(F.relu(1 - d(real, i)).mean() + F.relu(1 + d(torch.cat([x, f.detach()], 1), i)).mean()
                 for i, f in enumerate(fakes))
    adversarial = sum(-d(torch.cat([x, f], 1), i).mean() for i, f in enumerate(fakes))
    l1 = sum((f - y).abs().mean() for f in fakes)
    teachers = fakes[1:] if mode == "stepwise" else [fakes[-1]] * (len(fakes) - 1)
    distill = sum(((f - t.detach()) ** 2).mean() for f, t in zip(fakes, teachers)) / (len(fakes) - 1)
    return loss_d, adversarial + lambda_l1 * l1 + lambda_distill * distill


@pytest.mark.parametrize("mode", ["stepwise", "naive"])
def test_paired_step_follows_slimgan_losses(mode):
    from edgegan.train.slimmable import SlimmableConfig, train_step

    g, d = _paired_models()
    data = Pairs(4, size=16)
    x, y = data.x, data.y
    config = SlimmableConfig(ngf=4, n_blocks=1, ndf=4, lambda_l1=1.0, lambda_distill=10.0, distill=mode)
    train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), x, y, config)
    g_step, d_step = step_grads(g), step_grads(d)
    loss_d, loss_g = _paired_reference(g, d, x, y, 1.0, 10.0, mode)
    assert_grads_equal(d_step, reference_grads(loss_d, d))
    assert_grads_equal(g_step, reference_grads(loss_g, g))
    # one head per width, all on the same trunk
    assert all(nonzero(d_step, "heads.%d." % i) for i in range(len(WIDTHS))) and nonzero(d_step, "trunk.")


@pytest.mark.parametrize("mode", ["naive", "none"])
def test_paired_step_returns_and_reports_every_width(mode):
    """The averaged losses it returns, the per-width terms it reports (D hinge, G adversarial, L1 to the target),
    and the discriminator left trainable for the next step."""
    from edgegan.train.slimmable import SlimmableConfig, train_step

    g, d = _paired_models()
    data = Pairs(4, size=16)
    x, y = data.x, data.y
    config = SlimmableConfig(ngf=4, n_blocks=1, ndf=4, lambda_l1=3.0, lambda_distill=10.0, distill=mode)
    per_width = {}
    out = train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), x, y, config, per_width=per_width)
    assert all(p.requires_grad for p in d.parameters())
    real = torch.cat([x, y], 1)
    with torch.no_grad():
        fakes = _at_every_width(g, x)
        d_terms = [float(F.relu(1 - d(real, i)).mean() + F.relu(1 + d(torch.cat([x, f], 1), i)).mean())
                   for i, f in enumerate(fakes)]
        g_terms = [float(-d(torch.cat([x, f], 1), i).mean()) for i, f in enumerate(fakes)]
        l1_terms = [float((f - y).abs().mean()) for f in fakes]
        distillation = 0.0 if mode == "none" else float(sum(((f - fakes[-1]) ** 2).mean() for f in fakes[:-1]) / 3)
    keys = ["w0.25", "w0.5", "w0.75", "w1"]
    expected = {}
    for prefix, terms in (("d/", d_terms), ("g/", g_terms), ("l1/", l1_terms)):
        expected.update(("%s%s" % (prefix, k), v) for k, v in zip(keys, terms))
    assert per_width == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert out == pytest.approx({"d": sum(d_terms) / 4, "g": sum(g_terms) / 4, "l1": sum(l1_terms) / 4,
                                 "distill": distillation}, rel=1e-4, abs=1e-6)
    assert train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), x, y, config) == pytest.approx(out, rel=1e-4)


def test_paired_head_i_scores_width_i_only():
    """The gradient of head i is that of width i's hinge loss alone (shared trunk: the sum over widths)."""
    from edgegan.train.slimmable import SlimmableConfig, train_step

    g, d = _paired_models()
    data = Pairs(4, size=16)
    x, y = data.x, data.y
    train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), x, y, SlimmableConfig(ngf=4, n_blocks=1, ndf=4))
    d_step = step_grads(d)
    real = torch.cat([x, y], 1)
    for i, w in enumerate(WIDTHS):
        with torch.no_grad(), at_width(g, w):
            fake = g(x)
        own = F.relu(1 - d(real, i)).mean() + F.relu(1 + d(torch.cat([x, fake], 1), i)).mean()
        expected = reference_grads(own, d)
        assert_grads_equal({k: v for k, v in d_step.items() if k.startswith("heads.%d." % i)},
                           {k: v for k, v in expected.items() if k.startswith("heads.%d." % i)})


def test_paired_stop_gradient_leaves_the_widest_only_weights_alone():
    """Distillation moves only the narrower generator of each pair: weights that only width 1.0 uses (the
    last quarter of every layer's channels) get no gradient from it."""
    from edgegan.train.slimmable import SlimmableConfig, train_step

    data = Pairs(4, size=16)
    grads = {}
    for lam in (0.0, 1.0):
        g, d = _paired_models()
        config = SlimmableConfig(ngf=4, n_blocks=1, ndf=4, lambda_l1=0.0, lambda_distill=lam)
        train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), data.x, data.y, config)
        grads[lam] = step_grads(g)
    distill = {k: grads[1.0][k] - grads[0.0][k] for k in grads[0.0]}
    w = "stem.1.weight"  # 4 output channels at full width, 3 at 0.75
    assert float(distill[w][:3].abs().sum()) > 0
    assert float(distill[w][3:].abs().max()) <= 1e-7


# --- the noise → image recipe (edgegan.train.slimgan) --------------------------------------------------

def test_noise_step_follows_slimgan_losses():
    from edgegan.train.slimgan import SlimGANConfig, train_step

    torch.manual_seed(0)
    g = DCGANGenerator(nz=8, ngf=4, size=16, n_classes=10, widths=WIDTHS).train()
    d = SharedTrunkProjectionD(1, ndf=4, size=16, n_classes=10, n_share=1, n_heads=len(WIDTHS))
    for i in range(len(WIDTHS)):
        settled_discriminator(d, torch.randn(6, 1, 16, 16), torch.arange(6) % 10, i)
    real = torch.rand(6, 1, 16, 16) * 2 - 1
    labels = torch.arange(6) % 10
    config = SlimGANConfig(nz=8, ngf=4, ndf=4, n_classes=10, lambda_distill=10.0, distill="stepwise")
    torch.manual_seed(7)
    train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), real, labels, config)
    g_step, d_step = step_grads(g), step_grads(d)
    torch.manual_seed(7)
    z = torch.randn(6, 8)
    fakes = _at_every_width(g, z, labels)
    loss_d = sum(F.relu(1 - d(real, labels, i)).mean() + F.relu(1 + d(f.detach(), labels, i)).mean()
                 for i, f in enumerate(fakes))
    distill = sum(((f - t.detach()) ** 2).mean() for f, t in zip(fakes, fakes[1:])) / 3
    loss_g = sum(-d(f, labels, i).mean() for i, f in enumerate(fakes)) + 10.0 * distill
    assert_grads_equal(d_step, reference_grads(loss_d, d))
    assert_grads_equal(g_step, reference_grads(loss_g, g))
    assert all(nonzero(d_step, "heads.%d." % i) and nonzero(d_step, "linear.%d." % i) for i in range(4))


# --- switchable BatchNorm ------------------------------------------------------------------------------

def test_switchable_bn_keeps_and_uses_statistics_per_width():
    """momentum 0.5: after one batch, running mean = 0.5·batch mean, running var = 0.5 + 0.5·unbiased var,
    in the BatchNorm of that channel count only; eval mode normalises with that width's own statistics."""
    sbn = SwitchableBatchNorm2d([2, 4], momentum=0.5)
    with torch.no_grad():
        for bn, k in zip(sbn.bn, (1.0, 2.0)):
            bn.weight.copy_(torch.arange(bn.num_features) + k)
            bn.bias.copy_(-torch.arange(bn.num_features) * k)
    gen = torch.Generator().manual_seed(0)
    x2 = torch.randn(5, 2, 3, 3, generator=gen) * 3 + 1
    x4 = torch.randn(5, 4, 3, 3, generator=gen) - 2
    sbn.train()
    sbn(x2)
    torch.testing.assert_close(sbn.bn[0].running_mean, 0.5 * x2.mean((0, 2, 3)))
    torch.testing.assert_close(sbn.bn[0].running_var, 0.5 + 0.5 * x2.var((0, 2, 3), unbiased=True))
    assert int(sbn.bn[1].num_batches_tracked) == 0 and float(sbn.bn[1].running_mean.abs().sum()) == 0.0
    sbn(x4)
    torch.testing.assert_close(sbn.bn[1].running_mean, 0.5 * x4.mean((0, 2, 3)))
    assert int(sbn.bn[0].num_batches_tracked) == 1  # the narrow statistics did not move
    sbn.eval()
    for x, bn in ((x2, sbn.bn[0]), (x4, sbn.bn[1])):
        expected = ((x - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
                    * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1))
        torch.testing.assert_close(sbn(x), expected)


def test_a_width_updates_only_its_own_batchnorms():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn", widths=WIDTHS)
    for i, w in enumerate(WIDTHS):
        before = {k: v.clone() for k, v in g.state_dict().items() if "running_mean" in k}
        g.train()
        set_width(g, w)
        g(torch.randn(4, 1, 16, 16))
        after = g.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed == {k for k in before if ".bn.%d." % i in k}


# --- post-training BatchNorm recalibration (edgegan.train.recalibrate) -----------------------------------

class _Lister(torch.nn.Module):
    """Not a switchable norm: it has a ``num_features_list`` but no ``select``; its BatchNorm is a plain one."""

    def __init__(self, c):
        super().__init__()
        self.num_features_list = [c]
        self.bn = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(x)


class _GeneratorThenNorms(torch.nn.Module):
    """A slimmable generator, then a plain BatchNorm applied twice, then one inside ``_Lister``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.g = ResnetGenerator(1, 2, ngf=4, n_blocks=1, norm="bn", widths=WIDTHS)
        self.widths = self.g.widths
        self.bn = torch.nn.BatchNorm2d(2)
        self.lister = _Lister(2)

    def forward(self, x):
        return self.lister(self.bn(self.bn(self.g(x))))


def _selected_in_order(model, x):
    """The BatchNorm each SwitchableBatchNorm2d selects, in the order the forward pass reaches them."""
    order = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: order.append(mod.select(args[0].shape[1])))
             for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return order


def test_batchnorms_used_lists_each_batchnorm_a_width_uses_once_in_order():
    from edgegan.train.recalibrate import batchnorms_used

    m = _GeneratorThenNorms()
    x = torch.randn(2, 1, 16, 16)
    for w in WIDTHS:
        set_width(m.g, w)
        expected = _selected_in_order(m.g, x) + [m.bn, m.lister.bn]
        assert len(expected) == 9  # seven switchable norms in the generator, two plain ones
        m.train()
        used = batchnorms_used(m, x)                                   # the default forward: m(x)
        assert [id(b) for b in used] == [id(b) for b in expected], w
        assert m.training                                              # the mode is restored
        calls = []
        used = batchnorms_used(m, {"image": x}, forward=lambda model, b: calls.append(1) or model(b["image"]))
        assert [id(b) for b in used] == [id(b) for b in expected] and calls == [1]


def test_to_moves_nested_batches_and_keeps_their_structure():
    from edgegan.train.recalibrate import _to

    x, y, z = torch.zeros(2), torch.ones(1), torch.arange(3)
    batch = (x, [y, {"z": z, "k": 3}], "name")
    assert _to(batch, None) is batch
    moved = _to(batch, "meta")
    assert type(moved) is tuple and type(moved[1]) is list and type(moved[1][1]) is dict
    assert moved[0].device.type == moved[1][0].device.type == moved[1][1]["z"].device.type == "meta"
    assert moved[0].shape == x.shape and moved[1][1]["z"].shape == z.shape
    assert moved[1][1]["k"] == 3 and moved[2] == "name"
    assert _to(x, "meta").device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_recalibrate_bn_moves_batches_to_the_device():
    from edgegan.train.recalibrate import recalibrate_bn

    m = _GeneratorThenNorms().cuda()           # CPU batches, a CUDA model: only the move makes it run
    counts = recalibrate_bn(m, [torch.randn(2, 1, 16, 16)], widths=[0.5], device="cuda")
    assert counts == {0.5: 9}


def test_recalibrate_bn_recomputes_each_width_s_statistics_exactly():
    from edgegan.nn.config import SubnetConfig
    from edgegan.train.recalibrate import recalibrate_bn

    m = _GeneratorThenNorms()
    x = torch.randn(4, 1, 16, 16) * 2 + 1
    with pytest.raises(ValueError, match=r"^recalibrate_bn needs at least one batch$"):
        recalibrate_bn(m, [])
    half = SubnetConfig(width=0.5, name="half")
    set_width(m.g, 0.5)
    used = _selected_in_order(m.g, x)
    untouched = {k: v.clone() for k, v in m.g.state_dict().items() if ".bn.1." not in k}
    m.eval()
    # one tensor batch, the default forward (m(x)), a named config: the result is keyed by the name
    assert recalibrate_bn(m, [x], widths=[half]) == {"half": 9}
    assert not m.training
    # the first norm reached (the stem's) holds its input's exact batch statistics (momentum None, one batch)
    set_width(m.g, 0.5)
    inputs = []
    hooks = [sbn.register_forward_pre_hook(lambda mod, args: inputs.append(args[0]))
             for sbn in m.g.modules() if isinstance(sbn, SwitchableBatchNorm2d)]
    with torch.no_grad():
        m.eval()(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(used[0].running_mean, inputs[0].mean((0, 2, 3)))
    torch.testing.assert_close(used[0].running_var, inputs[0].var((0, 2, 3), unbiased=True))
    assert all(bn.momentum == 0.1 for bn in used + [m.bn, m.lister.bn])  # the momentum is restored
    assert all(int(bn.num_batches_tracked) == 1 for bn in used)
    after = m.g.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in untouched.items())  # the other widths' norms did not move
    # a custom forward for batches the model cannot take as they are (a dict with an extra key)
    calls = []
    counts = recalibrate_bn(m, [{"image": x, "id": 7}], widths=[0.25, 1.0],
                            forward=lambda model, b: calls.append(b["id"]) or model(b["image"]))
    assert counts == {0.25: 9, 1.0: 9} and calls == [7] * 4  # one probe pass and one pass per width


# --- sliceable conditional BatchNorm ------------------------------------------------------------------

def _cbn(seed=0):
    """A sliceable cBN (widths of 2, 4, 6 channels, 3 classes) whose class entries beyond every width's slice
    are far from the ones inside it, with distinct statistics per width."""
    gen = torch.Generator().manual_seed(seed)
    cbn = SliceableConditionalBatchNorm2d([2, 4, 6], n_classes=3)
    with torch.no_grad():
        cbn.class_weight.copy_(torch.randn(3, 6, generator=gen) + torch.arange(6) * 10.0)
        cbn.class_bias.copy_(torch.randn(3, 6, generator=gen) - torch.arange(6) * 10.0)
        for i, bn in enumerate(cbn.bn):
            cbn.weight[i].copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            cbn.bias[i].copy_(torch.randn(bn.num_features, generator=gen))
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    return cbn


def _cbn_formula(cbn, i, x, y, training):
    s = x.shape[1]
    bn = cbn.bn[i]
    if training:
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    xhat = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + bn.eps)
    gamma = cbn.weight[i].view(1, -1) * cbn.class_weight[y][:, :s]  # γ_w · γ_c[:s]
    beta = cbn.bias[i].view(1, -1) + cbn.class_bias[y][:, :s]      # β_w + β_c[:s]
    return gamma[:, :, None, None] * xhat + beta[:, :, None, None]


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_sliceable_cbn_uses_the_first_s_class_entries(training):
    cbn = _cbn().train(training)
    y = torch.tensor([2, 0, 1, 2])
    for i, s in enumerate((2, 4, 6)):
        x = torch.randn(4, s, 3, 3, generator=torch.Generator().manual_seed(s)) * 2 + 1
        torch.testing.assert_close(cbn(x, y), _cbn_formula(cbn, i, x, y, training), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["sliceable", "switchable"])
def test_cbn_statistics_follow_momentum_eps_and_mode(kind):
    """momentum, eps reach the statistics; eval mode leaves them (and the batch count) alone; momentum None is
    the cumulative average (what recalibration relies on)."""
    from edgegan.nn.cond_norm import SwitchableConditionalBatchNorm2d

    cls = {"sliceable": SliceableConditionalBatchNorm2d, "switchable": SwitchableConditionalBatchNorm2d}[kind]
    assert (cls([2, 4], 3).bn[0].eps, cls([2, 4], 3).bn[0].momentum) == (1e-5, 0.1)
    cbn = cls([2, 3, 4], 3, eps=1e-2, momentum=0.5)
    assert cbn.num_features == 4 and cbn.num_features_list == [2, 3, 4]
    assert all(not bn.affine and bn.eps == 1e-2 and bn.momentum == 0.5 for bn in cbn.bn)
    gen = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(5, 3, 2, 2, generator=gen) * 2 + 1, torch.randn(5, 3, 2, 2, generator=gen) - 1
    y = torch.tensor([0, 1, 2, 1, 0])
    bn = cbn.bn[1]
    cbn.train()
    out = cbn(x1, y)  # training: batch statistics, eps 1e-2 (γ = 1, β = 0 at the start)
    mean, var = x1.mean((0, 2, 3)).view(1, -1, 1, 1), x1.var((0, 2, 3), unbiased=False).view(1, -1, 1, 1)
    torch.testing.assert_close(out, (x1 - mean) / torch.sqrt(var + 1e-2))
    torch.testing.assert_close(bn.running_mean, 0.5 * x1.mean((0, 2, 3)))
    assert int(bn.num_batches_tracked) == 1
    cbn.eval()
    stats = bn.running_mean.clone()
    out = cbn(x2, y)  # eval: running statistics, nothing moves
    torch.testing.assert_close(out, (x2 - stats.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1)
                                                                                 + 1e-2))
    assert int(bn.num_batches_tracked) == 1 and torch.equal(bn.running_mean, stats)
    bn.reset_running_stats()
    bn.momentum = None
    cbn.train()
    cbn(x1, y)
    cbn(x2, y)
    assert int(bn.num_batches_tracked) == 2
    torch.testing.assert_close(bn.running_mean, (x1.mean((0, 2, 3)) + x2.mean((0, 2, 3))) / 2)


@pytest.mark.parametrize("kind", ["sliceable", "switchable"])
def test_cbn_errors_name_the_layer_and_the_shapes(kind):
    from edgegan.nn.cond_norm import SwitchableConditionalBatchNorm2d, _normalize

    cls = {"sliceable": SliceableConditionalBatchNorm2d, "switchable": SwitchableConditionalBatchNorm2d}[kind]
    cbn = cls([2, 4], 3)
    x = torch.zeros(2, 4, 1, 1)
    with pytest.raises(ValueError, match=r"^a class-conditional layer needs the class labels y \(N int64 in "
                                         r"\[0, 3\)\)$"):
        cbn(x, None)
    with pytest.raises(ValueError, match=r"^labels must be a 1-D tensor of 2 class indices, got shape \(2, 1\)$"):
        cbn(x, torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^labels must be a 1-D tensor of 2 class indices, got shape \(3,\)$"):
        cbn(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^%s got 5 channels, holds at most 4$" % cls.__name__):
        cbn(torch.zeros(2, 5, 1, 1), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^BatchNorm of 2 channels got 3$"):
        _normalize(cbn.bn[0], torch.zeros(2, 3, 1, 1), True)


def test_static_cbn_is_frozen_and_describes_itself():
    from edgegan.nn.cond_norm import StaticConditionalBatchNorm2d

    static = _cbn().to_static(4)
    assert isinstance(static, StaticConditionalBatchNorm2d)
    assert all(not p.requires_grad for p in StaticConditionalBatchNorm2d(4, 3).parameters())
    assert all(not p.requires_grad for p in static.parameters())
    assert repr(static) == "StaticConditionalBatchNorm2d(4, n_classes=3)"


def test_sliceable_cbn_in_the_exported_onnx_graph():
    ort = pytest.importorskip("onnxruntime")
    cbn = _cbn().eval()
    y = torch.tensor([1, 2, 0])
    for i, s in enumerate((2, 4)):
        static = cbn.to_static(s)
        x = torch.randn(3, s, 2, 2, generator=torch.Generator().manual_seed(s))
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(static, (x, y), buf, input_names=["x", "label"], output_names=["out"],
                              opset_version=17, dynamo=False)
        session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
        out = session.run(None, {"x": x.numpy(), "label": y.numpy()})[0]
        expected = _cbn_formula(cbn, i, x, y, training=False).detach().numpy()
        assert np.abs(out - expected).max() <= 1e-4


# --- the options both recipes share ------------------------------------------------------------------

@pytest.mark.parametrize("change,message", [
    (dict(distill="sideways"), "--distill must be one of stepwise, naive, none, got 'sideways'"),
    (dict(same_d=True, slimmable_d=True), "--same-d and --slimmable-d are different discriminator ablations"),
    (dict(d_share=-1), "--d-share must be 0 or more, got -1"),
    (dict(batch_size=0), "--batch-size must be at least 1, got 0"),
    (dict(steps=0), "--steps must be at least 1, got 0"),
])
def test_recipe_options_are_checked_with_the_flag_named(change, message):
    from edgegan.errors import EdgeganError
    from edgegan.train.slimgan import SlimGANConfig
    from edgegan.train.slimmable import SlimmableConfig

    for cls in (SlimmableConfig, SlimGANConfig):
        cls().validate()  # the defaults are valid
        with pytest.raises(EdgeganError) as e:
            cls(**change).validate()
        assert str(e.value).startswith(message)
    SlimmableConfig(d_share=0, steps=1, batch_size=1, ngf=1, ndf=1).validate()  # the bounds themselves are allowed


def test_inplace_distillation_defaults_and_errors():
    outs = [torch.full((1, 1, 2, 2), v) for v in (0.0, 1.0, 3.0)]
    assert torch.equal(inplace_distillation(outs), inplace_distillation(outs, "stepwise"))  # stepwise by default
    assert float(inplace_distillation(outs[:1])) == 0.0  # one width: nothing to distil
    with pytest.raises(ValueError, match=r"^distillation mode must be one of \('stepwise', 'naive', 'none'\), "
                                         r"got 'sideways'$"):
        inplace_distillation(outs, "sideways")


def test_discriminator_schedule_per_ablation():
    """Shared D: head i for width i; same D: head 0 for every width; slimmable D: head 0 at the width's own
    channels."""
    from edgegan.models import SlimmablePatchGAN
    from edgegan.nn import current_config
    from edgegan.train.recipe_options import d_schedule

    shared = SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=4)
    assert [head for head, _ in d_schedule(shared, WIDTHS)] == [0, 1, 2, 3]
    same = SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1)
    assert [head for head, _ in d_schedule(same, WIDTHS)] == [0, 0, 0, 0]
    slim = SlimmablePatchGAN(2, ndf=4, n_layers=2, widths=WIDTHS)
    for (head, ctx), w in zip(d_schedule(slim, WIDTHS), WIDTHS):
        with ctx():
            assert head == 0 and current_config(slim).width == w
        assert current_config(slim).width == 1.0
    for (_, ctx) in d_schedule(shared, WIDTHS):
        with ctx():
            assert current_config(shared).width == 1.0


@pytest.mark.parametrize("recipe,change,message", [
    ("slimmable", dict(widths=()), "--widths must be multipliers in (0, 1], got ()"),
    ("slimmable", dict(widths=(0.0, 1.0)), "--widths must be multipliers in (0, 1], got (0.0, 1.0)"),
    ("slimmable", dict(widths=(0.5, 1.5)), "--widths must be multipliers in (0, 1]"),
    ("slimmable", dict(ngf=0), "--ngf must be at least 1, got 0"),
    ("slimmable", dict(ndf=0), "--ndf must be at least 1, got 0"),
    ("slimgan", dict(model="unet"), "--model must be one of dcgan, resnet, got 'unet'"),
    ("slimgan", dict(n_classes=3), "--n-classes must be 0 (unconditional) or 10 (Fashion-MNIST), got 3"),
    ("slimgan", dict(nz=0), "--nz must be at least 1, got 0"),
    ("slimgan", dict(ndf=0), "--ndf must be at least 1, got 0"),
])
def test_recipe_specific_options(recipe, change, message):
    from edgegan.errors import EdgeganError
    from edgegan.train.slimgan import SlimGANConfig
    from edgegan.train.slimmable import SlimmableConfig

    cls = SlimmableConfig if recipe == "slimmable" else SlimGANConfig
    with pytest.raises(EdgeganError) as e:
        cls(**change).validate()
    assert str(e.value).startswith(message)
    SlimmableConfig(widths=(1.0,)).validate()
    SlimGANConfig(model="resnet", n_classes=10, nz=1).validate()


@pytest.mark.parametrize("change,message", [
    (dict(arch="vgg"), "--arch must be one of resnet, unet, got 'vgg'"),
    (dict(num_downs=3), "--num-downs is the number of UNet levels (--arch unet), at least 2; got 3"),
    (dict(arch="unet", num_downs=1), "--num-downs is the number of UNet levels (--arch unet), at least 2; got 1"),
    (dict(dropout=True), "--dropout is an option of --arch unet"),
    (dict(amp="fp8"), "--amp must be one of none, bf16, fp16, got 'fp8'"),
    (dict(workers=-1), "--workers must be 0 (load in the training process) or more, got -1"),
])
def test_paired_recipe_architecture_options(change, message):
    from edgegan.errors import EdgeganError
    from edgegan.train.slimmable import SlimmableConfig

    with pytest.raises(EdgeganError) as e:
        SlimmableConfig(**change).validate()
    assert str(e.value) == message
    for fine in (dict(arch="unet", num_downs=2, dropout=True), dict(arch="unet"), dict(amp="bf16", workers=0),
                 dict(amp="fp16", workers=2)):
        SlimmableConfig(**fine).validate()


def test_build_gan_per_discriminator_ablation():
    from edgegan.errors import EdgeganError
    from edgegan.models import NoiseResnetGenerator, SlimmableProjectionD
    from edgegan.nn.cond_norm import SwitchableConditionalBatchNorm2d
    from edgegan.train.slimgan import SlimGANConfig, build_gan

    base = dict(nz=8, ngf=4, ndf=4, widths=(1.0, 0.5))
    g, d = build_gan(SlimGANConfig(**base), size=16, out_channels=3)
    assert isinstance(g, DCGANGenerator) and g.widths == (0.5, 1.0)
    assert (g.nz, g.hparams["ngf"], g.hparams["size"], g.hparams["out_channels"], g.n_classes) == (8, 4, 16, 3, 0)
    assert isinstance(d, SharedTrunkProjectionD) and len(d.heads) == 2
    assert (d.hparams["in_channels"], d.hparams["ndf"], d.hparams["size"], d.hparams["n_share"]) == (3, 4, 16, 1)
    assert len(build_gan(SlimGANConfig(same_d=True, **base), size=16)[1].heads) == 1
    _, d = build_gan(SlimGANConfig(slimmable_d=True, n_classes=10, **base), size=16)
    assert isinstance(d, SlimmableProjectionD) and d.hparams["widths"] == [0.5, 1.0] and d.hparams["n_classes"] == 10
    g, _ = build_gan(SlimGANConfig(model="resnet", n_classes=10, cbn="switchable", **base), size=16)
    assert isinstance(g, NoiseResnetGenerator) and g.n_classes == 10
    assert any(isinstance(m, SwitchableConditionalBatchNorm2d) for m in g.modules())
    with pytest.raises(EdgeganError, match=r"^--d-share 3: n_share must be in \[0, 2\) for size 16, got 3$"):
        build_gan(SlimGANConfig(d_share=3, **base), size=16)
    g, d = build_gan(SlimGANConfig(n_classes=10, **base))  # defaults: 32², one channel
    assert (g.hparams["size"], g.hparams["out_channels"]) == (32, 1)
    assert (d.hparams["in_channels"], d.hparams["size"], d.hparams["n_classes"]) == (1, 32, 10)
    _, d = build_gan(SlimGANConfig(slimmable_d=True, **base), size=16, out_channels=3)
    assert (d.hparams["in_channels"], d.hparams["ndf"], d.hparams["size"], d.hparams["n_classes"]) == (3, 4, 16, 0)


@pytest.mark.parametrize("n_classes", [0, 10])
def test_sample_widths_uses_the_same_noise_and_labels_at_every_width(n_classes):
    from edgegan.train.slimgan import sample_widths

    torch.manual_seed(0)
    g = DCGANGenerator(nz=8, ngf=4, size=16, n_classes=n_classes, widths=WIDTHS).train()
    with torch.no_grad():  # per-class tables away from their (label-blind) start
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    out = sample_widths(g, 13, seed=3, batch_size=3)
    assert g.training and sorted(out) == list(WIDTHS)
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(13, 8, generator=gen)
    args = (z, torch.arange(13) % 10) if n_classes else (z,)  # labels k mod 10
    g.eval()
    with torch.no_grad():
        for w in WIDTHS:
            with at_width(g, w):
                torch.testing.assert_close(out[w], g(*args))


def test_sample_widths_defaults_seed_0_in_batches_of_250():
    from edgegan.train.slimgan import sample_widths

    torch.manual_seed(0)
    g = DCGANGenerator(nz=4, ngf=2, size=8, n_classes=0, widths=(0.5, 1.0))
    sizes = []
    hook = g.register_forward_pre_hook(lambda mod, args: sizes.append(args[0].shape[0]))
    out = sample_widths(g, 260)
    hook.remove()
    assert sizes == [250, 10, 250, 10]
    assert out[1.0].shape == (260, 1, 8, 8)
    torch.testing.assert_close(sample_widths(g, 5)[1.0], sample_widths(g, 5, seed=0)[1.0])
    assert not torch.equal(sample_widths(g, 5)[1.0], sample_widths(g, 5, seed=1)[1.0])


@pytest.mark.parametrize("n_classes,distill", [(10, "naive"), (0, "stepwise")])
def test_noise_step_returns_and_reports_every_width(n_classes, distill):
    """The averaged losses it returns, the per-width terms it reports, the distillation mode it is given; an
    unconditional GAN ignores the data set's labels."""
    from edgegan.train.slimgan import SlimGANConfig, train_step

    torch.manual_seed(0)
    g = DCGANGenerator(nz=8, ngf=4, size=16, n_classes=n_classes, widths=WIDTHS).train()
    d = SharedTrunkProjectionD(1, ndf=4, size=16, n_classes=n_classes, n_share=1, n_heads=len(WIDTHS))
    labels = torch.arange(6) % 10
    y = labels if n_classes else None
    for i in range(len(WIDTHS)):
        settled_discriminator(d, torch.randn(6, 1, 16, 16), y, i)
    real = torch.rand(6, 1, 16, 16) * 2 - 1
    config = SlimGANConfig(nz=8, ngf=4, ndf=4, n_classes=n_classes, lambda_distill=10.0, distill=distill)
    per_width = {}
    torch.manual_seed(7)
    out = train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), real, labels, config, per_width=per_width)
    torch.manual_seed(7)
    z = torch.randn(6, 8)
    with torch.no_grad():
        fakes = _at_every_width(g, *((z, y) if n_classes else (z,)))
        d_terms = [float(F.relu(1 - d(real, y, i)).mean() + F.relu(1 + d(f, y, i)).mean()) for i, f in enumerate(fakes)]
        g_terms = [float(-d(f, y, i).mean()) for i, f in enumerate(fakes)]
        teachers = fakes[1:] if distill == "stepwise" else [fakes[-1]] * 3
        distillation = float(sum(((f - t) ** 2).mean() for f, t in zip(fakes, teachers)) / 3)
    keys = ["w0.25", "w0.5", "w0.75", "w1"]
    expected = dict([("d/" + k, v) for k, v in zip(keys, d_terms)] + [("g/" + k, v) for k, v in zip(keys, g_terms)])
    assert per_width == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert out == pytest.approx({"d": sum(d_terms) / 4, "g": sum(g_terms) / 4, "distill": distillation},
                                rel=1e-4, abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_noise_step_and_sampling_on_cuda():
    from edgegan.train.slimgan import SlimGANConfig, sample_widths, train_step

    g = DCGANGenerator(nz=8, ngf=4, size=16, n_classes=10, widths=WIDTHS).cuda()
    d = SharedTrunkProjectionD(1, ndf=4, size=16, n_classes=10, n_share=1, n_heads=len(WIDTHS)).cuda()
    real, labels = torch.rand(6, 1, 16, 16, device="cuda"), torch.arange(6, device="cuda") % 10
    config = SlimGANConfig(nz=8, ngf=4, ndf=4, n_classes=10)
    out = train_step(g, d, frozen_optimizer(g), frozen_optimizer(d), real, labels, config)
    assert set(out) == {"d", "g", "distill"}
    assert sample_widths(g, 3, device="cuda")[1.0].shape == (3, 1, 16, 16)


def test_build_models_follow_the_config():
    import types

    from edgegan.errors import EdgeganError
    from edgegan.models import SlimmablePatchGAN
    from edgegan.train.slimmable import SlimmableConfig, build_models

    meta = {"size": 16, "in_channels": 1, "out_channels": 3}
    config = SlimmableConfig(ngf=4, n_blocks=2, norm="in", padding="zero", upsample="resize", widths=(1.0, 0.5), ndf=8,
                             d_share=1)
    g, d = build_models(config, meta, "cpu")
    assert g.hparams == dict(in_channels=1, out_channels=3, ngf=4, n_blocks=2, norm="in", padding="zero",
                             upsample="resize", widths=[0.5, 1.0])
    assert d.hparams == dict(in_channels=4, ndf=8, n_layers=2, n_share=1, n_heads=2)
    for size, layers in ((124, 2), (128, 3)):  # pix2pix's 3 stride-2 layers from 128² on
        assert build_models(config, dict(meta, size=size), "cpu")[1].hparams["n_layers"] == layers
    assert build_models(SlimmableConfig(ngf=4, n_blocks=1, d_layers=4), meta, "cpu")[1].hparams["n_layers"] == 4
    assert build_models(SlimmableConfig(ngf=4, n_blocks=1, same_d=True), meta, "cpu")[1].hparams["n_heads"] == 1
    _, d = build_models(SlimmableConfig(ngf=4, n_blocks=1, ndf=8, slimmable_d=True, widths=(0.5, 1.0)), meta, "cpu")
    assert isinstance(d, SlimmablePatchGAN) and d.hparams == dict(in_channels=4, ndf=8, n_layers=2, widths=[0.5, 1.0])
    # a config object of its own, without the slimmable_d ablation flag: the shared-trunk discriminator
    plain = types.SimpleNamespace(**{k: v for k, v in vars(SlimmableConfig(ngf=4, n_blocks=1)).items()
                                     if k != "slimmable_d"})
    assert isinstance(build_models(plain, meta, "cpu")[1], SharedTrunkPatchGAN)
    build_models(SlimmableConfig(ngf=4, n_blocks=1, d_share=3), dict(meta, size=8), "cpu")  # 3 = all 3 layers
    with pytest.raises(EdgeganError, match=r"^--d-share 4: the discriminator has 3 layers before its output conv; "
                                           r"share at most 3$"):
        build_models(SlimmableConfig(ngf=4, n_blocks=1, d_share=4), meta, "cpu")
    for size in (4, 10):
        with pytest.raises(EdgeganError, match=r"^--size must be a multiple of 4 and at least 8 \(the generator "
                                               r"downsamples twice\), got %d$" % size):
            build_models(config, dict(meta, size=size), "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_build_models_on_cuda():
    from edgegan.train.slimmable import SlimmableConfig, build_models

    meta = {"size": 16, "in_channels": 1, "out_channels": 3}
    for slimmable_d in (False, True):
        g, d = build_models(SlimmableConfig(ngf=4, n_blocks=1, ndf=4, slimmable_d=slimmable_d), meta, "cuda")
        assert {p.device.type for m in (g, d) for p in m.parameters()} == {"cuda"}


def test_one_discriminator_ablation_at_a_time():
    from edgegan.errors import EdgeganError
    from edgegan.train.slimmable import SlimmableConfig

    SlimmableConfig(same_d=True).validate()
    SlimmableConfig(slimmable_d=True).validate()
    with pytest.raises(EdgeganError):
        SlimmableConfig(same_d=True, slimmable_d=True).validate()
