"""TFLite target: the ConvTranspose2d lowering, litert-torch conversion (fp32 / fp16 / int8), parity under
the LiteRT interpreter, the ``tflite`` runtime backend and `edgegan build --target android`."""

import json
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgegan.checkpoint import load_generator
from edgegan.errors import EdgeganError, TargetError
from edgegan.runtime.backends import tflite as tflite_backend
from edgegan.subnet import extract
from edgegan.targets.lowering import (PhaseConvTranspose2d, is_lowerable, lower_transposed_convs,
                                      remaining_transposed_convs)
from edgegan.targets.profiles import load_profile

SIZE = 32
SHAPE = (1, 1, SIZE, SIZE)


@pytest.fixture(scope="module")
def sub(tiny_checkpoint):
    g, _ = load_generator(tiny_checkpoint)
    return extract(g, 1.0, input_shape=SHAPE)


# -- lowering (no litert-torch needed) -------------------------------------------------------------

def _check_lowering(cin, cout, h, w, bias):
    torch.manual_seed(cin * 100 + cout)
    layer = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias).double()
    x = torch.randn(2, cin, h, w, dtype=torch.float64)
    lowered = PhaseConvTranspose2d(layer)
    with torch.no_grad():
        ref, out = layer(x), lowered(x)
    assert out.shape == ref.shape == (2, cout, 2 * h, 2 * w)
    assert float((ref - out).abs().max()) < 1e-12  # the same sums of the same products (fp64: rounding only)
    # the nine weights of each (in, out) pair appear exactly once in the 2×2 kernel, the other taps are zero
    kernel = lowered.conv.weight.detach()
    assert int((kernel != 0).sum()) == int((layer.weight != 0).sum())
    assert torch.equal(torch.sort(kernel[kernel != 0])[0], torch.sort(layer.weight.detach().flatten())[0])
    with torch.no_grad():
        f32 = PhaseConvTranspose2d(layer.float())
        assert float((layer(x.float()) - f32(x.float())).abs().max()) < 1e-5


@pytest.mark.parametrize("cin,cout,h,w,bias", [(3, 5, 4, 6, True), (16, 8, 8, 8, False), (1, 1, 1, 1, True),
                                               (2, 3, 5, 3, True)])
def test_lowering_is_exact(cin, cout, h, w, bias):
    _check_lowering(cin, cout, h, w, bias)


def test_lowering_only_takes_k3_s2_p1_op1():
    assert is_lowerable(nn.ConvTranspose2d(4, 4, 3, 2, 1, 1))
    for layer in (nn.ConvTranspose2d(4, 4, 4, 2, 1), nn.ConvTranspose2d(4, 4, 3, 2, 1, 0),
                  nn.ConvTranspose2d(4, 4, 3, 2, 1, 1, groups=2), nn.Conv2d(4, 4, 3)):
        assert not is_lowerable(layer)
    with pytest.raises(ValueError, match="replaces ConvTranspose2d"):
        PhaseConvTranspose2d(nn.ConvTranspose2d(4, 4, 4, 2, 1))


def test_lowered_generator_keeps_its_function(sub):
    import copy

    lowered = copy.deepcopy(sub)
    assert lower_transposed_convs(lowered) == 2 and remaining_transposed_convs(lowered) == []
    x = torch.rand(2, *SHAPE[1:]) * 2 - 1
    with torch.no_grad():
        assert float((sub(x) - lowered(x)).abs().max()) < 1e-5


def test_android_profile():
    p = load_profile("android")
    assert p["compiler"] == "tflite" and p["runtime"]["backend"] == "tflite"
    assert set(p["build"]["precisions"]) == {"fp32", "fp16", "int8"} and p["calibrate"]["observer"] == "minmax"


def test_backend_quantize_roundtrip_and_missing_library(monkeypatch):
    q = {"dtype": "int8", "scale": 2.0 / 255, "zero_point": -1}
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    y = tflite_backend.dequantize(tflite_backend.quantize(x, q), q)
    assert y.dtype == np.float32 and np.max(np.abs(x - y)) <= q["scale"] / 2 + 1e-3  # ±1 clipped at -128
    assert tflite_backend.quantize(x, {"dtype": "float32", "scale": 0.0, "zero_point": 0}) is x

    import importlib

    real = importlib.import_module

    def no_tflite(name, *a, **k):
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            raise ImportError("No module named %r" % name)
        return real(name, *a, **k)

    monkeypatch.setattr(tflite_backend.importlib, "import_module", no_tflite)
    with pytest.raises(EdgeganError, match="ai_edge_litert or tflite_runtime.*pip install ai-edge-litert"):
        tflite_backend.TFLiteBackend.import_library()


