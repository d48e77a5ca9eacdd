"""Anycost's defining behaviour (METHODS.md §3).

* sorting by importance leaves the full width's function unchanged and puts the most important
  channels first (a hand-checked permutation);
* the consistency loss aims every sub-width at the *detached* full-width output: it moves the
  sub-networks toward the full width, never the full width toward them.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import with_bn_statistics
from method_grads import assert_grads_equal, frozen_optimizer, reference_grads, settled_discriminator, step_grads
from pairs_data import Pairs

from edgegan.models import ResnetGenerator, SharedTrunkPatchGAN
from edgegan.nn import ElasticConv2d, ElasticConvTranspose2d, SwitchableBatchNorm2d
from edgegan.nn.sorting import sort_channels
from edgegan.nn.slots import width_to_channels
from edgegan.nn import at_width
from edgegan.train.anycost import anycost_step, consistency_loss, train_anycost
from edgegan.train.losses import d_hinge_loss


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


def test_sorting_a_chain_by_hand():
    """Output-channel importance (L1 of each kernel) 1, 3, 2 → order [1, 2, 0]: the producer's rows, its
    BatchNorm and the consumer's input columns move together, so the function is the same."""
    conv1 = nn.Conv2d(2, 3, 1, bias=True)
    bn = nn.BatchNorm2d(3)
    conv2 = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv1.weight.copy_(torch.tensor([[0.5, -0.5], [1.0, -2.0], [-1.5, 0.5]]).view(3, 2, 1, 1))
        conv1.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
        bn.running_mean.copy_(torch.tensor([1.0, 2.0, 3.0]))
        bn.running_var.copy_(torch.tensor([4.0, 5.0, 6.0]))
        bn.weight.copy_(torch.tensor([7.0, 8.0, 9.0]))
        conv2.weight.copy_(torch.arange(6.0).view(2, 3, 1, 1))
    net = nn.Sequential(conv1, bn, nn.ReLU(), conv2).eval()
    x = torch.randn(4, 2, 3, 3)
    with torch.no_grad():
        ref = net(x)
    (perm,) = sort_channels(net)
    assert perm.tolist() == [1, 2, 0]
    assert conv1.bias.tolist() == pytest.approx([0.2, 0.3, 0.1])
    assert bn.running_mean.tolist() == [2.0, 3.0, 1.0] and bn.weight.tolist() == [8.0, 9.0, 7.0]
    assert conv2.weight.view(2, 3).tolist() == [[1.0, 2.0, 0.0], [4.0, 5.0, 3.0]]
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref)


def test_consistency_loss_targets_the_detached_full_width_output():
    """ℓ = mean((G_w − sg G_1)²): ∂ℓ/∂G_w = 2(G_w − G_1)/n, and nothing reaches G_1."""
    sub = torch.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    full = torch.tensor([[0.0, 2.0], [4.0, 1.0]], requires_grad=True)
    total, mse, _ = consistency_loss(sub, full)
    total.backward()
    assert float(mse.detach()) == pytest.approx((1 + 0 + 1 + 16) / 4)
    assert sub.grad.tolist() == [[0.5, 0.0], [-0.5, 2.0]]
    assert full.grad is None


def _exclusive_to_full_width(module, widths):
    """Boolean masks of the entries of each elastic weight, and of the BatchNorms, that only width 1.0 uses."""
    below = max(w for w in widths if w < 1.0)
    out = {}
    for name, m in module.named_modules():
        if isinstance(m, (ElasticConv2d, ElasticConvTranspose2d)):
            w = m.weight
            if isinstance(m, ElasticConvTranspose2d):  # in × out
                n_in, n_out = w.shape[0], w.shape[1]
            else:
                n_out, n_in = w.shape[0], w.shape[1]
            o = n_out if m.fixed_out else width_to_channels(below, n_out)
            i = n_in if n_in == module.hparams["in_channels"] else width_to_channels(below, n_in)
            mask = torch.ones_like(w, dtype=torch.bool)
            if isinstance(m, ElasticConvTranspose2d):
                mask[:i, :o] = False
            else:
                mask[:o, :i] = False
            out[name + ".weight"] = mask
        elif isinstance(m, SwitchableBatchNorm2d):
            for p in ("weight", "bias"):
                out["%s.bn.%d.%s" % (name, len(m.bn) - 1, p)] = torch.ones_like(getattr(m.bn[-1], p), dtype=torch.bool)
    return out


