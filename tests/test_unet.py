"""The slimmable UNet: the published architecture, extraction and cost at every width
and at per-slot configs, channel sorting, every target's build, and the paired recipe with --arch unet."""

import os

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.cli import main
from edgegan.models import UnetGenerator, build_model
from edgegan.models.unet_generator import level_channels
from edgegan.nn import ElasticConv2d, ElasticConvTranspose2d, SubnetConfig, at_width, channel_slots, set_width
from edgegan.nn.sorting import sort_channels
from edgegan.subnet import cost, count_params, extract
from edgegan.targets.build import build_bundle
from edgegan.targets.trt_checks import graph_issues

from conftest import with_bn_statistics

SIZE = 32
SHAPE = (1, 1, SIZE, SIZE)
WIDTHS = (0.25, 0.5, 0.75, 1.0)


def _unet(norm="bn", dropout=False, num_downs=5, ngf=8, seed=0):
    torch.manual_seed(seed)
    g = UnetGenerator(1, 1, ngf=ngf, num_downs=num_downs, norm=norm, dropout=dropout)
    return with_bn_statistics(g, (4, 1, SIZE, SIZE), seed=seed) if norm == "bn" else g.eval()


def _inputs(n=3, seed=1):
    return torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- the architecture -------------------------------------------------------------------------------

def test_unet_256_and_128_have_pix2pix_parameter_counts():
    # pix2pix prints "[Network G] Total number of parameters : 54.414 M" for unet_256 with batch norm
    assert count_params(UnetGenerator(3, 3, 64, 8, "bn", widths=(1.0,))) == 54413955
    assert count_params(UnetGenerator(3, 3, 64, 7, "bn", widths=(1.0,))) == 41828995
    assert level_channels(64, 8) == [64, 128, 256, 512, 512, 512, 512, 512]


def test_layers_biases_norms_and_dropout_follow_pix2pix():
    g = UnetGenerator(3, 3, ngf=4, num_downs=8, norm="bn", dropout=True)
    downs = [g._down_conv(i) for i in range(8)]
    ups = [g._up_conv(i) for i in range(8)]
    assert all(c.bias is None for c in downs) and [c.bias is not None for c in ups] == [True] + [False] * 7
    assert [len(level) for level in g.down] == [1, 3, 3, 3, 3, 3, 3, 2]  # no norm at the outermost / innermost down
    assert isinstance(g.down[1][0], nn.LeakyReLU) and g.down[1][0].negative_slope == 0.2
    assert isinstance(g.up[0][-1], nn.Tanh) and all(isinstance(level[0], nn.ReLU) for level in g.up)
    assert [any(isinstance(m, nn.Dropout) for m in level) for level in g.up] == [False] * 4 + [True] * 3 + [False]
    assert ups[0].in_segments == (4, 4) and ups[3].in_segments == (32, 32) and ups[7].in_segments is None
    g_in = UnetGenerator(3, 3, ngf=4, num_downs=7, norm="in")
    assert all(g_in._down_conv(i).bias is not None for i in range(7))
    assert list(channel_slots(g_in)) == ["down%d" % i for i in range(7)] + ["up%d" % i for i in range(1, 7)]


@pytest.mark.parametrize("num_downs", [2, 3, 5])
def test_shapes_rebuild_and_size_errors(num_downs):
    g = UnetGenerator(1, 2, ngf=4, num_downs=num_downs, norm="in")
    assert g(torch.zeros(2, 1, SIZE, SIZE)).shape == (2, 2, SIZE, SIZE)
    again = build_model(g.arch())
    assert again.hparams == g.hparams and again.state_dict().keys() == g.state_dict().keys()
    with pytest.raises(ValueError, match="multiples of %d" % 2 ** num_downs):
        g(torch.zeros(1, 1, SIZE + 2, SIZE))
    with pytest.raises(ValueError, match="at least 2"):
        UnetGenerator(1, 1, num_downs=1)


def test_dropout_is_identity_in_eval_noise_in_training_and_gone_when_extracted():
    g = UnetGenerator(1, 1, ngf=2, num_downs=6, norm="in", dropout=True)
    x = torch.rand(1, 1, 64, 64)
    g.train()
    torch.manual_seed(0)
    assert not torch.equal(g(x), g(x))
    g.eval()
    with torch.no_grad(), at_width(g, 0.5):
        ref = g(x)
        assert torch.equal(ref, g(x))
        assert float((extract(g, 0.5, input_shape=(1, 1, 64, 64))(x) - ref).abs().max()) < 1e-5


