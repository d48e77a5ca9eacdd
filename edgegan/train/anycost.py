"""Anycost GAN consistency training for a trained slimmable generator (METHODS.md §3).

Starting from a trained elastic ``ResnetGenerator`` (or ``MobileResnetGenerator``, or ``UnetGenerator``):

1. **Sort** every channel group by importance (``edgegan.nn.sorting.sort_channels``: L1 norm of the
   producing kernels), so that a first-k slice keeps the most important channels. The full-width
   function is unchanged; ``sort_preserving`` checks it on a probe batch and refuses otherwise.
2. **Fine-tune** with the consistency loss: each step samples a sub-width ``w`` (from the
   checkpoint's widths, or the configured ones) and trains it to reproduce the full width's output
   on the same batch::

       ℓ = MSE(G_w(x), sg(G_1(x))) + λ_p·‖φ(G_w(x)) − φ(sg(G_1(x)))‖²

   with φ the penultimate features of the shipped Fashion-MNIST classifier
   (``edgegan.train.classifier``; grey images, resized to 32²; the paper uses LPIPS). The full width
   keeps its task loss, ``λ_L1·L1(G_1(x), y)`` (+ ``λ_GAN`` · hinge loss against a one-head
   conditional PatchGAN inherited from the checkpoint's discriminator, optional). The total is
   ``λ_L1·L1 + λ_c·ℓ (+ λ_GAN·L_G)``; gradients of ℓ reach the shared first-k channels only.
3. **Recalibrate** BatchNorm statistics per width (``edgegan.train.recalibrate.recalibrate_bn``):
   sorting moved channels under the narrow widths' switchable BatchNorms, and their running
   statistics during fine-tuning are moving averages over changing weights.

``train_anycost`` returns a checkpoint in the slimmable recipe's layout (``widths``, per-width
held-out ``metrics``), which ``edgegan build --checkpoint`` compiles unchanged.

Not implemented from the paper: multi-resolution sub-generators (these generators have one output
head), per-layer channel ratios during training (every slot uses the same multiplier here, so that
each width keeps its own switchable BatchNorm), and the architecture-conditioned discriminator.
"""

import copy
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import FORMAT
from ..errors import EdgeganError
from ..nn import at_width, set_width
from ..nn.sorting import sort_channels
from .losses import conditional_d_step, g_hinge_loss
from .metrics import evaluate_widths, width_key

#: tolerance of the full-width check after sorting (outputs are in [-1, 1])
SORT_ATOL = 1e-4


@torch.no_grad()
def sort_preserving(generator, inputs, atol=SORT_ATOL):
    """``sort_channels(generator)`` in place, checking on ``inputs`` that the full width's output is unchanged.

    Runs in eval mode at full width. Returns ``(permutations, max abs difference)``; raises
    ``EdgeganError`` (and leaves ``generator`` sorted) if the difference exceeds ``atol``.
    """
    was_training = generator.training
    generator.eval()
    try:
        with at_width(generator, 1.0):
            before = generator(inputs)
            perms = sort_channels(generator)
            after = generator(inputs)
    finally:
        generator.train(was_training)
    diff = float((before - after).abs().max())
    if not diff <= atol:
        raise EdgeganError("channel sorting changed the full-width output by %.2e (> %.0e); this generator's "
                           "channel groups are not what sort_channels assumes" % (diff, atol))
    return perms, diff


class PerceptualFeatures(nn.Module):
    """φ: the Fashion-MNIST classifier's penultimate features of images in [-1, 1] (frozen).

    Colour images are averaged to grey; other sizes are resized to 32² bilinearly.
    """

    def __init__(self, classifier=None):
        super().__init__()
        if classifier is None:
            from .classifier import load_classifier

            classifier, _ = load_classifier()
        self.classifier = classifier.eval()
        for p in self.classifier.parameters():
            p.requires_grad_(False)

    def train(self, mode=True):  # the classifier's BatchNorm always runs on its statistics
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, x):
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        return self.classifier.features(x)


def consistency_loss(sub_out, full_out, perceptual=None, lambda_perceptual=0.0):
    """``MSE(G_w, sg(G_1)) + λ_p·‖φ(G_w) − φ(sg(G_1))‖²`` (mean over elements); returns (total, mse, perceptual)."""
    target = full_out.detach()
    mse = F.mse_loss(sub_out, target)
    if perceptual is None or not lambda_perceptual:
        return mse, mse, None
    with torch.no_grad():
        t_feats = perceptual(target)
    perc = F.mse_loss(perceptual(sub_out), t_feats)
    return mse + lambda_perceptual * perc, mse, perc