# -- conversion (litert-torch, ai-edge-litert, ai-edge-quantizer) -----------------------------------

class _Calibration(object):
    """The interface of ``edgegan.calibrate.CalibrationSet`` on synthetic edge-like inputs."""

    def __init__(self, n=12, n_held_out=4):
        from edgegan.targets.onnx import parity_inputs

        xs = [x for x in parity_inputs(SHAPE, (-1.0, 1.0), n=2 * (n + n_held_out), seed=3)][::2]
        self.inputs, self.held_out, self.output_range = xs[:n], xs[n:], 2.0

    def representative_dataset(self, layout="NHWC"):
        def generate():
            for x in self.inputs:
                yield [x.transpose(0, 2, 3, 1).copy() if layout == "NHWC" else x]
        return generate

    def describe(self):
        return {"source": "synthetic", "n_calibration": len(self.inputs), "n_held_out": len(self.held_out)}


@pytest.fixture(scope="module")
def converted(sub, tmp_path_factory):
    """The tiny sub-network converted once: fp32, fp16 and int8 ``.tflite`` files."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    from edgegan.targets import tflite

    d = tmp_path_factory.mktemp("tflite")
    paths = {p: str(d / ("w1.%s.tflite" % p)) for p in ("fp32", "fp16", "int8")}
    tflite.convert_fp32(sub, SHAPE, paths["fp32"])
    tflite.fp16_weights(paths["fp32"], paths["fp16"])
    profile = {"calibrate": {"min_psnr_db": 30.0, "observer": "minmax"}}
    report = tflite.quantize_with_gate(sub, paths["fp32"], paths["int8"], _Calibration(), profile)
    return paths, report


def _parity(path, sub, precision):
    from edgegan.targets import tflite
    from edgegan.targets.onnx import parity_inputs

    return tflite.measure_parity(path, sub, parity_inputs(SHAPE, (-1.0, 1.0)), 2.0, precision)


def test_fp32_tflite_is_nhwc_named_and_matches(converted, sub):
    from edgegan.targets import tflite

    paths, _ = converted
    info = tflite.describe(paths["fp32"])
    assert info["signature"] == {"serving_default": {"inputs": ["input"], "outputs": ["output"]}}
    assert info["input"]["shape"] == [1, SIZE, SIZE, 1] and info["output"]["shape"] == [1, SIZE, SIZE, 1]
    assert info["input"]["dtype"] == "float32"
    assert "TRANSPOSE_CONV" not in info["ops"] and {"CONV_2D", "MIRROR_PAD", "TANH"} <= set(info["ops"])
    parity = _parity(paths["fp32"], sub, "fp32")
    assert parity["psnr_db"] >= 40.0 and parity["max_abs"] < 1e-4, parity


def test_fp16_tflite_has_half_weights_and_matches(converted, sub):
    from edgegan.targets import tflite

    paths, _ = converted
    assert "DEQUANTIZE" in tflite.op_list(paths["fp16"])
    assert os.path.getsize(paths["fp16"]) < 0.75 * os.path.getsize(paths["fp32"])
    parity = _parity(paths["fp16"], sub, "fp16")
    assert parity["psnr_db"] >= 35.0, parity


def test_int8_tflite_is_full_integer_and_passes_the_gate(converted, sub):
    from edgegan.targets import tflite

    paths, report = converted
    info = tflite.describe(paths["int8"])
    assert info["input"]["dtype"] == "int8" and info["output"]["dtype"] == "int8"
    assert info["input"]["scale"] > 0 and -128 <= info["input"]["zero_point"] <= 127
    assert report["psnr_db"] >= 30.0 and report["observer"] == "minmax"
    parity = _parity(paths["int8"], sub, "int8")
    assert parity["psnr_db"] >= 30.0 and parity["input_dtype"] == "int8", parity


def test_int8_layers_kept_float_get_float_kernels(converted, tmp_path):
    from edgegan.targets import tflite

    paths, _ = converted
    fp32 = paths["fp32"]
    layers = tflite.quantizable_layers(fp32)
    assert [label for label, _ in layers][:1] == ["stem.1"] and layers[-1][0] == "head.1"
    out = str(tmp_path / "kept.tflite")
    tflite.quantize_int8(fp32, out, _Calibration(), kept_float=[layers[0][1], layers[-1][1]])
    ops = tflite.op_list(out)
    assert "QUANTIZE" in ops and "DEQUANTIZE" in ops  # float islands inside an int8 graph
    assert tflite.describe(out)["input"]["dtype"] == "int8"


def test_tflite_refuses_other_observers(converted, sub, tmp_path):
    from edgegan.targets import tflite

    paths, _ = converted
    with pytest.raises(TargetError, match="observer = \"minmax\""):
        tflite.quantize_with_gate(sub, paths["fp32"], str(tmp_path / "x.tflite"), _Calibration(),
                                  {"calibrate": {"min_psnr_db": 30.0, "observer": "entropy"}})


def test_backend_runs_int8_with_float_io(converted, sub):
    from edgegan.runtime.backends import get_backend

    paths, _ = converted
    backend = get_backend("tflite")(paths["int8"], threads=1, layout="NHWC")
    assert backend.input_shape == (1, SIZE, SIZE, 1) and backend.input_dtype == np.float32
    assert backend.input_quantization["dtype"] == "int8" and "NHWC" in backend.describe_input()
    x = np.where(np.random.default_rng(0).random((1, SIZE, SIZE, 1)) < 0.15, -1.0, 1.0).astype(np.float32)
    y = backend.run(x)
    with torch.no_grad():
        ref = sub(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    assert y.dtype == np.float32 and y.shape == ref.shape and np.max(np.abs(y - ref)) < 0.25
    from edgegan.errors import InputError

    with pytest.raises(InputError, match="NHWC"):
        backend.run(np.zeros(SHAPE, np.float32))
    backend.close()


def test_benchmark_times_a_tflite_model(converted):
    from edgegan.targets import tflite

    paths, _ = converted
    stats = tflite.benchmark(paths["int8"], threads=1, warmup=2, warmup_s=0.0, runs=5)
    assert stats["runs"] == 5 and stats["fps"] > 0 and stats["input"]["dtype"] == "int8"


def test_build_android_bundles(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    import cv2

    from edgegan.cli import main
    from edgegan.runtime import Runtime, load_bundle

    fp32, int8 = str(tmp_path / "fp32"), str(tmp_path / "int8")
    assert main(["build", "--target", "android", "--checkpoint", tiny_checkpoint, "--out", fp32,
                 "--widths", "1.0"]) == 0
    m = load_bundle(fp32).manifest
    assert m["backend"] == "tflite" and m["input"]["layout"] == "NHWC" and m["input"]["shape"] == [1, SIZE, SIZE, 1]
    assert m["output"]["layout"] == "NHWC" and [v["file"] for v in m["variants"]] == ["w1.tflite"]
    assert all(v["parity"]["psnr_db"] >= 40.0 and v["parity"]["measured_precision"] == "fp32" for v in m["variants"])
    with Runtime(fp32, threads=1) as rt:
        image = rt.infer_image(np.full((50, 40), 255, np.uint8))
        assert image.shape == (SIZE, SIZE) and image.dtype == np.uint8

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        cv2.imwrite(str(photos / ("%02d.png" % i)), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    assert main(["build", "--target", "android", "--checkpoint", tiny_checkpoint, "--out", int8, "--widths", "1.0",
                 "--precision", "int8", "--calibration", str(photos), "--json"]) == 0
    capsys.readouterr()
    m = json.load(open(os.path.join(int8, "manifest.json")))
    (v,) = m["variants"]
    assert v["precision"] == "int8" and v["parity"]["psnr_db"] >= m["profile"]["calibrate"]["min_psnr_db"]
    assert v["tflite"]["input"]["dtype"] == "int8" and v["tflite"]["input"]["scale"] > 0
    assert v["int8"]["calibration"]["source"].startswith("folder")
    with Runtime(int8) as rt:  # threads from the profile, capped at the CPU count
        assert rt.backend.threads == min(4, os.cpu_count())
        y = rt.run(rt.preprocess(np.zeros((SIZE, SIZE), np.uint8)))
        assert y.dtype == np.float32 and y.shape == (1, SIZE, SIZE, 1)