def test_consistency_training_leaves_what_only_the_full_width_uses_untouched():
    """With the full width's own loss off (λ_L1 = 0), the consistency loss alone trains: the sub-widths move,
    and the weights only width 1.0 uses do not (Adam leaves a weight with a zero gradient in place)."""
    torch.manual_seed(0)
    g = with_bn_statistics(ResnetGenerator(1, 1, ngf=8, n_blocks=1, norm="bn"), (4, 1, 16, 16))
    before = {k: v.clone() for k, v in g.state_dict().items()}
    ckpt = train_anycost(g, Pairs(8), 2, batch_size=4, lambda_l1=0.0, sample="all", sort=False,
                         recalibrate_batches=0, log=lambda line: None)
    after = ckpt["generator"]["state_dict"]
    exclusive = _exclusive_to_full_width(g, g.widths)
    assert exclusive
    for name, mask in exclusive.items():
        assert torch.equal(after[name][mask], before[name][mask]), name
        if ".bn." not in name:  # the part the sub-widths share did train
            assert not torch.equal(after[name][~mask], before[name][~mask]), name


def test_anycost_step_follows_the_consistency_loss():
    """L = λ_L1·|G_1(x) − y| + λ_c·mean over the drawn sub-widths of mean((G_w(x) − sg G_1(x))²)."""
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").train()
    data = Pairs(4)
    losses = anycost_step(g, frozen_optimizer(g), data.x, data.y, [0.25, 0.75], lambda_l1=2.0, lambda_consistency=3.0)
    step = step_grads(g)
    full = g(data.x)
    subs = []
    for w in (0.25, 0.75):
        with at_width(g, w):
            subs.append(g(data.x))
    consistency = sum(((s - full.detach()) ** 2).mean() for s in subs) / 2
    assert_grads_equal(step, reference_grads(2.0 * (full - data.y).abs().mean() + 3.0 * consistency, g))
    assert losses["consistency"] == pytest.approx(float(consistency.detach()), rel=1e-5)
    assert losses["l1"] == pytest.approx(float(F.l1_loss(full, data.y).detach()), rel=1e-5)
    assert losses["widths"] == [0.25, 0.75]


def test_anycost_step_with_a_discriminator_and_perceptual_features():
    """With λ_GAN: D takes its hinge step on (x, y) vs (x, sg G_1(x)) first (its gradients are those alone),
    then L_G = λ_L1·|G_1 − y| + λ_GAN·(−D(x, G_1)) + λ_c·mean_w [MSE(G_w, sg G_1) + λ_p·MSE(φ(G_w), φ(sg G_1))]."""
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").train()
    d = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1), torch.randn(2, 2, 16, 16))
    phi = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh()).requires_grad_(False)
    data = Pairs(4)
    d.requires_grad_(False)  # as the step before left it
    losses = anycost_step(g, frozen_optimizer(g), data.x, data.y, [0.25, 0.5], lambda_l1=2.0, lambda_consistency=3.0,
                          perceptual=phi, lambda_perceptual=0.5, discriminator=d, opt_d=frozen_optimizer(d),
                          lambda_gan=0.7)
    g_step, d_step = step_grads(g), step_grads(d)
    assert all(p.requires_grad is False for p in d.parameters())
    full = g(data.x)
    d.requires_grad_(True)
    loss_d = d_hinge_loss(d(torch.cat([data.x, data.y], 1)), d(torch.cat([data.x, full.detach()], 1)))
    assert_grads_equal(d_step, reference_grads(loss_d, d))
    adversarial = -d(torch.cat([data.x, full], 1)).mean()
    mse, perc = [], []
    for w in (0.25, 0.5):
        with at_width(g, w):
            sub = g(data.x)
        mse.append(((sub - full.detach()) ** 2).mean())
        perc.append(((phi(sub) - phi(full.detach())) ** 2).mean())
    loss_g = (2.0 * (full - data.y).abs().mean() + 0.7 * adversarial
              + 3.0 * sum(m + 0.5 * q for m, q in zip(mse, perc)) / 2)
    assert_grads_equal(g_step, reference_grads(loss_g, g))
    expected = {"d": loss_d, "g": adversarial, "l1": (full - data.y).abs().mean(), "consistency": sum(mse) / 2,
                "perceptual": sum(perc) / 2}
    assert sorted(losses) == sorted(list(expected) + ["widths"])
    for key, value in expected.items():
        assert losses[key] == pytest.approx(float(value.detach()), rel=1e-5), key


