"""GAN Compression: intermediate feature distillation and once-for-all supernet training.

``L_distill = Σ_t ‖f_t(S_t(x)) − T_t(x)‖²`` over 4 layers, ``f_t`` a learnable 1×1 conv mapping the
student's channels to the teacher's. The 4 layers of a ResNet-style generator (``ResnetGenerator`` or
``MobileResnetGenerator``) are the entry of the residual stream (``down``) and the outputs of the
blocks that split the n blocks in 3 groups (after blocks ⌈n/3⌉, ⌈2n/3⌉ and n; for 9 blocks: 3, 6, 9).

The student is elastic: each adapter is an ``ElasticConv2d`` with a fixed output width that reads
whichever channels the student's sampled configuration produces, so one set of adapters serves the
whole supernet. ``supernet_step`` samples a random configuration per step (``SearchSpace.sample``)
and trains the student at it with L = L_cGAN + λ_recon·L_recon + λ_distill·L_distill. The
reconstruction target is the real target on paired data; the teacher's output when asked
(``recon_target="teacher"``) or on unpaired data (a data set with ``paired = False``), where the
teacher's outputs become the student's targets altogether — the discriminator's "real" pairs too
(GAN Compression's unpaired → paired).
"""

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn import ElasticConv2d, set_width
from .losses import conditional_d_step, g_hinge_loss


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


RECON_TARGETS = ("real", "teacher")


def resolve_recon_target(recon_target, train_set):
    """``real`` or ``teacher`` for ``recon_target`` ``auto`` / ``real`` / ``teacher`` on ``train_set``: ``auto``
    is the real target on paired data and the teacher's output on unpaired data (``paired = False``)."""
    from ..errors import EdgeganError

    paired = getattr(train_set, "paired", True)
    if recon_target in (None, "auto"):
        return "real" if paired else "teacher"
    if recon_target not in RECON_TARGETS:
        raise EdgeganError("the reconstruction target must be auto, real or teacher, got %r" % (recon_target,))
    if recon_target == "real" and not paired:
        raise EdgeganError("the data set is unpaired: its targets are not the inputs' translations, so the "
                           "reconstruction target must be the teacher's output (recon target auto or teacher)")
    return recon_target


