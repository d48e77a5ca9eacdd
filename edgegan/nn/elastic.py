"""Elastic convolutions: layers that run the first k channels of their weights.

Following slimmable networks and once-for-all, a layer reads its *active* output channel
count from one attribute (``active_out``; ``None`` means all) and takes its input channel
count from the tensor it receives, so a chain of layers narrows consistently when each is
told its output width. ``to_static(in_channels)`` hands back a plain ``nn`` module holding
(a copy of) the sliced weights, with their dtype and device, so that export never sees elastic code.

A layer whose input is a concatenation (a UNet's up-conv reads ``cat([skip, upsampled])``) is
built with ``in_segments=(C1, C2, ...)``: the full weight's input channels are those segments in
order, and at a narrower width segment j runs its first ``active_in[j]`` channels. The counts come
from the channel slots that produce each segment (``Slot(readers=[(layer, j)])``, set by
``set_width``), not from the tensor, which only tells their sum. ``to_static`` gathers the active
input channels of every segment into one plain conv that reads the concatenation of the active
parts.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class _ActiveWidth(object):
    """The output-width rule (and the segmented-input rule) shared by the elastic convs."""

    depthwise = False
    in_segments = None
    active_in = None

    def _init_segments(self, in_segments):
        if in_segments is None:
            return
        segments = tuple(int(c) for c in in_segments)
        if self.depthwise:
            raise ValueError("a depthwise conv cannot read a segmented input")
        if not segments or min(segments) < 1 or sum(segments) != self.in_channels:
            raise ValueError("in_segments %s must be positive channel counts summing to in_channels=%d"
                             % (segments, self.in_channels))
        self.in_segments = segments
        self.active_in = [None] * len(segments)

    def set_active_in(self, segment, channels):
        """Run the first ``channels`` channels of input segment ``segment`` (``None``: all of them)."""
        if self.in_segments is None:
            raise ValueError("%s has no input segments" % type(self).__name__)
        if channels is not None and not 1 <= int(channels) <= self.in_segments[segment]:
            raise ValueError("input segment %d holds %d channels, %r asked" % (segment, self.in_segments[segment],
                                                                              channels))
        self.active_in[segment] = None if channels is None else int(channels)

    def active_segments(self):
        """Active channels per input segment (``None`` for an unsegmented layer)."""
        if self.in_segments is None:
            return None
        return [full if k is None else k for full, k in zip(self.in_segments, self.active_in)]

    def input_index(self, in_channels):
        """Which input channels of the full weight ``in_channels`` active ones are: ``None`` for the first
        ``in_channels`` (the usual prefix), else a ``LongTensor`` of the active channels of every segment."""
        self._check_in(in_channels)
        counts = self.active_segments()
        if counts is None:
            return None
        if sum(counts) != in_channels:
            raise ValueError("%s got %d input channels, but its input segments are set to %s (sum %d); set "
                             "the width with set_width so that the slots feeding it agree"
                             % (type(self).__name__, in_channels, counts, sum(counts)))
        if counts == list(self.in_segments):
            return None
        index, offset = [], 0
        for full, k in zip(self.in_segments, counts):
            index.append(torch.arange(offset, offset + k))
            offset += full
        return torch.cat(index).to(self.weight.device)

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
    ``in_segments``: the input is a concatenation of segments (see the module docstring).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, padding_mode="zeros", depthwise=False, fixed_out=False, in_segments=None):
        groups = in_channels if depthwise else 1
        if depthwise and in_channels != out_channels:
            raise ValueError("a depthwise conv needs in_channels == out_channels")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode)
        self.depthwise = depthwise
        self.fixed_out = fixed_out
        self.active_out = None
        self._init_segments(in_segments)

    def _sliced(self, in_channels):
        index = self.input_index(in_channels)
        out = self.active_out_channels(in_channels)
        if self.depthwise:
            weight = self.weight[:out]
        elif index is not None:
            weight = self.weight[:out].index_select(1, index)
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
                         padding_mode=self.padding_mode, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv


class ElasticConvTranspose2d(_ActiveWidth, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` running its first ``active_out`` output / ``x.shape[1]`` input channels
    (``in_segments``: a concatenated input, see the module docstring)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True, fixed_out=False, in_segments=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         output_padding=output_padding, bias=bias)
        self.fixed_out = fixed_out
        self.active_out = None
        self._init_segments(in_segments)

    def _sliced(self, in_channels):
        index = self.input_index(in_channels)
        out = self.active_out_channels(in_channels)
        if index is not None:
            weight = self.weight.index_select(0, index)[:, :out]
        else:
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
                                  bias=bias is not None, dilation=self.dilation, device=weight.device,
                                  dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv
