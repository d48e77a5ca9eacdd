"""Profiles, graph rewrites, the ONNX compiler and `edgegan build` on a tiny checkpoint."""

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgegan.cli import main
from edgegan.errors import TargetError
from edgegan.nn import set_width
from edgegan.subnet import extract
from edgegan.targets import onnx as onnx_compiler
from edgegan.targets.build import build_bundle
from edgegan.targets.profiles import load_profile, shipped_profiles
from edgegan.targets.rewrites import decompose_reflection_padding

SIZE = 32


def test_shipped_profiles_load():
    assert {"cpu", "jetson-nano"} <= set(shipped_profiles())
    nano = load_profile("jetson-nano")
    assert nano["export"]["opset"] == 13 and nano["build"]["precision"] == "fp16"
    assert nano["export"]["padding"] == "decompose"


@pytest.mark.parametrize("text,message", [
    ('name = "b"\ncompiler = "onnx"\n[export]\nopset = 9\n', "opset must be an integer 11..20"),
    ('name = "b"\ncompiler = "caffe"\n[export]\nopset = 13\n', "unknown compiler 'caffe'"),
    ('name = "b"\ncompiler = "onnx"\n[export]\nopset = 13\npadding = "mirror"\n', "padding must be one of"),
    ('name = "b"\ncompiler = "onnx"\n[export]\nopset = 13\n[build]\nprecisions = ["fp32"]\nprecision = "int8"\n',
     "is not among precisions"),
    ('name = "b"\ncompiler = "tensorrt"\n[export]\nopset = 13\n', "needs a `version`"),
    ('name = "b"\ncompiler = "onnx"\n[export]\nopset = 13\n[policy.modes]\n0 = 2.0\n', "width must be in (0, 1]"),
    ('name = [broken', "is not valid TOML"),
])
def test_profile_validation_errors(tmp_path, text, message):
    path = tmp_path / "board.toml"
    path.write_text(text)
    with pytest.raises(TargetError) as e:
        load_profile(str(path))
    assert message in str(e.value) and str(path) in str(e.value)


def test_unknown_target_lists_known_ones():
    with pytest.raises(TargetError, match="unknown target 'jetson-nanoo'.*jetson-nano"):
        load_profile("jetson-nanoo")


def test_reflection_decomposition_is_exact_and_removes_reflect_pad(tiny_checkpoint):
    from edgegan.checkpoint import load_generator

    g, _ = load_generator(tiny_checkpoint)
    sub = extract(g, 0.5, input_shape=(1, 1, SIZE, SIZE))
    x = torch.randn(2, 1, SIZE, SIZE)
    ref = sub(x)
    assert decompose_reflection_padding(sub) == 4  # stem, 2 block convs, head
    assert torch.equal(sub(x), ref)
    model = onnx_compiler.simplify(onnx_compiler.export(sub, (1, 1, SIZE, SIZE), 13))
    assert "Pad:reflect" not in onnx_compiler.op_names(model)


def test_reflect_pad_refused_when_profile_forbids_it(tiny_checkpoint, tmp_path):
    from edgegan.checkpoint import load_generator

    g, _ = load_generator(tiny_checkpoint)
    sub = extract(g, 1.0, input_shape=(1, 1, SIZE, SIZE))
    with pytest.raises(TargetError, match="Pad:reflect"):
        onnx_compiler.compile_onnx(sub, (1, 1, SIZE, SIZE), str(tmp_path / "m.onnx"), 13, ["Pad:reflect"])


def test_parity_detects_a_changed_function(tiny_checkpoint, tmp_path):
    from edgegan.checkpoint import load_generator

    g, _ = load_generator(tiny_checkpoint)
    sub = extract(g, 1.0, input_shape=(1, 1, SIZE, SIZE))
    path = str(tmp_path / "m.onnx")
    onnx_compiler.compile_onnx(sub, (1, 1, SIZE, SIZE), path, 17)
    inputs = onnx_compiler.parity_inputs((1, 1, SIZE, SIZE), (-1.0, 1.0), n=4)
    good = onnx_compiler.measure_parity(path, sub, inputs, 2.0)
    assert good["psnr_db"] >= 40 and good["max_abs"] < 1e-4
    with torch.no_grad():
        sub.head[1].bias += 0.05
    bad = onnx_compiler.measure_parity(path, sub, inputs, 2.0)
    assert bad["psnr_db"] < 40


