"""GAN Compression's defining behaviour (METHODS.md §2), pinned on single supernet steps.

* feature distillation reaches the student through the adapters: ``Σ_t ‖f_t(S_t(x)) − sg(T_t(x))‖²``
  moves the student and the adapters, never the teacher;
* the reconstruction target is the real target on paired data; the teacher's output when asked, and
  for unpaired data (where the teacher's outputs also become the discriminator's real images);
* once-for-all sampling covers every channel choice (multiples of 8 up to the teacher's count), and a
  sub-network runs the first c_k channels of each weight.
"""

import random

import pytest
import torch
import torch.nn.functional as F
from method_grads import (assert_grads_equal, frozen_optimizer, nonzero, reference_grads, settled_discriminator,
                          step_grads)
from pairs_data import Pairs

from edgegan.errors import EdgeganError
from edgegan.models import MobileResnetGenerator, ResnetGenerator, SharedTrunkPatchGAN
from edgegan.nn import ElasticConv2d, channel_slots, set_width
from edgegan.train.distill import FeatureAdapters, capture, resolve_recon_target, supernet_step
from edgegan.train.search import SearchSpace


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


class Unpaired(Pairs):
    """The synthetic pairs, declared unpaired (as a CycleGAN data set is)."""

    paired = False


def _setup(seed=0):
    torch.manual_seed(seed)
    teacher = ResnetGenerator(1, 1, ngf=4, n_blocks=3, norm="in").eval()
    student = MobileResnetGenerator(1, 1, ngf=4, n_blocks=3, norm="in").train()
    # eval: no spectral-norm power step during the test
    disc = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1), torch.randn(2, 2, 16, 16))
    adapters = FeatureAdapters(student, teacher)
    return teacher, student, disc, adapters


def _step(teacher, student, disc, adapters, x, y, **kw):
    """One supernet step with frozen optimizers; returns the losses (with the config it sampled)."""
    space = SearchSpace.from_model(student, step=4)
    opt_g = frozen_optimizer(list(student.parameters()) + list(adapters.parameters()))
    return supernet_step(student, teacher, disc, adapters, opt_g, frozen_optimizer(disc), x, y, space,
                         random.Random(3), **kw)


def _reference(teacher, student, disc, adapters, x, y, recon_target, lambda_recon, lambda_distill, paired=True):
    """L_G = −D(x, S(x)) + λ_recon·|S(x) − target| + λ_distill·Σ_t mean((f_t(S_t) − sg(T_t))²) at the student's
    current config; L_D = hinge on (x, y) vs (x, sg S(x)); unpaired: the teacher's output replaces y."""
    with torch.no_grad(), capture(teacher, adapters.layers) as t_feats:
        t_out = teacher(x)
        t_feats = dict(t_feats)
    with capture(student, adapters.layers) as s_feats:
        fake = student(x)
        s_feats = dict(s_feats)
    if not paired:
        y = t_out
    target = t_out if recon_target == "teacher" else y
    loss_d = F.relu(1 - disc(torch.cat([x, y], 1))).mean() + \
        F.relu(1 + disc(torch.cat([x, fake.detach()], 1))).mean()
    distill = sum(((f(s_feats[n]) - t_feats[n]) ** 2).mean() for n, f in zip(adapters.layers, adapters.adapters))
    loss_g = -disc(torch.cat([x, fake], 1)).mean() + lambda_recon * (fake - target).abs().mean() + \
        lambda_distill * distill
    return loss_d, loss_g, distill


@pytest.mark.parametrize("recon_target", ["real", "teacher"])
def test_supernet_step_follows_gan_compression_losses(recon_target):
    teacher, student, disc, adapters = _setup()
    data = Pairs(2, size=16)
    out = _step(teacher, student, disc, adapters, data.x, data.y, lambda_recon=3.0, lambda_distill=2.0,
                recon_target=recon_target)
    s_step, a_step, d_step = step_grads(student), step_grads(adapters), step_grads(disc)
    set_width(student, out["config"])  # the step left the student at the config it sampled
    loss_d, loss_g, _ = _reference(teacher, student, disc, adapters, data.x, data.y, recon_target, 3.0, 2.0)
    assert_grads_equal(s_step, reference_grads(loss_g, student))
    assert_grads_equal(a_step, reference_grads(loss_g, adapters))
    assert_grads_equal(d_step, reference_grads(loss_d, disc))


def test_supernet_step_defaults_and_recon_target_error():
    """Defaults: λ_recon = 10, λ_distill = 1, L1 to the real target."""
    teacher, student, disc, adapters = _setup()
    data = Pairs(2, size=16)
    out = _step(teacher, student, disc, adapters, data.x, data.y)
    s_step, a_step = step_grads(student), step_grads(adapters)
    set_width(student, out["config"])
    _, loss_g, distill = _reference(teacher, student, disc, adapters, data.x, data.y, "real", 10.0, 1.0)
    assert_grads_equal(s_step, reference_grads(loss_g, student))
    assert_grads_equal(a_step, reference_grads(loss_g, adapters))
    assert out["distill"] == pytest.approx(float(distill.detach()), rel=1e-5)
    with pytest.raises(ValueError, match=r"^recon_target must be one of \('real', 'teacher'\), got 'target'$"):
        _step(teacher, student, disc, adapters, data.x, data.y, recon_target="target")


