"""PPCD progressive pruning: masks in the residual blocks, then physical removal of the zero channels.

1. ``insert_masks(generator)`` cuts the generator (a ``ResnetGenerator`` or ``MobileResnetGenerator``,
   at full width or at a config) out as plain modules (BatchNorm kept, so it can still train) and puts
   a ``ChannelMask`` after each regular (non-depthwise) conv of every residual block. Inside a block
   the mask of the first conv sits after the conv's norm, before the ReLU, so that a zero mask gives an
   exactly zero channel; the block's last conv is followed by its mask and a **transition 1×1 conv**
   (identity at start) that restores the stream width for the residual addition, then by its norm::

       x + norm2(T(mask2(conv2(relu(mask1(norm1(conv1(x))))))))

2. Train with ``L = L_ADV + λ_CD·ℓ_CD + 0.01·sparsity_loss(model)`` (PPCD's loss; ``ppcd_step``),
   calling ``update_masks(model, alpha)`` after each step (binarization trick at pivot 0.005).
3. ``physically_prune(model)`` removes the channels whose mask is 0 from the producing conv, its norm,
   the depthwise convs/norms that carry them, and the consuming conv's inputs (the transition conv
   for the last mask of a block), and drops the masks. A constant that a removed channel still
   contributes (e.g. a depthwise conv's bias or a norm's shift applied to a zero channel) is folded
   into the consumer's bias. Then each transition conv **folds into the block's last conv** (a 1×1
   linear map composes with the conv before it exactly: ``W' = T·W``, ``b' = T·b + b_T``), unless
   keeping the pair is cheaper (few channels kept: a low-rank factorisation). The result is a plain
   generator computing the masked one's function (eval mode) with at most the teacher's MACs — fewer
   as soon as a channel is removed.
"""

import copy

import torch
import torch.nn as nn

from ..models.pruned import PrunableBlock
from ..nn.masks import ChannelMask, mask_stats, masks, sparsity_loss, update_masks
from ..subnet import cost, default_input_shape, extract

NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d)

#: weight of the sparsity loss in PPCD's total loss
LAMBDA_PP = 0.01


def _is_regular_conv(m):
    return isinstance(m, nn.Conv2d) and m.groups == 1


def _identity_1x1(channels):
    t = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        t.weight.zero_()
        t.weight[:, :, 0, 0].copy_(torch.eye(channels))
    return t


def _masked_body(layers, init):
    """``layers`` with a mask after each regular conv: after the conv's norm for the first convs, and right
    after the block's last conv, followed by the identity transition conv, for the last one."""
    last = max(i for i, m in enumerate(layers) if _is_regular_conv(m))
    out = []
    for i, m in enumerate(layers):
        out.append(m)
        if i == last:
            out += [ChannelMask(m.out_channels, init=init), _identity_1x1(m.out_channels)]
        elif _is_regular_conv(m):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if not isinstance(nxt, NORMS):
                out.append(ChannelMask(m.out_channels, init=init))
        elif isinstance(m, NORMS) and 0 < i and i - 1 != last and _is_regular_conv(layers[i - 1]):
            out.append(ChannelMask(m.num_features, init=init))
    return out


def insert_masks(generator, config=1.0, input_shape=None, init=0.01):
    """A trainable plain copy of ``generator`` with masks and transition convs in every residual block."""
    shape = input_shape or default_input_shape(generator, 32)
    model = extract(generator, config, input_shape=shape, fold_bn=False)
    for i, block in enumerate(model.blocks):
        model.blocks[i] = PrunableBlock(_masked_body(list(block.body), init))
    for p in model.parameters():
        p.requires_grad_(True)
    model.subnet_config = dict(model.subnet_config, masked=True)
    return model


def ppcd_regularizer(model, weight=LAMBDA_PP):
    """``weight · Σ|w + 1|`` over every mask (add to the generator loss)."""
    return weight * sparsity_loss(model)


