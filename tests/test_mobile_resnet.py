"""GAN Compression's mobile design space generator: elastic, extractable, sortable."""

import pytest
import torch
from conftest import with_bn_statistics
import torch.nn as nn

from edgegan.models import MODELS, MobileResnetGenerator, ResnetGenerator, build_model
from edgegan.nn import ElasticConv2d, at_width, channel_slots
from edgegan.nn.sorting import group_importance, sort_channels, sorting_groups
from edgegan.subnet import SubnetConfig, cost, extract

VARIANTS = [
    dict(norm="bn", padding="reflect", upsample="transposed"),
    dict(norm="in", padding="zero", upsample="resize"),
]


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return with_bn_statistics(MobileResnetGenerator(3, 3, ngf=8, n_blocks=2, **kw), (4, 3, 32, 32), seed=seed)


def test_registered_and_rebuilt_from_arch():
    g = MobileResnetGenerator(3, 3, ngf=8, n_blocks=3, hidden=16)
    assert MODELS["mobile_resnet_generator"] is MobileResnetGenerator
    g2 = build_model(g.arch())
    assert g2.hparams == g.hparams
    assert list(channel_slots(g)) == ["stem", "down1", "stream", "block0", "block1", "block2", "up1", "up2"]
    assert channel_slots(g)["block0"].max_channels == 16


def test_blocks_are_separable():
    g = MobileResnetGenerator(3, 3, ngf=8, n_blocks=2)
    convs = g.blocks[0].convs()
    assert [c.depthwise for c in convs] == [True, False, True, False]
    assert [c.kernel_size for c in convs] == [(3, 3), (1, 1), (3, 3), (1, 1)]
    assert not any(c.depthwise for c in g.down if isinstance(c, ElasticConv2d))


def test_cheaper_than_regular_resnet():
    shape = (1, 3, 32, 32)
    mob = cost(MobileResnetGenerator(3, 3, ngf=8, n_blocks=2), shape)
    reg = cost(ResnetGenerator(3, 3, ngf=8, n_blocks=2), shape)
    assert mob["macs"] < reg["macs"] and mob["params"] < reg["params"]


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(kw.values()))
def test_extract_parity_widths_and_per_slot(kw):
    g = _model(**kw)
    x = torch.randn(2, 3, 32, 32)
    cfg = SubnetConfig(channels={"stem": 5, "down1": 9, "stream": 24, "block0": 8, "block1": 17, "up1": 16, "up2": 3})
    for c in list(g.widths) + [cfg]:
        with torch.no_grad(), at_width(g, c):
            ref = g(x)
        sub = extract(g, c, input_shape=(1, 3, 32, 32))
        assert not any(isinstance(m, ElasticConv2d) for m in sub.modules())
        with torch.no_grad():
            assert (sub(x) - ref).abs().max().item() <= 1e-5, c
    assert isinstance(sub.blocks[1].body[-1], nn.Conv2d) or isinstance(sub.blocks[1].body[-2], nn.Conv2d)


def test_sorting_mobile_preserves_function():
    g = _model(norm="bn")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = g(x)
    sort_channels(g)
    with torch.no_grad():
        assert (g(x) - ref).abs().max().item() <= 1e-5
    for group in sorting_groups(g):
        imp = group_importance(group)
        assert bool((imp[:-1] >= imp[1:]).all())
