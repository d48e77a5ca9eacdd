"""Core ML target: `edgegan build --target ios` writes mlprogram packages whose saved spec has the asked-for
inputs, outputs, ops, precision and deployment target; prediction runs only on macOS."""

import json
import os
import platform

import numpy as np
import pytest

from edgegan.checkpoint import load_generator
from edgegan.errors import EdgeganError, TargetError
from edgegan.subnet import extract
from edgegan.targets.coreml import package_dir, validate_section
from edgegan.targets.profiles import load_profile

SIZE = 32
SHAPE = (1, 1, SIZE, SIZE)
ON_MAC = platform.system() == "Darwin"


@pytest.fixture(scope="module")
def ios_bundle(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("coremltools")
    from edgegan.targets.build import build_bundle

    out = str(tmp_path_factory.mktemp("ios") / "bundle")
    build_bundle("ios", checkpoint=tiny_checkpoint, out=out, widths=[0.5, 1.0], progress=False)
    return out


def test_ios_profile_and_coreml_section_validation(tmp_path):
    p = load_profile("ios")
    assert p["compiler"] == "coreml" and p["build"]["precision"] == "fp16" and p["runtime"]["backend"] == "coreml"
    assert p["coreml"] == {"minimum_deployment_target": "iOS16", "input": "image", "output": "image",
                           "compute_units": "ALL"}
    assert validate_section({"minimum_deployment_target": "iOS14", "output": "tensor"}) == [
        "mlprogram needs iOS15 or later, got iOS14"]
    assert "needs iOS16 or later" in validate_section({"minimum_deployment_target": "iOS15"})[0]
    assert validate_section({"minimum_deployment_target": "iOS15", "output": "tensor"}) == []
    assert "must be like" in validate_section({"minimum_deployment_target": "android"})[0]
    assert "input must be one of" in validate_section({"input": "video"})[0]
    board = tmp_path / "phone.toml"
    board.write_text('name = "p"\ncompiler = "coreml"\n[export]\nopset = 17\n[build]\nprecisions = ["fp16"]\n'
                     '[coreml]\ncompute_units = "NPU"\n')
    with pytest.raises(TargetError, match=r"phone.toml: \[coreml\] compute_units must be one of"):
        load_profile(str(board))


def test_ios_bundle_spec(ios_bundle):
    from edgegan.runtime import load_bundle
    from edgegan.targets.coreml import inspect_package

    bundle = load_bundle(ios_bundle)  # sha256 of every file, inside the packages too
    m = bundle.manifest
    assert m["backend"] == "coreml" and m["input"]["layout"] == "NCHW"
    assert [v["file"] for v in m["variants"]] == ["w0.5.mlpackage/Manifest.json", "w1.mlpackage/Manifest.json"]
    assert any(f.startswith("w1.mlpackage/Data/com.apple.CoreML/") for f in m["files"])
    for v in m["variants"]:
        spec = inspect_package(bundle.artifact_path(v))
        assert spec == v["coreml"]["spec"]
        assert spec["model_type"] == "mlProgram" and spec["deployment_target"] == "iOS16"
        assert spec["specification_version"] == 7
        (inp,), (out,) = spec["inputs"], spec["outputs"]
        assert inp == {"name": "input", "type": "imageType", "width": SIZE, "height": SIZE, "color_space": "GRAYSCALE"}
        assert out == {"name": "output", "type": "imageType", "width": SIZE, "height": SIZE, "color_space": "GRAYSCALE"}
        assert spec["precision"] == "fp16" and spec["compute_dtypes"] == ["FLOAT16"]
        assert {"conv", "conv_transpose", "pad", "relu", "tanh", "cast"} <= set(spec["ops"])
        assert spec["ops"]["conv_transpose"] == 2
        meta = spec["metadata"]
        assert meta["edgegan.input_range"] == "-1.0,1.0" and meta["edgegan.output_kind"] == "image"
        assert v["size_bytes"] > 1000 and v["precision"] == "fp16"
        assert "parity_fp16_emulated" in v and v["parity_fp16_emulated"]["psnr_db"] >= 35.0
        if ON_MAC:
            assert v["parity"]["predicted"] and v["parity"]["psnr_db"] >= 35.0
        else:
            assert v["parity"]["predicted"] is False and v["parity"]["psnr_db"] is None
            assert "only on macOS" in v["parity"]["why"]
    assert m["coreml"]["predicted"] is ON_MAC


def test_tensor_io_fp32_package(tiny_checkpoint, tmp_path):
    pytest.importorskip("coremltools")
    from edgegan.targets.coreml import convert

    g, _ = load_generator(tiny_checkpoint)
    sub = extract(g, 0.5, input_shape=SHAPE)
    spec = convert(sub, SHAPE, str(tmp_path / "t.mlpackage"), "fp32",
                   {"minimum_deployment_target": "iOS15", "input": "tensor", "output": "tensor"})
    (inp,), (out,) = spec["inputs"], spec["outputs"]
    assert inp == {"name": "input", "type": "multiArrayType", "shape": list(SHAPE), "dtype": "FLOAT32"}
    assert out["name"] == "output" and out["type"] == "multiArrayType" and out["dtype"] == "FLOAT32"
    assert spec["precision"] == "fp32" and spec["deployment_target"] == "iOS15"
    assert "mul" not in spec["ops"]  # no image normalisation with tensor input


def test_check_spec_refuses_a_mismatch(ios_bundle):
    from edgegan.runtime import load_bundle
    from edgegan.targets.coreml import check_spec

    v = load_bundle(ios_bundle).variant("w1")
    spec = v["coreml"]["spec"]
    section = {"minimum_deployment_target": "iOS16", "input": "image", "output": "image"}
    check_spec(spec, SHAPE, section, "fp16")
    with pytest.raises(TargetError, match="compute ops are fp16.*expected fp32"):
        check_spec(spec, SHAPE, section, "fp32")
    with pytest.raises(TargetError, match="expected one multiArrayType called 'input'"):
        check_spec(spec, SHAPE, dict(section, input="tensor"), "fp16")
    with pytest.raises(TargetError, match="older than iOS17"):
        check_spec(spec, SHAPE, dict(section, minimum_deployment_target="iOS17"), "fp16")


def test_package_dir():
    assert package_dir("/b/w1.mlpackage/Manifest.json") == os.path.abspath("/b/w1.mlpackage")
    assert package_dir("/b/w1.mlpackage") == os.path.abspath("/b/w1.mlpackage")
    from edgegan.runtime.backends.coreml import package_dir as runtime_package_dir

    assert runtime_package_dir("/b/w1.mlpackage/Data/com.apple.CoreML/model.mlmodel") == os.path.abspath("/b/w1.mlpackage")


@pytest.mark.skipif(ON_MAC, reason="on macOS the coreml backend predicts")
def test_runtime_refuses_coreml_off_macos(ios_bundle):
    from edgegan.runtime import Runtime

    with pytest.raises(EdgeganError, match="predict only on macOS"):
        Runtime(ios_bundle)


@pytest.mark.skipif(not ON_MAC, reason="Core ML predicts only on macOS")
def test_runtime_runs_coreml_on_macos(ios_bundle):
    from edgegan.runtime import Runtime

    with Runtime(ios_bundle) as rt:
        y = rt.run(rt.preprocess(np.zeros((SIZE, SIZE), np.uint8)))
        assert y.shape == SHAPE and y.dtype == np.float32


def test_build_ios_cli(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("coremltools")
    from edgegan.cli import main

    out = str(tmp_path / "ios")
    assert main(["build", "--target", "ios", "--checkpoint", tiny_checkpoint, "--out", out, "--widths", "1.0",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["manifest"]["target"] == "ios" and os.path.isdir(os.path.join(out, "w1.mlpackage"))
    assert main(["build", "--target", "ios", "--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "x"),
                 "--precision", "int8"]) != 0
    assert "ios does not support int8" in capsys.readouterr().err
