"""ResNet generators of pix2pix / CycleGAN and of GAN Compression → ``ResnetGenerator`` / ``MobileResnetGenerator``.

The source layouts (``nn.Sequential`` named ``model``; N: the block count):

* stem ``model.1`` conv 7×7 (after ``ReflectionPad2d(3)``), ``model.2`` norm; downsampling ``model.4`` /
  ``model.7`` conv 3×3 stride 2, ``model.5`` / ``model.8`` norms; residual blocks ``model.10`` …
  ``model.<9+N>``; upsampling ``model.<10+N>`` / ``model.<13+N>`` ConvTranspose 3×3 stride 2,
  ``model.<11+N>`` / ``model.<14+N>`` norms; output ``model.<17+N>`` conv 7×7 (after a reflection pad), tanh.
* A residual block ``conv_block`` is [pad, conv 3×3, norm, ReLU, (Dropout), pad, conv 3×3, norm]: its
  convs are ``conv_block.1`` / ``.5`` and norms ``.2`` / ``.6``, or ``.1`` / ``.6`` and ``.2`` / ``.7`` when a
  Dropout layer sits in the middle (pix2pix with dropout, the pix2pix model's default; every GAN
  Compression block, whose Dropout rate defaults to 0).
* GAN Compression's mobile blocks replace each 3×3 conv by a separable conv ``conv.0`` depthwise 3×3 →
  ``conv.1`` InstanceNorm (no affine) → ``conv.2`` pointwise 1×1 (both convs with a bias), Dropout always
  in the middle. Its compressed students (``sub_mobile_resnet_9blocks`` and the ``legacy_`` variant) have
  per-layer channel counts from a searched configuration, read here from the tensor shapes.

Convs carry a bias exactly when the norm is InstanceNorm (``use_bias``), except the output conv (always).
InstanceNorm has no affine parameters; BatchNorm is affine with running statistics. GAN Compression's full
and compressed generators clamp their input to [-1, 1] first, the identity on the inputs they take.
"""

from collections import OrderedDict

from ..models import MobileResnetGenerator, ResnetGenerator
from .registry import Conversion, converter
from .state import parameterised_layers

STEM, DOWN1, DOWN2, FIRST_BLOCK = 1, 4, 7, 10


def _block_layers(dropout, mobile):
    """The source prefixes of one block's parameterised layers, relative to the block."""
    first = ("conv_block.1", "conv_block.2")
    second = ("conv_block.6", "conv_block.7") if dropout else ("conv_block.5", "conv_block.6")
    if not mobile:
        return [first[0], first[1], second[0], second[1]]
    return ["%s.conv.%d" % (first[0], i) for i in range(3)] + [first[1]] + \
        ["%s.conv.%d" % (second[0], i) for i in range(3)] + [second[1]]


def _source_layers(n_blocks, dropout, mobile):
    layers = ["model.%d" % STEM, "model.%d" % (STEM + 1), "model.%d" % DOWN1, "model.%d" % (DOWN1 + 1),
              "model.%d" % DOWN2, "model.%d" % (DOWN2 + 1)]
    for i in range(n_blocks):
        layers += ["model.%d.%s" % (FIRST_BLOCK + i, name) for name in _block_layers(dropout, mobile)]
    up = FIRST_BLOCK + n_blocks
    layers += ["model.%d" % i for i in (up, up + 1, up + 3, up + 4, up + 7)]
    return layers


def _pairs(model, n_blocks, dropout, mobile):
    source = _source_layers(n_blocks, dropout, mobile)
    ours = parameterised_layers(model)
    if len(source) != len(ours):
        raise AssertionError("layout lists %d layers, the model has %d" % (len(source), len(ours)))
    return list(zip(source, ours))


def _image_channels(state, n_blocks, options):
    input_nc = state.check_channels("model.%d.weight" % STEM, 1, options.input_nc, "conv weight, --input-nc")
    head = "model.%d.weight" % (FIRST_BLOCK + n_blocks + 7)
    if head not in state:  # another block count: the checked transfer names the first layer that differs
        return input_nc, options.output_nc or 3
    output_nc = state.check_channels(head, 0, options.output_nc, "output conv weight, --output-nc")
    return input_nc, output_nc


def _resnet(state, options, n_blocks, dropout):
    ngf = state.shape("model.%d.weight" % STEM, 4, "stem conv weight")[0]
    input_nc, output_nc = _image_channels(state, n_blocks, options)
    model = ResnetGenerator(input_nc, output_nc, ngf=ngf, n_blocks=n_blocks, norm=options.edgegan_norm,
                            padding="reflect", upsample="transposed", widths=[1.0])
    inferred = OrderedDict([("ngf", ngf), ("n_blocks", n_blocks), ("input_nc", input_nc), ("output_nc", output_nc),
                            ("norm", options.norm), ("dropout_layers", dropout)])
    return Conversion(model, _pairs(model, n_blocks, dropout, mobile=False), inferred)