def supernet_step(student, teacher, discriminator, adapters, opt_g, opt_d, inputs, targets, space, rng,
                  lambda_recon=10.0, lambda_distill=1.0, recon_target="real", paired=True):
    """One once-for-all step at a random config; returns the losses and the config sampled.

    ``opt_g`` must hold the student's and the adapters' parameters. ``discriminator(pair)`` scores
    input‖output pairs (a ``SharedTrunkPatchGAN`` with one head, e.g.). ``recon_target``: ``real``
    (L1 to ``targets``) or ``teacher`` (L1 to the teacher's output). ``paired=False`` (unpaired data):
    the teacher's outputs replace ``targets`` everywhere, as the reconstruction target and in the
    discriminator's real pairs.
    """
    if recon_target not in RECON_TARGETS:
        raise ValueError("recon_target must be one of %s, got %r" % (RECON_TARGETS, recon_target))
    config = space.sample(rng)
    set_width(student, config)
    teacher.eval()
    with torch.no_grad(), capture(teacher, adapters.layers) as t_feats:
        t_out = teacher(inputs)
        t_feats = dict(t_feats)
    with capture(student, adapters.layers) as s_feats:
        fake = student(inputs)
        s_feats = dict(s_feats)
    if not paired:
        targets, recon_target = t_out, "teacher"
    loss_d = conditional_d_step(discriminator, opt_d, inputs, targets, fake)
    opt_g.zero_grad(set_to_none=True)
    adversarial = g_hinge_loss(discriminator(torch.cat([inputs, fake], 1)))
    recon = F.l1_loss(fake, t_out if recon_target == "teacher" else targets)
    distill = adapters.loss(s_feats, t_feats)
    loss_g = adversarial + lambda_recon * recon + lambda_distill * distill
    loss_g.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    distill = float(distill.detach()) if torch.is_tensor(distill) else float(distill)
    return {"d": loss_d, "g": adversarial.item(), "recon": recon.item(), "distill": distill,
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


def periodic_eval(model, eval_set, widths, step, start, device="cpu", say=None, extra=""):
    """Held-out PSNR / SSIM of ``model`` at ``widths`` (``None``: as it is) on ``eval_set``; printed (``say``) and
    returned as a history entry."""
    import time

    from .metrics import evaluate_widths

    if widths is None:  # a plain (non-elastic) model, e.g. PPCD's masked generator: run it as it is
        scores = {"w1": evaluate_config(model, eval_set, None, device)}
    else:
        scores = evaluate_widths(model, eval_set, widths, device)
    entry = {"step": step, "seconds": round(time.perf_counter() - start, 1), "metrics": scores}
    if say is not None:
        say("step %d (%d held-out): %s%s" % (step, len(eval_set), "  ".join(
            "%s %.2f dB / %.3f" % (k, v["psnr"], v["ssim"]) for k, v in scores.items()), extra))
    return entry


def _eval_subset(eval_set, eval_images):
    from torch.utils.data import Subset

    if eval_set is None:
        return None
    if eval_images and eval_images < len(eval_set):
        return Subset(eval_set, range(int(eval_images)))
    return eval_set


def _stderr(line):
    import sys

    print(line, file=sys.stderr)


def train_supernet(teacher, train_set, steps, ngf=None, n_blocks=None, norm="in", step=8, batch_size=16,
                   lr=2e-4, lambda_recon=10.0, lambda_distill=1.0, seed=0, device="cpu", teacher_d=None, log=None,
                   eval_set=None, eval_every=0, eval_images=500, recon_target="auto"):
    """Train a mobile once-for-all student from ``teacher`` on ``train_set``; returns a checkpoint dict.

    The student is a ``MobileResnetGenerator`` with the teacher's channel counts (ngf, blocks) unless
    given; each step samples a random per-slot config (multiples of ``step``). The checkpoint loads
    with ``load_generator`` and is what ``edgegan search`` reads; its ``widths`` are the student's
    width multipliers, its ``search`` entry records the space. BatchNorm statistics of a supernet
    belong to no single sub-network: search with ``--recalibrate`` (or use ``norm="in"``).
    ``teacher_d``: the teacher checkpoint's ``discriminator`` entry, inherited (``inherit_discriminator``).
    ``recon_target``: ``auto`` (the real target on paired data, the teacher's output on unpaired data),
    ``real`` or ``teacher`` (``resolve_recon_target``).
    ``eval_set`` / ``eval_every`` / ``eval_images``: every N steps, print the held-out PSNR / SSIM of
    the student's widths on the first ``eval_images`` pairs (recorded in ``train["evals"]``).
    The checkpoint also holds the trained feature adapters (``distill``), for fine-tuning a
    searched sub-network later (``finetune_subnet``).
    """
    import random as _random
    import time

    from ..checkpoint import FORMAT
    from ..models import MobileResnetGenerator, SharedTrunkPatchGAN
    from .search import SearchSpace
    from .slimmable import ADAM_BETAS, endless_batches, seed_everything

    recon_target = resolve_recon_target(recon_target, train_set)
    paired = getattr(train_set, "paired", True)
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
    history, evals = [], []
    subset = _eval_subset(eval_set, eval_images) if eval_every else None
    start = time.perf_counter()
    for i in range(1, steps + 1):
        inputs, targets = (t.to(device) for t in next(batches))
        losses = supernet_step(student, teacher, disc, adapters, opt_g, opt_d, inputs, targets, space, rng,
                               lambda_recon=lambda_recon, lambda_distill=lambda_distill, recon_target=recon_target,
                               paired=paired)
        losses["config"] = losses["config"].to_dict()
        history.append(losses)
        if log:
            log("step %d: %s" % (i, {k: v for k, v in losses.items() if k != "config"}))
        if subset is not None and i % eval_every == 0 and i < steps:
            evals.append(periodic_eval(student, subset, student.widths, i, start, device, log or _stderr))
            set_width(student, 1.0)
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
                  "lambda_recon": lambda_recon, "recon_target": recon_target, "paired": bool(paired),
                  "train_images": len(train_set),
                  "lambda_distill": lambda_distill, "seed": seed,
                  "distill_layers": adapters.layers, "seconds": round(time.perf_counter() - start, 1),
                  "history": history[-10:], "eval_every": eval_every, "evals": evals},
        "distill": {"layers": list(adapters.layers), "state_dict": {k: v.detach().cpu().clone()
                                                                    for k, v in adapters.state_dict().items()}},
        "metrics": {},
    }


