"""The on-device runtime: variants and switching, backends, image conversions, `edgegan run`,
and the device constraints (no torch/onnx/coremltools, Python 3.6 syntax)."""

import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edgegan.cli import main
from edgegan.errors import EdgeganError, InputError
from edgegan.runtime import Runtime, backends
from edgegan.runtime.backends import Backend, get_backend
from edgegan.runtime.imageio import FrameSource, FrameWriter, image_to_tensor, output_kind, tensor_to_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _x(seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (1, 1, 32, 32)).astype(np.float32)


# -- variants and switching ----------------------------------------------------------------------

def test_each_variant_gives_its_own_output(tiny_bundle):
    x = _x()
    outputs = {}
    with Runtime(tiny_bundle) as rt:
        assert rt.variant == "w1" and rt.variants == ["w0.25", "w0.5", "w1"]
        for name in ["w0.5", "w1", "w0.25", "w0.5"]:
            assert rt.set_variant(name) == name == rt.variant
            expected = ort.InferenceSession(rt.bundle.artifact_path(name)).run(None, {"input": x})[0]
            np.testing.assert_array_equal(rt(x), expected)
            outputs[name] = rt.run(x)
    assert not np.allclose(outputs["w0.25"], outputs["w1"])


def test_switching_creates_no_sessions(tiny_bundle, monkeypatch):
    created = []
    real_session = ort.InferenceSession

    def counting_session(*args, **kwargs):
        created.append(args[0])
        return real_session(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting_session)
    with Runtime(tiny_bundle, variant=0.5) as rt:
        assert len(created) == 3 and rt.variant == "w0.5"
        costs = []
        for n in range(300):
            t0 = time.perf_counter()
            rt.set_variant(("w0.25", 1.0, "0.5")[n % 3])
            costs.append(time.perf_counter() - t0)
        rt(_x())
    assert len(created) == 3
    assert np.median(costs) < 1e-3


def test_unknown_variant(tiny_bundle):
    with Runtime(tiny_bundle) as rt:
        with pytest.raises(EdgeganError, match="no variant 'w2'.*w0.25, w0.5, w1"):
            rt.set_variant("w2")
        assert rt.variant == "w1"


def test_wrong_input(tiny_bundle):
    with Runtime(tiny_bundle) as rt:
        with pytest.raises(InputError, match=r"expected input of shape \[1,1,32,32\] \(NCHW float32\), "
                                             r"got shape \[1,3,32,32\]"):
            rt(np.zeros((1, 3, 32, 32), np.float32))
        with pytest.raises(InputError, match="got a uint8 array .* Runtime.preprocess"):
            rt(np.zeros((1, 1, 32, 32), np.uint8))
        np.testing.assert_allclose(rt(_x().astype(np.float64)), rt(_x()))


