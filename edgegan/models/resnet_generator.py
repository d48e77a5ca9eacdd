"""The pix2pix ResNet generator, slimmable over width multipliers.

stem (7×7) → 2 stride-2 downsampling convs → n residual blocks → 2 upsampling layers
(transposed conv or nearest-resize + conv) → 7×7 output conv → tanh. Every layer but the
output is elastic; the widest network holds the channels of every narrower one.
"""

from collections import OrderedDict

import torch.nn as nn

from ..nn import ElasticConv2d, ElasticConvTranspose2d, ElasticInstanceNorm2d, Slot, SwitchableBatchNorm2d
from ..nn.slots import width_to_channels
from ..nn.sorting import Group, conv_norm_chain

DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)
NORMS = ("bn", "in")
PADDINGS = ("reflect", "zero")
UPSAMPLINGS = ("transposed", "resize")


def _norm(kind, channels, widths):
    if kind == "bn":
        return SwitchableBatchNorm2d([width_to_channels(w, channels) for w in widths])
    return ElasticInstanceNorm2d(channels)


def _conv(in_c, out_c, k, padding_kind, norm, fixed_out=False):
    """[ReflectionPad] + conv with 'same' padding."""
    p = k // 2
    bias = norm != "bn"
    if padding_kind == "reflect":
        return [nn.ReflectionPad2d(p), ElasticConv2d(in_c, out_c, k, padding=0, bias=bias or fixed_out, fixed_out=fixed_out)]
    return [ElasticConv2d(in_c, out_c, k, padding=p, bias=bias or fixed_out, fixed_out=fixed_out)]


class ResnetBlock(nn.Module):
    def __init__(self, channels, norm, padding, widths):
        super().__init__()
        layers = _conv(channels, channels, 3, padding, norm) + [_norm(norm, channels, widths), nn.ReLU(True)]
        layers += _conv(channels, channels, 3, padding, norm) + [_norm(norm, channels, widths)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)

    def convs(self):
        return [m for m in self.body if isinstance(m, ElasticConv2d)]


