"""Reference generators written from the published architectures, with their repositories' state_dict keys.

pix2pix / CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix) ``ResnetGenerator`` and GAN Compression
(mit-han-lab/gan-compression) ``ResnetGenerator`` (its full teacher), ``MobileResnetGenerator`` and the
compressed ``SubMobileResnetGenerator``: the attribute names and ``nn.Sequential`` positions reproduce their
state_dict keys (``model.N...``, ``conv_block.N...``, ``conv.N...``). Written for the import tests from the
papers' and repositories' descriptions of the layers, not from their code.
"""

import torch
import torch.nn as nn


def norm_layer(kind, channels):
    """pix2pix's norms: BatchNorm affine with running statistics; InstanceNorm without either."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResBlock(nn.Module):
    """x + [pad, conv3, norm, ReLU, (Dropout 0.5), pad, conv3, norm](x), stored as ``conv_block``."""

    def __init__(self, dim, norm, dropout):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class Separable(nn.Module):
    """GAN Compression's separable conv: ``conv`` = depthwise k×k (bias) → InstanceNorm → pointwise 1×1 (bias)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, groups=cin, bias=True),
                                  nn.InstanceNorm2d(cin, affine=False), nn.Conv2d(cin, cout, 1, bias=True))

    def forward(self, x):
        return self.conv(x)


class MobileBlock(nn.Module):
    """x + [pad, sep(C→H), norm(H), ReLU, Dropout, pad, sep(H→C), norm(C)](x)."""

    def __init__(self, dim, hidden, norm):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), Separable(dim, hidden), norm_layer(norm, hidden), nn.ReLU(True), nn.Dropout(0.0),
            nn.ReflectionPad2d(1), Separable(hidden, dim), norm_layer(norm, dim))

    def forward(self, x):
        return x + self.conv_block(x)


class SkeletonGenerator(nn.Module):
    """stem 7×7 → two stride-2 convs → blocks → two stride-2 transposed convs → 7×7 → tanh, as ``model``."""

    def __init__(self, input_nc, output_nc, channels, blocks, norm, clamp=False):
        super().__init__()
        stem, down1, stream, up1, up2 = (channels[k] for k in ("stem", "down1", "stream", "up1", "up2"))
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, stem, 7, bias=bias), norm_layer(norm, stem), nn.ReLU(True),
                  nn.Conv2d(stem, down1, 3, 2, 1, bias=bias), norm_layer(norm, down1), nn.ReLU(True),
                  nn.Conv2d(down1, stream, 3, 2, 1, bias=bias), norm_layer(norm, stream), nn.ReLU(True)]
        layers += list(blocks)
        layers += [nn.ConvTranspose2d(stream, up1, 3, 2, 1, output_padding=1, bias=bias), norm_layer(norm, up1),
                   nn.ReLU(True),
                   nn.ConvTranspose2d(up1, up2, 3, 2, 1, output_padding=1, bias=bias), norm_layer(norm, up2),
                   nn.ReLU(True),
                   nn.ReflectionPad2d(3), nn.Conv2d(up2, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.clamp = clamp

    def forward(self, x):
        return self.model(x.clamp(-1, 1) if self.clamp else x)


def _ngf_channels(ngf):
    return {"stem": ngf, "down1": 2 * ngf, "stream": 4 * ngf, "up1": 2 * ngf, "up2": ngf}


def pix2pix_resnet(input_nc=3, output_nc=3, ngf=8, n_blocks=9, norm="batch", dropout=True):
    """pix2pix / CycleGAN ``resnet_<n>blocks``."""
    blocks = [ResBlock(4 * ngf, norm, dropout) for _ in range(n_blocks)]
    return SkeletonGenerator(input_nc, output_nc, _ngf_channels(ngf), blocks, norm)


def gan_compression_resnet(input_nc=3, output_nc=3, ngf=8, norm="instance"):
    """GAN Compression's full ``resnet_9blocks`` (a Dropout layer in every block; input clamped)."""
    blocks = [ResBlock(4 * ngf, norm, True) for _ in range(9)]
    return SkeletonGenerator(input_nc, output_nc, _ngf_channels(ngf), blocks, norm, clamp=True)


def gan_compression_mobile(input_nc=3, output_nc=3, ngf=8, norm="instance"):
    """GAN Compression's ``mobile_resnet_9blocks``."""
    blocks = [MobileBlock(4 * ngf, 4 * ngf, norm) for _ in range(9)]
    return SkeletonGenerator(input_nc, output_nc, _ngf_channels(ngf), blocks, norm)


def gan_compression_compressed(config, input_nc=3, output_nc=3, norm="instance"):
    """GAN Compression's ``sub_mobile_resnet_9blocks`` for an 8-number ``--config_str`` (as a list):
    stem c0, downsampling 2·c1 and 4·c2, block hidden widths 4·c3 / 4·c4 / 4·c5 per third, upsampling 2·c6, c7."""
    c = list(config)
    channels = {"stem": c[0], "down1": 2 * c[1], "stream": 4 * c[2], "up1": 2 * c[6], "up2": c[7]}
    blocks = [MobileBlock(4 * c[2], 4 * c[3 + i // 3], norm) for i in range(9)]
    return SkeletonGenerator(input_nc, output_nc, channels, blocks, norm, clamp=True)


def randomise(model, seed=0):
    """Non-trivial weights: every parameter random; BatchNorm statistics and affines away from 0 / 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.2))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.3 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.5 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.num_batches_tracked.fill_(1000)
    return model.eval()


def with_instance_norm_statistics(state, model):
    """``state`` with the running_mean / running_var entries old PyTorch (< 0.4) saved for InstanceNorm layers."""
    out = dict(state)
    for name, m in model.named_modules():
        if isinstance(m, nn.InstanceNorm2d):
            out[name + ".running_mean"] = torch.zeros(m.num_features)
            out[name + ".running_var"] = torch.ones(m.num_features)
    return out
