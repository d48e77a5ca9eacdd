"""Class-conditional BatchNorm for slimmable generators (SlimGAN, METHODS.md §1).

Both layers take ``forward(x, y)``: ``x`` N×C×H×W with C the active channel count, ``y`` the
class labels (N int64). A layer that takes a label says so with ``takes_label = True``, which
is how a generator's forward loop knows to pass ``y`` along.

* ``SliceableConditionalBatchNorm2d`` (SlimGAN's "+"): per-width (switchable) BatchNorm
  statistics and affine ``γ_w, β_w``, and one pair of per-class vectors of full width ``γ_c, β_c``
  sliced to the first ``s`` active channels::

      x' = γ_w · γ_c[:s] · x̂ + β_w + β_c[:s]

* ``SwitchableConditionalBatchNorm2d`` (SlimGAN's "×", the ablation): one complete
  conditional BatchNorm per width — its own statistics and its own per-class tables of that
  width, ``x' = γ_{c,w} · x̂ + β_{c,w}``.

``to_static(in_channels)`` of either folds statistics and affine into two per-class tables,
``x' = scale[y] · x + shift[y]`` (``StaticConditionalBatchNorm2d``): no elastic code, and in ONNX
the lookup is a ``Gather`` on the label input.

The statistics live in ordinary ``nn.BatchNorm2d`` modules (``affine=False``), so
``edgegan.train.recalibrate.recalibrate_bn`` and ``momentum=None`` (cumulative average) work
on them as on any BatchNorm.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def _normalize(bn, x, training):
    """``x̂`` with ``bn``'s statistics (sliced to ``x``'s channels), updating them like ``nn.BatchNorm2d`` does."""
    c = x.shape[1]
    if c > bn.num_features:
        raise ValueError("BatchNorm of %d channels got %d" % (bn.num_features, c))
    factor = 0.0
    if training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        factor = (1.0 / float(bn.num_batches_tracked)) if bn.momentum is None else bn.momentum
    use_batch = training or not bn.track_running_stats
    return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], None, None, use_batch, factor, bn.eps)


def _labels(y, n, n_classes):
    if y is None:
        raise ValueError("a class-conditional layer needs the class labels y (N int64 in [0, %d))" % n_classes)
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError("labels must be a 1-D tensor of %d class indices, got shape %s" % (n, tuple(y.shape)))
    return y.long()


class SliceableConditionalBatchNorm2d(nn.Module):
    """SlimGAN's sliceable conditional BatchNorm (see the module docstring).

    Args:
        num_features_list: the channel counts of the widths (one BatchNorm and one ``γ_w, β_w`` each).
        n_classes: number of classes; the per-class tables are ``n_classes × max(num_features_list)``.

    ``γ_c`` starts at 1 and ``β_c`` at 0 (so the layer starts as a switchable BatchNorm).
    A channel count not in the list uses the next wider width's statistics and affine, sliced.
    """

    takes_label = True

    def __init__(self, num_features_list, n_classes, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features_list = sorted(set(int(c) for c in num_features_list))
        self.num_features = self.num_features_list[-1]
        self.n_classes = int(n_classes)
        self.bn = nn.ModuleList([nn.BatchNorm2d(c, eps=eps, momentum=momentum, affine=False)
                                 for c in self.num_features_list])
        self.weight = nn.ParameterList([nn.Parameter(torch.ones(c)) for c in self.num_features_list])
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(c)) for c in self.num_features_list])
        self.class_weight = nn.Parameter(torch.ones(self.n_classes, self.num_features))
        self.class_bias = nn.Parameter(torch.zeros(self.n_classes, self.num_features))

    def _index(self, channels):
        for i, c in enumerate(self.num_features_list):
            if c >= channels:
                return i
        raise ValueError("%s got %d channels, holds at most %d" % (type(self).__name__, channels, self.num_features))

    def select(self, channels):
        """The BatchNorm (statistics) that serves ``channels`` input channels."""
        return self.bn[self._index(channels)]

    def affine(self, channels):
        """Per-class ``(scale, shift)`` tables (n_classes × channels) of the affine part at ``channels``."""
        i = self._index(channels)
        gw, bw = self.weight[i][:channels], self.bias[i][:channels]
        return gw * self.class_weight[:, :channels], bw + self.class_bias[:, :channels]

    def forward(self, x, y):
        c = x.shape[1]
        y = _labels(y, x.shape[0], self.n_classes)
        i = self._index(c)
        xhat = _normalize(self.bn[i], x, self.training)
        gamma = self.weight[i][:c] * self.class_weight[y, :c]
        beta = self.bias[i][:c] + self.class_bias[y, :c]
        return gamma[:, :, None, None] * xhat + beta[:, :, None, None]

    def to_static(self, in_channels):
        bn = self.select(in_channels)
        scale, shift = self.affine(in_channels)
        return StaticConditionalBatchNorm2d.from_parts(bn, scale, shift, in_channels)


class SwitchableConditionalBatchNorm2d(nn.Module):
    """The naive slimmable cBN (SlimGAN's "×"): one full conditional BatchNorm per width.

    Each width has its own statistics and per-class tables ``n_classes × c_w``
    (``γ`` starts at 1, ``β`` at 0); no parameter is shared between widths.
    """

    takes_label = True

    def __init__(self, num_features_list, n_classes, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features_list = sorted(set(int(c) for c in num_features_list))
        self.num_features = self.num_features_list[-1]
        self.n_classes = int(n_classes)
        self.bn = nn.ModuleList([nn.BatchNorm2d(c, eps=eps, momentum=momentum, affine=False)
                                 for c in self.num_features_list])
        self.class_weight = nn.ParameterList([nn.Parameter(torch.ones(self.n_classes, c))
                                              for c in self.num_features_list])
        self.class_bias = nn.ParameterList([nn.Parameter(torch.zeros(self.n_classes, c))
                                            for c in self.num_features_list])

    _index = SliceableConditionalBatchNorm2d._index
    select = SliceableConditionalBatchNorm2d.select

    def affine(self, channels):
        i = self._index(channels)
        return self.class_weight[i][:, :channels], self.class_bias[i][:, :channels]

    def forward(self, x, y):
        c = x.shape[1]
        y = _labels(y, x.shape[0], self.n_classes)
        i = self._index(c)
        xhat = _normalize(self.bn[i], x, self.training)
        gamma = self.class_weight[i][y, :c]
        beta = self.class_bias[i][y, :c]
        return gamma[:, :, None, None] * xhat + beta[:, :, None, None]

    def to_static(self, in_channels):
        bn = self.select(in_channels)
        scale, shift = self.affine(in_channels)
        return StaticConditionalBatchNorm2d.from_parts(bn, scale, shift, in_channels)


class StaticConditionalBatchNorm2d(nn.Module):
    """Inference-only conditional BatchNorm with everything folded: ``x · scale[y] + shift[y]``.

    ``scale``/``shift`` are frozen ``n_classes × C`` parameters; ``forward(x, y)`` with ``y`` N int64.
    Exports to ONNX as two ``Gather`` + ``Mul`` + ``Add``.
    """

    takes_label = True

    def __init__(self, num_features, n_classes):
        super().__init__()
        self.num_features, self.n_classes = int(num_features), int(n_classes)
        # parameters (frozen) rather than buffers, so that parameter counts include the tables
        self.scale = nn.Parameter(torch.ones(self.n_classes, self.num_features), requires_grad=False)
        self.shift = nn.Parameter(torch.zeros(self.n_classes, self.num_features), requires_grad=False)

    @classmethod
    @torch.no_grad()
    def from_parts(cls, bn, scale, shift, channels):
        """Fold ``bn``'s running statistics (first ``channels``) into per-class ``scale``/``shift`` tables."""
        mod = cls(channels, scale.shape[0])
        inv_std = torch.rsqrt(bn.running_var[:channels] + bn.eps)
        mod.scale.copy_(scale * inv_std)
        mod.shift.copy_(shift - scale * inv_std * bn.running_mean[:channels])
        return mod

    def forward(self, x, y):
        y = y.long()
        return x * self.scale[y][:, :, None, None] + self.shift[y][:, :, None, None]

    def extra_repr(self):
        return "%d, n_classes=%d" % (self.num_features, self.n_classes)


COND_NORMS = (SliceableConditionalBatchNorm2d, SwitchableConditionalBatchNorm2d, StaticConditionalBatchNorm2d)


def takes_label(module):
    """Whether ``module`` is called as ``module(x, y)``."""
    return bool(getattr(module, "takes_label", False))