class ResnetGenerator(nn.Module):
    """pix2pix ResNet generator with switchable width.

    Args:
        in_channels, out_channels: image channels in and out (1 for grey edges / images).
        ngf: channels of the first layer at full width; the residual stream has 4·ngf.
        n_blocks: residual blocks (9 for 256², 6 for small images).
        norm: ``bn`` (switchable BatchNorm, folds into the conv on export) or ``in`` (InstanceNorm).
        padding: ``reflect`` (pix2pix) or ``zero``.
        upsample: ``transposed`` (ConvTranspose2d k3 s2) or ``resize`` (nearest ×2 + conv 3×3).
        widths: the width multipliers trained and exported.
        channels: full-width channel counts per layer, overriding those ``ngf`` gives
            (``{"stem": ngf, "down1": 2·ngf, "stream": 4·ngf, "up1": 2·ngf, "up2": ngf}``); any subset of
            these keys. Compressed generators (GAN Compression's students, pruned models) have such counts.
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64, n_blocks=9, norm="bn", padding="reflect",
                 upsample="transposed", widths=DEFAULT_WIDTHS, channels=None):
        super().__init__()
        for value, allowed, what in ((norm, NORMS, "norm"), (padding, PADDINGS, "padding"),
                                     (upsample, UPSAMPLINGS, "upsample")):
            if value not in allowed:
                raise ValueError("%s must be one of %s, got %r" % (what, allowed, value))
        widths = tuple(sorted(float(w) for w in widths))
        self.hparams = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf, n_blocks=n_blocks,
                            norm=norm, padding=padding, upsample=upsample, widths=list(widths))
        self.widths = widths
        layer_channels = self._layer_channels(ngf, channels)
        if channels is not None:
            self.hparams["channels"] = dict(layer_channels)
        c1, c2, c4 = layer_channels["stem"], layer_channels["down1"], layer_channels["stream"]
        self.stem = nn.Sequential(*(_conv(in_channels, c1, 7, padding, norm) + [_norm(norm, c1, widths), nn.ReLU(True)]))
        bias = norm != "bn"
        self.down = nn.Sequential(
            ElasticConv2d(c1, c2, 3, stride=2, padding=1, bias=bias), _norm(norm, c2, widths), nn.ReLU(True),
            ElasticConv2d(c2, c4, 3, stride=2, padding=1, bias=bias), _norm(norm, c4, widths), nn.ReLU(True))
        self.blocks = nn.Sequential(*[self._block(i, c4, norm, padding, widths) for i in range(n_blocks)])
        up = []
        u1, u2 = layer_channels["up1"], layer_channels["up2"]
        for cin, cout in ((c4, u1), (u1, u2)):
            if upsample == "transposed":
                up += [ElasticConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            else:
                up += [nn.Upsample(scale_factor=2, mode="nearest")] + _conv(cin, cout, 3, padding, norm)
            up += [_norm(norm, cout, widths), nn.ReLU(True)]
        self.up = nn.Sequential(*up)
        self.head = nn.Sequential(*(_conv(u2, out_channels, 7, padding, norm, fixed_out=True) + [nn.Tanh()]))

    @staticmethod
    def _layer_channels(ngf, channels):
        """The full-width channel count of each layer: ``ngf``'s multiples, overridden by ``channels``."""
        counts = OrderedDict([("stem", ngf), ("down1", ngf * 2), ("stream", ngf * 4), ("up1", ngf * 2), ("up2", ngf)])
        unknown = set(channels or {}) - set(counts)
        if unknown:
            raise ValueError("unknown layer(s) %s in channels; known: %s" % (sorted(unknown), list(counts)))
        counts.update((k, int(v)) for k, v in (channels or {}).items())
        return counts

    def _block(self, index, channels, norm, padding, widths):
        """Residual block ``index`` of the stream (subclasses change the design space here)."""
        return ResnetBlock(channels, norm, padding, widths)

    def forward(self, x):
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))

    def arch(self):
        """What a checkpoint needs to rebuild this model."""
        return {"name": "resnet_generator", "kwargs": dict(self.hparams)}

    def channel_slots(self):
        def convs(seq):
            return [m for m in seq if isinstance(m, (ElasticConv2d, ElasticConvTranspose2d))]

        stem, down, up = convs(self.stem), convs(self.down), convs(self.up)
        slots = OrderedDict()
        slots["stem"] = Slot(stem[0].out_channels, stem)
        slots["down1"] = Slot(down[0].out_channels, [down[0]])
        # the residual stream: the last downsampling conv and the second conv of every block
        slots["stream"] = Slot(down[1].out_channels, [down[1]] + [b.convs()[1] for b in self.blocks])
        for i, block in enumerate(self.blocks):
            slots["block%d" % i] = Slot(block.convs()[0].out_channels, [block.convs()[0]])
        slots["up1"] = Slot(up[0].out_channels, [up[0]])
        slots["up2"] = Slot(up[1].out_channels, [up[1]])
        return slots

    def sorting_groups(self):
        """Channel groups for ``edgegan.nn.sorting.sort_channels``: each slot's producers and the convs that
        read them (the residual stream is one group across every block)."""
        stem, down, up, head = (conv_norm_chain(list(s)) for s in (self.stem, self.down, self.up, self.head))
        blocks = [conv_norm_chain(list(b.body)) for b in self.blocks]
        groups = [Group([stem[0]], [down[0][0]]),
                  Group([down[0]], [down[1][0]]),
                  Group([down[1]] + [b[1] for b in blocks], [b[0][0] for b in blocks] + [up[0][0]])]
        groups += [Group([b[0]], [b[1][0]]) for b in blocks]
        groups += [Group([up[0]], [up[1][0]]), Group([up[1]], [head[0][0]])]
        return groups