@converter("pix2pix", "resnet_9blocks", "pix2pix / CycleGAN ResNet generator, 9 residual blocks (256² images)")
def pix2pix_resnet_9blocks(state, options):
    return _resnet(state, options, 9, options.dropout)


@converter("pix2pix", "resnet_6blocks", "pix2pix / CycleGAN ResNet generator, 6 residual blocks (128² images)")
def pix2pix_resnet_6blocks(state, options):
    return _resnet(state, options, 6, options.dropout)


@converter("gan-compression", "resnet_9blocks", "GAN Compression's full ResNet teacher (ngf 64 in its releases)",
           dropout=(True,), default_norm="instance")
def gan_compression_resnet(state, options):
    return _resnet(state, options, 9, True)


def _mobile_channels(state, n_blocks):
    """Every layer's channel count from the shapes: the stem, down/up-sampling, stream and per-block hidden."""
    up = FIRST_BLOCK + n_blocks
    channels = OrderedDict([
        ("stem", state.shape("model.%d.weight" % STEM, 4, "stem conv weight")[0]),
        ("down1", state.shape("model.%d.weight" % DOWN1, 4, "downsampling conv weight")[0]),
        ("stream", state.shape("model.%d.weight" % DOWN2, 4, "downsampling conv weight")[0]),
        ("up1", state.shape("model.%d.weight" % up, 4, "transposed conv weight")[1]),
        ("up2", state.shape("model.%d.weight" % (up + 3), 4, "transposed conv weight")[1]),
    ])
    hidden = [state.shape("model.%d.conv_block.1.conv.2.weight" % (FIRST_BLOCK + i), 4, "pointwise conv weight")[0]
              for i in range(n_blocks)]
    return channels, hidden


def _config_str(channels, hidden):
    """GAN Compression's ``--config_str`` for these counts (8 numbers: one hidden width per third of the
    blocks), or ``None`` when the counts do not have its form."""
    thirds = [hidden[0], hidden[3], hidden[6]] if len(hidden) == 9 else []
    if not thirds or hidden != [thirds[i // 3] for i in range(9)]:
        return None
    parts = [(channels["stem"], 1), (channels["down1"], 2), (channels["stream"], 4)] + [(h, 4) for h in thirds] + \
        [(channels["up1"], 2), (channels["up2"], 1)]
    if any(c % d for c, d in parts):
        return None
    return "_".join(str(c // d) for c, d in parts)


def _mobile(state, options, compressed):
    n_blocks = 9
    input_nc, output_nc = _image_channels(state, n_blocks, options)
    channels, hidden = _mobile_channels(state, n_blocks)
    inferred = OrderedDict()
    if compressed:
        ngf = channels["stem"]
        model = MobileResnetGenerator(input_nc, output_nc, ngf=ngf, n_blocks=n_blocks, norm=options.edgegan_norm,
                                      padding="reflect", upsample="transposed", widths=[1.0], hidden=hidden,
                                      channels=channels, separable_layout="gan-compression")
        inferred["channels"] = dict(channels)
        inferred["hidden"] = list(hidden)
        inferred["config_str"] = _config_str(channels, hidden)
    else:
        ngf = channels["stem"]
        model = MobileResnetGenerator(input_nc, output_nc, ngf=ngf, n_blocks=n_blocks, norm=options.edgegan_norm,
                                      padding="reflect", upsample="transposed", widths=[1.0],
                                      separable_layout="gan-compression")
        inferred["ngf"] = ngf
    inferred.update([("n_blocks", n_blocks), ("input_nc", input_nc), ("output_nc", output_nc),
                     ("norm", options.norm), ("dropout_layers", True)])
    return Conversion(model, _pairs(model, n_blocks, True, mobile=True), inferred)


@converter("gan-compression", "mobile_resnet_9blocks",
           "GAN Compression's mobile ResNet (separable blocks, ngf channels throughout: the 'mobile' stage)",
           dropout=(True,), default_norm="instance")
def gan_compression_mobile(state, options):
    return _mobile(state, options, compressed=False)


@converter("gan-compression", "sub_mobile_resnet_9blocks",
           "GAN Compression's compressed student (the 'compressed' release): per-layer channels of --config_str",
           dropout=(True,), default_norm="instance")
def gan_compression_compressed(state, options):
    return _mobile(state, options, compressed=True)


@converter("gan-compression", "legacy_sub_mobile_resnet_9blocks",
           "GAN Compression's legacy compressed student (the 'legacy' release; same layers, other widths)",
           dropout=(True,), default_norm="instance")
def gan_compression_legacy_compressed(state, options):
    return _mobile(state, options, compressed=True)
