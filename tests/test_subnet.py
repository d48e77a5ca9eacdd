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


# --- cost: the two MAC conventions, the tracing inputs, the result ------------------------------------------

def test_gan_compression_convention_counts_transposed_convs_at_output_resolution():
    from edgegan.subnet import MACS_CONVENTIONS

    # batch 2, Cin 3 ≠ Cout 5, a 4×2 kernel: every factor of the count shows in the product
    tconv = nn.Sequential(nn.ConvTranspose2d(3, 5, (4, 2), stride=2, padding=(1, 0)))
    conv = nn.Sequential(nn.Conv2d(3, 5, (4, 2), stride=2, padding=(1, 0)))
    shape = (2, 3, 8, 8)
    out_t = tconv(torch.zeros(shape)).shape   # (2, 5, 16, 16)
    out_c = conv(torch.zeros(shape)).shape    # (2, 5, 4, 4)
    assert tuple(out_t) == (2, 5, 16, 16) and tuple(out_c) == (2, 5, 4, 4)
    assert MACS_CONVENTIONS == ("edgegan", "gan-compression")
    # edgegan: each input pixel meets the kernel once; gan-compression: every output pixel × Cin × k
    assert cost(tconv, shape) == {"macs": 2 * 3 * 8 * 8 * 5 * 4 * 2, "params": 3 * 5 * 8 + 5,
                                  "macs_convention": "edgegan"}
    assert cost(tconv, shape, convention="gan-compression") == {
        "macs": 2 * 5 * 16 * 16 * 3 * 4 * 2, "params": 3 * 5 * 8 + 5, "macs_convention": "gan-compression"}
    # a stride-2 (non-transposed) conv counts the same in both: output pixels × Cout × Cin × k
    assert cost(conv, shape)["macs"] == cost(conv, shape, convention="gan-compression")["macs"] == 2 * 5 * 4 * 4 * 3 * 8


def test_unknown_mac_convention_names_the_known_ones():
    with pytest.raises(ValueError, match=r"^unknown MAC convention 'torchprofile'; known: edgegan, gan-compression$"):
        cost(nn.Sequential(nn.Conv2d(1, 1, 1)), (1, 1, 4, 4), convention="torchprofile")


def test_cost_counts_exactly_beyond_float_precision():
    # 2^53 + 1 MACs: a float division of the FLOP count would round it (meta tensors: nothing is computed)
    conv = nn.Conv2d(1, 1, 1, bias=False).to("meta")
    x = torch.zeros(1, 1, 1, 2 ** 53 + 1, device="meta")
    assert cost(conv, example_inputs=x)["macs"] == 2 ** 53 + 1


def test_cost_prints_nothing(capsys):
    cost(ResnetGenerator(3, 3, ngf=8, n_blocks=1), (1, 3, 16, 16), config=0.5)
    assert capsys.readouterr() == ("", "")


def test_default_input_shape_rounds_up_to_the_size_multiple():
    from edgegan.models.unet_generator import UnetGenerator
    from edgegan.subnet import default_input_shape

    g = ResnetGenerator(2, 3, ngf=8, n_blocks=1)
    assert default_input_shape(g) == (1, 2, 64, 64)
    assert default_input_shape(g, size=33) == (1, 2, 33, 33)
    unet = UnetGenerator(1, 3, num_downs=3, ngf=8)
    assert unet.size_multiple == 8
    assert default_input_shape(unet, size=30) == (1, 1, 32, 32)
    assert default_input_shape(unet, size=32) == (1, 1, 32, 32)
    # without input_shape, cost and extract trace at the default shape
    assert cost(g)["macs"] == cost(g, (1, 2, 64, 64))["macs"]
    assert cost(g, config=0.5)["macs"] == cost(g, (1, 2, 64, 64), config=0.5)["macs"]


class _Wrapped(nn.Module):
    """A generator inside a plain module: no ``hparams``, so no default input shape."""

    def __init__(self, g):
        super().__init__()
        self.g = g

    def forward(self, x):
        return self.g(x)