@torch.no_grad()
def evaluate_config(model, data, config, device="cpu", batch_size=100):
    """``{"psnr", "ssim", "l1"}`` of ``model`` at ``config`` (a width or ``SubnetConfig``; ``None``: as it is,
    for plain models) on ``(input, target)`` pairs (a Dataset), in eval mode; the model's mode and config
    are restored."""
    import numpy as np
    from torch.utils.data import DataLoader

    from ..nn import at_width
    from .metrics import l1_per_image, psnr_per_image, ssim_per_image

    was_training = model.training
    model.eval()
    scores = {"psnr": [], "ssim": [], "l1": []}
    try:
        with (at_width(model, config) if config is not None else contextlib.nullcontext()):
            for inputs, targets in DataLoader(data, batch_size=batch_size, shuffle=False):
                out = model(inputs.to(device)).clamp(-1, 1).cpu()
                scores["psnr"].append(psnr_per_image(out, targets, 2.0))
                scores["ssim"].append(ssim_per_image(out, targets, 2.0))
                scores["l1"].append(l1_per_image(out, targets))
    finally:
        model.train(was_training)
    return {k: float(np.concatenate(v).mean()) for k, v in scores.items()}


def finetune_subnet(model, config, train_set, steps, teacher=None, adapters_state=None, batch_size=16, lr=2e-4,
                    lambda_l1=10.0, lambda_recon=10.0, lambda_distill=1.0, recalibrate_batches=10, seed=0,
                    device="cpu", log=None):
    """Fine-tune a supernet at one fixed sub-network ``config`` (GAN Compression's optional last step), in place.

    L = λ_L1·L1(S(x), y) and, with a ``teacher``, + λ_recon·L1(S(x), T(x)) + λ_distill·Σ_t‖f_t(S_t) − T_t‖²
    (the adapters start from ``adapters_state``, a supernet checkpoint's ``distill`` entry, if given).
    Only the weights the sub-network uses change (the other slices get zero gradients, and Adam
    leaves them in place), so ``model`` at ``config`` *is* the fine-tuned sub-network. BatchNorm
    statistics, if any, are re-estimated at ``config`` on ``recalibrate_batches`` batches at the end.
    On unpaired data (``train_set.paired`` False) the teacher's output is the target of the L1 term, so a
    ``teacher`` is needed. Returns the loss history (the last 10 steps).
    """
    from ..subnet import SubnetConfig
    from .slimmable import ADAM_BETAS, endless_batches, seed_everything

    paired = getattr(train_set, "paired", True)
    if not paired and teacher is None:
        from ..errors import EdgeganError

        raise EdgeganError("the data set is unpaired: fine-tuning needs a teacher, whose outputs are the targets")
    seed_everything(seed)
    config = SubnetConfig.coerce(config)
    model = model.to(device)
    adapters = None
    params = list(model.parameters())
    if teacher is not None:
        teacher = teacher.to(device).eval()
        set_width(teacher, 1.0)
        layers = adapters_state["layers"] if adapters_state else None
        adapters = FeatureAdapters(model, teacher, layers).to(device)
        if adapters_state:
            adapters.load_state_dict(adapters_state["state_dict"])
        params += list(adapters.parameters())
    opt = torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS)
    batches = endless_batches(train_set, batch_size, seed)
    history = []
    model.train()
    set_width(model, config)
    try:
        for i in range(1, steps + 1):
            inputs, targets = (t.to(device) for t in next(batches))
            losses = {"step": i}
            if adapters is not None:
                with torch.no_grad(), capture(teacher, adapters.layers) as t_feats:
                    t_out = teacher(inputs)
                    t_feats = dict(t_feats)
                with capture(model, adapters.layers) as s_feats:
                    out = model(inputs)
                    s_feats = dict(s_feats)
                recon = F.l1_loss(out, t_out)
                distill = adapters.loss(s_feats, t_feats)
                extra = lambda_recon * recon + lambda_distill * distill
                losses.update(recon=recon.item(), distill=float(distill.detach()))
            else:
                out = model(inputs)
                extra = 0.0
            task = F.l1_loss(out, targets if paired else t_out)
            loss = lambda_l1 * task + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses["l1"] = task.item()
            history.append(losses)
            if log:
                log("finetune step %d: %s" % (i, losses))
        if recalibrate_batches and any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
            from .recalibrate import recalibrate_bn

            recalibrate_bn(model, [next(batches)[0].to(device) for _ in range(int(recalibrate_batches))],
                           widths=[config])
    finally:
        set_width(model, 1.0)
        model.eval()
    return history[-10:]


__all__ = ["FeatureAdapters", "attention_distillation", "attention_map", "capture", "distill_layers",
           "evaluate_config", "finetune_subnet", "inherit_discriminator", "periodic_eval", "supernet_step",
           "train_supernet"]
