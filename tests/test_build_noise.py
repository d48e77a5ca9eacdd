"""`edgegan build` / `run` / `bench` for noise → image (SlimGAN) checkpoints: class-conditional (noise + label)
and unconditional generators, every width, parity, the multi-input manifest, the runtime and the refusals."""

import json
import os

import cv2
import numpy as np
import onnx
import pytest
import torch

from edgegan.cli import main
from edgegan.errors import BundleError, InputError, TargetError

NZ = 8
WIDTHS = ["w0.25", "w0.5", "w0.75", "w1"]


def _slimgan_checkpoint(path, n_classes):
    """A tiny SlimGAN checkpoint as `edgegan train slimgan` writes it (1 step, BN statistics recalibrated)."""
    from edgegan.checkpoint import save_checkpoint
    from edgegan.train.slimgan import SlimGANConfig, train_slimgan

    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 32, 32, generator=g) * 2 - 1
    config = SlimGANConfig(model="dcgan", nz=NZ, ngf=4, ndf=4, n_classes=n_classes, steps=1, batch_size=8,
                           recalibrate_bn=1, eval_images=0)
    ckpt = train_slimgan(config, images, torch.arange(8) % 10)
    return save_checkpoint(path, ckpt)


@pytest.fixture(scope="module")
def cond_ckpt(tmp_path_factory):
    return _slimgan_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "cond.pt"), 10)


@pytest.fixture(scope="module")
def uncond_ckpt(tmp_path_factory):
    return _slimgan_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "uncond.pt"), 0)


@pytest.fixture(scope="module")
def cond_bundle(cond_ckpt, tmp_path_factory):
    from edgegan.targets.build import build_bundle

    out, _ = build_bundle("cpu", cond_ckpt, str(tmp_path_factory.mktemp("bundles") / "cond-cpu"), progress=False)
    return out


def _feed(seed, label):
    z = np.random.RandomState(seed).standard_normal((1, NZ)).astype(np.float32)
    return z, np.array([label], dtype=np.int64)


# -- build ------------------------------------------------------------------------------------------