def test_infer_image(tiny_bundle):
    photo = np.random.RandomState(1).randint(0, 256, (64, 48, 3)).astype(np.uint8)
    with Runtime(tiny_bundle) as rt:
        out = rt.infer_image(photo)
        assert out.shape == (32, 32) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, rt.postprocess(rt(rt.preprocess(photo))))
        grey = cv2.resize(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(rt.preprocess(photo)[0, 0], grey / 127.5 - 1.0, atol=2.01 / 255)


def test_providers_fall_back_to_cpu(tiny_bundle):
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        rt = Runtime(tiny_bundle, providers=["cuda"], threads=1)
    assert rt.backend.providers == ["CPUExecutionProvider"]
    rt.close()


# -- backends ------------------------------------------------------------------------------------

def test_unknown_backend(tiny_bundle):
    with pytest.raises(EdgeganError, match="unknown backend 'nope'; available: .*onnxruntime"):
        get_backend("nope")
    with pytest.raises(EdgeganError, match="unknown backend"):
        Runtime(tiny_bundle, backend="nope")


def test_missing_library_names_the_package(monkeypatch):
    class Missing(Backend):
        name = "missing"
        library = "edgegan_test_no_such_module"
        package = "edgegan-test-package"

    monkeypatch.setitem(backends._REGISTRY, "missing", Missing)
    with pytest.raises(EdgeganError, match="pip install edgegan-test-package"):
        get_backend("missing")
    assert Missing.library_version() is None


# -- image conversions ---------------------------------------------------------------------------

def test_grey_round_trip():
    spec = {"shape": [1, 1, 32, 32], "layout": "NCHW", "dtype": "float32", "range": [-1.0, 1.0]}
    image = np.arange(32 * 32, dtype=np.int64).reshape(32, 32).astype(np.uint8)
    x = image_to_tensor(image, spec)
    assert x.shape == (1, 1, 32, 32) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(tensor_to_image(x, spec), image)


def test_colour_nhwc_is_rgb_inside():
    spec = {"shape": [1, 16, 16, 3], "layout": "NHWC", "dtype": "float32", "range": [0.0, 1.0]}
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[:, :, 0] = 255  # BGR
    x = image_to_tensor(blue, spec)
    assert x.shape == (1, 16, 16, 3)
    assert (x[..., 2] == 1.0).all() and (x[..., :2] == 0.0).all()
    np.testing.assert_array_equal(tensor_to_image(x, spec), blue[:16, :16])
    grey = image_to_tensor(np.full((16, 16), 255, np.uint8), spec)
    assert (grey == 1.0).all()


def test_unreadable_inputs(tmp_path):
    with pytest.raises(InputError, match="no such input"):
        FrameSource(str(tmp_path / "missing.png"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported input"):
        FrameSource(str(tmp_path / "notes.txt"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image"):
        list(FrameSource(str(tmp_path / "broken.png")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        FrameSource(str(tmp_path / "empty"))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="cannot open video"):
        FrameSource(str(tmp_path / "broken.mp4"))
    with pytest.raises(InputError, match="pass a folder"):
        output_kind("folder", "out.png")


def test_writer_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with FrameWriter(str(tmp_path / "out"), "folder") as writer:
            writer.write("a.png", np.zeros((8, 8), np.uint8))
            raise RuntimeError("stop")
    assert os.listdir(str(tmp_path)) == []


# -- edgegan run ---------------------------------------------------------------------------------

def _photos(folder, n=3):
    os.makedirs(folder)
    rng = np.random.RandomState(0)
    for i in range(n):
        cv2.imwrite(os.path.join(folder, "p%d.png" % i), rng.randint(0, 256, (48, 64, 3)).astype(np.uint8))
    return folder


def _video(path, frames=6):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    rng = np.random.RandomState(0)
    for _ in range(frames):
        writer.write(rng.randint(0, 256, (48, 64, 3)).astype(np.uint8))
    writer.release()
    return path


def _count_frames(path):
    capture = cv2.VideoCapture(path)
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def test_run_image(tiny_bundle, tmp_path, capsys):
    src = _photos(str(tmp_path / "in"))
    out = str(tmp_path / "out.png")
    assert main(["run", tiny_bundle, "--input", os.path.join(src, "p0.png"), "--output", out]) == 0
    assert "wrote 1 frame to" in capsys.readouterr().out
    assert cv2.imread(out, cv2.IMREAD_UNCHANGED).shape == (32, 32)
    assert main(["run", tiny_bundle, "--input", os.path.join(src, "p0.png"), "--output", out]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["run", tiny_bundle, "--input", os.path.join(src, "p1.png"), "--output", out, "--force",
                 "--variant", "w0.25"]) == 0
    assert sorted(os.listdir(str(tmp_path))) == ["in", "out.png"]


def test_run_folder_edges_side_by_side(tiny_bundle, tmp_path, capsys):
    src = _photos(str(tmp_path / "in"))
    out = str(tmp_path / "out")
    assert main(["run", tiny_bundle, "--input", src, "--output", out, "--edges", "--side-by-side", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3 and summary["variant"] == "w1" and summary["fps"] > 0
    assert sorted(os.listdir(out)) == ["p0.png", "p1.png", "p2.png"]
    assert cv2.imread(os.path.join(out, "p0.png"), cv2.IMREAD_UNCHANGED).shape == (32, 64)


def test_run_video(tiny_bundle, tmp_path, capsys):
    src = _video(str(tmp_path / "in.mp4"))
    out = str(tmp_path / "out.mp4")
    assert main(["run", tiny_bundle, "--input", src, "--output", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 6
    assert _count_frames(out) == 6
    assert main(["run", tiny_bundle, "--input", src, "--output", out]) == 2
    assert main(["run", tiny_bundle, "--input", src, "--output", str(tmp_path / "frames")]) == 0
    assert len(os.listdir(str(tmp_path / "frames"))) == 6


def test_run_user_errors(tiny_bundle, tmp_path, capsys):
    src = _photos(str(tmp_path / "in"))
    assert main(["run", tiny_bundle, "--input", src, "--output", str(tmp_path / "x.png")]) == 2
    assert "is an image file, but the input is a folder" in capsys.readouterr().err
    assert main(["run", tiny_bundle, "--input", src, "--output", src, "--force"]) == 2
    assert main(["run", str(tmp_path / "nope"), "--input", src, "--output", str(tmp_path / "o")]) == 2
    assert "no bundle at" in capsys.readouterr().err
    assert sorted(os.listdir(src)) == ["p0.png", "p1.png", "p2.png"]


# -- device constraints --------------------------------------------------------------------------

BLOCKED_IMPORTS = """
import sys
BLOCKED = ("torch", "onnx", "coremltools")

class Block(object):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked on the device: " + name)

sys.meta_path.insert(0, Block())
import numpy as np
import edgegan.runtime, edgegan.runtime.fps, edgegan.runtime.imageio, edgegan.runtime.edges
import edgegan.cli.bench, edgegan.cli.run
from edgegan.runtime import Runtime
with Runtime(sys.argv[1]) as rt:
    assert rt.infer_image(np.zeros((32, 32), np.uint8)).shape == (32, 32)
assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
print("ok")
"""


def test_runtime_imports_without_torch_onnx_coremltools(tiny_bundle):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS, tiny_bundle], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(shutil.which("vermin") is None, reason="vermin is not installed (pip install vermin)")
def test_runtime_is_python36_compatible():
    paths = ["edgegan/runtime", "edgegan/cli/bench.py", "edgegan/cli/run.py"]
    result = subprocess.run(["vermin", "-t=3.6-", "--no-tips", "--violations"] + paths, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stdout