# -- extraction and cost ----------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(norm="bn"), dict(norm="in")])
def test_extracted_equals_elastic_at_every_width(kw):
    g = _unet(**kw)
    x = _inputs()
    for w in WIDTHS:
        with torch.no_grad(), at_width(g, w):
            ref = g(x)
        sub = extract(g, w, input_shape=SHAPE)
        assert not any(isinstance(m, (ElasticConv2d, ElasticConvTranspose2d)) for m in sub.modules())
        if kw["norm"] == "bn":
            assert not any(isinstance(m, nn.BatchNorm2d) for m in sub.modules())  # folded into the convs
        with torch.no_grad():
            assert float((sub(x) - ref).abs().max()) < 1e-5
    # the narrow widths compute their own functions (not a trivially shared output)
    with torch.no_grad():
        assert float((extract(g, 0.25, input_shape=SHAPE)(x) - extract(g, 1.0, input_shape=SHAPE)(x)).abs().max()) > 1e-3


def test_extraction_at_a_per_slot_config_with_unequal_skip_halves():
    g = _unet("bn")
    # the up conv of level 2 reads 3 skip channels of down2 and 5 upsampled channels of up3
    channels = {"down0": 2, "down1": 7, "down2": 3, "down3": 40, "down4": 9, "up1": 1, "up2": 16, "up3": 5, "up4": 33}
    config = SubnetConfig(channels=channels)
    set_width(g, config)
    assert g._up_conv(2).active_segments() == [3, 5] and g._up_conv(0).active_segments() == [2, 1]
    x = _inputs()
    with torch.no_grad():
        ref = g(x)
    set_width(g, 1.0)
    sub = extract(g, config, input_shape=SHAPE)
    assert sub.up[2][1].in_channels == 8 and sub.up[2][1].out_channels == 16
    with torch.no_grad():
        assert float((sub(x) - ref).abs().max()) < 1e-5


def _by_hand(g, x, down, up):
    """An InstanceNorm UNet at per-level channel counts ``down[i]`` / ``up[i]`` computed with plain functional
    ops, every weight slice written out: up conv i reads rows 0…down[i]-1 (the skip) and C_i…C_i+up[i+1]-1
    (the upsampled half) of its full weight."""
    F = nn.functional
    n = g.num_downs
    full = level_channels(g.hparams["ngf"], n)
    skips = []
    for i in range(n):
        conv = g._down_conv(i)
        h = x if i == 0 else F.leaky_relu(skips[-1], 0.2)
        h = F.conv2d(h, conv.weight[:down[i], :h.shape[1]], conv.bias[:down[i]], 2, 1)
        skips.append(h if i in (0, n - 1) else F.instance_norm(h))
    y = skips[-1]
    for i in range(n - 1, -1, -1):
        conv = g._up_conv(i)
        if i == n - 1:
            weight = conv.weight[:down[i]]
        else:
            weight = torch.cat([conv.weight[:down[i]], conv.weight[full[i]:full[i] + up[i + 1]]])
            y = torch.cat([skips[i], y], 1)
        out = 1 if i == 0 else up[i]
        y = F.conv_transpose2d(F.relu(y), weight[:, :out], conv.bias[:out], 2, 1)
        y = torch.tanh(y) if i == 0 else F.instance_norm(y)
    return y


def test_a_per_slot_config_computes_the_hand_written_network():
    g = _unet("in")
    down, up = [3, 5, 9, 60, 7], [None, 2, 11, 4, 50]
    channels = dict([("down%d" % i, c) for i, c in enumerate(down)] + [("up%d" % i, up[i]) for i in range(1, 5)])
    x = _inputs()
    with torch.no_grad():
        expected = _by_hand(g, x, down, up)
        with at_width(g, SubnetConfig(channels=channels)):
            assert float((g(x) - expected).abs().max()) < 1e-5
        assert float((extract(g, SubnetConfig(channels=channels), input_shape=SHAPE)(x) - expected).abs().max()) < 1e-5
        # a uniform width is the same rule with round(w·C) everywhere
        half = [int(round(0.5 * c)) for c in level_channels(8, 5)]
        with at_width(g, 0.5):
            assert float((g(x) - _by_hand(g, x, half, [None] + half[:-1])).abs().max()) < 1e-5


def _unet_macs(cin, cout, size, channels):
    """MACs of a UNet whose level i has channels[i] (k=4 convs down, k=4 transposed convs up)."""
    n = len(channels)
    macs = 0
    for i in range(n):
        below = cin if i == 0 else channels[i - 1]
        out_side = size // 2 ** (i + 1)
        macs += below * channels[i] * 16 * out_side ** 2  # down conv i
        up_in = channels[i] if i == n - 1 else 2 * channels[i]
        up_out = cout if i == 0 else channels[i - 1]
        macs += up_in * up_out * 16 * out_side ** 2  # transposed conv: Cin·Hin·Win·Cout·k²
    return macs


def test_cost_matches_the_hand_count_at_every_width():
    g = UnetGenerator(1, 1, ngf=8, num_downs=5, norm="bn")
    for w in WIDTHS:
        channels = [max(1, int(round(w * c))) for c in level_channels(8, 5)]
        got = cost(g, SHAPE, config=w)
        assert got["macs"] == _unet_macs(1, 1, SIZE, channels)
        params = sum(c.weight.numel() + (0 if c.bias is None else c.bias.numel())
                     for c in extract(g, w, input_shape=SHAPE).modules()
                     if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d)))  # BatchNorm folded into the convs
        assert got["params"] == params
    # the default tracing shape fits the model's levels (64² is not a multiple of 2^7)
    assert cost(UnetGenerator(1, 1, ngf=2, num_downs=7, norm="in"), config=1.0)["macs"] == \
        _unet_macs(1, 1, 128, level_channels(2, 7))


# -- sorting ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["bn", "in"])
def test_sorting_preserves_the_full_width_function(norm):
    g = _unet(norm)
    x = _inputs()
    with torch.no_grad():
        before = g(x)
        perms = sort_channels(g)
        after = g(x)
    assert len(perms) == 2 * 5 - 1
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms)
    assert float((before - after).abs().max()) < 1e-5


# -- targets ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def unet_checkpoint(tmp_path_factory):
    g = _unet("bn")
    data = {"name": "synthetic", "size": SIZE, "in_channels": 1, "out_channels": 1,
            "input": {"range": [-1.0, 1.0], "content": "edges"}, "output": {"range": [-1.0, 1.0], "content": "image"}}
    path = str(tmp_path_factory.mktemp("unet") / "unet.pt")
    save_checkpoint(path, {"generator": {"arch": g.arch(), "state_dict": g.state_dict()}, "widths": list(g.widths),
                           "data": data})
    return path


@pytest.fixture(scope="module")
def calibration_images(tmp_path_factory):
    import cv2

    images = tmp_path_factory.mktemp("unet-images")
    rng = np.random.default_rng(0)
    for i in range(10):
        cv2.imwrite(str(images / ("%02d.png" % i)), np.where(rng.random((SIZE, SIZE)) < 0.15, 0, 255).astype(np.uint8))
    return str(images)


def test_build_cpu_with_parity_and_cost(unet_checkpoint, tmp_path):
    out, manifest = build_bundle("cpu", checkpoint=unet_checkpoint, out=str(tmp_path / "cpu"), widths=[0.5, 1.0],
                                 n_parity_inputs=4, progress=False)
    g, _ = load_generator(unet_checkpoint)
    assert [v["width"] for v in manifest["variants"]] == [0.5, 1.0]
    for v in manifest["variants"]:
        assert v["parity"]["psnr_db"] >= 60
        assert v["macs"] == cost(g, SHAPE, config=v["width"])["macs"]
        ops = {n.op_type for n in onnx.load(os.path.join(out, v["file"])).graph.node}
        assert {"Concat", "ConvTranspose", "LeakyRelu"} <= ops and "BatchNormalization" not in ops


@pytest.mark.parametrize("target,precision", [("jetson-nano", None), ("jetson-xavier-nx", "int8"),
                                              ("cpu-int8", None)])
def test_build_tensorrt_and_int8_targets(unet_checkpoint, calibration_images, tmp_path, target, precision):
    out, manifest = build_bundle(target, checkpoint=unet_checkpoint, out=str(tmp_path / target), widths=[0.25],
                                 precision=precision, calibration=calibration_images, progress=False)
    v = manifest["variants"][0]
    assert v["parity"]["psnr_db"] >= manifest["profile"]["calibrate"]["min_psnr_db"] if v["precision"] == "int8" \
        else v["parity"]["psnr_db"] >= 60
    if "tensorrt" in manifest["profile"]:
        version = manifest["profile"]["tensorrt"]["version"]
        assert graph_issues(onnx.load(os.path.join(out, v["file"])), version, v["precision"]) == []


def test_build_openvino_target(unet_checkpoint, tmp_path):
    pytest.importorskip("openvino")
    _, manifest = build_bundle("cpu-openvino", checkpoint=unet_checkpoint, out=str(tmp_path / "ov"), widths=[0.25],
                               n_parity_inputs=4, progress=False)
    assert manifest["variants"][0]["parity"]["psnr_db"] >= 60


def test_build_torch_target(unet_checkpoint, tmp_path):
    _, manifest = build_bundle("torch", checkpoint=unet_checkpoint, out=str(tmp_path / "torch"), widths=[0.5],
                               progress=False)
    assert manifest["variants"][0]["parity"]["psnr_db"] >= 100


