"""Normalisation layers for elastic networks.

Slicing one set of full-width BatchNorm statistics gives wrong outputs at narrow widths (the
statistics of a channel depend on which other channels fed the previous layer), so
``SwitchableBatchNorm2d`` keeps one BatchNorm — statistics and affine — per channel count and
picks the one matching its input. ``ElasticInstanceNorm2d`` needs no statistics at all.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SwitchableBatchNorm2d(nn.Module):
    """One ``BatchNorm2d`` per channel count in ``num_features_list``, chosen by ``x.shape[1]``.

    A channel count that is not in the list (a per-layer once-for-all configuration) uses the
    next wider BatchNorm sliced to its first channels; recalibrate statistics before trusting it.
    """

    def __init__(self, num_features_list, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features_list = sorted(set(int(c) for c in num_features_list))
        self.bn = nn.ModuleList([nn.BatchNorm2d(c, eps=eps, momentum=momentum) for c in self.num_features_list])
        self.num_features = self.num_features_list[-1]

    def _index(self, channels):
        for i, c in enumerate(self.num_features_list):
            if c >= channels:
                return i
        raise ValueError("SwitchableBatchNorm2d got %d channels, holds at most %d" % (channels, self.num_features))

    def select(self, channels):
        """The BatchNorm that serves ``channels`` input channels."""
        return self.bn[self._index(channels)]

    def forward(self, x):
        c = x.shape[1]
        bn = self.select(c)
        if bn.num_features == c:
            return bn(x)
        if self.training:
            # running statistics of the sliced BN are updated in place through the views
            return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                                True, bn.momentum, bn.eps)
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                            False, 0.0, bn.eps)

    def to_static(self, in_channels):
        src = self.select(in_channels)
        bn = nn.BatchNorm2d(in_channels, eps=src.eps, momentum=src.momentum)
        with torch.no_grad():
            bn.weight.copy_(src.weight[:in_channels])
            bn.bias.copy_(src.bias[:in_channels])
            bn.running_mean.copy_(src.running_mean[:in_channels])
            bn.running_var.copy_(src.running_var[:in_channels])
            bn.num_batches_tracked.copy_(src.num_batches_tracked)
        return bn.eval()


class ElasticInstanceNorm2d(nn.Module):
    """InstanceNorm over whatever channels arrive; an optional affine is sliced to them."""

    def __init__(self, num_features, affine=False, eps=1e-5):
        super().__init__()
        self.num_features = num_features
        self.affine = affine
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        c = x.shape[1]
        w = self.weight[:c] if self.affine else None
        b = self.bias[:c] if self.affine else None
        return F.instance_norm(x, None, None, w, b, True, 0.0, self.eps)

    def to_static(self, in_channels):
        norm = nn.InstanceNorm2d(in_channels, affine=self.affine, eps=self.eps)
        if self.affine:
            with torch.no_grad():
                norm.weight.copy_(self.weight[:in_channels])
                norm.bias.copy_(self.bias[:in_channels])
        return norm