@torch.no_grad()
def consistency_error(generator, inputs, widths=None):
    """``{"w0.25": MSE(G_w(x), G_1(x)), ...}`` in eval mode (running BatchNorm statistics)."""
    was_training = generator.training
    generator.eval()
    try:
        with at_width(generator, 1.0):
            full = generator(inputs)
        out = {}
        for w in widths if widths is not None else generator.widths:
            if float(w) == 1.0:
                continue
            with at_width(generator, float(w)):
                out[width_key(w)] = float(F.mse_loss(generator(inputs), full))
    finally:
        generator.train(was_training)
    return out


def anycost_step(generator, opt_g, inputs, targets, widths, lambda_l1=100.0, lambda_consistency=100.0,
                 perceptual=None, lambda_perceptual=0.0, discriminator=None, opt_d=None, lambda_gan=0.0):
    """One consistency step: the full width's task loss ``λ_L1·L1(G_1(x), y)`` (+ ``λ_GAN``·hinge against
    ``discriminator``, which takes its own hinge step first) plus ``λ_c`` × the mean over ``widths`` (the
    sub-widths drawn for this step) of ``consistency_loss(G_w(x), G_1(x))``, whose target is detached: the
    sub-widths move toward the full width, not the other way. Returns the losses (floats) and the widths."""
    set_width(generator, 1.0)
    full = generator(inputs)
    losses = {}
    if discriminator is not None:
        losses["d"] = conditional_d_step(discriminator, opt_d, inputs, targets, full)
    opt_g.zero_grad(set_to_none=True)
    task = F.l1_loss(full, targets)
    loss = lambda_l1 * task
    if discriminator is not None:
        adversarial = g_hinge_loss(discriminator(torch.cat([inputs, full], 1)))
        loss = loss + lambda_gan * adversarial
        losses["g"] = adversarial.item()
    cons_total, mse_total, perc_total = 0.0, 0.0, 0.0
    for w in widths:
        set_width(generator, w)
        sub = generator(inputs)
        c, mse, perc = consistency_loss(sub, full, perceptual, lambda_perceptual)
        cons_total = cons_total + c / len(widths)
        mse_total += mse.item() / len(widths)
        if perc is not None:
            perc_total += perc.item() / len(widths)
    loss = loss + lambda_consistency * cons_total
    loss.backward()
    opt_g.step()
    set_width(generator, 1.0)
    losses.update({"l1": task.item(), "consistency": mse_total, "widths": list(widths)})
    if perceptual is not None:
        losses["perceptual"] = perc_total
    return losses


def resolve_widths(generator, widths):
    """The widths to train (sorted, 1.0 included) and a generator that holds them.

    A BatchNorm generator keeps one switchable BatchNorm per trained width, so ``widths`` must be a
    subset of its own — except for a one-width generator (full width only: imported with `edgegan import`,
    or trained at one width), which is what Anycost starts from: it gets a BatchNorm per width, each
    starting from the full-width BatchNorm's first channels (sorting then moves the important channels
    there; training and the recalibration at the end give them their own statistics), and by default the
    widths 0.25, 0.5, 0.75, 1.0. An InstanceNorm generator runs any width (its arch is rebuilt with them).
    """
    from ..models import DEFAULT_WIDTHS

    own = [float(w) for w in generator.widths]
    one_width = own == [1.0]
    if widths is None:
        widths = DEFAULT_WIDTHS if one_width else own
    widths = sorted(set(float(w) for w in widths) | {1.0})
    if any(not 0.0 < w <= 1.0 for w in widths):
        raise EdgeganError("widths must be in (0, 1], got %s" % widths)
    if len(widths) < 2:
        raise EdgeganError("consistency training needs at least one width below 1.0")
    missing = [w for w in widths if w not in own]
    if missing:
        if generator.hparams.get("norm") == "bn" and not one_width:
            raise EdgeganError("width(s) %s have no BatchNorm of their own in this checkpoint (it has %s); "
                               "choose among those" % (", ".join("%g" % w for w in missing),
                                                       ", ".join("%g" % w for w in own)))
        generator = _with_widths(generator, widths)
    return widths, generator


