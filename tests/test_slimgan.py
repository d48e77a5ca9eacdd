"""Noise → image slimmable generators (issue 3 foundations): conditional BN, generators, export,
BN recalibration, GAN metrics and the shipped Fashion-MNIST classifier."""

import io
import os
import warnings

import numpy as np
import pytest
import torch

from edgegan.models import MODELS, DCGANGenerator, NoiseResnetGenerator, build_model
from edgegan.nn import at_width, channel_slots, set_width
from edgegan.nn.cond_norm import (SliceableConditionalBatchNorm2d, StaticConditionalBatchNorm2d,
                                  SwitchableConditionalBatchNorm2d)
from edgegan.subnet import cost, extract
from edgegan.train.gan_metrics import fd_fmnist, frechet_distance, is_fmnist, mic
from edgegan.train.recalibrate import recalibrate_bn

WIDTHS = (0.25, 0.5, 0.75, 1.0)
NZ = 16


def _randomise(module, seed=0):
    """Non-trivial norm affine parameters and per-class tables (the defaults are 1 / 0)."""
    g = torch.Generator().manual_seed(seed)
    seen = set()
    with torch.no_grad():
        for m in module.modules():
            if "Norm" not in type(m).__name__:
                continue
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    p.add_(0.3 * torch.randn(p.shape, generator=g))
    return module


