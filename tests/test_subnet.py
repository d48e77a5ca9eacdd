"""Sub-network extraction (elastic vs static parity) and cost counting."""

import pytest
import torch
import torch.nn as nn

from edgegan.models import ResnetGenerator
from edgegan.nn import ElasticConv2d, ElasticConvTranspose2d, SwitchableBatchNorm2d, at_width, set_width
from edgegan.subnet import SubnetConfig, cost, extract

VARIANTS = [
    dict(norm="bn", padding="reflect", upsample="transposed"),
    dict(norm="bn", padding="zero", upsample="resize"),
    dict(norm="in", padding="reflect", upsample="resize"),
    dict(norm="in", padding="zero", upsample="transposed"),
]


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=2, **kw)
    g.train()
    for w in g.widths:  # give every switchable BN its own, non-trivial statistics
        set_width(g, w)
        for _ in range(3):
            g(torch.randn(4, 3, 32, 32) * 2 + 0.5)
    return g.eval()


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(kw.values()))
def test_extracted_equals_elastic_at_every_width(kw):
    g = _model(**kw)
    x = torch.randn(3, 3, 32, 32)
    for w in g.widths:
        with torch.no_grad(), at_width(g, w):
            ref = g(x)
        sub = extract(g, w, input_shape=(1, 3, 32, 32))
        assert not any(isinstance(m, (ElasticConv2d, ElasticConvTranspose2d, SwitchableBatchNorm2d))
                       for m in sub.modules())
        with torch.no_grad():
            out = sub(x)
        assert (ref - out).abs().max().item() <= 1e-5, w


def test_batchnorm_is_folded():
    sub = extract(_model(norm="bn"), 0.5, input_shape=(1, 3, 32, 32))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in sub.modules())


def test_extract_per_slot_config():
    g = _model(norm="in")
    cfg = SubnetConfig(channels={"stem": 3, "down1": 5, "stream": 12, "block0": 7, "block1": 32, "up1": 9, "up2": 4})
    with torch.no_grad(), at_width(g, cfg):
        ref = g(torch.ones(1, 3, 32, 32))
    sub = extract(g, cfg, input_shape=(1, 3, 32, 32))
    assert (sub(torch.ones(1, 3, 32, 32)) - ref).abs().max() <= 1e-5
    assert sub.stem[1].out_channels == 3 and sub.blocks[1].body[5].out_channels == 12


def test_mac_count_hand_computed():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
                        nn.Conv2d(4, 4, 3, padding=1, groups=4))
    c = cost(net, (1, 3, 16, 16))
    conv = 16 * 16 * 8 * 3 * 9          # output pixels × out channels × in channels × k²
    tconv = 16 * 16 * 8 * 4 * 9         # input pixels × in channels × out channels × k²
    dw = 32 * 32 * 4 * 1 * 9            # depthwise: one input channel per output channel
    assert c["macs"] == conv + tconv + dw
    assert c["params"] == (8 * 3 * 9 + 8) + (8 * 4 * 9 + 4) + (4 * 9 + 4)


def test_cost_shrinks_quadratically_with_width():
    g = ResnetGenerator(3, 3, ngf=16, n_blocks=3)
    full = cost(g, (1, 3, 64, 64), config=1.0)["macs"]
    quarter = cost(g, (1, 3, 64, 64), config=0.25)["macs"]
    # channel products scale with width² (1/16); the RGB stem and head convs keep 3 channels on one side
    assert full / 16 < quarter < full / 8
