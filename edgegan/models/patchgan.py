"""PatchGAN discriminator with one head per generator width on a shared trunk (SlimGAN's "shared D").

The first ``n_share`` layers are shared by every width; the remaining layers are copied per
head. Convs carry spectral normalisation, which suits the hinge loss.
"""

import torch.nn as nn
from torch.nn.utils import spectral_norm


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
        chans = [in_channels] + [ndf * min(2 ** i, 8) for i in range(n_layers + 1)]
        strides = [2] * n_layers + [1]
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
