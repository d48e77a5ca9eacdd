"""Image discriminators for noise → image GANs: unconditional, or class-conditional with a projection
head (cGAN-pd).

``SharedTrunkProjectionD`` (SlimGAN's "shared D"): one head per generator width on a shared trunk.
trunk (shared): spectral-norm conv 3×3 + LeakyReLU, then ``n_share`` stride-2 conv 4×4 stages;
head (per width): the remaining stride-2 stages down to 4×4, global sum pooling, a linear
output ``ψ(φ(x))`` and, when conditional, the projection term ``⟨embed(y), φ(x)⟩``.

``SlimmableProjectionD`` (the ablation's "slimmable D"): the same layers once, switching width with
the generator — at width ``w`` every layer runs its first ``round(w·C)`` channels (``set_width`` /
``at_width``), spectrally normalised on that slice (``edgegan.nn.spectral``).
"""

import math

import torch.nn as nn
from torch.nn.utils import spectral_norm

from ..nn.spectral import SNElasticConv2d, SNElasticEmbedding, SNElasticLinear


def _n_down(size):
    n_down = int(round(math.log2(size / 4)))
    if size < 8 or 4 * 2 ** n_down != size:
        raise ValueError("size must be 4·2^k with size >= 8, got %r" % (size,))
    return n_down


class SharedTrunkProjectionD(nn.Module):
    """``forward(x, y=None, head=0)`` → N logits (hinge loss)."""

    def __init__(self, in_channels=1, ndf=32, size=32, n_classes=0, n_share=1, n_heads=4):
        super().__init__()
        n_down = _n_down(size)
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


class SlimmableProjectionD(nn.Module):
    """One discriminator whose width follows the generator's: ``forward(x, y=None)`` → N logits (hinge loss).

    Same topology as ``SharedTrunkProjectionD`` without the per-width copies: conv 3×3 (the image's
    channels in) + LeakyReLU, stride-2 conv 4×4 stages down to 4×4, global sum pooling, a linear
    output and, when conditional, the projection ``⟨embed(y)[:C], φ(x)⟩``. Set its width with
    ``set_width(d, w)`` / ``at_width(d, w)``: every conv is a channel slot, and the linear head and the
    class embedding read the first C features, C being the last conv's active width. Each layer keeps
    one spectral-norm power-iteration state per width in ``widths`` (other widths are refused).
    ``head`` is accepted (0 only) so that it is called like the shared-trunk D.
    """

    slimmable = True

    def __init__(self, in_channels=1, ndf=32, size=32, n_classes=0, widths=(0.25, 0.5, 0.75, 1.0)):
        super().__init__()
        n_down = _n_down(size)
        widths = tuple(sorted(float(w) for w in widths))
        if not widths or any(not 0.0 < w <= 1.0 for w in widths):
            raise ValueError("widths must be multipliers in (0, 1], got %s" % (widths,))
        self.hparams = dict(in_channels=in_channels, ndf=ndf, size=size, n_classes=n_classes, widths=list(widths))
        self.n_classes, self.widths = n_classes, widths
        chans = [ndf * 2 ** i for i in range(n_down + 1)]
        layers = [SNElasticConv2d(in_channels, chans[0], 3, padding=1, widths=widths, fixed_in=True),
                  nn.LeakyReLU(0.1, True)]
        for i in range(n_down):
            layers += [SNElasticConv2d(chans[i], chans[i + 1], 4, stride=2, padding=1, widths=widths),
                       nn.LeakyReLU(0.1, True)]
        self.body = nn.Sequential(*layers)
        self.linear = SNElasticLinear(chans[-1], 1, widths=widths)
        if n_classes:
            self.embed = SNElasticEmbedding(n_classes, chans[-1], widths=widths)

    def forward(self, x, y=None, head=0):
        if head != 0:
            raise ValueError("a slimmable discriminator has one head (0); set its width with set_width / at_width")
        h = self.body(x).sum(dim=(2, 3))
        out = self.linear(h).squeeze(1)
        if self.n_classes:
            if y is None:
                raise ValueError("this discriminator is class-conditional: call it as D(x, y)")
            out = out + (self.embed(y.long(), h.shape[1]) * h).sum(1)
        return out

    def arch(self):
        return {"name": "slimmable_projection_d", "kwargs": dict(self.hparams, widths=list(self.widths))}


__all__ = ["SharedTrunkProjectionD", "SlimmableProjectionD"]