def test_adapters_map_the_students_features_to_the_teachers():
    """One 1×1 adapter per distilled layer, from the student's channels there to the teacher's (a mobile
    block's inner width differs from its output)."""
    teacher = ResnetGenerator(1, 1, ngf=4, n_blocks=3, norm="in")
    student = MobileResnetGenerator(1, 1, ngf=2, n_blocks=3, norm="in", hidden=24)
    adapters = FeatureAdapters(student, teacher)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad(), capture(student, adapters.layers) as s_feats, capture(teacher, adapters.layers) as t_feats:
        student(x), teacher(x)
    for name, f in zip(adapters.layers, adapters.adapters):
        assert (f.in_channels, f.out_channels) == (s_feats[name].shape[1], t_feats[name].shape[1]), name
        assert f.kernel_size == (1, 1)
    assert [f.in_channels for f in adapters.adapters] != [f.out_channels for f in adapters.adapters]


def test_feature_distillation_reaches_the_student_through_the_adapters():
    """With λ_recon = 0 the student's gradient is the adversarial one plus the distillation one, which flows
    from ``f_t(S_t)`` through the adapters into the student; the adapters get only the distillation one."""
    teacher, student, disc, adapters = _setup()
    data = Pairs(2, size=16)
    out = _step(teacher, student, disc, adapters, data.x, data.y, lambda_recon=0.0, lambda_distill=5.0)
    s_step, a_step = step_grads(student), step_grads(adapters)
    assert all(p.grad is None for p in teacher.parameters())  # the teacher is never trained
    set_width(student, out["config"])
    _, loss_g, distill = _reference(teacher, student, disc, adapters, data.x, data.y, "real", 0.0, 5.0)
    assert_grads_equal(s_step, reference_grads(loss_g, student))
    assert_grads_equal(a_step, reference_grads(5.0 * distill, adapters))
    assert all(nonzero(a_step, "adapters.%d." % i) for i in range(4))
    from_distill = reference_grads(5.0 * distill, student)
    assert nonzero(from_distill, "blocks.") and nonzero(from_distill, "down.")
    # the distillation term is a visible part of the student's gradient (a break that cuts it shows)
    adversarial_only = reference_grads(loss_g - 5.0 * distill, student)
    assert max(float((s_step[k] - adversarial_only[k]).abs().max()) for k in s_step) > 1e-2


def test_unpaired_data_makes_the_teacher_outputs_the_targets():
    teacher, student, disc, adapters = _setup()
    data = Unpaired(2, size=16)
    out = _step(teacher, student, disc, adapters, data.x, data.y, lambda_recon=3.0, lambda_distill=2.0,
                paired=False)
    s_step, d_step = step_grads(student), step_grads(disc)
    set_width(student, out["config"])
    loss_d, loss_g, _ = _reference(teacher, student, disc, adapters, data.x, data.y, "real", 3.0, 2.0, paired=False)
    assert_grads_equal(s_step, reference_grads(loss_g, student))
    assert_grads_equal(d_step, reference_grads(loss_d, disc))


def test_recon_target_resolution():
    assert resolve_recon_target("auto", Pairs(2)) == "real"
    assert resolve_recon_target("auto", Unpaired(2)) == "teacher"
    assert resolve_recon_target("teacher", Pairs(2)) == "teacher"
    with pytest.raises(EdgeganError, match="unpaired"):
        resolve_recon_target("real", Unpaired(2))
    with pytest.raises(EdgeganError):
        resolve_recon_target("target", Pairs(2))


def test_train_supernet_records_its_reconstruction_target():
    from edgegan.train.distill import train_supernet

    torch.manual_seed(0)
    teacher = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in")
    for data, expected in ((Pairs(4, size=16), "real"), (Unpaired(4, size=16), "teacher")):
        ckpt = train_supernet(teacher, data, steps=1, batch_size=2, step=4, log=lambda line: None)
        assert ckpt["train"]["recon_target"] == expected and ckpt["train"]["paired"] == (expected == "real")


# --- once-for-all sampling --------------------------------------------------------------------------

def test_search_space_is_multiples_of_8_up_to_the_teachers_channels():
    teacher = ResnetGenerator(1, 1, ngf=16, n_blocks=2, norm="in")
    student = MobileResnetGenerator(1, 1, ngf=teacher.hparams["ngf"], n_blocks=2, norm="in")
    space = SearchSpace.from_model(student, step=8)
    maxima = {k: s.max_channels for k, s in channel_slots(teacher).items()}
    assert {k: v[-1] for k, v in space.choices.items()} == maxima
    for name, choices in space.choices.items():
        assert choices == list(range(8, maxima[name] + 1, 8))
    odd = SearchSpace.from_model(MobileResnetGenerator(1, 1, ngf=12, n_blocks=1, norm="in"), step=8)
    assert odd.choices["stem"] == [8, 12] and odd.choices["stream"] == [8, 16, 24, 32, 40, 48]


def test_sampling_covers_every_choice_of_every_slot():
    space = SearchSpace.from_model(MobileResnetGenerator(1, 1, ngf=16, n_blocks=2, norm="in"), step=8)
    rng = random.Random(0)
    seen = {k: set() for k in space.choices}
    configs = [space.sample(rng) for _ in range(400)]
    for cfg in configs:
        for k, c in cfg.channels.items():
            seen[k].add(c)
    assert seen == {k: set(v) for k, v in space.choices.items()}
    assert len(set(configs)) > 300  # slots are drawn independently


def test_elastic_conv_runs_the_first_channels_of_its_weight():
    torch.manual_seed(0)
    conv = ElasticConv2d(6, 8, 3, padding=1)
    x = torch.randn(2, 4, 5, 5)
    conv.active_out = 3
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight[:3, :4], conv.bias[:3], padding=1))


def test_a_sampled_sub_network_runs_and_trains_the_first_channels():
    teacher, student, disc, adapters = _setup()
    data = Pairs(2, size=16)
    out = _step(teacher, student, disc, adapters, data.x, data.y)
    config = out["config"]
    grads = step_grads(student)
    slots = channel_slots(student)
    names = {id(m): n for n, m in student.named_modules()}
    for slot_name, c in config.channels.items():
        for conv in slots[slot_name].modules:
            g = grads[names[id(conv)] + ".weight"]
            g = g.transpose(0, 1) if conv.transposed else g  # output channels first
            assert float(g[c:].abs().sum()) == 0.0, slot_name  # channels past c_k take no part
            assert float(g[:c].abs().sum()) > 0, slot_name
    # the weights past c_k do not change the sub-network's output; those before do
    set_width(student, config)
    student.eval()
    conv = slots["stream"].modules[0]
    c = config.channels["stream"]
    with torch.no_grad():
        ref = student(data.x)
        conv.weight[c:] += 1.0
        assert torch.equal(student(data.x), ref)
        conv.weight[:c] += 1.0
        assert not torch.allclose(student(data.x), ref)


def test_recon_target_errors_say_what_to_do():
    assert resolve_recon_target("teacher", Unpaired(2)) == "teacher"
    assert resolve_recon_target(None, Pairs(2)) == "real"
    with pytest.raises(EdgeganError, match=r"^the reconstruction target must be auto, real or teacher, got 'target'$"):
        resolve_recon_target("target", Pairs(2))
    with pytest.raises(EdgeganError, match=r"^the data set is unpaired: its targets are not the inputs' translations, "
                                           r"so the reconstruction target must be the teacher's output \(recon target "
                                           r"auto or teacher\)$"):
        resolve_recon_target("real", Unpaired(2))


def test_inherit_a_one_head_discriminator_saved_without_a_head_count():
    from edgegan.train.distill import inherit_discriminator

    torch.manual_seed(0)
    d = SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=1).eval()
    arch = {"name": d.arch()["name"], "kwargs": {k: v for k, v in d.arch()["kwargs"].items() if k != "n_heads"}}
    s = inherit_discriminator({"arch": arch, "state_dict": d.state_dict()}).eval()
    x = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(s(x), d(x))


def test_parameters_outside_the_step_keep_no_gradient():
    """The optimizers' gradients are cleared (None), not zeroed, before each step: a parameter the step does not
    use (a discriminator head that scores nothing, a BatchNorm of another width) gets no Adam update."""
    torch.manual_seed(0)
    teacher = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").eval()
    student = MobileResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn").train()
    disc = settled_discriminator(SharedTrunkPatchGAN(2, ndf=4, n_layers=2, n_heads=2), torch.randn(2, 2, 16, 16))
    adapters = FeatureAdapters(student, teacher)
    params = list(student.parameters()) + list(adapters.parameters())
    for p in params + list(disc.parameters()):
        p.grad = torch.ones_like(p)  # left over from an earlier step
    data = Pairs(2, size=16)
    space = SearchSpace.from_model(student, step=4)
    supernet_step(student, teacher, disc, adapters, frozen_optimizer(params), frozen_optimizer(disc), data.x, data.y,
                  space, random.Random(3))
    assert all(p.grad is None for p in disc.heads[1].parameters())
    assert all(p.grad is not None for p in disc.heads[0].parameters())
    assert any(p.grad is None for p in student.parameters())  # the BatchNorms of the widths not sampled
