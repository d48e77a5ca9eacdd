"""Elastic convolutions: layers that run the first k channels of their weights.

Following slimmable networks and once-for-all, a layer reads its *active* output channel
count from one attribute (``active_out``; ``None`` means all) and takes its input channel
count from the tensor it receives, so a chain of layers narrows consistently when each is
told its output width. ``to_static(in_channels)`` hands back a plain ``nn`` module holding
the sliced weights, so that export never sees elastic code.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class _ActiveWidth(object):
    """The output-width rule shared by the elastic convs."""

    depthwise = False

    def active_out_channels(self, in_channels):
        if self.depthwise:
            return in_channels
        if self.fixed_out or self.active_out is None:
            return self.out_channels
        return self.active_out

    def _check_in(self, in_channels):
        if in_channels > self.in_channels:
            raise ValueError("%s got %d input channels, holds %d" % (type(self).__name__, in_channels, self.in_channels))


class ElasticConv2d(_ActiveWidth, nn.Conv2d):
    """``nn.Conv2d`` whose first ``active_out`` output and first ``x.shape[1]`` input channels run.

    ``depthwise=True`` makes a depthwise conv (groups follow the active channel count).
    ``fixed_out=True`` keeps the output width constant (e.g. the RGB output layer).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, padding_mode="zeros", depthwise=False, fixed_out=False):
        groups = in_channels if depthwise else 1
        if depthwise and in_channels != out_channels:
            raise ValueError("a depthwise conv needs in_channels == out_channels")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode)
        self.depthwise = depthwise
        self.fixed_out = fixed_out
        self.active_out = None

    def _sliced(self, in_channels):
        self._check_in(in_channels)
        out = self.active_out_channels(in_channels)
        if self.depthwise:
            weight = self.weight[:out]
        else:
            weight = self.weight[:out, :in_channels]
        bias = self.bias[:out] if self.bias is not None else None
        return weight, bias, out

    def forward(self, x):
        weight, bias, out = self._sliced(x.shape[1])
        groups = out if self.depthwise else 1
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)

    def to_static(self, in_channels):
        weight, bias, out = self._sliced(in_channels)
        groups = out if self.depthwise else 1
        conv = nn.Conv2d(in_channels, out, self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, groups=groups, bias=bias is not None,
                         padding_mode=self.padding_mode)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv


class ElasticConvTranspose2d(_ActiveWidth, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` running its first ``active_out`` output / ``x.shape[1]`` input channels."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True, fixed_out=False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         output_padding=output_padding, bias=bias)
        self.fixed_out = fixed_out
        self.active_out = None

    def _sliced(self, in_channels):
        self._check_in(in_channels)
        out = self.active_out_channels(in_channels)
        weight = self.weight[:in_channels, :out]
        bias = self.bias[:out] if self.bias is not None else None
        return weight, bias, out

    def forward(self, x):
        weight, bias, _ = self._sliced(x.shape[1])
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding,
                                  1, self.dilation)

    def to_static(self, in_channels):
        weight, bias, out = self._sliced(in_channels)
        conv = nn.ConvTranspose2d(in_channels, out, self.kernel_size, stride=self.stride,
                                  padding=self.padding, output_padding=self.output_padding,
                                  bias=bias is not None, dilation=self.dilation)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv
