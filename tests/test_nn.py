"""Elastic layers: width switching, the elastic convs and their segmented inputs, switchable BatchNorm, per-slot
configurations."""

import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgegan.models import ResnetGenerator
from edgegan.nn import (ElasticConv2d, ElasticConvTranspose2d, SwitchableBatchNorm2d, at_width, channel_slots,
                        current_config, set_width)
from edgegan.nn.elastic import _ActiveWidth
from edgegan.nn.slots import Slot
from edgegan.subnet import SubnetConfig


def _trained_bn_model(seed=0):
    torch.manual_seed(seed)
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2, norm="bn")
    g.train()
    for w in g.widths:
        set_width(g, w)
        for _ in range(20):
            g(torch.randn(8, 1, 32, 32))
    return g.eval()


def test_set_width_slices_every_slot():
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    set_width(g, 0.5)
    slots = channel_slots(g)
    assert slots["stem"].modules[0].active_out == 4
    assert all(m.active_out == 16 for m in slots["stream"].modules)
    assert g.head[1].active_out_channels(4) == 1  # the output conv keeps its channels
    y = g(torch.randn(2, 1, 32, 32))
    assert y.shape == (2, 1, 32, 32)


def test_context_manager_restores_previous_width():
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=1)
    set_width(g, 0.75)
    with at_width(g, 0.25):
        assert current_config(g) == SubnetConfig(width=0.25)
        assert channel_slots(g)["stem"].modules[0].active_out == 2
    assert current_config(g) == SubnetConfig(width=0.75)
    assert channel_slots(g)["stem"].modules[0].active_out == 6


def test_switchable_bn_keeps_statistics_per_width():
    g = _trained_bn_model()
    bn = g.stem[2]
    assert isinstance(bn, SwitchableBatchNorm2d)
    assert [b.num_features for b in bn.bn] == [2, 4, 6, 8]
    # each width has its own statistics: the narrow BN's mean is not the slice of the wide one's
    assert not torch.allclose(bn.bn[0].running_mean, bn.bn[3].running_mean[:2])


def test_sliced_full_width_statistics_give_wrong_outputs():
    """The reason for switchable BN: a narrow net normalised with sliced full-width stats drifts."""
    g = _trained_bn_model()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad(), at_width(g, 0.25):
        own = g.down(g.stem(x))
        for m in g.modules():
            if isinstance(m, SwitchableBatchNorm2d):
                m.num_features_list = [m.num_features]  # force slicing of the widest BN
                m.bn = nn.ModuleList([m.bn[-1]])
        sliced = g.down(g.stem(x))
    assert (own - sliced).abs().mean() > 0.3 * own.abs().mean()


