"""PatchGAN discriminators for the paired recipe.

``SharedTrunkPatchGAN`` (SlimGAN's "shared D"): the first ``n_share`` layers are shared by every
width; the remaining layers are copied per head. ``SlimmablePatchGAN`` (the ablation's "slimmable
D"): the layers once, their width switched with the generator's (``set_width`` / ``at_width``).
Convs carry spectral normalisation (of the active slice, for the slimmable one), which suits the
hinge loss.
"""

import torch.nn as nn
from torch.nn.utils import spectral_norm

from ..nn.spectral import SNElasticConv2d


def _channels(in_channels, ndf, n_layers):
    chans = [in_channels] + [ndf * min(2 ** i, 8) for i in range(n_layers + 1)]
    strides = [2] * n_layers + [1]
    return chans, strides


def _block(in_c, out_c, stride, act=True):
    layers = [spectral_norm(nn.Conv2d(in_c, out_c, 4, stride=stride, padding=1))]
    if act:
        layers.append(nn.LeakyReLU(0.2, True))
    return layers


class SharedTrunkPatchGAN(nn.Module):
    """``n_layers`` stride-2 convs + one stride-1 conv + a 1-channel output conv (pix2pix NLayer D).

    ``forward(x, head)`` scores ``x`` with the discriminator of head ``head`` (one per width).
    """

    def __init__(self, in_channels=6, ndf=64, n_layers=3, n_share=2, n_heads=4):
        super().__init__()
        chans, strides = _channels(in_channels, ndf, n_layers)
        layer_specs = [(chans[i], chans[i + 1], strides[i]) for i in range(n_layers + 1)]
        total = len(layer_specs) + 1
        if not 0 <= n_share < total:
            raise ValueError("n_share must be in [0, %d), got %d" % (total, n_share))
        self.hparams = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, n_share=n_share, n_heads=n_heads)

        def layers(specs, with_output):
            out = []
            for cin, cout, s in specs:
                out += _block(cin, cout, s)
            if with_output:
                out += _block(chans[-1], 1, 1, act=False)
            return out

        self.trunk = nn.Sequential(*layers(layer_specs[:n_share], False))
        self.heads = nn.ModuleList([nn.Sequential(*layers(layer_specs[n_share:], True)) for _ in range(n_heads)])

    def forward(self, x, head=0):
        return self.heads[head](self.trunk(x))

    def arch(self):
        return {"name": "shared_trunk_patchgan", "kwargs": dict(self.hparams)}


class SlimmablePatchGAN(nn.Module):
    """The pix2pix NLayer D (``n_layers`` stride-2 convs, one stride-1 conv, a 1-channel output conv) whose
    width follows the generator's: at width ``w`` each hidden conv runs its first ``round(w·C)`` channels
    (the input keeps its image channels, the output its one channel), spectrally normalised on that slice.
    ``forward(x, head=0)``: ``head`` is accepted (0 only) so that it is called like the shared-trunk D.
    """

    slimmable = True

    def __init__(self, in_channels=6, ndf=64, n_layers=3, widths=(0.25, 0.5, 0.75, 1.0)):
        super().__init__()
        widths = tuple(sorted(float(w) for w in widths))
        if not widths or any(not 0.0 < w <= 1.0 for w in widths):
            raise ValueError("widths must be multipliers in (0, 1], got %s" % (widths,))
        self.hparams = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, widths=list(widths))
        self.widths = widths
        chans, strides = _channels(in_channels, ndf, n_layers)
        layers = []
        for i, s in enumerate(strides):
            layers += [SNElasticConv2d(chans[i], chans[i + 1], 4, stride=s, padding=1, widths=widths,
                                       fixed_in=i == 0),
                       nn.LeakyReLU(0.2, True)]
        layers.append(SNElasticConv2d(chans[-1], 1, 4, stride=1, padding=1, widths=widths, fixed_out=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x, head=0):
        if head != 0:
            raise ValueError("a slimmable discriminator has one head (0); set its width with set_width / at_width")
        return self.body(x)

    def arch(self):
        return {"name": "slimmable_patchgan", "kwargs": dict(self.hparams, widths=list(self.widths))}