def test_conditional_cpu_bundle_every_width_matches_torch(cond_bundle, cond_ckpt):
    import onnxruntime as ort

    from edgegan.checkpoint import load_generator
    from edgegan.nn import at_width
    from edgegan.runtime import load_bundle
    from edgegan.targets.profiles import load_profile, parity_threshold

    manifest = load_bundle(cond_bundle).manifest
    assert [v["name"] for v in manifest["variants"]] == WIDTHS
    noise, label = manifest["inputs"]
    assert manifest["input"] == noise
    assert (noise["name"], noise["shape"], noise["dtype"], noise["layout"], noise["content"], noise["distribution"]) \
        == ("noise", [1, NZ], "float32", "NC", "noise", "standard_normal")
    assert (label["name"], label["shape"], label["dtype"], label["n_classes"], label["range"]) \
        == ("label", [1], "int64", 10, [0, 9])
    assert manifest["output"]["shape"] == [1, 1, 32, 32] and manifest["output"]["layout"] == "NCHW"
    threshold = parity_threshold(load_profile("cpu"), "fp32")
    macs = [v["macs"] for v in manifest["variants"]]
    assert macs == sorted(macs) and macs[0] < macs[-1]
    gen, _ = load_generator(cond_ckpt)
    z, y = _feed(5, 7)
    for v in manifest["variants"]:
        assert v["parity"]["psnr_db"] >= threshold
        assert v["parity"]["n_inputs"] == 10 and "labels 0..9" in v["parity"]["inputs"]  # every class
        session = ort.InferenceSession(os.path.join(cond_bundle, v["file"]), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["noise", "label"]
        out = session.run(None, {"noise": z, "label": y})[0]
        with at_width(gen, v["width"]), torch.no_grad():
            ref = gen(torch.from_numpy(z), torch.from_numpy(y)).numpy()
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
        other = session.run(None, {"noise": z, "label": np.array([2], np.int64)})[0]
        assert np.abs(other - out).max() > 1e-4  # the label changes the image


def test_unconditional_torch_bundle(uncond_ckpt, tmp_path):
    from edgegan.checkpoint import load_generator
    from edgegan.nn import at_width
    from edgegan.runtime import Runtime
    from edgegan.targets.build import build_bundle

    out, manifest = build_bundle("torch", uncond_ckpt, str(tmp_path / "u"), widths=[0.25, 1.0], progress=False)
    assert "inputs" not in manifest and manifest["input"]["name"] == "noise" and manifest["input"]["shape"] == [1, NZ]
    assert all(v["parity"]["psnr_db"] >= 40 for v in manifest["variants"])
    gen, _ = load_generator(uncond_ckpt)
    z, _ = _feed(3, 0)
    with Runtime(out) as rt:
        assert rt.takes_noise and rt.n_classes == 0 and rt.backend_name == "torch"
        for name, width in (("w0.25", 0.25), ("w1", 1.0)):
            rt.set_variant(name)
            with at_width(gen, width), torch.no_grad():
                ref = gen(torch.from_numpy(z)).numpy()
            np.testing.assert_allclose(rt(z), ref, atol=1e-5, rtol=0)
            np.testing.assert_array_equal(rt((z,)), rt(z))
        assert len(rt.generate(3)) == 3
        with pytest.raises(InputError, match="unconditional"):
            rt.generate(2, labels=1)


def test_torch_backend_takes_noise_and_label(cond_ckpt, tmp_path):
    from edgegan.runtime import Runtime
    from edgegan.targets.build import build_bundle

    out, manifest = build_bundle("torch", cond_ckpt, str(tmp_path / "t"), widths=[0.5], progress=False)
    assert manifest["variants"][0]["parity"]["psnr_db"] >= 40
    z, y = _feed(1, 4)
    with Runtime(out) as rt:
        assert rt.backend.describe_inputs() == "noise [1,%d] float32, label [1] int64" % NZ
        np.testing.assert_array_equal(rt((z, y)), rt({"label": y.astype(np.int32), "noise": z}))


def test_jetson_nano_bundle_of_a_static_two_input_graph_gives_trtexec_no_shapes(cond_ckpt, tmp_path):
    """trtexec refuses --shapes for a static model ("Static model does not take explicit shapes"), in
    every version; the graph's inputs are static, so the lines name none."""
    from edgegan.targets.build import build_bundle

    out, manifest = build_bundle("jetson-nano", cond_ckpt, str(tmp_path / "n"), widths=[0.5], progress=False)
    step, = manifest["device_steps"]["engines"]
    assert step["trtexec"].startswith("trtexec --onnx=w0.5.onnx --saveEngine=w0.5.fp16.engine --fp16 ")
    assert "Shapes" not in step["trtexec"] and "--shapes" not in step["trtexec"]
    with open(os.path.join(out, "build_engines.sh")) as f:
        script = f.read()
    assert step["trtexec"] in script and "hapes" not in script
    model = onnx.load(os.path.join(out, "w0.5.onnx"))
    assert [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input] == [[1, NZ], [1]]
    checks = manifest["variants"][0]["tensorrt"]["checks"]
    assert checks["index_inputs"] == {"label": "int64, imported as int32 by TensorRT 8.x"}
    assert "Gather" in checks["ops"]


def test_trt_checks_take_label_inputs_only_as_gather_indices():
    import onnx
    from onnx import TensorProto, helper

    from edgegan.targets.trt_checks import graph_issues

    def model(op):
        table = helper.make_tensor("table", TensorProto.FLOAT, [3, 2], [0.0] * 6)
        if op == "Gather":
            node = helper.make_node("Gather", ["table", "label"], ["output"])
        else:
            node = helper.make_node("Cast", ["label"], ["output"], to=TensorProto.FLOAT)
        shape = [1, 2] if op == "Gather" else [1]
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("label", TensorProto.INT64, [1])],
                                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)], [table])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    assert graph_issues(model("Gather"), "8.2", "fp16") == []
    issues = graph_issues(model("Cast"), "8.2", "fp16")
    assert [i["check"] for i in issues] == ["io-type"] and "only as Gather indices" in issues[0]["message"]
    assert onnx.checker.check_model(model("Gather")) is None


