"""The pix2pix UNet generator (``unet_256``, ``unet_128``, or any number of downsamplings), slimmable.

``num_downs`` levels, each a 4×4 stride-2 conv down and a 4×4 stride-2 transposed conv up; level i
has ``C_i = ngf · min(2^i, 8)`` channels (pix2pix's cap at 8·ngf). An image of side ``2^num_downs``
reaches 1×1 at the bottleneck (``unet_256``: 8 levels, ``unet_128``: 7; a 32² image: 5 or fewer).

    down_0 = conv(image → C_0)                                   (no norm)
    down_i = LeakyReLU(0.2) → conv(C_{i-1} → C_i) → norm          (1 ≤ i < n−1)
    down_{n-1} = LeakyReLU(0.2) → conv(C_{n-2} → C_{n-1})         (innermost: no norm)
    up_{n-1} = ReLU → convT(C_{n-1} → C_{n-2}) → norm
    up_i = ReLU → convT(cat[down_i, up_{i+1}]: 2·C_i → C_{i-1}) → norm [→ Dropout(0.5)]
    up_0 = ReLU → convT(cat[down_0, up_1]: 2·C_0 → image) → Tanh

As in pix2pix: convs carry a bias only with InstanceNorm (the output conv always has one), and
``dropout`` puts Dropout(0.5) after the levels between the fourth and the innermost
(``4 ≤ i < n−1``: three for ``unet_256``), identity in eval mode (pix2pix's test script keeps it
on; here it is off at inference, as ``model.eval()`` makes it).
pix2pix applies the down path's LeakyReLU in place, so its skip carries ``LeakyReLU(down_i)``; the
only reader is the up path's ReLU and ``ReLU(LeakyReLU(x)) = ReLU(x)``, so skipping the plain
``down_i`` output computes the same function.

Width switching. The skip connections concatenate, so the channel slots span both sides of each
skip: slot ``down<i>`` is the output of down conv i, read by down conv i+1 and by up conv i as
the first segment of its input; slot ``up<i>`` (1 ≤ i < n) is the output of up conv i, read by up
conv i−1 as the second segment. At width w up conv i reads the first ``round(w·C_i)`` channels of
each half of its full weight's input (``ElasticConvTranspose2d(in_segments=...)``), and
``edgegan.subnet.extract`` gathers exactly those weight rows into a plain ``ConvTranspose2d``.
"""

from collections import OrderedDict

import torch
import torch.nn as nn

from ..nn import ElasticConv2d, ElasticConvTranspose2d, Slot
from ..nn.sorting import Group, conv_norm_chain
from .resnet_generator import DEFAULT_WIDTHS, NORMS, _norm

DROPOUT_FROM_LEVEL = 4  # pix2pix: the ngf·8 levels between the fourth and the innermost


def level_channels(ngf, num_downs):
    """``[C_0, …, C_{n-1}]``: the channels of each level, ``ngf · min(2^i, 8)``."""
    return [ngf * min(2 ** i, 8) for i in range(num_downs)]


class UnetGenerator(nn.Module):
    """pix2pix UNet generator with switchable width.

    Args:
        in_channels, out_channels: image channels in and out.
        ngf: channels of the first level at full width (capped at 8·ngf deeper down).
        num_downs: levels (downsamplings); the input side must be a multiple of ``2^num_downs``.
        norm: ``bn`` (switchable BatchNorm, folds into the convs on export) or ``in`` (InstanceNorm).
        dropout: Dropout(0.5) in the middle levels (pix2pix ``--dropout``); identity in eval mode.
        widths: the width multipliers trained and exported.
    """

    def __init__(self, in_channels=3, out_channels=3, ngf=64, num_downs=8, norm="bn", dropout=False,
                 widths=DEFAULT_WIDTHS):
        super().__init__()
        if norm not in NORMS:
            raise ValueError("norm must be one of %s, got %r" % (NORMS, norm))
        if int(num_downs) < 2:
            raise ValueError("num_downs must be at least 2 (an outermost and an innermost level), got %r" % num_downs)
        n = int(num_downs)
        widths = tuple(sorted(float(w) for w in widths))
        self.hparams = dict(in_channels=in_channels, out_channels=out_channels, ngf=ngf, num_downs=n, norm=norm,
                            dropout=bool(dropout), widths=list(widths))
        self.widths = widths
        self.num_downs = n
        self.size_multiple = 2 ** n
        channels = level_channels(ngf, n)
        bias = norm != "bn"
        down = []
        for i in range(n):
            if i == 0:
                layers = [ElasticConv2d(in_channels, channels[0], 4, stride=2, padding=1, bias=bias)]
            else:
                layers = [nn.LeakyReLU(0.2), ElasticConv2d(channels[i - 1], channels[i], 4, stride=2, padding=1,
                                                           bias=bias)]
                if i < n - 1:
                    layers.append(_norm(norm, channels[i], widths))
            down.append(nn.Sequential(*layers))
        up = []
        for i in range(n):
            innermost, outermost = i == n - 1, i == 0
            segments = None if innermost else (channels[i], channels[i])
            cin = channels[i] if innermost else 2 * channels[i]
            cout = out_channels if outermost else channels[i - 1]
            layers = [nn.ReLU(True), ElasticConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias or outermost,
                                                            fixed_out=outermost, in_segments=segments)]
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(_norm(norm, cout, widths))
                if dropout and DROPOUT_FROM_LEVEL <= i < n - 1:
                    layers.append(nn.Dropout(0.5))
            up.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)

    def forward(self, x):
        if not torch.jit.is_tracing() and (x.shape[-1] % self.size_multiple or x.shape[-2] % self.size_multiple):
            raise ValueError("a UNet with %d downsamplings takes images whose sides are multiples of %d, got %s"
                             % (self.num_downs, self.size_multiple, tuple(x.shape[-2:])))
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
        y = self.up[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            y = self.up[i](torch.cat([skips[i], y], 1))
        return y

    def arch(self):
        """What a checkpoint needs to rebuild this model."""
        return {"name": "unet_generator", "kwargs": dict(self.hparams)}

    def _down_conv(self, i):
        return self.down[i][0 if i == 0 else 1]

    def _up_conv(self, i):
        return self.up[i][1]

    def channel_slots(self):
        """``down<i>`` (output of down conv i, also the skip read by up conv i) and ``up<i>`` (output of up
        conv i, read by up conv i−1), deepest last."""
        n = self.num_downs
        slots = OrderedDict()
        for i in range(n):
            conv = self._down_conv(i)
            readers = [] if i == n - 1 else [(self._up_conv(i), 0)]
            slots["down%d" % i] = Slot(conv.out_channels, [conv], readers)
        for i in range(1, n):
            conv = self._up_conv(i)
            slots["up%d" % i] = Slot(conv.out_channels, [conv], [(self._up_conv(i - 1), 1)])
        return slots

    def sorting_groups(self):
        """Channel groups for ``edgegan.nn.sorting.sort_channels``: each slot's producer (and its norm) and the
        convs that read it — for a skip, the up conv's first input segment; for an up output, the next up
        conv's second segment."""
        n = self.num_downs
        down = [conv_norm_chain(list(level))[0] for level in self.down]
        up = [conv_norm_chain(list(level))[0] for level in self.up]
        groups = []
        for i in range(n):
            consumers = [up[i][0]] if i == n - 1 else [self._down_conv(i + 1), (up[i][0], 0)]
            groups.append(Group([down[i]], consumers))
        for i in range(1, n):
            groups.append(Group([up[i]], [(up[i - 1][0], up[i - 1][0].in_segments[0])]))
        return groups
