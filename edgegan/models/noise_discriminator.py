"""Image discriminator with one head per generator width on a shared trunk (SlimGAN's "shared D"),
for noise → image GANs: unconditional, or class-conditional with a projection head (cGAN-pd).

trunk (shared): spectral-norm conv 3×3 + LeakyReLU, then ``n_share`` stride-2 conv 4×4 stages;
head (per width): the remaining stride-2 stages down to 4×4, global sum pooling, a linear
output ``ψ(φ(x))`` and, when conditional, the projection term ``⟨embed(y), φ(x)⟩``.
"""

import math

import torch.nn as nn
from torch.nn.utils import spectral_norm


class SharedTrunkProjectionD(nn.Module):
    """``forward(x, y=None, head=0)`` → N logits (hinge loss)."""

    def __init__(self, in_channels=1, ndf=32, size=32, n_classes=0, n_share=1, n_heads=4):
        super().__init__()
        n_down = int(round(math.log2(size / 4)))
        if size < 8 or 4 * 2 ** n_down != size:
            raise ValueError("size must be 4·2^k with size >= 8, got %r" % (size,))
        if not 0 <= n_share < n_down:
            raise ValueError("n_share must be in [0, %d) for size %d, got %d" % (n_down, size, n_share))
        self.hparams = dict(in_channels=in_channels, ndf=ndf, size=size, n_classes=n_classes, n_share=n_share,
                            n_heads=n_heads)
        self.n_classes = n_classes
        chans = [ndf * 2 ** i for i in range(n_down + 1)]

        def stage(cin, cout):
            return [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.1, True)]

        trunk = [spectral_norm(nn.Conv2d(in_channels, chans[0], 3, padding=1)), nn.LeakyReLU(0.1, True)]
        for i in range(n_share):
            trunk += stage(chans[i], chans[i + 1])
        self.trunk = nn.Sequential(*trunk)

        def head_body():
            layers = []
            for i in range(n_share, n_down):
                layers += stage(chans[i], chans[i + 1])
            return nn.Sequential(*layers)

        self.heads = nn.ModuleList([head_body() for _ in range(n_heads)])
        self.linear = nn.ModuleList([spectral_norm(nn.Linear(chans[-1], 1)) for _ in range(n_heads)])
        if n_classes:
            self.embed = nn.ModuleList([spectral_norm(nn.Embedding(n_classes, chans[-1])) for _ in range(n_heads)])

    def forward(self, x, y=None, head=0):
        h = self.heads[head](self.trunk(x)).sum(dim=(2, 3))
        out = self.linear[head](h).squeeze(1)
        if self.n_classes:
            if y is None:
                raise ValueError("this discriminator is class-conditional: call it as D(x, y, head)")
            out = out + (self.embed[head](y.long()) * h).sum(1)
        return out

    def arch(self):
        return {"name": "shared_trunk_projection_d", "kwargs": dict(self.hparams)}


__all__ = ["SharedTrunkProjectionD"]
