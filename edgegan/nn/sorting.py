"""Anycost channel sorting: reorder channels by importance so first-k slices keep the best ones.

Importance of an output channel is the L1 norm of its kernel (summed over every conv that writes
the same channel: the residual stream of a ResNet generator is one group across all blocks).
For each group the permutation is applied consistently to

* the producers' output channels (weight, bias) and the norm that follows each producer,
* depthwise convs (and their norms) that pass the channels through,
* the consumers' input channels (for a consumer that reads a concatenation, e.g. a UNet up-conv,
  only the input channels of the group's segment: ``(conv, first input channel)``),

so the sorted model computes **exactly the same function at full width**.

Switchable BatchNorm caveat: ``SwitchableBatchNorm2d`` keeps one BatchNorm per channel count,
and a narrow copy holds statistics/affine for the *first k* channels. After sorting, the first k
channels are different channels, so a narrow copy cannot stay correct: for each new channel j < k
we keep the narrow copy's entry when the channel was already among its first k (moved to its new
place), and otherwise copy the widest BatchNorm's entry for that channel. The full-width copy is
exact; **sub-widths need BN recalibration or fine-tuning** (Anycost's consistency loss to the full
model is what makes sorted sub-generators good), so re-train or recalibrate before trusting them.
"""

import torch
import torch.nn as nn

from .norm import ElasticInstanceNorm2d, SwitchableBatchNorm2d

CONVS = (nn.Conv2d, nn.ConvTranspose2d)
NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d, SwitchableBatchNorm2d, ElasticInstanceNorm2d)


class Group(object):
    """Channels shared by ``producers`` [(conv, norm or None)], read by ``consumers`` [conv, or
    (conv, start) when they are the input channels ``start…start+n-1`` of a concatenation].

    ``passthrough`` [(depthwise conv, norm or None)] carry the channels unchanged in number.
    """

    def __init__(self, producers, consumers, passthrough=()):
        self.producers = list(producers)
        self.consumers = list(consumers)
        self.passthrough = list(passthrough)


def _is_transposed(conv):
    return isinstance(conv, nn.ConvTranspose2d)


def _is_depthwise(conv):
    return getattr(conv, "depthwise", False) or (conv.groups > 1 and conv.groups == conv.in_channels)


def _out_weight(conv):
    """The weight as (out, ...) — a view for convs, a transposed view for transposed convs."""
    return conv.weight.transpose(0, 1) if _is_transposed(conv) else conv.weight


def channel_importance(conv):
    """L1 norm of each output channel's kernel."""
    w = _out_weight(conv).detach()
    return w.abs().reshape(w.shape[0], -1).sum(dim=1)


def _permute_param(p, perm, dim):
    with torch.no_grad():
        p.copy_(p.index_select(dim, perm.to(p.device)))


def _permute_out(conv, perm):
    _permute_param(conv.weight, perm, 1 if _is_transposed(conv) else 0)
    if conv.bias is not None:
        _permute_param(conv.bias, perm, 0)


def _permute_in(conv, perm, start):
    if _is_depthwise(conv):
        raise ValueError("a depthwise conv is a passthrough, not a consumer")
    dim = 0 if _is_transposed(conv) else 1
    with torch.no_grad():
        part = conv.weight.narrow(dim, start, len(perm))
        part.copy_(part.index_select(dim, perm.to(part.device)))


def _permute_bn(bn, perm):
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if t is not None:
            _permute_param(t, perm, 0)


def _permute_switchable(sbn, perm):
    full = sbn.bn[-1]
    n = full.num_features
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    with torch.no_grad():
        for bn in list(sbn.bn)[:-1]:
            k = bn.num_features
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(bn, name)  # a SwitchableBatchNorm2d's BatchNorms are affine and track statistics
                src_full = getattr(full, name)
                new = src_full[perm[:k]].clone()  # stats of the widest copy for the new first-k channels
                old = t.detach().clone()
                keep = perm[:k] < k  # channels that the narrow copy already held: keep its own entry
                new[keep] = old[perm[:k][keep]]
                t.copy_(new)
    _permute_bn(full, perm)


def _permute_norm(norm, perm):
    if norm is None:
        return
    if isinstance(norm, SwitchableBatchNorm2d):
        _permute_switchable(norm, perm)
    elif isinstance(norm, nn.BatchNorm2d):
        _permute_bn(norm, perm)
    elif getattr(norm, "weight", None) is not None:  # affine instance norm
        for t in (norm.weight, norm.bias):
            _permute_param(t, perm, 0)
    for name in ("running_mean", "running_var"):
        t = getattr(norm, name, None)
        if t is not None and not isinstance(norm, (nn.BatchNorm2d, SwitchableBatchNorm2d)):
            _permute_param(t, perm, 0)


def conv_norm_chain(modules):
    """[(conv, following norm or None)] over a flat module list (norm before the next conv)."""
    out = []
    for m in modules:
        if isinstance(m, CONVS):
            out.append([m, None])
        elif isinstance(m, NORMS) and out and out[-1][1] is None:
            out[-1][1] = m
    return [tuple(x) for x in out]


def _generic_groups(model):
    """A plain chain: every conv's output feeds the next non-depthwise conv."""
    leaves = [m for m in model.modules() if isinstance(m, CONVS + NORMS)]
    chain = conv_norm_chain(leaves)
    groups = []
    i = 0
    while i < len(chain):
        conv, norm = chain[i]
        j = i + 1
        passthrough = []
        while j < len(chain) and _is_depthwise(chain[j][0]):
            passthrough.append(chain[j])
            j += 1
        if getattr(conv, "fixed_out", False) or _is_depthwise(conv) or j >= len(chain):
            i += 1
            continue
        groups.append(Group([(conv, norm)], [chain[j][0]], passthrough))
        i = j
    return groups


def sorting_groups(model):
    """The channel groups of ``model``: its own ``sorting_groups()`` (the generators define theirs), else a
    plain chain's."""
    if hasattr(model, "sorting_groups"):
        return model.sorting_groups()
    return _generic_groups(model)


def group_importance(group):
    return sum(channel_importance(conv) for conv, _ in group.producers)


@torch.no_grad()
def sort_channels(model, groups=None):
    """Sort every channel group of ``model`` by decreasing importance, in place; returns the permutations.

    The full-width function is unchanged. Narrow widths of a switchable BatchNorm get best-effort
    statistics and need recalibration / fine-tuning (see the module docstring).
    """
    groups = sorting_groups(model) if groups is None else groups
    perms = []
    for g in groups:
        imp = group_importance(g)
        perm = torch.argsort(imp, descending=True, stable=True)
        for conv, norm in g.producers:
            _permute_out(conv, perm)
            _permute_norm(norm, perm)
        for conv, norm in g.passthrough:
            _permute_out(conv, perm)
            _permute_norm(norm, perm)
        for consumer in g.consumers:
            conv, start = consumer if isinstance(consumer, tuple) else (consumer, 0)
            _permute_in(conv, perm, start)
        perms.append(perm)
    return perms


__all__ = ["Group", "channel_importance", "group_importance", "sort_channels", "sorting_groups"]
