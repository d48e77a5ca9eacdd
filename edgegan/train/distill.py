"""GAN Compression: intermediate feature distillation and once-for-all supernet training.

``L_distill = Σ_t ‖f_t(S_t(x)) − T_t(x)‖²`` over 4 layers, ``f_t`` a learnable 1×1 conv mapping the
student's channels to the teacher's. The 4 layers of a ResNet-style generator (``ResnetGenerator`` or
``MobileResnetGenerator``) are the entry of the residual stream (``down``) and the outputs of the
blocks that split the n blocks in 3 groups (after blocks ⌈n/3⌉, ⌈2n/3⌉ and n; for 9 blocks: 3, 6, 9).

The student is elastic: each adapter is an ``ElasticConv2d`` with a fixed output width that reads
whichever channels the student's sampled configuration produces, so one set of adapters serves the
whole supernet. ``supernet_step`` samples a random configuration per step (``SearchSpace.sample``)
and trains the student at it with L = L_cGAN + λ_recon·L_recon + λ_distill·L_distill, the
reconstruction target being the teacher's output (unpaired → paired) or the real target.
"""

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn import ElasticConv2d, set_width
from .losses import d_hinge_loss, g_hinge_loss


def distill_layers(generator):
    """Names of the 4 distilled modules of a ResNet-style generator."""
    n = len(generator.blocks)
    picks = sorted(set(max(1, int(math.ceil(n * k / 3.0))) for k in (1, 2, 3)))
    return ["down"] + ["blocks.%d" % (i - 1) for i in picks]


def _out_channels(generator, name):
    if name == "down":
        return [m for m in generator.down if hasattr(m, "out_channels")][-1].out_channels
    block = generator.get_submodule(name)
    return [m for m in block.body if hasattr(m, "out_channels")][-1].out_channels


@contextlib.contextmanager
def capture(model, names):
    """Record the outputs of ``names`` (dict name → tensor) during the forward passes in the block."""
    feats = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda mod, args, out, n=n: feats.__setitem__(n, out)) for n in names]
    try:
        yield feats
    finally:
        for h in hooks:
            h.remove()


class FeatureAdapters(nn.Module):
    """One learnable 1×1 conv per distilled layer: student channels (any active count) → teacher channels."""

    def __init__(self, student, teacher, layers=None):
        super().__init__()
        self.layers = list(layers or distill_layers(student))
        self.adapters = nn.ModuleList([
            ElasticConv2d(_out_channels(student, n), _out_channels(teacher, n), 1, fixed_out=True)
            for n in self.layers])

    def loss(self, student_feats, teacher_feats):
        """Σ_t MSE(f_t(S_t), sg(T_t))."""
        total = 0.0
        for name, f in zip(self.layers, self.adapters):
            total = total + F.mse_loss(f(student_feats[name]), teacher_feats[name].detach())
        return total


def attention_map(feature):
    """PPCD's attention map: F = Σ_c |O(c, :, :)|², flattened per sample and L2-normalised."""
    a = feature.pow(2).sum(dim=1).flatten(1)
    return a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)


def attention_distillation(student_feats, teacher_feats, layers=None):
    """ℓ_CD = mean over layers and samples of ‖F_T/‖F_T‖₂ − F_S/‖F_S‖₂‖₂ (teacher detached).

    Channel counts of student and teacher may differ (the map sums over channels); spatial sizes
    must match. Class-conditional normalisation of teacher features (PPCD) is left to the caller.
    """
    layers = list(layers or student_feats)
    total = 0.0
    for name in layers:
        diff = attention_map(student_feats[name]) - attention_map(teacher_feats[name].detach())
        total = total + diff.norm(dim=1).mean()
    return total / len(layers)


def supernet_step(student, teacher, discriminator, adapters, opt_g, opt_d, inputs, targets, space, rng,
                  lambda_recon=10.0, lambda_distill=1.0, recon_target="teacher"):
    """One once-for-all step at a random config; returns the losses and the config sampled.

    ``opt_g`` must hold the student's and the adapters' parameters. ``discriminator(pair)`` scores
    input‖output pairs (a ``SharedTrunkPatchGAN`` with one head, e.g.).
    """
    config = space.sample(rng)
    set_width(student, config)
    teacher.eval()
    with torch.no_grad(), capture(teacher, adapters.layers) as t_feats:
        t_out = teacher(inputs)
        t_feats = dict(t_feats)
    with capture(student, adapters.layers) as s_feats:
        fake = student(inputs)
        s_feats = dict(s_feats)
    real_pair = torch.cat([inputs, targets], 1)

    discriminator.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    loss_d = d_hinge_loss(discriminator(real_pair), discriminator(torch.cat([inputs, fake.detach()], 1)))
    loss_d.backward()
    opt_d.step()

    discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    adversarial = g_hinge_loss(discriminator(torch.cat([inputs, fake], 1)))
    recon = F.l1_loss(fake, t_out if recon_target == "teacher" else targets)
    distill = adapters.loss(s_feats, t_feats)
    loss_g = adversarial + lambda_recon * recon + lambda_distill * distill
    loss_g.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    distill = float(distill.detach()) if torch.is_tensor(distill) else float(distill)
    return {"d": loss_d.item(), "g": adversarial.item(), "recon": recon.item(), "distill": distill,
            "config": config}


