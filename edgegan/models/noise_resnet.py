"""SNGAN-style ResNet noise → image generator, slimmable (SlimGAN's "ResNet" / cGAN-pd generators).

z (N × nz) → 4×4 projection (transposed conv 4×4 on the 1×1 noise = SNGAN's linear layer)
→ ``log2(size / 4)`` up-blocks → BatchNorm → ReLU → conv 3×3 to the image → tanh.

Up-block (pre-activation)::

    x ──BN─ReLU─up×2─conv3×3─BN─ReLU─conv3×3──(+)──
     └──────────────up×2─conv1×1───────────────┘

All blocks keep ``ngf`` channels (the residual stream, one channel slot: the projection, every
block's second conv and every shortcut); each block's first conv is its own slot.
Unconditional (``n_classes=0``, switchable BatchNorm) or class-conditional (``forward(z, y)``,
sliceable or switchable conditional BatchNorm, as in ``edgegan.models.dcgan``).
"""

from collections import OrderedDict

import torch.nn as nn

from ..nn import ElasticConv2d, ElasticConvTranspose2d, Slot
from .dcgan import DEFAULT_WIDTHS, check_common, check_labels, make_norm


def _apply(norm, x, y):
    return norm(x, y) if getattr(norm, "takes_label", False) else norm(x)


class UpBlock(nn.Module):
    def __init__(self, channels, widths, n_classes, cbn):
        super().__init__()
        self.norm1 = make_norm(channels, widths, n_classes, cbn)
        self.conv1 = ElasticConv2d(channels, channels, 3, padding=1)
        self.norm2 = make_norm(channels, widths, n_classes, cbn)
        self.conv2 = ElasticConv2d(channels, channels, 3, padding=1)
        self.shortcut = ElasticConv2d(channels, channels, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.relu = nn.ReLU()

    def forward(self, x, y=None):
        h = self.conv1(self.up(self.relu(_apply(self.norm1, x, y))))
        h = self.conv2(self.relu(_apply(self.norm2, h, y)))
        return h + self.shortcut(self.up(x))


class NoiseResnetGenerator(nn.Module):
    """Slimmable SNGAN ResNet generator (``ngf`` = 256 in SNGAN's CIFAR-10 model).

    Args as ``DCGANGenerator``: nz, out_channels, ngf (channels of every block at full width),
    size (4·2^k), n_classes (0 = unconditional), cbn (``sliceable``/``switchable``), widths.
    """

    def __init__(self, nz=128, out_channels=1, ngf=128, size=32, n_classes=0, cbn="sliceable", widths=DEFAULT_WIDTHS):
        super().__init__()
        n_up = check_common(size, n_classes, cbn)
        widths = tuple(sorted(float(w) for w in widths))
        self.hparams = dict(nz=nz, out_channels=out_channels, ngf=ngf, size=size, n_classes=n_classes, cbn=cbn,
                            widths=list(widths))
        self.nz, self.n_classes, self.widths = nz, n_classes, widths
        self.project = ElasticConvTranspose2d(nz, ngf, 4, stride=1, padding=0)
        self.blocks = nn.ModuleList([UpBlock(ngf, widths, n_classes, cbn) for _ in range(n_up)])
        self.norm = make_norm(ngf, widths, n_classes, cbn)
        self.relu = nn.ReLU()
        self.head = ElasticConv2d(ngf, out_channels, 3, padding=1, fixed_out=True)
        self.tanh = nn.Tanh()

    def forward(self, z, y=None):
        x = self.project(check_labels(self, z, y))
        for block in self.blocks:
            x = block(x, y)
        return self.tanh(self.head(self.relu(_apply(self.norm, x, y))))

    def arch(self):
        return {"name": "noise_resnet_generator", "kwargs": dict(self.hparams)}

    def example_inputs(self, batch=1):
        import torch

        z = torch.zeros(batch, self.nz)
        return (z, torch.zeros(batch, dtype=torch.long)) if self.n_classes else (z,)

    def channel_slots(self):
        slots = OrderedDict()
        stream = [self.project] + [m for b in self.blocks for m in (b.conv2, b.shortcut)]
        slots["stream"] = Slot(self.project.out_channels, stream)
        for i, b in enumerate(self.blocks):
            slots["block%d" % i] = Slot(b.conv1.out_channels, [b.conv1])
        return slots
