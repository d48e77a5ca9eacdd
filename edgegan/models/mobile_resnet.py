"""GAN Compression's mobile design space: a ResNet generator with separable residual blocks.

Same skeleton as ``ResnetGenerator`` (stem 7×7 → 2 regular stride-2 downsampling convs → n blocks →
2 regular upsampling layers → 7×7 output conv → tanh); only the residual blocks change: each of
their two 3×3 convs becomes a depthwise 3×3 conv + norm + pointwise 1×1 conv ("separable"), as in
GAN Compression. Down/up-sampling convs stay regular (they are sensitive to compression).

Block: [pad] dw3×3(C) → norm → pw1×1(C→H) → norm → ReLU → [pad] dw3×3(H) → norm → pw1×1(H→C) → norm; x + ·

``separable_layout`` says what the separable convs hold. ``edgegan`` (default): every norm is the model's
``norm`` and the convs carry a bias only without BatchNorm. ``gan-compression``: GAN Compression's own
separable conv, whose inner norm (after the depthwise conv) is always an InstanceNorm without affine and
whose depthwise and pointwise convs always carry a bias, whatever ``norm`` the block's other norms use;
imported GAN Compression generators use it (with ``norm="in"``, GAN Compression's default, both layouts
compute the same function).

Every layer but the output is elastic; slots are ``stem``, ``down1``, ``stream`` (the last
downsampling conv and every block's last pointwise conv), ``block<i>`` (the hidden width H of block
i) and ``up1``, ``up2``. Depthwise convs follow the width of their input.
"""

from collections import OrderedDict

import torch.nn as nn

from ..nn import ElasticConv2d, ElasticConvTranspose2d, Slot
from ..nn.sorting import Group, conv_norm_chain
from .resnet_generator import DEFAULT_WIDTHS, ResnetGenerator, _norm

SEPARABLE_LAYOUTS = ("edgegan", "gan-compression")


def _depthwise(channels, padding_kind, bias):
    if padding_kind == "reflect":
        return [nn.ReflectionPad2d(1), ElasticConv2d(channels, channels, 3, padding=0, bias=bias, depthwise=True)]
    return [ElasticConv2d(channels, channels, 3, padding=1, bias=bias, depthwise=True)]


class MobileResnetBlock(nn.Module):
    """Separable residual block; ``hidden`` is the inner channel count (default: ``channels``)."""

    def __init__(self, channels, norm, padding, widths, hidden=None, separable_layout="edgegan"):
        super().__init__()
        hidden = hidden or channels
        if separable_layout == "gan-compression":
            inner, dw_bias, pw_bias = "in", True, True
        else:
            inner, dw_bias, pw_bias = norm, norm != "bn", norm != "bn"
        layers = _depthwise(channels, padding, dw_bias) + [_norm(inner, channels, widths)]
        layers += [ElasticConv2d(channels, hidden, 1, bias=pw_bias), _norm(norm, hidden, widths), nn.ReLU(True)]
        layers += _depthwise(hidden, padding, dw_bias) + [_norm(inner, hidden, widths)]
        layers += [ElasticConv2d(hidden, channels, 1, bias=pw_bias), _norm(norm, channels, widths)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)

    def convs(self):
        return [m for m in self.body if isinstance(m, ElasticConv2d)]

    def pointwise(self):
        return [m for m in self.convs() if not m.depthwise]


class MobileResnetGenerator(ResnetGenerator):
    """pix2pix ResNet generator in GAN Compression's mobile design space (separable ResBlocks).

    Arguments as ``ResnetGenerator``; ``hidden`` (default 4·ngf) is the inner width of every block, or a
    list with one inner width per block (GAN Compression's compressed students); ``separable_layout``:
    see the module docstring.
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9, norm="bn", padding="reflect",
                 upsample="transposed", widths=DEFAULT_WIDTHS, hidden=None, channels=None,
                 separable_layout="edgegan"):
        if separable_layout not in SEPARABLE_LAYOUTS:
            raise ValueError("separable_layout must be one of %s, got %r" % (SEPARABLE_LAYOUTS, separable_layout))
        if isinstance(hidden, (list, tuple)):
            if len(hidden) != n_blocks:
                raise ValueError("hidden lists %d widths for %d blocks" % (len(hidden), n_blocks))
            self._hidden = [int(h) for h in hidden]
        else:
            self._hidden = int(hidden or ngf * 4)
        self._separable_layout = separable_layout
        super(MobileResnetGenerator, self).__init__(in_channels, out_channels, ngf, n_blocks, norm, padding,
                                                    upsample, widths, channels)
        self.hparams["hidden"] = self._hidden
        if separable_layout != "edgegan":
            self.hparams["separable_layout"] = separable_layout

    def _block(self, index, channels, norm, padding, widths):
        hidden = self._hidden[index] if isinstance(self._hidden, list) else self._hidden
        return MobileResnetBlock(channels, norm, padding, widths, hidden, self._separable_layout)

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