def test_build_jetson_nano_bundle(tiny_checkpoint, tmp_path):
    out = str(tmp_path / "nano")
    out_dir, manifest = build_bundle("jetson-nano", checkpoint=tiny_checkpoint, out=out, progress=False)
    assert manifest["format"] == "edgegan-bundle/1" and manifest["target"] == "jetson-nano"
    assert [v["width"] for v in manifest["variants"]] == [0.25, 0.5, 0.75, 1.0]
    for v in manifest["variants"]:
        model = onnx.load(os.path.join(out, v["file"]))
        onnx.checker.check_model(model, full_check=True)
        assert onnx_compiler.opset_of(model) <= 13
        assert "Pad:reflect" not in onnx_compiler.op_names(model)
        assert v["parity"]["psnr_db"] >= 40 and v["precision"] == "fp16"
        assert v["parity_fp16_emulated"]["psnr_db"] > 30
        assert v["macs"] > 0 and v["params"] > 0
    macs = [v["macs"] for v in manifest["variants"]]
    assert macs == sorted(macs)
    quality = manifest["variants"][1]["quality"]  # its data set is not here: the checkpoint's, and said so
    assert quality["psnr"] == 12.5 and "not this artifact" in quality["measured_on"]
    steps = manifest["device_steps"]["engines"]
    assert steps[0]["trtexec"] == ("trtexec --onnx=w0.25.onnx --saveEngine=w0.25.fp16.engine --fp16 --workspace=1024 "
                                   "--timingCacheFile=tensorrt.timing.cache --buildOnly")
    script = open(os.path.join(out, "build_engines.sh")).read()
    assert all(s["trtexec"] in script for s in steps)
    assert manifest["policy"] == {"default": "w1", "modes": {"0": "w1", "1": "w0.5"}}
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f)["variants"][0]["sha256"]


def test_build_cpu_bundle_runs_under_onnxruntime(tiny_checkpoint, tmp_path):
    from edgegan.checkpoint import load_generator

    out = str(tmp_path / "cpu")
    _, manifest = build_bundle("cpu", checkpoint=tiny_checkpoint, out=out, widths=[0.25, 1.0], progress=False)
    assert [v["name"] for v in manifest["variants"]] == ["w0.25", "w1"]
    g, _ = load_generator(tiny_checkpoint)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 1, SIZE, SIZE)).astype(np.float32)
    for v in manifest["variants"]:
        session = ort.InferenceSession(os.path.join(out, v["file"]), providers=["CPUExecutionProvider"])
        set_width(g, v["width"])
        with torch.no_grad():
            ref = g(torch.from_numpy(x)).numpy()
        assert np.abs(session.run(None, {"input": x})[0] - ref).max() < 1e-4
    # the policy maps modes to built variants only
    assert manifest["policy"]["default"] == "w1"


def test_build_refuses_untrained_width_and_unsupported_precision(tiny_checkpoint, tmp_path):
    with pytest.raises(TargetError, match="were not trained"):
        build_bundle("cpu", checkpoint=tiny_checkpoint, out=str(tmp_path / "a"), widths=[0.3], progress=False)
    with pytest.raises(TargetError, match="jetson-nano does not support int8"):
        build_bundle("jetson-nano", checkpoint=tiny_checkpoint, out=str(tmp_path / "b"), precision="int8",
                     progress=False)
    assert not os.path.exists(str(tmp_path / "a")) and not os.path.exists(str(tmp_path / "b"))


def test_cli_build_refuses_overwrite_without_force(tiny_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "b")
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--out", out, "--widths", "1.0"]) == 0
    assert "parity dB" in capsys.readouterr().out
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--out", out]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--out", out, "--force",
                 "--widths", "0.5", "--json"]) == 0
    assert [v["name"] for v in json.loads(capsys.readouterr().out)["manifest"]["variants"]] == ["w0.5"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgegan"] + list(args), capture_output=True, text=True)


@pytest.mark.parametrize("args,message", [
    (["--target", "jetson-nanoo"], "unknown target 'jetson-nanoo'"),
    (["--target", "cpu", "--checkpoint", "/nonexistent/model.pt"], "no checkpoint at /nonexistent/model.pt"),
])
def test_cli_bad_inputs_give_clear_errors_without_traceback(tmp_path, args, message):
    r = _cli("build", "--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    r = _cli("build", "--target", "cpu", "--checkpoint", str(bad), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "not a complete torch archive" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(str(tmp_path / "x"))


def test_cli_targets_lists_profiles(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "jetson-nano" in out and "cpu" in out
    assert main(["targets", "--json"]) == 0
    assert {p["name"] for p in json.loads(capsys.readouterr().out)} >= {"cpu", "jetson-nano"}


def test_cpu_int8_bundle_passes_the_gate_and_compares_with_fp32(tiny_checkpoint, tmp_path, capsys):
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(photos / ("%02d.png" % i)), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    fp32, int8 = str(tmp_path / "fp32"), str(tmp_path / "int8")
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--out", fp32, "--widths", "1.0"]) == 0
    assert main(["build", "--target", "cpu-int8", "--checkpoint", tiny_checkpoint, "--out", int8, "--widths", "1.0",
                 "--calibration", str(photos), "--json"]) == 0
    capsys.readouterr()
    manifest = json.load(open(os.path.join(int8, "manifest.json")))
    (v,) = manifest["variants"]
    assert v["precision"] == "int8" and v["int8"]["psnr_db"] >= 30.0 and v["parity"]["psnr_db"] >= 30.0
    assert v["int8"]["calibration"]["source"].startswith("folder")
    ops = {n.op_type for n in onnx.load(os.path.join(int8, v["file"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert main(["bench", fp32, "--compare", int8, "--warmup", "1", "--warmup-s", "0", "--runs", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["target"], r["precision"]) for r in rows] == [("cpu", "fp32"), ("cpu-int8", "int8")]
    assert all(r["fps"] > 0 and r["size_mb"] > 0 for r in rows)