class _WithExampleInputs(nn.Module):
    """A model that names its own tracing inputs (as the noise → image generators do)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)

    def example_inputs(self):
        return (torch.zeros(1, 4),)

    def forward(self, x):
        return self.fc(x)


def test_tracing_inputs_come_from_the_arguments_then_the_model():
    m = _WithExampleInputs()
    assert cost(m)["macs"] == 24                                     # the model's own example_inputs()
    assert cost(m, example_inputs=torch.zeros(5, 4))["macs"] == 5 * 24  # a tensor given
    assert cost(m, example_inputs=(torch.zeros(3, 4),))["macs"] == 3 * 24  # a tuple given
    assert cost(m, input_shape=(7, 4))["macs"] == 7 * 24             # zeros of input_shape
    with pytest.raises(AttributeError):                              # no hparams: no default shape
        cost(nn.Sequential(nn.Linear(4, 6)))


def test_extract_and_cost_pass_the_tracing_inputs_on():
    w = _Wrapped(ResnetGenerator(3, 3, ngf=8, n_blocks=1))
    x = torch.zeros(1, 3, 16, 16)
    by_shape = cost(w, input_shape=(1, 3, 16, 16), config=0.5)
    by_inputs = cost(w, example_inputs=x, config=0.5)
    assert by_shape == by_inputs and by_shape["macs"] > 0
    sub = extract(w, 0.5, input_shape=(1, 3, 16, 16))
    assert sub(x).shape == (1, 3, 16, 16)
    sub = extract(w, 0.5, example_inputs=(x,))
    assert sub(x).shape == (1, 3, 16, 16)


def test_extract_traces_a_noise_generator_on_its_own_example_inputs():
    from edgegan.models.noise_resnet import NoiseResnetGenerator

    torch.manual_seed(0)
    g = NoiseResnetGenerator(nz=8, out_channels=1, ngf=8, size=16, n_classes=3).eval()
    sub = extract(g, 0.5)
    z, y = torch.randn(2, 8), torch.tensor([0, 2])
    with torch.no_grad(), at_width(g, 0.5):
        ref = g(z, y)
    assert (sub(z, y) - ref).abs().max() <= 1e-5
    assert cost(g, config=0.5)["macs"] == cost(sub)["macs"] > 0


def test_cost_moves_its_tracing_inputs_to_the_model_device():
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=1)
    on_cpu = cost(g, (1, 3, 16, 16))
    assert cost(g.to("meta"), (1, 3, 16, 16)) == on_cpu   # CPU zeros fed to a meta-device model


def test_extracted_module_is_frozen_and_forgets_the_elastic_config():
    from edgegan.nn.width import current_config

    g = _model(norm="bn")
    before = current_config(g).to_dict()
    sub = extract(g, 0.5, input_shape=(1, 3, 32, 32))
    assert current_config(g).to_dict() == before  # the source model keeps its width
    assert not hasattr(sub, "_edgegan_config")
    assert sub.subnet_config == SubnetConfig(width=0.5).to_dict()
    assert all(not p.requires_grad for p in sub.parameters())
    assert all(p.requires_grad for p in g.parameters())
    assert not sub.training


def test_extract_refuses_a_layer_the_forward_pass_does_not_reach():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = ElasticConv2d(3, 4, 1)
            self.unused = ElasticConv2d(4, 4, 1)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(RuntimeError, match=r"^layer unused was not reached by a forward pass; cannot extract it$"):
        extract(Skips(), 1.0, input_shape=(1, 3, 4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_extract_and_cost_on_cuda():
    g = _model(norm="bn").cuda()
    sub = extract(g, 0.5, input_shape=(1, 3, 32, 32))
    assert all(p.is_cuda for p in sub.parameters())
    x = torch.randn(1, 3, 32, 32, device="cuda")
    with torch.no_grad(), at_width(g, 0.5):
        assert (sub(x) - g(x)).abs().max() <= 1e-4
    assert cost(g, (1, 3, 32, 32), config=0.5) == cost(g.cpu(), (1, 3, 32, 32), config=0.5)
