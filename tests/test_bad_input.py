"""Bad input, second round, and the first ten minutes: unwritable outputs, failed swaps, the profile schema,
artifact-measured quality, warnings a user needs (weak calibration, missing power file, oversubscribed
thread budgets, a photo given as an edge map), checkpoint errors, symbolic links, quiet builds, tables that
say what was measured, progress, the bench thread choice and stability flag, install hints."""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from edgegan.cli import main
from edgegan.cli._common import format_table
from edgegan.errors import BundleError, CheckpointError, EdgeganError, EdgeganWarning, TargetError, install_hint
from edgegan.runtime import bundle as bundle_module
from edgegan.runtime import load_bundle
from edgegan.targets.profiles import load_profile

FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
needs_fmnist = pytest.mark.skipif(not os.path.isfile(FMNIST), reason="needs the Fashion-MNIST idx files")
FAST_BENCH = ["--warmup", "1", "--warmup-s", "0", "--runs", "5"]


def _siblings(path):
    """Names next to ``path`` (hidden staging or aside folders included)."""
    return sorted(os.listdir(os.path.dirname(os.path.abspath(path))))


def _chattr(flag, path):
    return shutil.which("chattr") and subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture
def immutable_dir(tmp_path):
    """A folder nobody may write into, root included (``chattr +i``); skipped where the attribute is not
    available (no CAP_LINUX_IMMUTABLE, a file system without it)."""
    path = tmp_path / "locked"
    path.mkdir()
    if not _chattr("+i", path):
        pytest.skip("chattr +i is not available here")
    try:
        (path / "probe").write_text("x")
    except OSError:
        pass
    else:
        _chattr("-i", path)
        pytest.skip("the immutable attribute does not stop writes here")
    yield path
    _chattr("-i", path)


def _one_error_line(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err


# -- unwritable outputs: refused before the work, one line, exit 2, nothing left --------------------------------

def test_build_out_under_a_file_fails_before_loading_anything(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from edgegan.targets import build as build_module

    monkeypatch.setattr(build_module, "load_generator", lambda *a: pytest.fail("the checkpoint was loaded"))
    assert main(["build", "--target", "cpu", "--out", str(blocker / "bundle")]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "cannot write bundle" in err and "is a file, not a folder" in err
    assert _siblings(blocker) == ["file"]


def test_unwritable_outputs_with_the_immutable_attribute(tiny_checkpoint, tiny_bundle, immutable_dir, tmp_path,
                                                         capsys):
    edge = tmp_path / "edge.png"
    import cv2

    cv2.imwrite(str(edge), np.full((32, 32), 255, np.uint8))
    cases = [["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--widths", "0.25",
              "--out", str(immutable_dir / "b")],
             ["run", tiny_bundle, "--input", str(edge), "--output", str(immutable_dir / "out.png")],
             ["profile", tiny_bundle, "--out", str(immutable_dir / "p"), "--runs", "1", "--quiet"]]
    for args in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert _one_error_line(err) and "not writable" in err, (args, err)
    assert os.listdir(str(immutable_dir)) == []


def test_failed_force_swap_leaves_the_old_bundle_and_nothing_aside(tiny_bundle, tmp_path, monkeypatch):
    out = str(shutil.copytree(tiny_bundle, str(tmp_path / "b")))
    real_rename = os.rename

    def rename(src, dst):
        if os.path.abspath(src) == os.path.abspath(out):  # moving the old bundle aside fails
            raise PermissionError(1, "Operation not permitted", src)
        real_rename(src, dst)

    monkeypatch.setattr(bundle_module.os, "rename", rename)
    staged = str(tmp_path / "new")
    os.mkdir(staged)
    with pytest.raises(EdgeganError, match="cannot be moved aside.*unchanged"):
        bundle_module.move_into_place(staged, out, force=True)
    assert sorted(os.listdir(str(tmp_path))) == ["b", "new"]
    load_bundle(out)


def test_failed_force_swap_of_an_immutable_bundle(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--widths", "0.25", "--out", str(out),
                 "--quality-images", "0", "--json"]) == 0
    capsys.readouterr()
    if not _chattr("+i", out):
        pytest.skip("chattr +i is not available here")
    try:
        code = main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--widths", "0.25",
                     "--out", str(out), "--force", "--quality-images", "0"])
        err = capsys.readouterr().err
    finally:
        _chattr("-i", out)
    assert code == 2 and _one_error_line(err) and "cannot be moved aside" in err
    assert sorted(os.listdir(str(tmp_path))) == ["b"]  # no .b.old-*, no .b.tmp-*