def test_per_slot_config_and_errors():
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    cfg = SubnetConfig(channels={"stem": 3, "down1": 16, "stream": 8, "block0": 5, "block1": 32, "up1": 7, "up2": 2})
    set_width(g, cfg)
    assert g(torch.randn(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match=r"^unknown channel slots \['nope'\]; this model has \['stem', "):
        set_width(g, SubnetConfig(channels={"nope": 3}))
    with pytest.raises(ValueError, match=r"^slot 'stem': 9 channels asked, 1\.\.8 allowed$"):
        set_width(g, SubnetConfig(channels={"stem": 9}))
    with pytest.raises(ValueError, match="width must be in"):
        SubnetConfig(width=1.5)


def test_elastic_conv_without_slots_is_its_own_slot():
    net = nn.Sequential(ElasticConv2d(3, 8, 3, padding=1), nn.ReLU(), ElasticConv2d(8, 8, 3, padding=1, depthwise=True),
                        ElasticConv2d(8, 4, 1, fixed_out=True))
    assert list(channel_slots(net)) == ["0"]  # a depthwise conv follows its input; a fixed one keeps its count
    set_width(net, 0.5)
    assert net(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    assert net[0].active_out == 4


# --- the elastic convs themselves: slicing, the conv options, segmented inputs, export -------------------

def _plain_like(layer, in_channels, out):
    """A plain conv with ``layer``'s options and ``layer``'s weights for the first channels (the reference)."""
    if isinstance(layer, ElasticConvTranspose2d):
        ref = nn.ConvTranspose2d(in_channels, out, layer.kernel_size, layer.stride, layer.padding, layer.output_padding,
                                 bias=layer.bias is not None).double()
        weight = layer.weight[:in_channels, :out]
    else:
        groups = out if layer.depthwise else 1
        ref = nn.Conv2d(in_channels, out, layer.kernel_size, layer.stride, layer.padding, layer.dilation, groups,
                        bias=layer.bias is not None, padding_mode=layer.padding_mode).double()
        weight = layer.weight[:out] if layer.depthwise else layer.weight[:out, :in_channels]
    with torch.no_grad():
        ref.weight.copy_(weight)
        if layer.bias is not None:
            ref.bias.copy_(layer.bias[:out])
    return ref


@pytest.mark.parametrize("make", [
    lambda: ElasticConv2d(8, 6, 3, stride=2, padding=2, dilation=2, padding_mode="reflect"),
    lambda: ElasticConv2d(8, 6, (3, 1), padding=(1, 0), padding_mode="circular", bias=False),
    lambda: ElasticConv2d(8, 6, 3, stride=(1, 2), padding=1, dilation=(2, 1)),
    lambda: ElasticConv2d(8, 8, 3, padding=1, padding_mode="replicate", depthwise=True),
    lambda: ElasticConvTranspose2d(8, 6, 4, stride=2, padding=1),
    lambda: ElasticConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1, bias=False),
], ids=["dilated-reflect", "circular-no-bias", "strided", "depthwise", "transposed", "transposed-output-padding"])
def test_elastic_conv_runs_its_first_channels_with_every_conv_option(make):
    torch.manual_seed(0)
    layer = make().double()
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    depthwise = layer.depthwise
    for in_channels, active_out in ((8, None), (5, 4), (3, 1)):
        layer.active_out = None if depthwise else active_out
        out = in_channels if depthwise else (active_out or 6)
        assert layer.active_out_channels(in_channels) == out
        ref = _plain_like(layer, in_channels, out)
        expected = ref(x[:, :in_channels])
        torch.testing.assert_close(layer(x[:, :in_channels]), expected, rtol=0, atol=1e-12)
        static = layer.to_static(in_channels)
        assert type(static) is type(ref) and not isinstance(static, (ElasticConv2d, ElasticConvTranspose2d))
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                     "padding_mode", "output_padding"):
            assert getattr(static, attr) == getattr(ref, attr), attr
        assert (static.bias is None) == (layer.bias is None) and static.weight.dtype == torch.float64
        torch.testing.assert_close(static(x[:, :in_channels]), expected, rtol=0, atol=1e-12)
        # the export holds copies: training the static conv leaves the elastic weights alone
        with torch.no_grad():
            static.weight.add_(1.0)
        torch.testing.assert_close(layer(x[:, :in_channels]), expected, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_elastic_conv_exports_on_its_device():
    for layer in (ElasticConv2d(8, 6, 3, padding=1), ElasticConvTranspose2d(8, 6, 4, 2, 1)):
        layer = layer.cuda().half()
        static = layer.to_static(5)
        assert static.weight.device == layer.weight.device and static.weight.dtype == torch.float16
        assert static.bias.device == layer.weight.device
    segmented = ElasticConv2d(6, 4, 1, in_segments=(2, 4)).cuda()
    segmented.set_active_in(0, 1)
    assert segmented.input_index(5).device == segmented.weight.device
    assert segmented(torch.randn(1, 5, 3, 3, device="cuda")).shape == (1, 4, 3, 3)


def test_elastic_conv_output_width_rules():
    conv = ElasticConv2d(8, 6, 1)
    assert (conv.depthwise, conv.fixed_out, conv.active_out, conv.groups) == (False, False, None, 1)
    assert conv.active_out_channels(3) == 6
    conv.active_out = 2
    assert conv.active_out_channels(3) == 2 and conv(torch.randn(1, 3, 2, 2)).shape == (1, 2, 2, 2)
    fixed = ElasticConv2d(8, 3, 1, fixed_out=True)
    fixed.active_out = 2  # a fixed output layer (the RGB image) keeps its count whatever it is told
    assert fixed.active_out_channels(4) == 3 and fixed(torch.randn(1, 4, 2, 2)).shape == (1, 3, 2, 2)
    depthwise = ElasticConv2d(8, 8, 3, depthwise=True)
    assert depthwise.groups == 8 and depthwise.depthwise and depthwise.active_out_channels(5) == 5
    up = ElasticConvTranspose2d(8, 6, 2, 2, fixed_out=True)
    up.active_out = 2
    assert up.fixed_out and up.active_out_channels(4) == 6 and up(torch.randn(1, 4, 3, 3)).shape == (1, 6, 6, 6)
    # all input channels is allowed, one more is an error that names the layer
    assert conv(torch.randn(1, 8, 2, 2)).shape == (1, 2, 2, 2)
    for layer, name in ((conv, "ElasticConv2d"), (up, "ElasticConvTranspose2d")):
        with pytest.raises(ValueError, match=r"^%s got 9 input channels, holds 8$" % name):
            layer(torch.randn(1, 9, 2, 2))
        with pytest.raises(ValueError, match=r"^%s got 9 input channels, holds 8$" % name):
            layer.to_static(9)
    with pytest.raises(ValueError, match=r"^a depthwise conv needs in_channels == out_channels$"):
        ElasticConv2d(8, 6, 3, depthwise=True)
    # nn.Conv2d's / nn.ConvTranspose2d's defaults, and no bias when asked
    conv, up = ElasticConv2d(8, 6, 3), ElasticConvTranspose2d(8, 6, 3)
    assert (conv.stride, conv.padding, conv.dilation, conv.padding_mode) == ((1, 1), (0, 0), (1, 1), "zeros")
    assert (up.stride, up.padding, up.output_padding, up.dilation, up.groups) == ((1, 1), (0, 0), (0, 0), (1, 1), 1)
    assert conv.bias is not None and up.bias is not None and up.in_segments is None and not up.depthwise
    assert ElasticConv2d(8, 6, 3, bias=False).bias is None and ElasticConvTranspose2d(8, 6, 3, bias=False).bias is None
    conv = ElasticConv2d(8, 6, 3, stride=2, padding=1, dilation=2, padding_mode="reflect")
    assert (conv.stride, conv.padding, conv.dilation, conv.padding_mode) == ((2, 2), (1, 1), (2, 2), "reflect")
    up = ElasticConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
    assert (up.stride, up.padding, up.output_padding) == ((2, 2), (1, 1), (1, 1))


@pytest.mark.parametrize("transposed", [False, True])
def test_segmented_conv_runs_the_first_channels_of_each_segment(transposed):
    torch.manual_seed(0)
    cls = ElasticConvTranspose2d if transposed else ElasticConv2d
    layer = cls(6 + 4, 5, 4, stride=2, padding=1, in_segments=(6, 4)).double()
    assert layer.in_segments == (6, 4) and layer.active_in == [None, None] and layer.active_segments() == [6, 4]
    layer.set_active_in(0, 2)
    layer.set_active_in(1, 3.0)  # stored as a channel count
    assert layer.active_in == [2, 3] and type(layer.active_in[1]) is int and layer.active_segments() == [2, 3]
    layer.active_out = 4
    a, b = torch.randn(2, 2, 5, 5, dtype=torch.float64), torch.randn(2, 3, 5, 5, dtype=torch.float64)
    rows = [0, 1, 6, 7, 8]  # first 2 of segment 0, first 3 of segment 1 (which starts at 6)
    assert layer.input_index(5).tolist() == rows
    if transposed:
        ref = F.conv_transpose2d(torch.cat([a, b], 1), layer.weight[rows, :4], layer.bias[:4], 2, 1)
    else:
        ref = F.conv2d(torch.cat([a, b], 1), layer.weight[:4, rows], layer.bias[:4], 2, 1)
    out = layer(torch.cat([a, b], 1))
    assert torch.allclose(out, ref, atol=1e-12)
    static = layer.to_static(5)
    assert type(static) is (nn.ConvTranspose2d if transposed else nn.Conv2d) and static.in_channels == 5
    assert torch.allclose(static(torch.cat([a, b], 1)), ref, atol=1e-12)
    # the tensor must carry what the segments are set to
    with pytest.raises(ValueError, match=r"^%s got 6 input channels, but its input segments are set to \[2, 3\] "
                                         r"\(sum 5\); set the width with set_width so that the slots feeding it "
                                         r"agree$" % cls.__name__):
        layer(torch.randn(1, 6, 5, 5, dtype=torch.float64))
    # a segment runs 1 to all of its channels
    for segment, channels in ((1, 5), (0, 0), (0, 7)):
        full = (6, 4)[segment]
        with pytest.raises(ValueError, match=r"^input segment %d holds %d channels, %d asked$"
                                             % (segment, full, channels)):
            layer.set_active_in(segment, channels)
    layer.set_active_in(0, 1)
    layer.set_active_in(1, 4)
    assert layer.input_index(5).tolist() == [0, 6, 7, 8, 9]
    # all segments at full width read the whole weight, as an unsegmented layer does
    layer.set_active_in(0, None)
    layer.set_active_in(1, None)
    assert layer.active_in == [None, None] and layer.input_index(10) is None
    three = cls(2 + 3 + 4, 5, 1, in_segments=(2, 3, 4))  # each segment starts after all the full ones before it
    for segment, channels in enumerate((1, 2, 3)):
        three.set_active_in(segment, channels)
    assert three.input_index(6).tolist() == [0, 2, 3, 5, 6, 7]
    plain = cls(10, 5, 4, stride=2, padding=1)
    assert plain.input_index(7) is None and plain.active_segments() is None
    with pytest.raises(ValueError, match=r"^%s has no input segments$" % cls.__name__):
        plain.set_active_in(0, 2)


def test_segments_are_checked_and_slots_set_their_readers():
    for segments, shown in (((4, 3), "(4, 3)"), ((), "()"), ((8, 0), "(8, 0)"), ((9, -1), "(9, -1)")):
        with pytest.raises(ValueError, match=r"^in_segments %s must be positive channel counts summing to "
                                             r"in_channels=8$" % re.escape(shown)):
            ElasticConv2d(8, 4, 3, in_segments=segments)
    assert ElasticConv2d(8, 4, 3, in_segments=[7.0, 1]).in_segments == (7, 1)  # one channel is a segment too
    with pytest.raises(ValueError, match=r"^a depthwise conv cannot read a segmented input$"):
        ElasticConv2d(8, 8, 3, depthwise=True, in_segments=(4, 4))
    reader = ElasticConvTranspose2d(12, 3, 4, 2, 1, in_segments=(8, 4))
    producer = ElasticConv2d(3, 8, 3)
    with pytest.raises(ValueError, match="does not hold the slot's 8 channels"):
        Slot(8, [producer], [(reader, 1)])
    slot = Slot(8, [producer], [(reader, 0)])
    slot.set(5)
    assert producer.active_out == 5 and reader.active_segments() == [5, 4]
    assert _ActiveWidth.in_segments is None and ElasticConv2d(3, 4, 3).active_segments() is None


# --- a slot's readers: the input segment it feeds in a concatenating layer (a UNet's skip) ---------------

def _slot():
    torch.manual_seed(0)
    producers = [ElasticConv2d(2, 8, 1), ElasticConv2d(2, 8, 1)]
    reader = ElasticConv2d(12, 4, 1, in_segments=[8, 4])  # reads cat([this slot, another one])
    return Slot(8, producers, readers=[(reader, 0)]), producers, reader


def test_slot_set_switches_producers_and_the_readers_segment():
    slot, producers, reader = _slot()
    slot.set(3)
    assert [p.active_out for p in producers] == [3, 3]
    assert reader.active_in == [3, None] and reader.active_segments() == [3, 4]
    x = torch.randn(1, 7, 5, 5)  # the slot's first 3 channels, then the 4 of the other segment
    torch.testing.assert_close(reader(x), F.conv2d(x, reader.weight[:, [0, 1, 2, 8, 9, 10, 11]], reader.bias))
    slot.set(None)
    assert [p.active_out for p in producers] == [None, None] and reader.active_in == [None, None]


def test_slot_repr():
    slot, _, _ = _slot()
    assert repr(slot) == "Slot(max_channels=8, layers=2, readers=1)"
    assert repr(Slot(8, [ElasticConv2d(2, 8, 1)])) == "Slot(max_channels=8, layers=1)"


def test_a_reader_must_hold_the_slots_channels_in_that_segment():
    producer = ElasticConv2d(2, 8, 1)
    for reader, message in ((ElasticConv2d(12, 4, 1), "reader ElasticConv2d segment 0 does not hold the slot's 8 "
                                                      "channels"),
                            (ElasticConv2d(12, 4, 1, in_segments=[4, 8]), "reader ElasticConv2d segment 0 does not "
                                                                          "hold the slot's 8 channels")):
        with pytest.raises(ValueError, match="^%s$" % message):
            Slot(8, [producer], readers=[(reader, 0)])
    assert Slot(8, [producer], readers=[(ElasticConv2d(12, 4, 1, in_segments=[4, 8]), 1)]).readers[0][1] == 1


# --- SubnetConfig: a width or per-slot channels, as manifests and checkpoints store it -------------------

def test_subnet_config_dicts_names_hashes_and_reprs():
    w = SubnetConfig(width=0.5)
    c = SubnetConfig(channels={"stem": 8, "down1": 16})
    assert w.to_dict() == {"name": "w0.5", "width": 0.5}
    assert c.to_dict() == {"name": c.name, "channels": {"stem": 8, "down1": 16}} and c.name.startswith("c-")
    for cfg in (w, c, SubnetConfig(width=0.25, name="small")):
        back = SubnetConfig.from_dict(cfg.to_dict())
        assert back == cfg and back.name == cfg.name and back.width == cfg.width and back.channels == cfg.channels
    assert SubnetConfig.from_dict({"channels": {"stem": 8}}).channels == {"stem": 8}
    assert SubnetConfig.from_dict({"width": 0.75}).width == 0.75
    assert SubnetConfig.from_dict({"stem": 8, "down1": 16}) == c  # a bare channel dict
    assert SubnetConfig.from_dict({"name": "x", "channels": {"stem": 8}}).name == "x"
    assert SubnetConfig.coerce(0.5) == w and SubnetConfig.coerce(1) == SubnetConfig(width=1.0)
    assert SubnetConfig.coerce({"stem": 8, "down1": 16}) == c and SubnetConfig.coerce(c) is c
    with pytest.raises(TypeError, match=r"^expected a width, a channel dict or a SubnetConfig, got 'half'$"):
        SubnetConfig.coerce("half")
    with pytest.raises(ValueError, match=r"^give exactly one of width or channels$"):
        SubnetConfig(width=0.5, channels={"stem": 8})
    with pytest.raises(ValueError, match=r"^give exactly one of width or channels$"):
        SubnetConfig()
    with pytest.raises(ValueError, match=r"^width must be in \(0, 1\], got 0$"):
        SubnetConfig(width=0)
    assert len({w, SubnetConfig(width=0.5), c, SubnetConfig(channels={"stem": 8, "down1": 16})}) == 2
    assert hash(w) == hash((0.5, None)) and hash(c) == hash((None, (("stem", 8), ("down1", 16))))
    assert hash(SubnetConfig(width=0.25)) != hash(w)
    assert repr(w) == "SubnetConfig(width=0.5)"
    assert repr(c) == "SubnetConfig(channels={'stem': 8, 'down1': 16})"
    assert w != 0.5 and c != {"stem": 8, "down1": 16}


# --- the elastic norms at a channel count they hold, one they do not, and cut out for export --------------

def test_switchable_bn_uses_the_next_wider_bn_sliced_and_exports_it():
    torch.manual_seed(0)
    sbn = SwitchableBatchNorm2d([8, 4], eps=1e-3, momentum=0.5)
    assert sbn.num_features_list == [4, 8] and sbn.num_features == 8
    assert all(bn.eps == 1e-3 and bn.momentum == 0.5 for bn in sbn.bn)
    assert [(bn.eps, bn.momentum) for bn in SwitchableBatchNorm2d([4]).bn] == [(1e-5, 0.1)]  # BatchNorm2d's defaults
    with torch.no_grad():
        for bn in sbn.bn:
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
            bn.num_batches_tracked.fill_(7)
    x = torch.randn(3, 6, 4, 4)  # 6 channels: the 8-channel BN's first 6
    wide = sbn.bn[1]
    mean0, var0 = wide.running_mean.clone(), wide.running_var.clone()
    sbn.train()
    y = sbn(x)
    torch.testing.assert_close(y, F.batch_norm(x, None, None, wide.weight[:6], wide.bias[:6], True, 0.5, 1e-3))
    m = x.mean(dim=(0, 2, 3))
    torch.testing.assert_close(wide.running_mean[:6], 0.5 * mean0[:6] + 0.5 * m)  # updated through the view
    assert torch.equal(wide.running_mean[6:], mean0[6:]) and not torch.equal(wide.running_var[:6], var0[:6])
    sbn.eval()
    expected = (x - wide.running_mean[:6].view(1, -1, 1, 1)) / torch.sqrt(wide.running_var[:6].view(1, -1, 1, 1)
                                                                          + 1e-3)
    expected = expected * wide.weight[:6].view(1, -1, 1, 1) + wide.bias[:6].view(1, -1, 1, 1)
    torch.testing.assert_close(sbn(x), expected)
    static = sbn.to_static(6)
    assert isinstance(static, nn.BatchNorm2d) and not static.training
    assert (static.num_features, static.eps, static.momentum, int(static.num_batches_tracked)) == (6, 1e-3, 0.5, 7)
    torch.testing.assert_close(static(x), sbn(x))
    torch.testing.assert_close(sbn.to_static(4)(x[:, :4]), sbn.bn[0].eval()(x[:, :4]))
    with pytest.raises(ValueError, match=r"^SwitchableBatchNorm2d got 9 channels, holds at most 8$"):
        sbn(torch.randn(1, 9, 2, 2))


def test_elastic_instance_norm_slices_its_affine_and_exports_it():
    from edgegan.nn import ElasticInstanceNorm2d

    torch.manual_seed(0)
    norm = ElasticInstanceNorm2d(8, affine=True, eps=1e-3)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(norm(x), F.instance_norm(x, weight=norm.weight[:5], bias=norm.bias[:5], eps=1e-3))
    static = norm.to_static(5)
    assert isinstance(static, nn.InstanceNorm2d) and static.affine and static.eps == 1e-3
    torch.testing.assert_close(static(x), norm(x))
    plain = ElasticInstanceNorm2d(8)
    assert plain.weight is None and plain.bias is None and not plain.to_static(5).affine and plain.num_features == 8
    torch.testing.assert_close(plain(x), F.instance_norm(x, eps=1e-5))
    torch.testing.assert_close(plain.to_static(5)(x), plain(x))