def _warm_stats(model, args, steps=3):
    """Give every width's BatchNorms non-default running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            for w in model.widths:
                with at_width(model, w):
                    model(*args)
    return model.eval()


def _inputs(n_classes, n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, NZ, generator=g)
    if not n_classes:
        return (z,)
    return z, torch.randint(0, n_classes, (n,), generator=g)


# --- conditional BatchNorm ------------------------------------------------------------------------

def test_sliceable_cbn_equals_manual_formula():
    torch.manual_seed(0)
    cbn = _randomise(SliceableConditionalBatchNorm2d([4, 8, 12, 16], n_classes=10))
    cbn.eval()
    for i, bn in enumerate(cbn.bn):  # distinct statistics per width
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    y = torch.tensor([0, 3, 9, 3, 5])
    for i, s in enumerate(cbn.num_features_list):
        x = torch.randn(5, s, 3, 3)
        bn = cbn.bn[i]
        xhat = (x - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
        gamma = cbn.weight[i][None] * cbn.class_weight[y, :s]   # γ_w · γ_c[:s]
        beta = cbn.bias[i][None] + cbn.class_bias[y, :s]        # β_w + β_c[:s]
        expected = gamma[:, :, None, None] * xhat + beta[:, :, None, None]
        torch.testing.assert_close(cbn(x, y), expected, atol=1e-5, rtol=1e-5)
    # training mode normalises with the batch statistics of the active width
    cbn.train()
    x = torch.randn(5, 8, 3, 3)
    xhat = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    gamma = cbn.weight[1][None] * cbn.class_weight[y, :8]
    beta = cbn.bias[1][None] + cbn.class_bias[y, :8]
    torch.testing.assert_close(cbn(x, y), gamma[:, :, None, None] * xhat + beta[:, :, None, None], atol=1e-5, rtol=1e-5)


def test_sliceable_cbn_shares_class_vectors_across_widths():
    cbn = SliceableConditionalBatchNorm2d([4, 8], n_classes=3)
    assert cbn.class_weight.shape == (3, 8) and cbn.class_bias.shape == (3, 8)
    x = torch.randn(2, 4, 2, 2, requires_grad=True)
    cbn(x, torch.tensor([1, 2])).sum().backward()
    # only the first 4 entries of the used classes' vectors get a gradient
    assert cbn.class_bias.grad[1:, :4].abs().sum() > 0
    assert cbn.class_bias.grad[:, 4:].abs().sum() == 0 and cbn.class_bias.grad[0].abs().sum() == 0


def test_switchable_vs_sliceable_cbn_shapes():
    counts, k = [4, 8, 12, 16], 10
    sw, sl = SwitchableConditionalBatchNorm2d(counts, k), SliceableConditionalBatchNorm2d(counts, k)
    assert [tuple(p.shape) for p in sw.class_weight] == [(k, c) for c in counts]
    assert tuple(sl.class_weight.shape) == (k, 16)
    n_sw = sum(p.numel() for p in sw.parameters())
    n_sl = sum(p.numel() for p in sl.parameters())
    assert n_sw == 2 * k * sum(counts)
    assert n_sl == 2 * k * 16 + 2 * sum(counts)
    y = torch.tensor([0, 9])
    for c in counts:
        x = torch.randn(2, c, 4, 4)
        assert sw(x, y).shape == x.shape and sl(x, y).shape == x.shape
    with pytest.raises(ValueError):
        sl(torch.randn(2, 17, 4, 4), y)
    with pytest.raises(ValueError):
        sl(torch.randn(2, 4, 4, 4), None)


@pytest.mark.parametrize("cls", [SliceableConditionalBatchNorm2d, SwitchableConditionalBatchNorm2d])
def test_cbn_to_static_matches(cls):
    torch.manual_seed(0)
    cbn = _randomise(cls([4, 8], n_classes=5))
    cbn.train()
    for c in (4, 8):
        cbn(torch.randn(6, c, 3, 3) * 2 + 1, torch.arange(6) % 5)
    cbn.eval()
    y = torch.tensor([4, 0, 2])
    for c in (4, 8):
        x = torch.randn(3, c, 3, 3)
        static = cbn.to_static(c)
        assert isinstance(static, StaticConditionalBatchNorm2d)
        torch.testing.assert_close(static(x, y), cbn(x, y), atol=1e-5, rtol=1e-5)


# --- generators -----------------------------------------------------------------------------------

GEN_CASES = [
    ("dcgan_generator", 0, "sliceable"),
    ("dcgan_generator", 10, "sliceable"),
    ("dcgan_generator", 10, "switchable"),
    ("noise_resnet_generator", 0, "sliceable"),
    ("noise_resnet_generator", 10, "sliceable"),
]


def _generator(name, n_classes, cbn):
    torch.manual_seed(0)
    kwargs = dict(nz=NZ, out_channels=1, ngf=8, size=32, n_classes=n_classes, cbn=cbn, widths=list(WIDTHS))
    return _randomise(build_model({"name": name, "kwargs": kwargs}))


@pytest.mark.parametrize("name,n_classes,cbn", GEN_CASES)
def test_generator_outputs_at_every_width_and_extract_parity(name, n_classes, cbn):
    g = _generator(name, n_classes, cbn)
    args = _inputs(n_classes)
    _warm_stats(g, args)
    assert build_model(g.arch()).arch() == g.arch()
    assert name in MODELS
    macs = []
    for w in WIDTHS:
        with at_width(g, w):
            ref = g(*args)
        assert ref.shape == (6, 1, 32, 32)
        assert ref.abs().max() <= 1.0 and ref.abs().max() > 1e-3
        sub = extract(g, w, example_inputs=args)
        assert not any("Elastic" in type(m).__name__ or "Switchable" in type(m).__name__ or
                       "Sliceable" in type(m).__name__ for m in sub.modules())
        assert (sub(*args) - ref).abs().max().item() <= 1e-5
        macs.append(cost(g, config=w, example_inputs=tuple(a[:1] for a in args))["macs"])
    assert macs == sorted(macs) and macs[0] < macs[-1]
    if n_classes:
        with pytest.raises(ValueError, match="class-conditional"):
            g(args[0])
        # the label matters
        other = (args[1] + 1) % n_classes
        assert (g(args[0], other) - g(*args)).abs().max() > 1e-4
    else:
        with pytest.raises(ValueError, match="unconditional"):
            g(args[0], torch.zeros(6, dtype=torch.long))


def test_unconditional_dcgan_works_with_plain_extract_and_folds_bn():

    g = _generator("dcgan_generator", 0, "sliceable")
    (z,) = _inputs(0)
    _warm_stats(g, (z,))
    sub = extract(g, 0.5, input_shape=(1, NZ))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sub.modules())
    with at_width(g, 0.5):
        assert (sub(z) - g(z)).abs().max().item() <= 1e-5


def test_channel_slots_and_widths():
    g = DCGANGenerator(nz=NZ, ngf=8, size=32)
    slots = channel_slots(g)
    assert list(slots) == ["project", "up1", "up2", "up3"]
    assert [s.max_channels for s in slots.values()] == [64, 32, 16, 8]
    set_width(g, 0.25)
    assert g.body[0].active_out == 16
    r = NoiseResnetGenerator(nz=NZ, ngf=8, size=32)
    assert list(channel_slots(r)) == ["stream", "block0", "block1", "block2"]
    with pytest.raises(ValueError):
        DCGANGenerator(size=24)
    with pytest.raises(ValueError):
        DCGANGenerator(n_classes=10, cbn="bogus")


def test_onnx_export_of_conditional_generator_two_inputs():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    g = _generator("dcgan_generator", 10, "sliceable")
    z, y = _inputs(10, n=5)
    _warm_stats(g, (z, y))
    sub = extract(g, 0.5, example_inputs=(z, y))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(sub, (z, y), buf, input_names=["z", "label"], output_names=["image"], opset_version=13,
                          dynamo=False, dynamic_axes={"z": {0: "n"}, "label": {0: "n"}, "image": {0: "n"}})
    import onnx

    model = onnx.load_from_string(buf.getvalue())
    assert [i.name for i in model.graph.input] == ["z", "label"]
    assert "Gather" in {n.op_type for n in model.graph.node}
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"z": z.numpy(), "label": y.numpy()})[0]
    with at_width(g, 0.5):
        ref = g(z, y).detach().numpy()
    assert np.abs(out - ref).max() <= 1e-5


# --- BN recalibration -----------------------------------------------------------------------------

def _stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("n_classes", [0, 10])
def test_recalibration_changes_only_the_given_widths(n_classes):
    g = _generator("dcgan_generator", n_classes, "sliceable")
    _warm_stats(g, _inputs(n_classes, seed=3))
    before = _stats(g)
    batches = [_inputs(n_classes, n=8, seed=10 + i) for i in range(3)]
    counts = recalibrate_bn(g, batches, widths=[0.5])
    assert counts == {0.5: 4}
    after = _stats(g)
    # BatchNorm index 1 in each layer serves width 0.5 (channel counts sorted ascending)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".bn.1." in k for k in changed)
    assert {k for k in before if ".bn.1.running_mean" in k} <= changed
    # the new statistics are the exact average over the batches, at width 0.5
    g2 = _generator("dcgan_generator", n_classes, "sliceable")
    g2.load_state_dict(g.state_dict())
    recalibrate_bn(g2, batches, widths=[0.5])
    assert all(torch.allclose(after[k], v) for k, v in _stats(g2).items())
    # momentum is restored
    assert all(m.momentum == 0.1 for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # recalibrating every width changes every width's statistics
    recalibrate_bn(g, batches)
    final = _stats(g)
    for i in range(4):
        assert any(".bn.%d.running_mean" % i in k and not torch.equal(before[k], final[k]) for k in final)


def test_recalibrated_stats_equal_cumulative_average():
    g = _generator("dcgan_generator", 0, "sliceable")
    batches = [_inputs(0, n=8, seed=20 + i) for i in range(4)]
    recalibrate_bn(g, batches, widths=[1.0])
    bn = g.body[1].bn[-1]
    # the first BatchNorm sees the projection of each batch: its running mean is the mean of batch means
    conv = g.body[0]
    with at_width(g, 1.0), torch.no_grad():
        means = [conv(b[0][:, :, None, None]).mean((0, 2, 3)) for b in batches]
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), atol=1e-5, rtol=1e-4)
    assert int(bn.num_batches_tracked) == 4


# --- metrics --------------------------------------------------------------------------------------

def test_mic_and_fd_on_identical_and_different_features():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 8))
    assert mic({0.25: f, 0.5: f.copy(), 1.0: f.copy()}) == 0.0
    assert mic([f, f + 1.0]) == pytest.approx(8.0)
    assert fd_fmnist(f, f) == pytest.approx(0.0, abs=1e-6)
    shifted = fd_fmnist(f, f + 2.0)
    assert shifted == pytest.approx(4.0 * 8, rel=1e-6)
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), 4 * np.eye(2)) == pytest.approx(2.0)
    assert is_fmnist(np.full((10, 10), 0.1)) == pytest.approx(1.0)
    assert is_fmnist(np.eye(10)) == pytest.approx(10.0, rel=1e-4)


def test_fid_inception_needs_the_weights_file(tmp_path):
    from edgegan.errors import EdgeganError
    from edgegan.train.gan_metrics import fid_inception

    x = torch.zeros(2, 1, 32, 32)
    with pytest.raises(EdgeganError):
        fid_inception(str(tmp_path / "missing.pth"), x, x)


# --- classifier asset -----------------------------------------------------------------------------

def test_classifier_asset_loads_and_classifies_real_images():
    from edgegan.train.classifier import DEFAULT_CLASSIFIER, load_classifier, load_fmnist
    from edgegan.train.gan_metrics import classifier_outputs

    assert os.path.getsize(DEFAULT_CLASSIFIER) <= 1024 * 1024
    torch.load(DEFAULT_CLASSIFIER, weights_only=True)
    model, asset = load_classifier()
    assert asset["metrics"]["test_accuracy"] > 0.85
    try:
        images, labels = load_fmnist("test", limit=200)
    except Exception as e:  # the data set is a Debian package; skip without it
        pytest.skip("Fashion-MNIST not available: %s" % e)
    feats, probs = classifier_outputs(images, model)
    accuracy = (probs.argmax(1) == labels).float().mean().item()
    assert accuracy > 0.7
    assert feats.shape == (200, model.hparams["feature_dim"])
    assert is_fmnist(probs) > 5.0
    # real vs real (two halves) is much closer than real vs noise
    noise = torch.rand(100, 1, 32, 32) * 2 - 1
    noise_feats, _ = classifier_outputs(noise, model)
    assert fd_fmnist(feats[:100], feats[100:]) < fd_fmnist(feats[:100], noise_feats)


# --- the noise → image SlimGAN recipe -------------------------------------------------------------

@pytest.mark.parametrize("model,n_classes", [("dcgan", 0), ("resnet", 10)])
def test_slimgan_recipe_smoke(model, n_classes, tmp_path, capsys):
    from edgegan.models import build_model as rebuild
    from edgegan.train.slimgan import SlimGANConfig, train_slimgan

    g = torch.Generator().manual_seed(0)
    images = torch.rand(24, 1, 32, 32, generator=g) * 2 - 1
    labels = torch.arange(24) % 10
    config = SlimGANConfig(model=model, nz=8, ngf=8, ndf=8, n_classes=n_classes, steps=3, batch_size=8,
                           recalibrate_bn=2, eval_images=16, lambda_distill=1.0)
    ckpt = train_slimgan(config, images, labels, test_images=images)
    assert ckpt["widths"] == [0.25, 0.5, 0.75, 1.0]
    assert set(ckpt["metrics"]["widths"]) == {"w0.25", "w0.5", "w0.75", "w1"}
    assert ckpt["metrics"]["mic"] > 0
    assert all(np.isfinite(m["fd_fmnist"]) and 1.0 <= m["is_fmnist"] <= 10.0
               for m in ckpt["metrics"]["widths"].values())
    assert len(ckpt["train"]["history"]) == 1 and np.isfinite(ckpt["train"]["history"][0]["losses"]["d"])
    gen = rebuild(ckpt["generator"]["arch"])
    gen.load_state_dict(ckpt["generator"]["state_dict"])
    args = _inputs(n_classes, n=2)
    args = (args[0][:, :8],) + args[1:]
    assert gen.eval()(*args).shape == (2, 1, 32, 32)
    # `edgegan eval CKPT --json` on the checkpoint (the classifier and Fashion-MNIST test images)
    from edgegan.checkpoint import save_checkpoint
    from edgegan.cli.eval import main as eval_main

    path = save_checkpoint(str(tmp_path / "g.pt"), ckpt)
    try:
        from edgegan.data import fmnist_paths

        fmnist_paths(None, "test")
    except Exception as e:
        pytest.skip("Fashion-MNIST not available: %s" % e)
    assert eval_main([path, "--images", "16", "--recalibrate-bn", "1", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert set(out["widths"]) == {"w0.25", "w0.5", "w0.75", "w1"} and out["images"] == 16
    assert eval_main([path, "--images", "16"]) == 0
    table = capsys.readouterr().out
    assert "FD-FMNIST" in table and "mIC" in table


def test_slimgan_distillation_target_is_detached():
    """Stepwise distillation moves only the narrower width: the teacher's output gets no gradient."""
    from edgegan.train.losses import inplace_distillation

    narrow = torch.randn(2, 1, 4, 4, requires_grad=True)
    wide = torch.randn(2, 1, 4, 4, requires_grad=True)
    inplace_distillation([narrow, wide], "stepwise").backward()
    assert narrow.grad is not None and narrow.grad.abs().sum() > 0
    assert wide.grad is None