# -- the profile schema -----------------------------------------------------------------------------------------

BASE = 'name = "b"\ncompiler = "onnx"\n[export]\nopset = 17\n'


@pytest.mark.parametrize("extra,message", [
    ("[parity]\nmin_psnr = 200\n", "[parity] unknown key 'min_psnr' (did you mean 'min_psnr_db'?)"),
    ("[parity]\nmin_psnr_db = -5\n", "[parity] min_psnr_db must be a number in 10..200, got -5"),
    ("[calibrate]\nmin_psnr_db = 0.5\n", "[calibrate] min_psnr_db must be a number in 10..200"),
    ("[runtime]\nthreads = -3\n", "[runtime] threads must be an integer in 0..1024, got -3"),
    ("[runtime]\nthreads = \"four\"\n", "[runtime] threads must be an integer, got 'four'"),
    ("[runtime]\nthreads = true\n", "[runtime] threads must be an integer, got True"),
    ("[runtime]\nbackend = \"nosuchbackend\"\n", "[runtime] backend must be one of the runtime backends"),
    ("[build]\nprecisions = \"fp32\"\n", "[build] precisions must be a non-empty list"),
    ("[build]\nprecisions = [\"fp32\", \"fp8\"]\n", "unknown precision 'fp8'"),
    ("[calibrate]\nsampels = 8\n", "did you mean 'samples'?"),
    ("[calibrate]\nsamples = 0\n", "[calibrate] samples must be an integer in 1..100000"),
    ("[runtme]\nthreads = 1\n", "unknown key 'runtme' (did you mean '[runtime]'?)"),
    ("[tensorrt]\nversion = \"8.5\"\n", "[tensorrt] is read only when compiler = \"tensorrt\""),
    ("[policy]\non_battery = 2\n", "[policy] on_battery width must be in (0, 1]"),
    ("[power.modes]\n0 = { name = \"MAXN\", wats = 10 }\n", "did you mean 'watts'?"),
    ("[export.more]\nx = 1\n", "[export] unknown key 'more'"),
])
def test_profile_schema(tmp_path, extra, message):
    path = tmp_path / "board.toml"
    path.write_text(BASE + extra)
    with pytest.raises(TargetError) as e:
        load_profile(str(path))
    assert message in str(e.value) and str(path) in str(e.value)