def inherit_discriminator(teacher_d, head=-1):
    """A one-head student discriminator holding the teacher's weights (GAN Compression: random init is unstable).

    ``teacher_d``: the teacher checkpoint's ``{"arch", "state_dict"}`` entry of a ``SharedTrunkPatchGAN``;
    the shared trunk and head ``head`` (default: the widest width's) are copied.
    """
    from ..models import build_model

    arch = {"name": teacher_d["arch"]["name"], "kwargs": dict(teacher_d["arch"]["kwargs"], n_heads=1)}
    student_d = build_model(arch)
    n_heads = teacher_d["arch"]["kwargs"].get("n_heads", 1)
    head = head % n_heads
    state = {}
    for k, v in teacher_d["state_dict"].items():
        if k.startswith("heads."):
            i, rest = k[len("heads."):].split(".", 1)
            if int(i) != head:
                continue
            k = "heads.0." + rest
        state[k] = v
    student_d.load_state_dict(state)
    return student_d


def train_supernet(teacher, train_set, steps, ngf=None, n_blocks=None, norm="in", step=8, batch_size=16,
                   lr=2e-4, lambda_recon=10.0, lambda_distill=1.0, seed=0, device="cpu", teacher_d=None, log=None):
    """Train a mobile once-for-all student from ``teacher`` on ``train_set``; returns a checkpoint dict.

    The student is a ``MobileResnetGenerator`` with the teacher's channel counts (ngf, blocks) unless
    given; each step samples a random per-slot config (multiples of ``step``). The checkpoint loads
    with ``load_generator`` and is what ``edgegan search`` reads; its ``widths`` are the student's
    width multipliers, its ``search`` entry records the space. BatchNorm statistics of a supernet
    belong to no single sub-network: search with ``--recalibrate`` (or use ``norm="in"``).
    ``teacher_d``: the teacher checkpoint's ``discriminator`` entry, inherited (``inherit_discriminator``).
    """
    import random as _random
    import time

    from ..checkpoint import FORMAT
    from ..models import MobileResnetGenerator, SharedTrunkPatchGAN
    from .search import SearchSpace
    from .slimmable import ADAM_BETAS, endless_batches, seed_everything

    seed_everything(seed)
    meta = train_set.describe()
    th = teacher.hparams
    student = MobileResnetGenerator(meta["in_channels"], meta["out_channels"], ngf=ngf or th["ngf"],
                                    n_blocks=n_blocks or th["n_blocks"], norm=norm, padding=th["padding"],
                                    upsample=th["upsample"]).to(device)
    teacher = teacher.to(device).eval()
    set_width(teacher, 1.0)
    if teacher_d is not None:
        disc = inherit_discriminator(teacher_d).to(device)
    else:
        disc = SharedTrunkPatchGAN(meta["in_channels"] + meta["out_channels"], ndf=16, n_layers=2, n_heads=1).to(device)
    adapters = FeatureAdapters(student, teacher).to(device)
    opt_g = torch.optim.Adam(list(student.parameters()) + list(adapters.parameters()), lr=lr, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=ADAM_BETAS)
    space = SearchSpace.from_model(student, step=step)
    rng = _random.Random(seed)
    batches = endless_batches(train_set, batch_size, seed)
    student.train()
    history = []
    start = time.perf_counter()
    for i in range(1, steps + 1):
        inputs, targets = (t.to(device) for t in next(batches))
        losses = supernet_step(student, teacher, disc, adapters, opt_g, opt_d, inputs, targets, space, rng,
                               lambda_recon=lambda_recon, lambda_distill=lambda_distill)
        losses["config"] = losses["config"].to_dict()
        history.append(losses)
        if log:
            log("step %d: %s" % (i, {k: v for k, v in losses.items() if k != "config"}))
    set_width(student, 1.0)
    student.eval()
    return {
        "format": FORMAT,
        "generator": {"arch": student.arch(), "state_dict": student.cpu().state_dict()},
        "teacher": {"arch": teacher.arch()},
        "widths": list(student.widths),
        "data": meta,
        "search": {"step": step, "choices": dict(space.choices)},
        "train": {"recipe": "supernet", "steps": steps, "batch_size": batch_size, "lr": lr,
                  "lambda_recon": lambda_recon, "lambda_distill": lambda_distill, "seed": seed,
                  "distill_layers": adapters.layers, "seconds": round(time.perf_counter() - start, 1),
                  "history": history[-10:]},
        "metrics": {},
    }


__all__ = ["FeatureAdapters", "attention_distillation", "attention_map", "capture", "distill_layers",
           "inherit_discriminator", "supernet_step", "train_supernet"]