def test_anycost_step_defaults_are_lambda_100_and_no_gan_or_perceptual_term():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").train()
    data = Pairs(4)

    def reference():
        full = g(data.x)
        with at_width(g, 0.5):
            sub = g(data.x)
        return reference_grads(100.0 * (full - data.y).abs().mean() + 100.0 * ((sub - full.detach()) ** 2).mean(), g)

    losses = anycost_step(g, frozen_optimizer(g), data.x, data.y, [0.5])
    assert_grads_equal(step_grads(g), reference())
    assert sorted(losses) == ["consistency", "l1", "widths"]
    # a discriminator and perceptual features without their weights add nothing to the generator's loss
    d = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1), torch.randn(2, 2, 16, 16))
    phi = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh()).requires_grad_(False)
    losses = anycost_step(g, frozen_optimizer(g), data.x, data.y, [0.5], perceptual=phi, discriminator=d,
                          opt_d=frozen_optimizer(d))
    assert_grads_equal(step_grads(g), reference())
    assert losses["perceptual"] == 0.0


def test_consistency_error_is_the_eval_mode_mse_to_the_full_width():
    from edgegan.train.anycost import consistency_error

    torch.manual_seed(0)
    g = with_bn_statistics(ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn"), (4, 1, 16, 16)).train()
    x = Pairs(3).x
    err = consistency_error(g, x)
    assert g.training and sorted(err) == ["w0.25", "w0.5", "w0.75"]
    g.eval()
    with torch.no_grad():
        full = g(x)
        for w in (0.25, 0.5, 0.75):
            with at_width(g, w):
                assert err["w%g" % w] == pytest.approx(float(((g(x) - full) ** 2).mean()), rel=1e-5)
    assert sorted(consistency_error(g, x, widths=[0.5, 1.0])) == ["w0.5"]
    assert sorted(consistency_error(g, x, widths=[1.0, 0.25, 0.5])) == ["w0.25", "w0.5"]  # the full width skipped


def test_sort_preserving_checks_the_full_width():
    from edgegan.errors import EdgeganError
    from edgegan.nn.sorting import Group
    from edgegan.train.anycost import sort_preserving

    torch.manual_seed(0)
    g = with_bn_statistics(ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn"), (4, 1, 16, 16)).train()
    x = Pairs(3).x
    g.eval()
    with torch.no_grad():
        ref = g(x)
    g.train()
    perms, diff = sort_preserving(g, x)
    assert g.training and 0.0 <= diff <= 1e-4 and len(perms) == len(g.sorting_groups())
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms)
    g.eval()
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref, atol=1e-4, rtol=0)
    with pytest.raises(EdgeganError, match=r"^channel sorting changed the full-width output by 0\.00e\+00 \(> -1e\+00\); "
                                           r"this generator's channel groups are not what sort_channels assumes$"):
        sort_preserving(g, x, atol=-1.0)  # no difference is small enough
    assert sort_preserving(g, x, atol=0.0)[1] == 0.0  # sorted already: the identity, exactly the same output
    broken = with_bn_statistics(ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn"), (4, 1, 16, 16))
    groups = broken.sorting_groups()
    broken.sorting_groups = lambda: [Group(gr.producers, [], gr.passthrough) for gr in groups]  # consumers left out
    with pytest.raises(EdgeganError, match="channel groups are not what sort_channels assumes"):
        sort_preserving(broken, x)


def test_resolve_widths_defaults_bounds_and_errors():
    from edgegan.errors import EdgeganError
    from edgegan.train.anycost import resolve_widths

    one = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn", widths=[1.0])  # imported: full width only
    widths, slim = resolve_widths(one, None)
    assert widths == [0.25, 0.5, 0.75, 1.0] and list(slim.widths) == widths
    two = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn", widths=[0.5, 1.0])
    widths, same = resolve_widths(two, None)
    assert widths == [0.5, 1.0] and same is two  # its own widths, nothing rebuilt
    inorm = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in", widths=[0.5, 1.0])
    assert resolve_widths(inorm, [0.5])[0] == [0.5, 1.0]
    for bad in ([0.0], [1.5]):
        with pytest.raises(EdgeganError, match=r"^widths must be in \(0, 1\], got \[%s\]$"
                                               % ", ".join("%r" % w for w in sorted(set(bad) | {1.0}))):
            resolve_widths(inorm, bad)
    with pytest.raises(EdgeganError, match=r"^consistency training needs at least one width below 1\.0$"):
        resolve_widths(inorm, [1.0])
    with pytest.raises(EdgeganError, match=r"^width\(s\) 0\.25, 0\.75 have no BatchNorm of their own in this checkpoint "
                                           r"\(it has 0\.5, 1\); choose among those$"):
        resolve_widths(two, [0.25, 0.5, 0.75])
    tiny = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn", widths=[1e-5, 1.0])  # %g: exponents in lower case
    with pytest.raises(EdgeganError, match=r"^width\(s\) 1e-05 have no BatchNorm of their own in this checkpoint "
                                           r"\(it has 0\.5, 1\); choose among those$"):
        resolve_widths(two, [1e-5])
    with pytest.raises(EdgeganError, match=r"\(it has 1e-05, 1\); choose among those$"):
        resolve_widths(tiny, [0.5])


def test_consistency_loss_adds_the_perceptual_term_only_with_a_weight():
    torch.manual_seed(0)
    phi = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh()).requires_grad_(False)
    sub, full = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    mse = ((sub - full) ** 2).mean()
    for args in ((), (phi,), (None, 0.5), (phi, 0.0)):
        total, m, perc = consistency_loss(sub, full, *args)
        assert perc is None and torch.equal(total, m) and float(m) == pytest.approx(float(mse))
    total, m, perc = consistency_loss(sub, full, phi, 0.5)
    assert float(perc) == pytest.approx(float(((phi(sub) - phi(full)) ** 2).mean()))
    assert float(total) == pytest.approx(float(mse + 0.5 * perc))


def test_parameters_outside_the_step_keep_no_gradient():
    """Gradients are cleared (None), not zeroed, before the step: the BatchNorms of widths not drawn this step
    and a discriminator head that scores nothing get no Adam update."""
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn").train()
    d = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=2), torch.randn(2, 2, 16, 16))
    for p in list(g.parameters()) + list(d.parameters()):
        p.grad = torch.ones_like(p)  # left over from an earlier step
    data = Pairs(4)
    anycost_step(g, frozen_optimizer(g), data.x, data.y, [0.5], discriminator=d, opt_d=frozen_optimizer(d),
                 lambda_gan=1.0)
    bn = next(m for m in g.modules() if isinstance(m, SwitchableBatchNorm2d))
    assert [p.grad is None for p in bn.bn[0].parameters()] == [True, True]  # width 0.25: not drawn
    assert all(p.grad is not None for p in bn.bn[1].parameters())  # width 0.5
    assert all(p.grad is None for p in d.heads[1].parameters())