def _with_widths(generator, widths):
    """``generator`` rebuilt to hold ``widths``: the same weights; each switchable BatchNorm gets one
    BatchNorm per width, copied from the one it had for that channel count, else sliced from its widest."""
    from ..models import build_model
    from ..nn import SwitchableBatchNorm2d

    arch = generator.arch()
    arch["kwargs"] = dict(arch["kwargs"], widths=list(widths))
    rebuilt = build_model(arch)
    switchable = [name for name, m in generator.named_modules() if isinstance(m, SwitchableBatchNorm2d)]
    inside = tuple(name + "." for name in switchable)
    result = rebuilt.load_state_dict({k: v for k, v in generator.state_dict().items() if not k.startswith(inside)},
                                     strict=False)
    if result.unexpected_keys or any(not k.startswith(inside) for k in result.missing_keys):
        raise EdgeganError("cannot re-build this generator with widths %s (%s)" % (
            widths, (result.unexpected_keys or result.missing_keys)[0]))
    with torch.no_grad():
        for name in switchable:
            old, new = generator.get_submodule(name), rebuilt.get_submodule(name)
            for bn in new.bn:
                src = old.select(bn.num_features)
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, attr).copy_(getattr(src, attr)[:bn.num_features])
                bn.num_batches_tracked.copy_(src.num_batches_tracked)
    return rebuilt.train(generator.training)