def test_train_slimgan_cli_one_step(tmp_path, capsys):
    import json

    from edgegan.checkpoint import load_generator
    from edgegan.cli.train_slimgan import main
    from edgegan.data import fmnist_paths

    try:
        fmnist_paths(None, "train")
    except Exception as e:
        pytest.skip("Fashion-MNIST not available: %s" % e)
    out = str(tmp_path / "c.pt")
    assert main(["--n-classes", "10", "--nz", "8", "--ngf", "4", "--ndf", "4", "--steps", "1", "--batch-size", "4",
                 "--eval-images", "0", "--out", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 1
    g, ckpt = load_generator(out)
    assert g.n_classes == 10 and ckpt["data"]["n_classes"] == 10
    assert main(["--steps", "1", "--out", out]) == 2  # exists, no --force


def test_targets_onnx_export_takes_noise_and_label(tmp_path):
    """``edgegan.targets.onnx.compile_onnx`` with several example inputs (noise + label), parity under ORT."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxsim")
    from edgegan.targets.onnx import compile_onnx, export, measure_parity

    g = _generator("dcgan_generator", 10, "sliceable")
    z, y = _inputs(10, n=1)
    _warm_stats(g, _inputs(10, n=6))
    sub = extract(g, 0.5, example_inputs=(z, y))
    path = str(tmp_path / "c.onnx")
    model = compile_onnx(sub, None, path, 13, example_inputs=(z, y))
    assert [i.name for i in model.graph.input] == ["input", "label"]
    gen = torch.Generator().manual_seed(3)
    inputs = [(torch.randn(1, NZ, generator=gen).numpy(), torch.tensor([k]).numpy()) for k in (0, 4, 9)]
    parity = measure_parity(path, sub, inputs, data_range=2.0)
    assert parity["psnr_db"] > 80 and parity["n_inputs"] == 3
    with at_width(g, 0.5):
        ref = g.eval()(torch.from_numpy(inputs[1][0]), torch.from_numpy(inputs[1][1]))
    import onnxruntime as ort

    out = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {"input": inputs[1][0], "label": inputs[1][1]})[0]
    assert np.abs(out - ref.detach().numpy()).max() <= 1e-5
    # single-input export is unchanged
    assert [i.name for i in export(extract(_generator("dcgan_generator", 0, "sliceable"), 0.5),
                                   (1, NZ), 13).graph.input] == ["input"]
