"""pix2pix's UNet generator written from its published description, with its state_dict key layout.

The network (pix2pix, Isola et al. 2017, appendix; junyanz/pytorch-CycleGAN-and-pix2pix ``--netG unet_256 /
unet_128``): each level is a block ``x → cat([x, up(inner(down(x)))])`` holding its layers in an
``nn.Sequential`` named ``model``, the next level's block nested inside it; the outermost block returns
``up(...)`` without the concatenation. Down: LeakyReLU(0.2) (in place, as pix2pix), conv 4×4 stride 2, norm
(none at the outermost and innermost levels, and no LeakyReLU before the outermost conv). Up: ReLU (in place),
transposed conv 4×4 stride 2, norm; tanh at the outermost level instead of a norm; Dropout(0.5) after the
norm of the levels between the fourth and the innermost when asked. Level i has ngf·min(2^i, 8) channels;
convs have a bias only with InstanceNorm, except the output transposed conv. Written for the import tests.
"""

import torch
import torch.nn as nn

from reference_generators import norm_layer


class Level(nn.Module):
    """One level: ``outer`` channels come in (and go out), ``inner`` is its down conv's width."""

    def __init__(self, outer, inner, inside, image_in=None, image_out=None, norm="batch", dropout=False):
        super().__init__()
        bias = norm == "instance"
        self.outermost = image_in is not None
        if self.outermost:
            layers = [nn.Conv2d(image_in, inner, 4, 2, 1, bias=bias), inside, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner, image_out, 4, 2, 1), nn.Tanh()]
        elif inside is None:
            layers = [nn.LeakyReLU(0.2, True), nn.Conv2d(outer, inner, 4, 2, 1, bias=bias), nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), nn.Conv2d(outer, inner, 4, 2, 1, bias=bias), norm_layer(norm, inner),
                      inside, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=bias),
                      norm_layer(norm, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class PixUnet(nn.Module):
    """``unet_256`` (``num_downs=8``) / ``unet_128`` (7); the outermost level is ``model``."""

    def __init__(self, input_nc=3, output_nc=3, ngf=4, num_downs=8, norm="batch", dropout=False):
        super().__init__()
        width = [ngf * min(2 ** i, 8) for i in range(num_downs)]
        level = None
        for i in range(num_downs - 1, 0, -1):  # innermost first
            level = Level(width[i - 1], width[i], level, norm=norm, dropout=dropout and 4 <= i < num_downs - 1)
        self.model = Level(None, width[0], level, image_in=input_nc, image_out=output_nc, norm=norm)

    def forward(self, x):
        return self.model(x)