def test_build_android_keeps_k4_transposed_convs(unet_checkpoint, tmp_path):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    from edgegan.targets.tflite import interpreter

    out, manifest = build_bundle("android", checkpoint=unet_checkpoint, out=str(tmp_path / "android"), widths=[0.25],
                                 precision="fp16", progress=False)
    v = manifest["variants"][0]
    assert "TRANSPOSE_CONV" in v["tflite"]["ops"] and v["parity"]["psnr_db"] >= 35
    # every 4×4 kernel is stored in fp16: the 5 convs' and the 5 transposed convs'
    tensors = interpreter(os.path.join(out, v["file"]), delegates=False).get_tensor_details()
    halves = [t for t in tensors if t["dtype"] == np.float16]
    assert len(halves) == 10 and all(tuple(t["shape"][1:3]) == (4, 4) for t in halves)


def test_build_ios_spec(unet_checkpoint, tmp_path):
    pytest.importorskip("coremltools")
    _, manifest = build_bundle("ios", checkpoint=unet_checkpoint, out=str(tmp_path / "ios"), widths=[0.25],
                               progress=False)
    spec = manifest["variants"][0]["coreml"]["spec"]
    assert {"conv_transpose", "concat", "leaky_relu"} <= set(spec["ops"]) and spec["precision"] == "fp16"


# -- the paired recipe ------------------------------------------------------------------------------

def test_unet_levels_rule():
    from edgegan.errors import EdgeganError
    from edgegan.train.slimmable import unet_levels

    assert [unet_levels(s) for s in (32, 48, 128, 256, 512)] == [5, 4, 7, 8, 8]
    assert unet_levels(256, 7) == 7
    with pytest.raises(EdgeganError, match="multiple of 64, got 32 \\(use --num-downs 5 or fewer\\)"):
        unet_levels(32, 6)
    with pytest.raises(EdgeganError, match="multiple of 4"):
        unet_levels(30)


def test_train_slimmable_unet_then_build(tmp_path):
    from pairs_data import Pairs

    from edgegan.train.slimmable import SlimmableConfig, train_slimmable

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = SlimmableConfig(arch="unet", ngf=4, ndf=4, steps=2, batch_size=8, eval_every=0, eval_images=8,
                                 recalibrate_bn=1, dropout=True, seed=0)
        ckpt = train_slimmable(config, Pairs(32, size=SIZE), Pairs(8, size=SIZE, seed=1), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert ckpt["generator"]["arch"]["name"] == "unet_generator"
    assert ckpt["generator"]["arch"]["kwargs"]["num_downs"] == 5 and ckpt["train"]["arch"] == "unet"
    assert sorted(ckpt["metrics"]) == ["w0.25", "w0.5", "w0.75", "w1"]
    path = save_checkpoint(str(tmp_path / "unet.pt"), ckpt)
    _, manifest = build_bundle("cpu", checkpoint=path, out=str(tmp_path / "b"), widths=[0.25, 1.0], progress=False)
    assert all(v["parity"]["psnr_db"] >= 60 for v in manifest["variants"])


@pytest.mark.parametrize("args,message", [
    (["--arch", "unet", "--n-blocks", "3"], "--n-blocks: an option of --arch resnet, not of --arch unet"),
    (["--arch", "unet", "--num-downs", "6"], "--num-downs 6 halves the image 6 times"),
    (["--num-downs", "4"], "--num-downs: an option of --arch unet"),
    (["--dropout", "--upsample", "resize"], "--dropout: an option of --arch unet"),
])
def test_cli_refuses_options_of_the_other_architecture(tmp_path, capsys, args, message):
    from pairs_data import Pairs

    folder = tmp_path / "data"
    for split in ("train", "val"):
        (folder / split).mkdir(parents=True)
        import cv2

        for i, (x, y) in enumerate(Pairs(2, size=SIZE, seed=len(split))):
            ab = np.concatenate([x[0].numpy(), y[0].numpy()], axis=1)
            cv2.imwrite(str(folder / split / ("%d.png" % i)), ((ab + 1) * 127.5).astype(np.uint8))
    rc = main(["train", "slimmable", "--data", str(folder), "--steps", "1", "--out", str(tmp_path / "x.pt")] + args)
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "x.pt")


def test_anycost_sorts_and_fine_tunes_a_unet():
    from pairs_data import Pairs

    from edgegan.train.anycost import train_anycost

    g = _unet("bn")
    ckpt = train_anycost(g, Pairs(8, size=SIZE), 2, test_set=Pairs(4, size=SIZE, seed=1), batch_size=4,
                         recalibrate_batches=1, eval_images=4, log=lambda line: None)
    # sorting is checked inside to keep the full width's output (sort_preserving); the result rebuilds
    assert ckpt["train"]["sort_max_abs_diff"] <= 1e-4
    assert ckpt["generator"]["arch"]["name"] == "unet_generator" and sorted(ckpt["metrics"]) == \
        ["w0.25", "w0.5", "w0.75", "w1"]
    build_model(ckpt["generator"]["arch"]).load_state_dict(ckpt["generator"]["state_dict"])
