"""PPCD learnable channel masks.

``m = sigmoid(δ·w)`` with δ = 10³ and one parameter per channel; the sparsity loss Σ|w + 1| drives the
masks toward 0. Binarization trick: with ratio = #(m ≤ pivot)/n (pivot 0.005), keep soft masks while
ratio ≤ α; once ratio > α set m = 1 where m > pivot else 0 and freeze the mask. After training, the
zero channels are removed physically (``edgegan.train.prune.physically_prune``).
"""

import torch
import torch.nn as nn

DELTA = 1e3
PIVOT = 0.005


class ChannelMask(nn.Module):
    """Multiplies each channel of its input by ``sigmoid(δ·w)`` (or by a frozen 0/1 mask)."""

    def __init__(self, channels, delta=DELTA, pivot=PIVOT, init=0.01):
        super().__init__()
        self.channels = int(channels)
        self.delta = float(delta)
        self.pivot = float(pivot)
        self.weight = nn.Parameter(torch.full((self.channels,), float(init)))
        self.register_buffer("frozen", torch.tensor(False))
        self.register_buffer("binary", torch.ones(self.channels))

    def mask(self):
        if bool(self.frozen):
            return self.binary
        return torch.sigmoid(self.delta * self.weight)

    def forward(self, x):
        return x * self.mask().to(x.dtype).view(1, -1, 1, 1)

    def sparsity_loss(self):
        """Σ|w + 1| (zero once frozen: the mask no longer learns)."""
        if bool(self.frozen):
            return self.weight.sum() * 0.0
        return (self.weight + 1.0).abs().sum()

    @torch.no_grad()
    def ratio(self):
        """Fraction of channels whose mask is at most the pivot."""
        return float((self.mask() <= self.pivot).float().mean())

    @torch.no_grad()
    def binarize(self):
        """m = 1 where m > pivot else 0, frozen from now on."""
        if not bool(self.frozen):
            self.binary.copy_((torch.sigmoid(self.delta * self.weight) > self.pivot).float())
            self.frozen.fill_(True)
        self.weight.requires_grad_(False)

    def update(self, alpha):
        """The binarization trick: binarize and freeze once ratio > ``alpha``; returns whether frozen."""
        if not bool(self.frozen) and self.ratio() > alpha:
            self.binarize()
        return bool(self.frozen)

    @torch.no_grad()
    def kept(self):
        """Indices of the channels that survive pruning (mask > pivot)."""
        return torch.nonzero(self.mask() > self.pivot).flatten()

    def extra_repr(self):
        return "channels=%d, delta=%g, pivot=%g, frozen=%s" % (self.channels, self.delta, self.pivot, bool(self.frozen))


def masks(model):
    return [m for m in model.modules() if isinstance(m, ChannelMask)]


def sparsity_loss(model):
    """Σ over every mask of Σ|w + 1|."""
    ms = masks(model)
    if not ms:
        raise ValueError("the model has no ChannelMask")
    return sum(m.sparsity_loss() for m in ms)


def update_masks(model, alpha):
    """Apply the binarization trick to every mask (each with its own ratio); returns #frozen."""
    return sum(int(m.update(alpha)) for m in masks(model))


def mask_stats(model):
    """{"kept": channels with m > pivot, "total": channels, "frozen": masks frozen, "masks": n}."""
    ms = masks(model)
    return {"kept": int(sum(len(m.kept()) for m in ms)), "total": int(sum(m.channels for m in ms)),
            "frozen": int(sum(bool(m.frozen) for m in ms)), "masks": len(ms)}


__all__ = ["ChannelMask", "DELTA", "PIVOT", "mask_stats", "masks", "sparsity_loss", "update_masks"]