def test_profile_schema_defaults_the_backend_to_the_compilers(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text('name = "b"\ncompiler = "torchscript"\n[export]\nopset = 17\n')
    assert load_profile(str(path))["runtime"] == {"backend": "torch", "threads": 0}


def test_profile_schema_error_reaches_the_cli_as_one_line(tmp_path, capsys):
    path = tmp_path / "board.toml"
    path.write_text(BASE + "[parity]\nmin_psnr = 200\n")
    assert main(["build", "--target", str(path), "--out", str(tmp_path / "b")]) == 2
    assert _one_error_line(capsys.readouterr().err)


# -- quality measured through each artifact; weak calibration said -------------------------------------------------

@pytest.fixture(scope="module")
def fmnist_checkpoint(tmp_path_factory):
    """The tiny checkpoint, said to be trained on fmnist-shoes, with a checkpoint metric no artifact reaches."""
    import torch

    from conftest import write_tiny_checkpoint
    from edgegan.checkpoint import save_checkpoint

    path = str(tmp_path_factory.mktemp("fm") / "tiny-fmnist.pt")
    write_tiny_checkpoint(path, {"w1": {"psnr": 99.0, "ssim": 1.0, "l1": 0.0}})
    ckpt = torch.load(path, weights_only=True)
    ckpt["data"]["name"] = "fmnist-shoes"
    ckpt["train"] = {"data": "fmnist-shoes"}
    save_checkpoint(path, ckpt)
    return path


@needs_fmnist
def test_int8_quality_is_measured_through_the_int8_artifact(fmnist_checkpoint, tmp_path, capsys):
    import onnxruntime as ort

    from edgegan.data import FashionMnistShoes
    from edgegan.data.metrics import psnr_per_image

    photos = tmp_path / "photos"
    photos.mkdir()
    import cv2

    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(photos / ("%d.png" % i)), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    out = str(tmp_path / "int8")
    assert main(["build", "--target", "cpu-int8", "--checkpoint", fmnist_checkpoint, "--widths", "1.0", "--out", out,
                 "--calibration", str(photos), "--quality-images", "24"]) == 0
    captured = capsys.readouterr()
    assert "warning: INT8 calibrates on 3 inputs and gates quality on 1 held-out input" in captured.err
    assert "the profile asks for 64 and 16" in captured.err
    assert "int8, onnxruntime" in captured.out  # the table says what the held-out PSNR was measured on
    (v,) = json.load(open(os.path.join(out, "manifest.json")))["variants"]
    quality = v["quality"]
    assert quality["measured_precision"] == "int8" and quality["n_images"] == 24
    assert quality["measured_on"].startswith("this artifact (onnxruntime, int8) on 24 held-out pairs of fmnist-shoes")
    test = FashionMnistShoes("test", size=32, limit=24)
    session = ort.InferenceSession(os.path.join(out, v["file"]), providers=["CPUExecutionProvider"])
    outs = np.concatenate([session.run(None, {"input": test[i][0].numpy()[None]})[0] for i in range(24)])
    targets = np.stack([test[i][1].numpy() for i in range(24)])
    expected = float(psnr_per_image(np.clip(outs, -1, 1), targets, 2.0).mean())
    assert quality["psnr"] == pytest.approx(expected, abs=1e-6) and quality["psnr"] != 99.0


def test_calibration_on_an_fp32_target_is_said(tiny_checkpoint, tmp_path, capsys):
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--widths", "0.25",
                 "--out", str(tmp_path / "b"), "--calibration", str(tmp_path), "--quality-images", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: --calibration is read only by int8 builds; this fp32 build ignores it" in err
    assert "cpu-int8" in err


# -- warnings at run time ---------------------------------------------------------------------------------------

def test_missing_power_file_is_said_once(tiny_bundle, tmp_path, capsys):
    missing = str(tmp_path / "mode")
    assert main(["bench", tiny_bundle, "--policy", "--power-source", "file:" + missing, "--duration", "0.3",
                 "--interval", "0.05", "--warmup", "1", "--warmup-s", "0", "--json"]) == 0
    err = capsys.readouterr().err
    assert err.count("power file %s does not exist" % missing) == 1


def test_emulated_thread_budget_above_the_cpus_warns(tiny_bundle, tmp_path, capsys):
    from edgegan.profile.sweep import _usable_cpus

    too_many = len(_usable_cpus()) + 1
    assert main(["profile", tiny_bundle, "--variant", "w0.25", "--emulate-threads", str(too_many), "--runs", "1",
                 "--warmup", "0", "--warmup-s", "0", "--idle-s", "0", "--power-source", "none", "--no-plots",
                 "--quiet", "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "warning: --emulate-threads %d: this machine lets the process use" % too_many in err
    assert "oversubscribes" in err


def test_a_photo_without_edges_warns_and_an_edge_map_does_not(tiny_bundle, tmp_path, capsys):
    import cv2

    y, x = np.mgrid[0:48, 0:48]
    photo = (np.sin(x / 5.0) * 60 + np.cos(y / 7.0) * 50 + 128).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.merge([photo, photo // 2, 255 - photo]))
    edges = np.full((48, 48), 255, np.uint8)
    cv2.circle(edges, (24, 24), 15, 0, 1)
    cv2.imwrite(str(tmp_path / "edges.jpg"), edges)
    assert main(["run", tiny_bundle, "--input", str(tmp_path / "photo.png"), "--output", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err
    assert "photo.png does not look like an edge map" in err and "add --edges" in err
    assert main(["run", tiny_bundle, "--input", str(tmp_path / "edges.jpg"), "--output", str(tmp_path / "b.png")]) == 0
    assert "edge map" not in capsys.readouterr().err
    assert main(["run", tiny_bundle, "--input", str(tmp_path / "photo.png"), "--output", str(tmp_path / "c.png"),
                 "--edges"]) == 0
    assert "edge map" not in capsys.readouterr().err


def test_a_dark_background_photo_is_not_an_edge_map():
    from edgegan.runtime.edges import binary_fraction, looks_like_edge_map

    shoe = np.zeros((32, 32), np.uint8)
    shoe[14:18, 4:28] = np.linspace(60, 200, 24, dtype=np.uint8)  # a grey shoe on black (Fashion-MNIST style)
    assert binary_fraction(shoe) > 0.85  # mostly black: black and white alone does not tell it from edges
    assert not looks_like_edge_map(shoe)
    assert looks_like_edge_map(255 - (shoe > 0).astype(np.uint8) * 255)


# -- checkpoints and bundles that are not what they claim ----------------------------------------------------------

class NotAWeight(object):
    pass


def test_checkpoint_holding_objects_is_refused_without_torch_advice(tmp_path):
    import torch

    from edgegan.checkpoint import load_checkpoint

    path = str(tmp_path / "evil.pt")
    torch.save({"format": "edgegan-checkpoint/1", "x": NotAWeight()}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    text = str(e.value)
    assert "NotAWeight" in text and "edgegan train" in text and "edgegan import" in text
    assert "weights_only" not in text and "Re-running" not in text and "\n" not in text


@pytest.mark.parametrize("content", [b"hello world" * 10, b"", b"PK\x03\x04 truncated"])
def test_corrupt_checkpoint_files_are_checkpoint_errors(tmp_path, content):
    from edgegan.checkpoint import load_checkpoint

    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="edgegan train"):
        load_checkpoint(str(path))


def test_artifact_linked_outside_the_bundle_is_refused(tiny_bundle_copy, tmp_path):
    outside = str(tmp_path / "elsewhere.onnx")
    artifact = os.path.join(tiny_bundle_copy, "w1.onnx")
    shutil.copy(artifact, outside)
    os.remove(artifact)
    os.symlink(outside, artifact)  # the same bytes: the checksum matches
    with pytest.raises(BundleError, match="symbolic link to .*elsewhere.onnx, outside the bundle"):
        load_bundle(tiny_bundle_copy)


def test_artifact_linked_inside_the_bundle_loads(tiny_bundle_copy):
    artifact = os.path.join(tiny_bundle_copy, "w1.onnx")
    os.rename(artifact, os.path.join(tiny_bundle_copy, ".w1.real"))
    os.symlink(".w1.real", artifact)
    manifest = json.load(open(os.path.join(tiny_bundle_copy, "manifest.json")))
    manifest["files"][".w1.real"] = manifest["variants"][-1]["sha256"]
    json.dump(manifest, open(os.path.join(tiny_bundle_copy, "manifest.json"), "w"))
    assert load_bundle(tiny_bundle_copy).variant("w1")


# -- quiet builds -----------------------------------------------------------------------------------------------

def test_capture_output_sends_third_party_output_to_the_log(tmp_path, capfd):
    from edgegan.errors import warn
    from edgegan.targets.buildlog import capture_output, log_lines

    log = str(tmp_path / "build.log")
    with capture_output(log) as terminal:
        print("python stdout")
        print("python stderr", file=sys.stderr)
        os.write(1, b"C-level stdout\n")
        os.write(2, b"I0000 absl C-level stderr\n")
        warnings.warn("a FutureWarning", FutureWarning)
        warn("an edgegan warning")
        print("progress", file=terminal)
    out, err = capfd.readouterr()
    text = open(log).read()
    for line in ("python stdout", "python stderr", "C-level stdout", "absl C-level stderr", "a FutureWarning"):
        assert line in text and line not in out + err
    assert "progress" in err and "an edgegan warning" in err and "an edgegan warning" not in text
    assert log_lines(log) >= 5


def test_build_prints_one_line_about_converter_output(tiny_checkpoint, tmp_path, capfd, monkeypatch):
    from edgegan.targets.onnx import OnnxCompiler

    real = OnnxCompiler.compile

    def noisy(self, *args, **kwargs):
        os.write(2, b"Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'\n")
        warnings.warn("torch.onnx is deprecated", FutureWarning)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(OnnxCompiler, "compile", noisy)
    out = str(tmp_path / "b")
    assert main(["build", "--target", "cpu", "--checkpoint", tiny_checkpoint, "--widths", "0.25,1.0", "--out", out,
                 "--quality-images", "0"]) == 0
    stdout, stderr = capfd.readouterr()
    assert "_MLModelProxy" not in stdout + stderr and "deprecated" not in stdout + stderr
    assert "converter output (" in stdout and os.path.join(out, "build.log") in stdout
    log = open(os.path.join(out, "build.log")).read()
    assert log.count("_MLModelProxy") == 2
    assert load_bundle(out).manifest["build_log"]["file"] == "build.log"


# -- tables say what was measured -----------------------------------------------------------------------------

def test_tables_show_the_precision_actually_measured():
    from edgegan.cli import bench as bench_cli
    from edgegan.cli import build as build_cli

    nano_fp16 = {"precision": "fp16", "parity": {"psnr_db": 137.5, "backend": "onnxruntime",
                                                 "measured_precision": "fp32"}}
    assert build_cli.parity_measured_as(nano_fp16) == "fp32, onnxruntime"
    assert bench_cli.ran_as(nano_fp16, "onnxruntime") == "fp32, onnxruntime"
    assert bench_cli.parity_measured_as(nano_fp16) == "fp32, onnxruntime"
    ios = {"precision": "fp16", "parity": {"psnr_db": None, "backend": "coremltools", "measured_precision": "fp16",
                                           "why": "Core ML predicts only on macOS (this is Linux)"}}
    assert build_cli.parity_measured_as(ios) == "not measured: Core ML predicts only on macOS (this is Linux)"


def test_build_table_names_the_measured_precision(tiny_checkpoint, tmp_path, capsys):
    assert main(["build", "--target", "jetson-nano", "--checkpoint", tiny_checkpoint, "--widths", "0.25",
                 "--out", str(tmp_path / "nano"), "--quality-images", "0"]) == 0
    out = capsys.readouterr().out
    header, rule, row = out.splitlines()[:3]
    assert "parity measured as" in header and "fp16" in row and "fp32, onnxruntime" in row


def test_format_table_aligns_numbers_right_and_text_left():
    table = format_table([{"name": "cpu", "opset": 17, "text": "short"},
                          {"name": "jetson-nano", "opset": 13, "text": "a longer text"}],
                         [("name", "target", None), ("opset", "opset", None), ("text", "description", None)])
    lines = table.splitlines()
    assert lines[0].startswith("target       opset  description")
    assert lines[2] == "cpu             17  short"
    assert lines[3] == "jetson-nano     13  a longer text"


def test_targets_table_text_columns_are_left_aligned(capsys):
    assert main(["targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines[0].index("description")
    assert all(len(line) > start and line[start - 2:start] == "  " and line[start] != " " for line in lines[2:])


# -- progress and the bench protocol ----------------------------------------------------------------------------

def test_held_out_evaluation_shows_progress(capsys):
    from pairs_data import Pairs

    from edgegan.models import ResnetGenerator
    from edgegan.train.metrics import evaluate_widths

    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="bn").eval()
    evaluate_widths(g, Pairs(8), [0.5, 1.0], batch_size=4, progress=True)
    assert "held-out eval (2 widths)" in capsys.readouterr().err


def test_bench_shows_progress_on_a_terminal_and_stays_quiet_when_piped(tiny_bundle, capsys, monkeypatch):
    assert main(["bench", tiny_bundle] + FAST_BENCH) == 0
    captured = capsys.readouterr()
    # piped: no progress lines (a failing command's stderr is its one error line); a busy machine may warn
    assert all("warning: unstable measurement" in line for line in captured.err.splitlines())
    assert "(chosen: probe of w1: median" in captured.out and "fp32, onnxruntime" in captured.out
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["bench", tiny_bundle] + FAST_BENCH) == 0
    err = capsys.readouterr().err
    assert "bench: choosing the thread count" in err and "w0.25" in err and "variant" in err


def test_bench_refuses_an_unknown_variant_before_measuring(tiny_bundle, capsys, monkeypatch):
    from edgegan.cli import bench as bench_cli

    monkeypatch.setattr(bench_cli, "choose_threads", lambda *a, **k: pytest.fail("probed before checking"))
    assert main(["bench", tiny_bundle, "--variant", "w9"]) == 2
    assert _one_error_line(capsys.readouterr().err)


class _FakeBackend(object):
    """Stands in for a CPU backend: slow with its default thread count when ``slow_default``."""

    slow_default = True

    def __init__(self, path, threads=None, layout=None):
        self.threads = threads

    def run(self, x):
        import time

        slow = (self.threads is None) == self.slow_default
        time.sleep(0.003 if slow else 0.0003)

    def close(self):
        pass


@pytest.mark.parametrize("slow_default,expected", [(True, 1), (False, None)])
def test_bench_chooses_the_thread_count_by_measurement(tiny_bundle, monkeypatch, slow_default, expected):
    from edgegan.cli import bench as bench_cli
    from edgegan.runtime import backends

    fake = type("Fake", (_FakeBackend,), {"slow_default": slow_default})
    monkeypatch.setattr(backends, "get_backend", lambda name: fake)
    threads, how = bench_cli.choose_threads(load_bundle(tiny_bundle), "onnxruntime", rounds=2, runs=5)
    assert threads == expected and "probe of w1" in how
    assert bench_cli.choose_threads(load_bundle(tiny_bundle), "tensorrt")[0] is None


def test_bench_flags_unstable_measurements():
    from edgegan.cli.bench import flag_unstable

    rows = [{"variant": "w1", "cv": 0.05}, {"variant": "w0.5", "cv": 0.66}]
    with pytest.warns(EdgeganWarning, match="unstable measurement: latency CV w0.5 66 %"):
        assert flag_unstable(rows) == ["w0.5 66 %"]
    assert [r["unstable"] for r in rows] == [False, True]


# -- hints and manifests --------------------------------------------------------------------------------------------

def test_missing_extra_hint_is_an_install_line_for_a_checkout():
    from edgegan.targets import tflite

    assert install_hint("tflite").startswith('pip install -c constraints.txt -e ".[tflite]"')
    with pytest.raises(TargetError) as e:
        tflite._require("edgegan_no_such_module")
    assert 'pip install -c constraints.txt -e ".[tflite]"' in str(e.value)
    assert "pip install 'edgegan[" not in str(e.value)


def test_coreml_channel_order_of_a_grey_model():
    from edgegan.targets.coreml import metadata

    def spec(channels):
        return {"shape": [1, channels, 32, 32], "range": [-1.0, 1.0]}

    section = {"input": "image", "output": "image"}
    assert metadata(spec(1), spec(1), section, "fp16")["edgegan.channel_order"] == "GRAYSCALE"
    assert metadata(spec(1), spec(3), section, "fp16")["edgegan.channel_order"] == "RGB"
    assert metadata(dict(spec(3), channel_order="BGR"), spec(3), section, "fp16")["edgegan.channel_order"] == "BGR"


# -- usage errors, odd files, interrupted writes ---------------------------------------------------------------

def test_usage_errors_are_one_line(capsys):
    for argv in (["build", "--target", "cpu", "--widths", "abc"], ["bench"], ["train", "slimmable", "--steps", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and _one_error_line(err) and "--help" in err, (argv, err)


def test_profile_that_is_not_utf8_text(tmp_path):
    path = tmp_path / "board.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TargetError, match="is not a TOML text file"):
        load_profile(str(path))


@pytest.mark.parametrize("args,message", [(["--parity-inputs", "0"], "--parity-inputs must be at least 1"),
                                          (["--out", " "], "--out is empty")])
def test_build_option_values(tmp_path, capsys, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--target", "cpu"] + args) == 2
    assert message in capsys.readouterr().err and os.listdir(str(tmp_path)) == []


def test_sigterm_while_writing_leaves_nothing_behind(tiny_bundle, tmp_path):
    import signal
    import time

    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    image = np.full((256, 256), 255, np.uint8)
    for i in range(300):
        cv2.imwrite(str(frames / ("%03d.png" % i)), image)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "edgegan", "run", tiny_bundle, "--input", str(frames), "--output",
                          str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(n.startswith(".out.tmp-") for n in os.listdir(str(tmp_path))):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert sorted(os.listdir(str(tmp_path))) == ["frames"]


def test_unreadable_inputs_are_one_line_without_opencv_chatter(tiny_bundle, tmp_path):
    png = tmp_path / "corrupt.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x07" * 200)
    for source, out in ((png, "a.png"), (clip, "b.mp4")):
        r = subprocess.run([sys.executable, "-m", "edgegan", "run", tiny_bundle, "--input", str(source), "--output",
                            str(tmp_path / out)], capture_output=True, text=True)
        assert r.returncode == 2 and _one_error_line(r.stderr), r.stderr
    r = subprocess.run([sys.executable, "-m", "edgegan", "demo", "edges2shoes", "--headless", "--frames", "2",
                        "--bundle", tiny_bundle, "--source", str(clip), "--stats", str(tmp_path / "s.json")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and _one_error_line(r.stderr) and "moov" not in r.stderr, r.stderr
    assert not (tmp_path / "s.json").exists()


def test_single_image_output_with_an_unknown_extension(tiny_bundle, tmp_path, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "e.png"), np.full((32, 32), 255, np.uint8))
    assert main(["run", tiny_bundle, "--input", str(tmp_path / "e.png"), "--output", str(tmp_path / "out.xyz")]) == 2
    assert ".xyz is not an image type" in capsys.readouterr().err
    assert sorted(os.listdir(str(tmp_path))) == ["e.png"]


def test_corrupt_classifier_asset_is_a_checkpoint_error(tmp_path):
    from edgegan.train.classifier import load_classifier

    bad = tmp_path / "classifier.pt"
    bad.write_bytes(b"hello world" * 10)
    with pytest.raises(CheckpointError, match="is not an edgegan classifier: it is neither a torch archive nor a pickle"):
        load_classifier(str(bad))


def test_train_size_that_the_generator_cannot_take(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "slimmable", "--data", "fmnist-shoes", "--size", "30", "--out", "/nonexistent/x.pt"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and _one_error_line(err) and "multiple of 4" in err
