"""The OpenVINO backend and the cpu-openvino targets: parity per precision, bf16 detection, bench --compare."""

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("openvino")

from edgegan.cli import main  # noqa: E402
from edgegan.runtime import Runtime  # noqa: E402
from edgegan.runtime.backends import get_backend  # noqa: E402
from edgegan.runtime.backends import openvino as ov_backend  # noqa: E402
from edgegan.targets.build import build_bundle  # noqa: E402
from edgegan.targets.profiles import load_profile, parity_threshold  # noqa: E402


@pytest.fixture(scope="module")
def ov_bundles(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint built for cpu-openvino (fp32) and cpu-openvino-bf16, widths 0.5 and 1."""
    root = tmp_path_factory.mktemp("ov")
    out = {}
    for target in ("cpu-openvino", "cpu-openvino-bf16"):
        out[target] = build_bundle(target, tiny_checkpoint, str(root / target), widths=[0.5, 1.0], progress=False,
                                   n_parity_inputs=4)
    return out


def test_fp32_bundle_runs_in_f32_and_matches_onnxruntime(ov_bundles):
    path, manifest = ov_bundles["cpu-openvino"]
    assert manifest["backend"] == "openvino" and manifest["openvino"]["device"] == "CPU"
    assert "FP32" in manifest["openvino"]["capabilities"]
    for v in manifest["variants"]:
        assert v["precision"] == "fp32" and v["format"] == "onnx"
        assert v["parity"]["backend"] == "openvino" and v["parity"]["measured_precision"] == "fp32"
        assert v["parity"]["psnr_db"] >= 40
    x = np.random.RandomState(0).uniform(-1, 1, (1, 1, 32, 32)).astype(np.float32)
    with Runtime(path) as ov_rt, Runtime(path, backend="onnxruntime") as ort_rt:
        # fp32 asked for explicitly: on an AMX CPU OpenVINO's own default would be bf16
        assert ov_rt.backend.inference_precision == "f32"
        for name in ov_rt.variants:
            ov_rt.set_variant(name)
            ort_rt.set_variant(name)
            assert np.abs(ov_rt(x) - ort_rt(x)).max() < 1e-4


def test_bf16_bundle_records_what_ran(ov_bundles):
    path, manifest = ov_bundles["cpu-openvino-bf16"]
    bf16 = ov_backend.has_bf16()
    assert manifest["openvino"]["bf16"] == bf16
    for v in manifest["variants"]:
        assert v["precision"] == "bf16"
        assert v["parity"]["measured_precision"] == ("bf16" if bf16 else "fp32")
        assert v["parity"]["psnr_db"] >= parity_threshold(load_profile("cpu-openvino-bf16"), "bf16")
    with Runtime(path) as rt:
        assert rt.backend.inference_precision == ("bf16" if bf16 else "f32")
        assert rt.backend.providers == ["OpenVINO CPU (%s)" % rt.backend.inference_precision]


def test_bf16_falls_back_to_f32_with_a_warning(ov_bundles, monkeypatch):
    path, manifest = ov_bundles["cpu-openvino-bf16"]
    monkeypatch.setattr(ov_backend, "capabilities", lambda device="CPU": ["FP32", "INT8"])
    with pytest.warns(UserWarning, match="no bf16 unit"):
        rt = Runtime(path)
    with rt:
        assert rt.backend.inference_precision == "f32"


def test_compile_config():
    assert ov_backend.compile_config("fp32", 2) == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                                    "INFERENCE_NUM_THREADS": 2}
    assert ov_backend.compile_config("int8")["INFERENCE_PRECISION_HINT"] == "f32"
    with pytest.raises(Exception, match="fp32, bf16 and int8"):
        ov_backend.compile_config("fp16")


def test_model_cache_is_used(ov_bundles, tmp_path, monkeypatch):
    """A second process-level Core reuses the compiled blob from CACHE_DIR."""
    monkeypatch.setenv("EDGEGAN_OPENVINO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ov_backend, "_CORE", None)
    path, manifest = ov_bundles["cpu-openvino"]
    with Runtime(path):
        pass
    assert any(p.suffix == ".blob" for p in (tmp_path / "cache").iterdir())
    monkeypatch.setattr(ov_backend, "_CORE", None)


def test_int8_qdq_through_openvino(tiny_checkpoint, tmp_path):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):  # sparse dark lines on white, like edge maps
        cv2.imwrite(str(images / ("%02d.png" % i)), np.where(rng.random((32, 32)) < 0.15, 0, 255).astype(np.uint8))
    _, manifest = build_bundle("cpu-openvino-int8", tiny_checkpoint, str(tmp_path / "q"), widths=[1.0],
                               progress=False, calibration=str(images))
    v, = manifest["variants"]
    assert v["precision"] == "int8" and v["parity"]["backend"] == "openvino"
    assert v["parity"]["measured_precision"] == "int8" and v["parity"]["psnr_db"] >= 30
    assert "kept_float" in v["int8"]


def test_bench_compare_next_to_onnxruntime(ov_bundles, tiny_bundle, capsys):
    assert main(["bench", tiny_bundle, "--compare", ov_bundles["cpu-openvino-bf16"][0], "--runs", "3",
                 "--warmup", "1", "--warmup-s", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["note"] for r in result["results"]] == ["onnxruntime", "openvino"]
    assert all(r["median_ms"] > 0 for r in result["results"])
    assert result["environment"]["cpu_flags"] == ov_backend.cpu_isa_flags()
    assert len(result["environment"]["load_average"]) == 3


def test_backend_is_registered_and_checks_inputs(ov_bundles):
    cls = get_backend("openvino")
    path, manifest = ov_bundles["cpu-openvino"]
    with Runtime(path) as rt:
        with pytest.raises(Exception, match="expected input of shape"):
            rt(np.zeros((1, 1, 16, 16), np.float32))
    assert cls.engine_info()["device"] == "CPU"


def test_cpu_flags_parse(tmp_path):
    from edgegan.runtime.fps import cpu_isa_flags, cpu_model

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512f amx_bf16 avx512_vnni\n")
    assert cpu_isa_flags(str(info)) == ["amx_bf16", "avx512_vnni", "avx512f", "avx2"]
    assert cpu_model(str(info)) == "Test CPU"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cpu_isa_flags(str(tmp_path / "missing")) == []
