"""GAN Compression's mobile design space: a ResNet generator with separable residual blocks.

Same skeleton as ``ResnetGenerator`` (stem 7×7 → 2 regular stride-2 downsampling convs → n blocks →
2 regular upsampling layers → 7×7 output conv → tanh); only the residual blocks change: each of
their two 3×3 convs becomes a depthwise 3×3 conv + norm + pointwise 1×1 conv ("separable"), as in
GAN Compression. Down/up-sampling convs stay regular (they are sensitive to compression).

Block: [pad] dw3×3(C) → norm → pw1×1(C→H) → norm → ReLU → [pad] dw3×3(H) → norm → pw1×1(H→C) → norm; x + ·

Every layer but the output is elastic; slots are ``stem``, ``down1``, ``stream`` (the last
downsampling conv and every block's last pointwise conv), ``block<i>`` (the hidden width H of block
i) and ``up1``, ``up2``. Depthwise convs follow the width of their input.
"""

from collections import OrderedDict

import torch.nn as nn

from ..nn import ElasticConv2d, ElasticConvTranspose2d, Slot
from ..nn.sorting import Group, conv_norm_chain
from .resnet_generator import DEFAULT_WIDTHS, ResnetGenerator, _norm


def _depthwise(channels, padding_kind, bias):
    if padding_kind == "reflect":
        return [nn.ReflectionPad2d(1), ElasticConv2d(channels, channels, 3, padding=0, bias=bias, depthwise=True)]
    return [ElasticConv2d(channels, channels, 3, padding=1, bias=bias, depthwise=True)]


class MobileResnetBlock(nn.Module):
    """Separable residual block; ``hidden`` is the inner channel count (default: ``channels``)."""

    def __init__(self, channels, norm, padding, widths, hidden=None):
        super().__init__()
        hidden = hidden or channels
        bias = norm != "bn"
        layers = _depthwise(channels, padding, bias) + [_norm(norm, channels, widths)]
        layers += [ElasticConv2d(channels, hidden, 1, bias=bias), _norm(norm, hidden, widths), nn.ReLU(True)]
        layers += _depthwise(hidden, padding, bias) + [_norm(norm, hidden, widths)]
        layers += [ElasticConv2d(hidden, channels, 1, bias=bias), _norm(norm, channels, widths)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)

    def convs(self):
        return [m for m in self.body if isinstance(m, ElasticConv2d)]

    def pointwise(self):
        return [m for m in self.convs() if not m.depthwise]


class MobileResnetGenerator(ResnetGenerator):
    """pix2pix ResNet generator in GAN Compression's mobile design space (separable ResBlocks).

    Arguments as ``ResnetGenerator``; ``hidden`` (default 4·ngf) is the inner width of every block.
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9, norm="bn", padding="reflect",
                 upsample="transposed", widths=DEFAULT_WIDTHS, hidden=None):
        self._hidden = int(hidden or ngf * 4)
        super(MobileResnetGenerator, self).__init__(in_channels, out_channels, ngf, n_blocks, norm, padding,
                                                    upsample, widths)
        self.hparams["hidden"] = self._hidden

    def _block(self, channels, norm, padding, widths):
        return MobileResnetBlock(channels, norm, padding, widths, self._hidden)

    def arch(self):
        return {"name": "mobile_resnet_generator", "kwargs": dict(self.hparams)}

    def _convs(self, seq):
        return [m for m in seq if isinstance(m, (ElasticConv2d, ElasticConvTranspose2d))]

    def channel_slots(self):
        stem, down, up = self._convs(self.stem), self._convs(self.down), self._convs(self.up)
        slots = OrderedDict()
        slots["stem"] = Slot(stem[0].out_channels, stem)
        slots["down1"] = Slot(down[0].out_channels, [down[0]])
        slots["stream"] = Slot(down[1].out_channels, [down[1]] + [b.pointwise()[1] for b in self.blocks])
        for i, block in enumerate(self.blocks):
            slots["block%d" % i] = Slot(block.pointwise()[0].out_channels, [block.pointwise()[0]])
        slots["up1"] = Slot(up[0].out_channels, [up[0]])
        slots["up2"] = Slot(up[1].out_channels, [up[1]])
        return slots

    def sorting_groups(self):
        """Channel groups for ``edgegan.nn.sorting.sort_channels`` (depthwise convs pass channels through)."""
        stem, down, up, head = (conv_norm_chain(list(s)) for s in (self.stem, self.down, self.up, self.head))
        blocks = [conv_norm_chain(list(b.body)) for b in self.blocks]  # [dw1, pw1, dw2, pw2]
        groups = [Group([stem[0]], [down[0][0]]),
                  Group([down[0]], [down[1][0]]),
                  Group([down[1]] + [b[3] for b in blocks], [b[1][0] for b in blocks] + [up[0][0]],
                        passthrough=[b[0] for b in blocks])]
        groups += [Group([b[1]], [b[3][0]], passthrough=[b[2]]) for b in blocks]
        groups += [Group([up[0]], [up[1][0]]), Group([up[1]], [head[0][0]])]
        return groups