def _batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def train_anycost(generator, train_set, steps, test_set=None, widths=None, sample="one", lambda_l1=100.0,
                  lambda_consistency=100.0, lambda_perceptual=0.0, lambda_gan=0.0, discriminator=None,
                  batch_size=16, lr=2e-4, recalibrate_batches=20, eval_every=0, eval_images=500, seed=0,
                  device="cpu", init=None, classifier=None, log=None, sort=True):
    """Sort ``generator``'s channels, then consistency-train its sub-widths; returns a checkpoint dict.

    Args:
        generator: a trained elastic ``ResnetGenerator`` / ``MobileResnetGenerator`` / ``UnetGenerator`` (copied,
            not modified).
        train_set, test_set: ``(input, target)`` pairs with ``describe()`` (``edgegan.data``);
            ``test_set`` gives the checkpoint's per-width metrics (none without it).
        steps: fine-tuning steps.
        widths: sub-widths to train (default: the generator's); 1.0 is always the reference.
        sample: ``one`` sub-width per step (drawn uniformly, as Anycost samples) or ``all`` of them.
        lambda_l1, lambda_consistency, lambda_perceptual, lambda_gan: loss weights (see the module
            docstring); ``lambda_perceptual`` > 0 loads the Fashion-MNIST classifier (or ``classifier``).
        discriminator: the init checkpoint's ``discriminator`` entry: inherited (trunk + widest head)
            when ``lambda_gan`` > 0, else passed through to the checkpoint unchanged.
        recalibrate_batches: training batches for the per-width BatchNorm recalibration at the end.
        eval_every, eval_images: print held-out PSNR of every width on the first ``eval_images``
            pairs every N steps (0: only at the end).
        init: a dict recorded in ``train`` (e.g. the init checkpoint's path and metrics).
        log: a callable taking a line (default: stderr).
        sort: sort the channels first (Anycost). ``False`` keeps the order: for a checkpoint trained
            slimmable, whose first-k channels already are its trained sub-networks, sorting replaces
            them with other channels that the consistency training must then re-train.
    """
    from .recalibrate import recalibrate_bn
    from .slimmable import ADAM_BETAS, endless_batches, seed_everything

    if sample not in ("one", "all"):
        raise EdgeganError("sample must be one or all, got %r" % (sample,))
    if steps < 0:
        raise EdgeganError("steps must be at least 0, got %d" % steps)
    say = log or (lambda line: print(line, file=sys.stderr))
    seed_everything(seed)
    meta = train_set.describe()
    for key in ("in_channels", "out_channels"):
        if int(meta[key]) != int(generator.hparams[key]):
            raise EdgeganError("the data has %s=%s but the generator has %s"
                               % (key, meta[key], generator.hparams[key]))
    generator = copy.deepcopy(generator).cpu()
    widths, generator = resolve_widths(generator, widths)
    generator = generator.to(device)
    sub_widths = [w for w in widths if w < 1.0]

    batches = endless_batches(train_set, batch_size, seed)
    probe, _ = next(batches)
    sort_diff = None
    if sort:
        _, sort_diff = sort_preserving(generator, probe.to(device))
        say("sorted channels by importance; full-width output changed by %.1e" % sort_diff)

    perceptual = PerceptualFeatures(classifier).to(device) if lambda_perceptual else None
    disc, opt_d = None, None
    if lambda_gan:
        from ..models import SharedTrunkPatchGAN
        from .distill import inherit_discriminator

        if discriminator is not None and discriminator.get("arch", {}).get("name") == "shared_trunk_patchgan":
            disc = inherit_discriminator(discriminator)
        else:
            disc = SharedTrunkPatchGAN(meta["in_channels"] + meta["out_channels"], ndf=16,
                                       n_layers=2 if int(meta["size"]) < 128 else 3, n_heads=1)
        disc = disc.to(device).train()
        opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=ADAM_BETAS)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=ADAM_BETAS)
    rng = random.Random(seed)
    eval_subset = None
    if test_set is not None and eval_every:
        from torch.utils.data import Subset

        eval_subset = Subset(test_set, range(min(len(test_set), eval_images)))

    history, recent = [], []
    start = time.perf_counter()
    generator.train()
    for step in range(1, steps + 1):
        inputs, targets = (t.to(device) for t in next(batches))
        chosen = [rng.choice(sub_widths)] if sample == "one" else sub_widths
        losses = anycost_step(generator, opt_g, inputs, targets, chosen, lambda_l1=lambda_l1,
                              lambda_consistency=lambda_consistency, perceptual=perceptual,
                              lambda_perceptual=lambda_perceptual, discriminator=disc,
                              opt_d=opt_d, lambda_gan=lambda_gan)
        losses["step"] = step
        recent.append(losses)
        if eval_subset is not None and step % eval_every == 0 and step < steps:
            scores = evaluate_widths(generator, eval_subset, widths, device)
            history.append({"step": step, "seconds": round(time.perf_counter() - start, 1), "metrics": scores})
            say("step %d (%d held-out): %s; consistency MSE %.4f" % (
                step, len(eval_subset), "  ".join("%s %.2f dB" % (k, v["psnr"]) for k, v in scores.items()),
                sum(r["consistency"] for r in recent[-eval_every:]) / min(eval_every, len(recent))))
    train_seconds = time.perf_counter() - start

    generator.eval()
    recalibrated = None
    if _batchnorms(generator) and recalibrate_batches:
        calib = [next(batches)[0].to(device) for _ in range(int(recalibrate_batches))]
        recalibrated = recalibrate_bn(generator, calib, widths=widths)
    set_width(generator, 1.0)
    metrics = {}
    if test_set is not None:
        metrics = evaluate_widths(generator, test_set, widths, device)
        say("held-out (%d): %s" % (len(test_set), "  ".join(
            "%s %.2f dB / %.3f" % (k, v["psnr"], v["ssim"]) for k, v in metrics.items())))
    generator = generator.cpu()
    ckpt = {
        "format": FORMAT,
        "generator": {"arch": generator.arch(), "state_dict": {k: v.detach().clone()
                                                               for k, v in generator.state_dict().items()}},
        "widths": list(widths),
        "data": meta,
        "train": {"recipe": "anycost", "steps": steps, "batch_size": batch_size, "lr": lr, "widths": list(widths),
                  "sample": sample, "lambda_l1": lambda_l1, "lambda_consistency": lambda_consistency,
                  "lambda_perceptual": lambda_perceptual, "lambda_gan": lambda_gan, "eval_every": eval_every,
                  "eval_images": eval_images, "recalibrate_bn": int(recalibrate_batches) if recalibrated else 0,
                  "seed": seed, "sorted": bool(sort), "sort_max_abs_diff": sort_diff, "init": dict(init or {}),
                  "seconds": round(train_seconds, 1), "train_images": len(train_set),
                  "test_images": len(test_set) if test_set is not None else 0, "history": history,
                  "last_steps": [dict(r, widths=list(r["widths"])) for r in recent[-10:]],
                  "torch": str(torch.__version__), "threads": torch.get_num_threads()},
        "metrics": metrics,
    }
    if disc is not None:
        ckpt["discriminator"] = {"arch": disc.arch(), "state_dict": {k: v.detach().cpu().clone()
                                                                     for k, v in disc.state_dict().items()}}
    elif discriminator is not None:
        ckpt["discriminator"] = discriminator
    return ckpt


__all__ = ["PerceptualFeatures", "anycost_step", "consistency_error", "consistency_loss", "resolve_widths",
           "sort_preserving", "train_anycost"]
