"""DCGAN-style noise → image generator, slimmable over width multipliers (SlimGAN, METHODS.md §1).

z (N × nz) → 4×4 projection (transposed conv 4×4 on the 1×1 noise, the DCGAN / SNGAN "linear")
→ ``log2(size / 4)`` × [transposed conv 4×4 stride 2, halving the channels] → conv 3×3 to the
image channels → tanh. Every layer but the output is elastic; each is followed by BatchNorm
+ ReLU. For ngf = 64 and 32² this is SNGAN's DCGAN generator (512 → 256 → 128 → 64 channels).

Unconditional (``n_classes=0``): switchable BatchNorm, which folds into the convs on export.
Class-conditional (``n_classes > 0``): ``forward(z, y)`` with ``y`` N int64 labels and
conditional BatchNorm, ``cbn="sliceable"`` (SlimGAN's proposal) or ``"switchable"`` (the naive
one-cBN-per-width ablation). ``edgegan.subnet.extract`` needs one input; for a conditional
generator use ``edgegan.subnet.extract(model, width, example_inputs=(z, y))``.
"""

import math
from collections import OrderedDict

import torch.nn as nn

from ..nn import ElasticConv2d, ElasticConvTranspose2d, Slot, SwitchableBatchNorm2d
from ..nn.cond_norm import SliceableConditionalBatchNorm2d, SwitchableConditionalBatchNorm2d, takes_label
from ..nn.slots import width_to_channels

DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)
CBN_KINDS = ("sliceable", "switchable")


def make_norm(channels, widths, n_classes=0, cbn="sliceable"):
    """Switchable BatchNorm (unconditional) or a conditional one of kind ``cbn`` over ``widths``."""
    counts = [width_to_channels(w, channels) for w in widths]
    if not n_classes:
        return SwitchableBatchNorm2d(counts)
    if cbn == "sliceable":
        return SliceableConditionalBatchNorm2d(counts, n_classes)
    return SwitchableConditionalBatchNorm2d(counts, n_classes)


def check_common(size, n_classes, cbn, min_size=8):
    if cbn not in CBN_KINDS:
        raise ValueError("cbn must be one of %s, got %r" % (CBN_KINDS, cbn))
    if n_classes < 0:
        raise ValueError("n_classes must be 0 (unconditional) or the number of classes, got %r" % (n_classes,))
    n_up = int(round(math.log2(size / 4))) if size >= 4 else -1
    if size < min_size or 4 * 2 ** n_up != size:
        raise ValueError("size must be 4·2^k with size >= %d (8, 16, 32, 64, ...), got %r" % (min_size, size))
    return n_up


def run_layers(layers, x, y):
    """Run a Sequential, passing the labels ``y`` to the layers that take them."""
    for m in layers:
        x = m(x, y) if takes_label(m) else m(x)
    return x


def check_labels(model, z, y):
    if model.n_classes and y is None:
        raise ValueError("%s is class-conditional (%d classes): call it as model(z, y) with y N int64 labels"
                         % (type(model).__name__, model.n_classes))
    if not model.n_classes and y is not None:
        raise ValueError("%s is unconditional: call it as model(z)" % type(model).__name__)
    if z.dim() == 2:
        z = z[:, :, None, None]
    if z.dim() != 4 or z.shape[1] != model.nz or z.shape[2:] != (1, 1):
        raise ValueError("expected noise of shape N×%d (or N×%d×1×1), got %s" % (model.nz, model.nz, tuple(z.shape)))
    return z


class DCGANGenerator(nn.Module):
    """Slimmable DCGAN generator.

    Args:
        nz: noise dimension.
        out_channels: image channels (1 for Fashion-MNIST).
        ngf: channels of the last hidden layer at full width; the 4×4 layer has ``ngf · size / 8``.
        size: output side, 4·2^k (32 for Fashion-MNIST padded to 32²).
        n_classes: 0 for unconditional, else the number of classes (labels in ``[0, n_classes)``).
        cbn: ``sliceable`` or ``switchable`` conditional BatchNorm (conditional only).
        widths: width multipliers.
    """

    def __init__(self, nz=128, out_channels=1, ngf=64, size=32, n_classes=0, cbn="sliceable", widths=DEFAULT_WIDTHS):
        super().__init__()
        n_up = check_common(size, n_classes, cbn)
        widths = tuple(sorted(float(w) for w in widths))
        self.hparams = dict(nz=nz, out_channels=out_channels, ngf=ngf, size=size, n_classes=n_classes, cbn=cbn,
                            widths=list(widths))
        self.nz, self.n_classes, self.widths = nz, n_classes, widths
        chans = [ngf * 2 ** (n_up - i) for i in range(n_up + 1)]  # 4×4 … size²
        layers = [ElasticConvTranspose2d(nz, chans[0], 4, stride=1, padding=0, bias=False),
                  make_norm(chans[0], widths, n_classes, cbn), nn.ReLU(True)]
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [ElasticConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                       make_norm(cout, widths, n_classes, cbn), nn.ReLU(True)]
        layers += [ElasticConv2d(chans[-1], out_channels, 3, padding=1, fixed_out=True), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z, y=None):
        return run_layers(self.body, check_labels(self, z, y), y)

    def arch(self):
        return {"name": "dcgan_generator", "kwargs": dict(self.hparams)}

    def example_inputs(self, batch=1):
        """Zero noise (and label 0 when conditional): what ``edgegan.subnet.extract`` traces by default."""
        import torch

        z = torch.zeros(batch, self.nz)
        return (z, torch.zeros(batch, dtype=torch.long)) if self.n_classes else (z,)

    def channel_slots(self):
        convs = [m for m in self.body if isinstance(m, (ElasticConv2d, ElasticConvTranspose2d)) and not m.fixed_out]
        slots = OrderedDict()
        slots["project"] = Slot(convs[0].out_channels, [convs[0]])
        for i, m in enumerate(convs[1:]):
            slots["up%d" % (i + 1)] = Slot(m.out_channels, [m])
        return slots