def test_int8_calibrates_on_noise_and_labels(cond_ckpt, tmp_path):
    from edgegan.targets.build import build_bundle

    _, manifest = build_bundle("cpu-int8", cond_ckpt, str(tmp_path / "q"), widths=[1.0], progress=False)
    v, = manifest["variants"]
    assert v["parity"]["measured_precision"] == "int8" and v["parity"]["psnr_db"] >= 30
    assert "N(0, 1) noise + uniform labels" in v["parity"]["inputs"]
    assert "N(0, 1) noise" in v["int8"]["calibration"]["source"]
    with pytest.raises(TargetError, match="its own input distribution"):
        build_bundle("cpu-int8", cond_ckpt, str(tmp_path / "q2"), widths=[1.0], progress=False,
                     calibration=str(tmp_path))


@pytest.mark.parametrize("target,compiler", [("android", "tflite"), ("ios", "coreml")])
def test_targets_without_noise_inputs_refuse(cond_ckpt, tmp_path, target, compiler):
    from edgegan.targets.build import build_bundle

    with pytest.raises(TargetError) as e:
        build_bundle(target, cond_ckpt, str(tmp_path / target), progress=False)
    message = str(e.value)
    assert "%s (compiler %s) cannot build a noise → image generator" % (target, compiler) in message
    assert ("cpu, cpu-int8, cpu-openvino, cpu-openvino-bf16, cpu-openvino-int8, jetson-agx-xavier, jetson-nano, "
            "jetson-orin-nano, jetson-xavier-nx, torch") in message
    assert not os.path.exists(str(tmp_path / target))


# -- runtime and CLI --------------------------------------------------------------------------------

def test_runtime_runs_every_variant_and_checks_inputs(cond_bundle):
    from edgegan.runtime import Runtime

    z, y = _feed(0, 3)
    with Runtime(cond_bundle) as rt:
        assert rt.takes_noise and rt.n_classes == 10 and rt.variants == WIDTHS
        outs = {}
        for name in rt.variants:
            rt.set_variant(name)
            outs[name] = rt((z, y))
            assert outs[name].shape == (1, 1, 32, 32)
            np.testing.assert_array_equal(rt({"noise": z, "label": y}), outs[name])
        assert not np.allclose(outs["w0.25"], outs["w1"])
        images = rt.generate(4, seed=0, labels=3)
        assert len(images) == 4 and images[0].shape == (32, 32) and images[0].dtype == np.uint8
        with pytest.raises(InputError, match="pass a tuple in that order or a dict"):
            rt(z)
        with pytest.raises(InputError, match="missing: label"):
            rt({"noise": z})
        with pytest.raises(InputError, match="takes integers"):
            rt((z, y.astype(np.float32)))
        with pytest.raises(InputError, match="outside"):
            rt.generate(1, labels=10)
        with pytest.raises(InputError, match="takes no input image"):
            rt.preprocess(np.zeros((32, 32), np.uint8))