def ppcd_step(masked, teacher, discriminator, opt_g, opt_d, inputs, targets, alpha, layers=None,
              lambda_pp=LAMBDA_PP, lambda_cd=1.0, lambda_recon=0.0, paired=True):
    """One PPCD step: L = λ_PP·Σ|w+1| + λ_CD·ℓ_CD + L_ADV (+ λ_recon·L1 to the teacher), then binarization.

    ``masked`` comes from ``insert_masks``; ``teacher`` is the (larger) generator whose attention maps
    are distilled at ``layers`` (default: ``distill_layers``). ``paired=False`` (unpaired data): the
    discriminator's real pairs hold the teacher's outputs instead of ``targets``. Returns the losses
    and mask statistics.
    """
    import torch.nn.functional as F

    from .distill import attention_distillation, capture, distill_layers
    from .losses import conditional_d_step, g_hinge_loss

    layers = layers or distill_layers(masked)
    teacher.eval()
    with torch.no_grad(), capture(teacher, layers) as t_feats:
        t_out = teacher(inputs)
        t_feats = dict(t_feats)
    with capture(masked, layers) as s_feats:
        fake = masked(inputs)
        s_feats = dict(s_feats)
    if not paired:
        targets = t_out

    loss_d = conditional_d_step(discriminator, opt_d, inputs, targets, fake)
    opt_g.zero_grad(set_to_none=True)
    adversarial = g_hinge_loss(discriminator(torch.cat([inputs, fake], 1)))
    cd = attention_distillation(s_feats, t_feats, layers)
    pp = sparsity_loss(masked)
    loss_g = adversarial + lambda_pp * pp + lambda_cd * cd
    if lambda_recon:
        loss_g = loss_g + lambda_recon * F.l1_loss(fake, t_out)
    loss_g.backward()
    opt_g.step()
    discriminator.requires_grad_(True)
    frozen = update_masks(masked, alpha)
    return dict({"d": loss_d, "g": adversarial.item(), "pp": pp.item(), "cd": float(cd.detach()),
                 "frozen_masks": frozen}, **{"kept": mask_stats(masked)["kept"]})


# --- physical removal ----------------------------------------------------------------------------

