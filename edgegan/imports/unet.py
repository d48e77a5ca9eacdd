"""pix2pix's UNet generators (``unet_256``, ``unet_128``) → ``UnetGenerator``.

The source layout nests one skip-connection block per level: the outermost block is ``model``, and each
block keeps its layers in an ``nn.Sequential`` also named ``model`` whose position 1 (outermost) or 3 (the
others) holds the next block. With ``S_0 = model.model``, ``S_1 = S_0.1.model`` and ``S_i = S_{i-1}.3.model``:

* outermost (level 0): ``S_0.0`` conv 4×4 stride 2 (image → ngf), ``S_0.3`` transposed conv (2·ngf → image,
  with a bias), then tanh;
* levels 0 < i < n−1: [LeakyReLU, ``S_i.1`` conv, ``S_i.2`` norm, next block, ReLU, ``S_i.5`` transposed conv,
  ``S_i.6`` norm, (Dropout)] — the Dropout comes last, so it shifts no index;
* innermost (level n−1): [LeakyReLU, ``S_i.1`` conv, ReLU, ``S_i.3`` transposed conv, ``S_i.4`` norm].

Level i has ``ngf · min(2^i, 8)`` channels; ``unet_256`` has 8 levels, ``unet_128`` 7. Convs carry a bias
exactly when the norm is InstanceNorm, except the output transposed conv (always). BatchNorm is affine with
running statistics; InstanceNorm has neither (old PyTorch saved running statistics for it: dropped).
"""

from collections import OrderedDict

from ..models import UnetGenerator
from .registry import Conversion, converter
from .state import parameterised_layers


def level_prefixes(num_downs):
    """``[S_0, …, S_{n-1}]``: the ``nn.Sequential`` prefix of each level's block."""
    prefixes = ["model.model"]
    for i in range(1, num_downs):
        prefixes.append("%s.%d.model" % (prefixes[-1], 1 if i == 1 else 3))
    return prefixes


def source_layers(num_downs):
    """The source prefixes of the parameterised layers in ``UnetGenerator``'s module order: every level's down
    conv (and norm), outermost first, then every level's transposed conv (and norm)."""
    prefixes = level_prefixes(num_downs)
    down, up = [], []
    for i, s in enumerate(prefixes):
        if i == 0:
            down.append(s + ".0")
            up.append(s + ".3")
        elif i < num_downs - 1:
            down += [s + ".1", s + ".2"]
            up += [s + ".5", s + ".6"]
        else:
            down.append(s + ".1")
            up += [s + ".3", s + ".4"]
    return down + up


def _unet(state, options, num_downs):
    outer = level_prefixes(num_downs)[0]
    ngf = state.shape(outer + ".0.weight", 4, "outermost conv weight")[0]
    input_nc = state.check_channels(outer + ".0.weight", 1, options.input_nc, "outermost conv weight, --input-nc")
    state.shape(outer + ".3.weight", 4, "output transposed conv weight")
    output_nc = state.check_channels(outer + ".3.weight", 1, options.output_nc,
                                     "output transposed conv weight, --output-nc")
    model = UnetGenerator(input_nc, output_nc, ngf=ngf, num_downs=num_downs, norm=options.edgegan_norm,
                          dropout=options.dropout, widths=[1.0])
    ours = parameterised_layers(model)
    source = source_layers(num_downs)
    if len(source) != len(ours):
        raise AssertionError("layout lists %d layers, the model has %d" % (len(source), len(ours)))
    inferred = OrderedDict([("ngf", ngf), ("num_downs", num_downs), ("input_nc", input_nc),
                            ("output_nc", output_nc), ("norm", options.norm), ("dropout_layers", options.dropout)])
    return Conversion(model, zip(source, ours), inferred)


@converter("pix2pix", "unet_256", "pix2pix UNet generator, 8 levels (256² images: 1×1 at the bottleneck)")
def pix2pix_unet_256(state, options):
    return _unet(state, options, 8)


@converter("pix2pix", "unet_128", "pix2pix UNet generator, 7 levels (128² images: 1×1 at the bottleneck)")
def pix2pix_unet_128(state, options):
    return _unet(state, options, 7)