def test_run_cli_writes_png_grids(cond_bundle, tmp_path, capsys):
    grid = str(tmp_path / "grid.png")
    assert main(["run", cond_bundle, "--label", "3", "--seed", "0", "--n", "16", "--out", grid]) == 0
    assert "16 images (class 3, seed 0) with w1" in capsys.readouterr().out
    image = cv2.imread(grid, cv2.IMREAD_UNCHANGED)
    assert image.shape == (4 * 32 + 3 * 2, 4 * 32 + 3 * 2) and image.dtype == np.uint8
    # the same noise and label give the same grid; another label another one
    again = str(tmp_path / "again.png")
    assert main(["run", cond_bundle, "--label", "3", "--seed", "0", "--n", "16", "--out", again]) == 0
    other = str(tmp_path / "other.png")
    assert main(["run", cond_bundle, "--label", "4", "--seed", "0", "--n", "16", "--out", other]) == 0
    np.testing.assert_array_equal(cv2.imread(again, cv2.IMREAD_UNCHANGED), image)
    assert not np.array_equal(cv2.imread(other, cv2.IMREAD_UNCHANGED), image)
    capsys.readouterr()
    # every variant, every class in a column
    assert main(["run", cond_bundle, "--variant", "all", "--n", "20", "--out", str(tmp_path / "all.png"),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [g["variant"] for g in summary["grids"]] == WIDTHS
    for name in WIDTHS:
        assert cv2.imread(str(tmp_path / ("all-%s.png" % name)), cv2.IMREAD_UNCHANGED).shape == \
            (2 * 32 + 2, 10 * 32 + 9 * 2)


def test_run_cli_user_errors(cond_bundle, tiny_bundle, tmp_path, capsys):
    grid = str(tmp_path / "g.png")
    for argv, message in [
            (["--label", "10", "--out", grid], "--label 10 is outside [0, 10)"),
            (["--label", "-1", "--out", grid], "--label -1 is outside [0, 10)"),
            (["--input", grid, "--out", grid], "it takes no --input"),
            (["--out", str(tmp_path / "g.mp4")], "the grid is an image file"),
            (["--n", "0", "--out", grid], "--n and --cols must be at least 1"),
            (["--variant", "w3", "--out", grid], "no variant 'w3'")]:
        assert main(["run", cond_bundle] + argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not os.path.exists(grid)
    assert main(["run", tiny_bundle, "--label", "3", "--out", grid]) == 2
    assert "--label applies to noise → image bundles" in capsys.readouterr().err
    assert main(["run", tiny_bundle, "--out", grid]) == 2
    assert "--input is required" in capsys.readouterr().err


def test_bench_times_noise_bundle(cond_bundle, capsys):
    assert main(["bench", cond_bundle, "--warmup", "1", "--warmup-s", "0", "--runs", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in result["results"]] == WIDTHS
    assert all(r["fps"] > 0 for r in result["results"]) and len(result["switch"]) == 2


# -- the manifest -----------------------------------------------------------------------------------

def test_manifest_validation_of_inputs(cond_bundle):
    from edgegan.runtime.bundle import validate_manifest

    with open(os.path.join(cond_bundle, "manifest.json")) as f:
        manifest = json.load(f)
    validate_manifest(manifest, "m")
    for change, message in [
            (lambda m: m["inputs"].reverse(), "input is not the first of inputs"),
            (lambda m: m["inputs"][1].pop("n_classes"), "needs n_classes"),
            (lambda m: m["inputs"][1].update(dtype="float32"), "needs layout N, a 1-d static shape"),
            (lambda m: m.update(inputs=m["inputs"][:1]), "two or more inputs"),
            (lambda m: m["inputs"][1].update(name="noise"), "distinct names")]:
        broken = json.loads(json.dumps(manifest))
        change(broken)
        with pytest.raises(BundleError, match=message):
            validate_manifest(broken, "m")


def test_backend_casts_labels_to_the_engine_dtype():
    """A TensorRT 8.x engine has an int32 label binding: int64 labels are cast; values that do not fit refused."""
    from edgegan.runtime.backends import Backend
    from edgegan.runtime.backends.tensorrt import io_specs

    inputs, output = io_specs([("noise", True, (1, NZ), np.float32), ("label", True, (1,), np.int32),
                               ("output", False, (1, 1, 32, 32), np.float32)])
    assert [i["name"] for i in inputs] == ["noise", "label"] and output["name"] == "output"

    class Fake(Backend):
        name = "fake"

        def __init__(self):
            self.inputs = inputs
            self.input_name, self.input_shape, self.input_dtype = "noise", (1, NZ), np.dtype(np.float32)

        def _run_inputs(self, arrays):
            return arrays

    z, y = _feed(0, 9)
    noise, label = Fake().run((z, y))
    assert label.dtype == np.int32 and label.tolist() == [9] and noise.dtype == np.float32
    with pytest.raises(InputError, match="outside the range of int32"):
        Fake().run((z, np.array([2 ** 40], np.int64)))


def test_openvino_builds_and_runs_a_class_conditional_generator(cond_ckpt, tmp_path):
    """noise + int64 label through OpenVINO: parity in bf16 and the runtime's outputs per class."""
    pytest.importorskip("openvino")
    from edgegan.runtime import Runtime
    from edgegan.targets.build import build_bundle

    out, manifest = build_bundle("cpu-openvino-bf16", cond_ckpt, str(tmp_path / "ov"), widths=[1.0], progress=False)
    v, = manifest["variants"]
    assert v["parity"]["backend"] == "openvino" and v["parity"]["psnr_db"] >= 35
    with Runtime(out) as rt, Runtime(out, backend="onnxruntime") as ort_rt:
        a, b = rt.generate(2, seed=0, labels=[3, 4]), ort_rt.generate(2, seed=0, labels=[3, 4])
        assert a[0].shape == b[0].shape
        assert all(np.abs(x.astype(int) - y.astype(int)).mean() < 3 for x, y in zip(a, b))