def _conv_like(conv, in_idx=None, out_idx=None, bias=None, weight=None):
    w = conv.weight.detach() if weight is None else weight
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels
    if depthwise:
        idx = out_idx if out_idx is not None else in_idx
        out_idx = idx  # a depthwise conv's inputs are its outputs: its bias follows them too
        w = w[idx]
        cin = cout = groups = len(idx)
    else:
        if out_idx is not None:
            w = w[out_idx]
        if in_idx is not None:
            w = w[:, in_idx]
        cout, cin, groups = w.shape[0], w.shape[1], 1
    b = bias if bias is not None else conv.bias
    if b is not None and out_idx is not None and bias is None:
        b = b.detach()[out_idx]
    new = nn.Conv2d(cin, cout, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=groups, bias=b is not None, padding_mode=conv.padding_mode,
                    device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def _norm_like(norm, idx):
    n = len(idx)
    if isinstance(norm, nn.BatchNorm2d):
        new = nn.BatchNorm2d(n, eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                             track_running_stats=norm.track_running_stats)
    else:
        new = nn.InstanceNorm2d(n, eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                                track_running_stats=norm.track_running_stats)
    like = next((t for t in list(norm.parameters()) + list(norm.buffers()) if t.is_floating_point()), None)
    if like is not None:  # the source's device and dtype
        new = new.to(device=like.device, dtype=like.dtype)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(norm, name, None)
            if src is not None:
                getattr(new, name).copy_(src.detach()[idx])
        if getattr(norm, "num_batches_tracked", None) is not None:
            new.num_batches_tracked.copy_(norm.num_batches_tracked)
    return new


@torch.no_grad()
def _zero_channel_constants(segment, channels, device, dtype=None):
    """What each channel becomes after ``segment`` when it enters as zeros (checked spatially constant)."""
    x = torch.zeros(1, channels, 7, 7, device=device, dtype=dtype)
    for m in segment:
        x = m(x)
    const = x[0, :, x.shape[2] // 2, x.shape[3] // 2]
    uniform = bool(((x - const.view(1, -1, 1, 1)).abs() <= 1e-6).all())
    return const, uniform


@torch.no_grad()
def _prune_first_mask(layers, transition):
    k = next(i for i, m in enumerate(layers) if isinstance(m, ChannelMask))
    mask = layers[k]
    if not bool(mask.frozen):
        raise ValueError("mask %d is not binarized; call update_masks()/binarize() first" % k)
    p = max(i for i in range(k) if _is_regular_conv(layers[i]))
    cons = next((i for i in range(k + 1, len(layers)) if _is_regular_conv(layers[i])), None)
    consumer = layers[cons] if cons is not None else transition
    segment = layers[k + 1:cons] if cons is not None else layers[k + 1:]
    device = mask.binary.device
    keep = mask.kept()
    dummy = len(keep) == 0
    if dummy:  # a layer with every channel masked keeps one channel whose consumer weight is zero
        keep = torch.zeros(1, dtype=torch.long, device=device)
    removed = torch.nonzero(mask.mask() <= mask.pivot).flatten()
    const, uniform = _zero_channel_constants([m.eval() for m in segment], mask.channels, device,
                                             mask.binary.dtype)
    w = consumer.weight.detach().clone()
    fold = (w[:, removed].sum(dim=(2, 3)) * const[removed].view(1, -1)).sum(dim=1)
    if dummy:
        w[:, keep] = 0.0
    if fold.abs().max() > 0 and (not uniform or consumer.kernel_size != (1, 1)):
        raise NotImplementedError("removed channels carry a non-zero constant into a %s conv" % (consumer.kernel_size,))
    # producer, its norm, the layers between mask and consumer
    layers[p] = _conv_like(layers[p], out_idx=keep)
    for i in range(p + 1, k):
        if isinstance(layers[i], NORMS):
            layers[i] = _norm_like(layers[i], keep)
    for i in range(k + 1, cons if cons is not None else len(layers)):
        if isinstance(layers[i], nn.Conv2d):
            layers[i] = _conv_like(layers[i], out_idx=keep)
        elif isinstance(layers[i], NORMS):
            layers[i] = _norm_like(layers[i], keep)
    bias = consumer.bias.detach().clone() if consumer.bias is not None else torch.zeros(w.shape[0], device=device)
    bias = bias + fold
    needs_bias = consumer.bias is not None or bool(fold.abs().max() > 0)
    new_consumer = _conv_like(consumer, in_idx=keep, bias=bias if needs_bias else None, weight=w)
    if cons is not None:
        layers[cons] = new_consumer
    else:
        transition = new_consumer
    del layers[k]
    return layers, transition, keep


def _transition_index(layers):
    """Index of the transition conv (the 1×1 conv right after a block's last mask), or ``None``."""
    idx = [i for i, m in enumerate(layers) if isinstance(m, ChannelMask)]
    if not idx or idx[-1] + 1 >= len(layers):
        return None
    t = layers[idx[-1] + 1]
    if _is_regular_conv(t) and t.kernel_size == (1, 1) and t.stride == (1, 1) and t.padding == (0, 0):
        return idx[-1] + 1
    return None


@torch.no_grad()
def compose_1x1(conv, t):
    """One conv computing ``t(conv(x))`` for a regular ``conv`` and a 1×1, stride-1 ``t``: ``W' = T·W``,
    ``b' = T·b + b_T`` (exact: ``t`` mixes channels pixel by pixel)."""
    T = t.weight.detach()[:, :, 0, 0]
    weight = torch.einsum("oc,cikl->oikl", T, conv.weight.detach())
    bias = None
    if conv.bias is not None or t.bias is not None:
        bias = torch.zeros(T.shape[0], dtype=weight.dtype, device=weight.device)
        if conv.bias is not None:
            bias = bias + T @ conv.bias.detach()
        if t.bias is not None:
            bias = bias + t.bias.detach()
    return _conv_like(conv, weight=weight, bias=bias)


def _fold_transition(layers, t_index):
    """Fold the transition conv at ``t_index`` into the regular conv right before it when that costs fewer
    MACs than keeping both (``c`` kept channels: ``in·out·k²`` vs ``in·c·k² + c·out`` per pixel)."""
    conv, t = layers[t_index - 1], layers[t_index]
    if not _is_regular_conv(conv):
        return layers, False
    k2 = conv.kernel_size[0] * conv.kernel_size[1]
    folded = conv.in_channels * t.out_channels * k2
    pair = conv.in_channels * conv.out_channels * k2 + conv.out_channels * t.out_channels
    if folded > pair:
        return layers, False
    layers[t_index - 1] = compose_1x1(conv, t)
    del layers[t_index]
    return layers, True


@torch.no_grad()
def physically_prune(model):
    """A plain smaller generator without masks: zero-mask channels removed (masks must be binarized), each
    transition conv folded into the block's last conv where that is cheaper.

    The result computes the masked model's function (eval mode); ``model.pruned_channels`` lists the
    channels kept after each mask (block name → [kept counts]), ``model.folded_transitions`` the blocks
    whose transition conv was folded.
    """
    pruned = copy.deepcopy(model).eval()
    kept, folded = {}, []
    for name, block in list(pruned.named_modules()):
        if not isinstance(block, PrunableBlock):
            continue
        layers, transition = list(block.body), block.transition
        t_index = _transition_index(layers)
        if t_index is not None:  # where the transition conv lands once the masks are gone
            t_index -= sum(isinstance(m, ChannelMask) for m in layers[:t_index])
        counts = []
        while any(isinstance(m, ChannelMask) for m in layers):
            layers, transition, keep = _prune_first_mask(layers, transition)
            counts.append(int(len(keep)))
        if t_index is not None:
            layers, did = _fold_transition(layers, t_index)
            if did:
                folded.append(name)
        block.body = nn.Sequential(*layers)
        block.transition = transition
        kept[name] = counts
    for p in pruned.parameters():
        p.requires_grad_(False)
    pruned.pruned_channels = kept
    pruned.folded_transitions = folded
    return pruned.eval()


def pruned_checkpoint(pruned, data, train=None, metrics=None, discriminator=None):
    """A checkpoint dict (``save_checkpoint``) for ``physically_prune``'s result.

    The generator is stored as a ``pruned_generator`` (``edgegan.models.PrunedGenerator``), which
    rebuilds the exact module structure from the layer specs in its arch, so ``load_generator`` and
    ``edgegan build`` work on it; it has one "width", 1.0 (variant ``w1``). ``metrics``: held-out
    metrics (``{"psnr": ..}``) of the pruned model.
    """
    from ..models.pruned import PrunedGenerator

    gen = pruned if isinstance(pruned, PrunedGenerator) else PrunedGenerator.from_module(pruned)
    ckpt = {"generator": {"arch": gen.arch(), "state_dict": {k: v.detach().cpu().clone()
                                                             for k, v in gen.state_dict().items()}},
            "widths": [1.0], "data": dict(data), "train": dict(train or {}),
            "metrics": {"w1": dict(metrics)} if metrics else {}}
    if discriminator is not None:
        ckpt["discriminator"] = discriminator
    return ckpt


def train_ppcd(teacher, train_set, steps, init=None, config=1.0, alpha=0.5, batch_size=16, lr=2e-4, mask_lr=None,
               lambda_pp=LAMBDA_PP, lambda_cd=1.0, lambda_recon=0.0, mask_init=0.01, seed=0, device="cpu",
               teacher_d=None, log=None, eval_set=None, eval_every=0, eval_images=500):
    """PPCD: masks in ``init`` (default: a copy of ``teacher``) at ``config``, ``steps`` of ``ppcd_step``
    with attention distillation from ``teacher``, then every mask binarized and the zero channels removed.

    The loss is PPCD's, ``L = λ_PP·L_PP + λ_CD·L_CD + L_ADV`` (λ_PP 0.01, λ_CD 1); ``lambda_recon`` > 0
    adds ``λ_recon·L1(G(x), teacher(x))``, a pixel-level pull toward the teacher's outputs that the
    paper's loss does not have.

    Returns ``(checkpoint dict, report)``: the checkpoint (``pruned_checkpoint``) holds the pruned
    generator; the report is ``prune_report`` of the masked vs the pruned generator, with the
    unpruned generator (``init`` or the teacher at ``config``) for comparison.
    ``teacher_d``: the teacher checkpoint's ``discriminator`` entry, inherited as in GAN Compression.
    ``eval_set`` / ``eval_every`` / ``eval_images``: every N steps, print the masked generator's held-out
    PSNR / SSIM on the first ``eval_images`` pairs and the channels its masks keep (``train["evals"]``).
    """
    import random as _random
    import time

    from ..models import SharedTrunkPatchGAN
    from ..nn import set_width
    from .distill import _eval_subset, _stderr, inherit_discriminator, periodic_eval
    from .slimmable import ADAM_BETAS, endless_batches, seed_everything

    seed_everything(seed)
    paired = getattr(train_set, "paired", True)
    meta = train_set.describe()
    shape = (1, meta["in_channels"], int(meta["size"]), int(meta["size"]))
    teacher = teacher.to(device).eval()
    base = copy.deepcopy(init if init is not None else teacher).cpu()
    unpruned = extract(base, config, input_shape=shape, fold_bn=False)
    masked = insert_masks(base, config, input_shape=shape, init=mask_init).to(device).train()
    set_width(teacher, 1.0)
    if teacher_d is not None:
        disc = inherit_discriminator(teacher_d).to(device)
    else:
        disc = SharedTrunkPatchGAN(meta["in_channels"] + meta["out_channels"], ndf=16, n_layers=2, n_heads=1).to(device)
    mask_params = [m.weight for m in masks(masked)]
    ids = set(id(p) for p in mask_params)
    opt_g = torch.optim.Adam([{"params": [p for p in masked.parameters() if id(p) not in ids]},
                              {"params": mask_params, "lr": mask_lr or lr}], lr=lr, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=ADAM_BETAS)
    batches = endless_batches(train_set, batch_size, seed)
    _random.seed(seed)
    history, evals = [], []
    subset = _eval_subset(eval_set, eval_images) if eval_every else None
    start = time.perf_counter()
    for i in range(1, steps + 1):
        inputs, targets = (t.to(device) for t in next(batches))
        losses = ppcd_step(masked, teacher, disc, opt_g, opt_d, inputs, targets, alpha, lambda_pp=lambda_pp,
                           lambda_cd=lambda_cd, lambda_recon=lambda_recon, paired=paired)
        losses["step"] = i
        history.append(losses)
        if log:
            log("step %d: %s" % (i, losses))
        if subset is not None and i % eval_every == 0 and i < steps:
            stats = mask_stats(masked)
            entry = periodic_eval(masked, subset, None, i, start, device, log or _stderr,
                                  extra="; masks keep %d of %d channels, %d of %d frozen"
                                  % (stats["kept"], stats["total"], stats["frozen"], stats["masks"]))
            entry["masks"] = stats
            evals.append(entry)
            masked.train()
    seconds = time.perf_counter() - start
    for m in masks(masked):
        m.binarize()  # masks still soft at the end are binarized at the pivot
    masked = masked.cpu().eval()
    pruned = physically_prune(masked)
    report = prune_report(masked, pruned, shape, unpruned=unpruned)
    train = {"recipe": "ppcd", "paired": bool(paired), "steps": steps, "batch_size": batch_size, "lr": lr, "mask_lr": mask_lr or lr,
             "alpha": alpha, "lambda_pp": lambda_pp, "lambda_cd": lambda_cd, "lambda_recon": lambda_recon,
             "seed": seed, "config": masked.subnet_config, "seconds": round(seconds, 1), "history": history[-10:],
             "eval_every": eval_every, "evals": evals,
             "prune": {k: report[k] for k in ("masked", "pruned", "unpruned", "masks", "params_ratio", "macs_ratio",
                                              "unpruned_params_ratio", "unpruned_macs_ratio", "folded_transitions", "blocks")}}
    ckpt = pruned_checkpoint(pruned, meta, train=train,
                             discriminator={"arch": disc.arch(), "state_dict": disc.cpu().state_dict()}
                             if hasattr(disc, "arch") else None)
    ckpt["teacher"] = {"arch": teacher.arch()}
    return ckpt, report


def prune_report(masked, pruned, input_shape, unpruned=None):
    """Params and MACs of the masked and the pruned generator, ``*_ratio`` = masked / pruned; with
    ``unpruned`` (the plain generator the masks were put in) also its cost and ``unpruned_*_ratio`` =
    unpruned / pruned."""
    a, b = cost(masked, input_shape), cost(pruned, input_shape)
    report = {"masked": a, "pruned": b, "masks": mask_stats(masked),
              "params_ratio": a["params"] / float(b["params"]), "macs_ratio": a["macs"] / float(b["macs"]),
              "folded_transitions": len(getattr(pruned, "folded_transitions", [])),
              "blocks": len(getattr(pruned, "pruned_channels", {}))}
    if unpruned is not None:
        c = cost(unpruned, input_shape)
        report.update(unpruned=c, unpruned_params_ratio=c["params"] / float(b["params"]),
                      unpruned_macs_ratio=c["macs"] / float(b["macs"]))
    return report


__all__ = ["LAMBDA_PP", "PrunableBlock", "insert_masks", "mask_stats", "masks", "physically_prune",
           "ppcd_regularizer", "ppcd_step", "prune_report", "pruned_checkpoint", "sparsity_loss", "train_ppcd",
           "update_masks"]
