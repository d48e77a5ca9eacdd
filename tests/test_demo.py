"""The edges2shoes demo: headless runs over a generated video, keys, auto mode, sources that end or vanish."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edgegan.cli import main  # noqa: E402
from edgegan.demo import app as demo_app  # noqa: E402
from edgegan.demo.app import Demo, PowerLink, StatsRecorder, parse_key_script, variant_order  # noqa: E402
from edgegan.demo.overlay import RollingFPS, format_macs, format_power  # noqa: E402
from edgegan.demo.pipeline import Layout, Pipeline, centre_crop, compose  # noqa: E402
from edgegan.demo.sources import (CanvasSource, CaptureSource, SourceError, SourceLost, VideoSource,  # noqa: E402
                                  has_gstreamer, nvargus_pipeline, parse_source)
from edgegan.errors import InputError  # noqa: E402
from edgegan.runtime import Runtime  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_FRAMES = 24


def write_video(path, frames=N_FRAMES, width=160, height=120, fps=24.0):
    """Moving shapes (a disc and a box) on grey, mp4v."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((height, width, 3), 40, np.uint8)
        cv2.circle(frame, (20 + 4 * i, height // 2), 18, (255, 255, 255), -1)
        cv2.rectangle(frame, (100 - 2 * i, 20), (140 - 2 * i, 50), (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def count_frames(path):
    capture = cv2.VideoCapture(path)
    assert capture.isOpened(), "cannot open %s" % path
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def leftovers(directory):
    """Temporary files the writers left behind."""
    return [name for name in os.listdir(directory) if ".tmp-" in name]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(str(tmp_path_factory.mktemp("demo_video") / "clip.mp4"))


def demo(bundle, *args):
    return main(["demo", "edges2shoes", "--bundle", bundle] + list(args))


# -- headless runs through the CLI ---------------------------------------------------------------

def test_headless_video_same_frames_and_fps_per_variant(tiny_bundle, clip, tmp_path):
    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    assert demo(tiny_bundle, "--source", clip, "--headless", "--out", out, "--stats", stats,
                "--switch-every", "8") == 0
    assert count_frames(out) == N_FRAMES
    capture = cv2.VideoCapture(out)
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    capture.release()
    layout = Layout(256)
    assert (width, height) == (layout.width, layout.height)
    with open(stats) as f:
        s = json.load(f)
    assert s["format"] == "edgegan-demo-stats/1"
    assert s["frames"] == N_FRAMES and s["end_reason"] == "source-ended"
    assert set(s["variants"]) == {"w0.25", "w0.5", "w1"}
    for v in s["variants"].values():
        assert v["frames"] == 8 and v["fps"] > 0 and v["model_fps"] > 0
        assert v["infer_ms"]["median"] > 0 and v["frame_ms"]["p90"] >= v["frame_ms"]["median"]
    assert [(w["frame"], w["from"], w["to"], w["reason"]) for w in s["switches"]] == \
        [(8, "w1", "w0.25", "script"), (16, "w0.25", "w0.5", "script")]
    assert len(s["per_frame"]) == N_FRAMES
    assert [r["variant"] for r in s["per_frame"]] == ["w1"] * 8 + ["w0.25"] * 8 + ["w0.5"] * 8
    assert all(r["infer_ms"] > 0 and r["frame_ms"] >= r["infer_ms"] for r in s["per_frame"])
    assert s["edges"] == {"low": 100, "high": 200, "blur": 0, "invert": True}
    assert s["environment"]["python"] and s["source"]["frame_count"] == N_FRAMES
    assert not leftovers(str(tmp_path))


def test_scripted_keys_switch_variants_and_thresholds(tiny_bundle, clip, tmp_path, capsys):
    stats = str(tmp_path / "stats.json")
    assert demo(tiny_bundle, "--source", clip, "--headless", "--stats", stats, "--variant", "w0.5",
                "--keys", "4:plus,8:-,12:-,16:],16:},20:q", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["end_reason"] == "quit" and summary["frames"] == 20
    with open(stats) as f:
        s = json.load(f)
    variants = [r["variant"] for r in s["per_frame"]]
    assert variants == ["w0.5"] * 4 + ["w1"] * 4 + ["w0.5"] * 4 + ["w0.25"] * 8
    assert [w["reason"] for w in s["switches"]] == ["key", "key", "key"]
    assert s["edges"]["low"] == 110 and s["edges"]["high"] == 210


def test_source_that_ends_early_keeps_what_it_gave(tiny_bundle, clip, tmp_path, capsys):
    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    assert demo(tiny_bundle, "--source", clip, "--headless", "--out", out, "--stats", stats, "--frames", "100") == 0
    assert "ended after 24 frames, before --frames 100" in capsys.readouterr().err
    assert count_frames(out) == N_FRAMES
    with open(stats) as f:
        assert json.load(f)["end_reason"] == "source-ended"


def test_looping_video_runs_to_frames(tiny_bundle, clip, tmp_path):
    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    assert demo(tiny_bundle, "--source", clip, "--loop", "--headless", "--out", out, "--stats", stats,
                "--frames", "40", "--frame-records", "10") == 0
    assert count_frames(out) == 40
    with open(stats) as f:
        s = json.load(f)
    assert s["end_reason"] == "frames" and s["source"]["loops"] == 1 and s["frames"] == 40
    assert len(s["per_frame"]) == 10 and s["per_frame_truncated"] and s["per_frame_dropped"] == 30
    assert s["variants"]["w1"]["frames"] == 40


def test_missing_camera_is_a_clear_error(tiny_bundle, tmp_path, capsys):
    out = str(tmp_path / "result.mp4")
    assert demo(tiny_bundle, "--source", "9", "--headless", "--out", out, "--frames", "5") == 2
    err = capsys.readouterr().err
    assert "cannot open camera 9" in err and "Traceback" not in err
    assert os.listdir(str(tmp_path)) == []


class VanishingCamera(VideoSource):
    """A 'camera' that delivers ``after`` frames, then is unplugged."""

    live = True
    kind = "camera"

    def __init__(self, path, after):
        VideoSource.__init__(self, path, loop=True)
        self.description = "camera 0"
        self.after = after

    def read(self):
        if self.frames_read >= self.after:
            raise SourceLost("camera 0 stopped delivering frames after %d frames (unplugged?)" % self.frames_read)
        return VideoSource.read(self)


def test_camera_lost_mid_run_closes_the_output(tiny_bundle, clip, tmp_path, capsys, monkeypatch):
    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    monkeypatch.setattr(demo_app, "open_source", lambda *a, **k: VanishingCamera(clip, 10))
    assert demo(tiny_bundle, "--source", "0", "--headless", "--out", out, "--stats", stats, "--frames", "50") == 2
    err = capsys.readouterr().err
    assert "camera 0 stopped delivering frames after 10 frames" in err and "10 frames kept in" in err
    assert count_frames(out) == 10  # closed properly: readable to the end
    with open(stats) as f:
        s = json.load(f)
    assert s["end_reason"] == "source-lost" and s["frames"] == 10 and "unplugged" in s["error"]
    assert not leftovers(str(tmp_path))


def test_camera_lost_before_any_frame_writes_nothing(tiny_bundle, clip, tmp_path, monkeypatch):
    out = str(tmp_path / "result.mp4")
    monkeypatch.setattr(demo_app, "open_source", lambda *a, **k: VanishingCamera(clip, 0))
    assert demo(tiny_bundle, "--source", "0", "--headless", "--out", out) == 2
    assert os.listdir(str(tmp_path)) == []


class FakeCapture(object):
    def __init__(self, frames):
        self.frames = frames

    def read(self):
        if self.frames:
            self.frames -= 1
            return True, np.zeros((48, 64, 3), np.uint8)
        return False, None

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_capture_source_reports_a_lost_camera():
    class Flaky(CaptureSource):
        kind = "camera"

        def _open(self, target, api):
            return FakeCapture(3)

    source = Flaky(0, "camera 0", lost_after_failures=3, lost_after_s=0.0)
    for _ in range(3):
        assert source.read().shape == (48, 64, 3)
    with pytest.raises(SourceLost, match="camera 0 stopped delivering frames after 3 frames"):
        source.read()
    assert source.read() is None  # released


def test_existing_outputs_need_force(tiny_bundle, clip, tmp_path, capsys):
    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    for path in (out, stats):
        with open(path, "w") as f:
            f.write("keep me")
    assert demo(tiny_bundle, "--source", clip, "--headless", "--out", out, "--stats", stats) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert open(out).read() == "keep me" and open(stats).read() == "keep me"
    assert demo(tiny_bundle, "--source", clip, "--headless", "--out", out, "--stats", stats, "--force",
                "--frames", "5") == 0
    assert count_frames(out) == 5
    assert not leftovers(str(tmp_path))


@pytest.mark.parametrize("args, message", [
    (["--out", "shoe.png"], "writes a video"),
    (["--keys", "x"], "FRAME:KEY"),
    (["--keys", "3:left"], "not one key"),
    (["--auto", "--switch-every", "3"], "choose one"),
    (["--frames", "0"], "at least 1"),
    (["--low", "200", "--high", "100"], "low <= high"),
    (["--variant", "w9"], "no variant 'w9'"),
    (["--panel", "16"], "at least 64"),
])
def test_bad_options_exit_2(tiny_bundle, clip, capsys, args, message):
    assert demo(tiny_bundle, "--source", clip, "--headless", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_sources(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="is a folder"):
        parse_source(str(tmp_path))
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(SourceError, match="not a video"):
        parse_source(str(text))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot open video"):
        VideoSource(str(broken))


def test_parse_source_kinds():
    assert parse_source("0") == ("camera", 0)
    assert parse_source("/dev/video2") == ("camera", "/dev/video2")
    assert parse_source("canvas") == ("canvas", None)
    kind, pipeline = parse_source("csi:1")
    assert kind == "gstreamer" and pipeline == nvargus_pipeline(1)
    assert "nvarguscamerasrc sensor-id=1" in pipeline and pipeline.endswith("appsink drop=true max-buffers=1")
    assert parse_source("gst:videotestsrc ! appsink") == ("gstreamer", "videotestsrc ! appsink")
    assert parse_source("videotestsrc ! videoconvert ! appsink")[0] == "gstreamer"


@pytest.mark.skipif(has_gstreamer(), reason="this OpenCV has GStreamer")
def test_gstreamer_without_support_says_what_to_install(tiny_bundle, capsys):
    assert demo(tiny_bundle, "--source", "csi", "--headless", "--frames", "1") == 2
    assert "built without GStreamer" in capsys.readouterr().err


def test_window_without_display_is_refused(tiny_bundle, clip, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is Linux's")
    assert demo(tiny_bundle, "--source", clip, "--frames", "3") == 2
    assert "--headless" in capsys.readouterr().err


# -- auto mode (the power-mode policy) -----------------------------------------------------------

def test_auto_mode_follows_a_file_power_source(tiny_bundle, clip, tmp_path):
    pytest.importorskip("edgegan.runtime.policy")
    mode_file, stats = tmp_path / "mode", str(tmp_path / "stats.json")
    mode_file.write_text("mode=1 watts=4.5")
    assert demo(tiny_bundle, "--source", clip, "--headless", "--stats", stats, "--auto",
                "--power-source", "file:%s" % mode_file, "--keys", "12:+") == 0
    with open(stats) as f:
        s = json.load(f)
    # tiny bundle policy: mode 0 -> w1, mode 1 -> w0.5; "+" is a manual override that turns auto off
    assert s["switches"][0]["from"] == "w1" and s["switches"][0]["to"] == "w0.5"
    assert s["switches"][0]["reason"] == "auto" and s["switches"][0]["frame"] == 0
    assert s["switches"][1] == {"frame": 12, "from": "w0.5", "to": "w1", "reason": "key"}
    assert [r["auto"] for r in s["per_frame"]] == [True] * 12 + [False] * 12
    assert s["per_frame"][0]["mode"] == "1" and s["per_frame"][0]["watts"] == 4.5
    assert s["power_final"]["watts"] == 4.5


def test_auto_mode_with_a_manual_power_source(tiny_bundle, clip, capsys):
    pytest.importorskip("edgegan.runtime.policy")
    assert demo(tiny_bundle, "--source", clip, "--headless", "--frames", "4", "--auto", "--power-source", "manual:1",
                "--json") == 0
    s = json.loads(capsys.readouterr().out)
    assert s["variant_final"] == "w0.5" and s["auto_final"] and s["power_final"]["mode"] == "1"
    assert s["switches"] == [{"frame": 0, "from": "w1", "to": "w0.5", "reason": "auto", "why": "mode 1"}]


class PowerFlip(VideoSource):
    """A video that rewrites the power file when frame ``at`` is read (a power-mode change mid-run)."""

    def __init__(self, path, mode_file, at, text):
        VideoSource.__init__(self, path)
        self.mode_file, self.at, self.text = mode_file, at, text

    def read(self):
        if self.frames_read == self.at:
            self.mode_file.write_text(self.text)
        return VideoSource.read(self)


def test_auto_mode_switches_when_the_mode_changes_mid_run(tiny_bundle, clip, tmp_path):
    pytest.importorskip("edgegan.runtime.policy")
    mode_file = tmp_path / "mode"
    mode_file.write_text("0")
    with Runtime(tiny_bundle) as rt:
        power = PowerLink(rt, "file:%s" % mode_file, interval_s=1e-9)
        d = Demo(rt, PowerFlip(clip, mode_file, 10, "1"), Pipeline(rt), power=power, log=False)
        power.on_switch = d._on_policy_switch
        d.set_auto(True)
        assert d.run() == "source-ended"
        power.close()
    records = d.recorder.records
    assert [r[2] for r in records][:10] == ["w1"] * 10
    # the file changes while frame 10 is read; the next reading (frame 11) switches
    assert [r[2] for r in records][11:] == ["w0.5"] * (N_FRAMES - 11)
    assert d.recorder.switches[-1]["reason"] == "auto" and d.recorder.switches[-1]["to"] == "w0.5"
    assert d.auto


def test_auto_without_a_policy_module_is_a_clear_error(tiny_bundle, clip, monkeypatch, capsys):
    monkeypatch.setattr(demo_app, "_import_power", lambda: (None, None))
    assert demo(tiny_bundle, "--source", clip, "--headless", "--auto") == 2
    assert "power-aware runtime" in capsys.readouterr().err


def test_python_api_and_demo_list(tiny_bundle, clip, capsys):
    summary = demo_app.run_edges2shoes(demo_app.Options(bundle=tiny_bundle, source=clip, headless=True, frames=5))
    assert summary["frames"] == 5 and summary["end_reason"] == "frames" and summary["variant_final"] == "w1"
    with pytest.raises(TypeError):
        demo_app.Options(frame=5)
    assert main(["demo"]) == 2
    assert "edges2shoes" in capsys.readouterr().out


# -- pieces --------------------------------------------------------------------------------------

def test_canvas_strokes_undo_clear_and_drawn_edges(tiny_bundle):
    canvas = CanvasSource(256)
    assert canvas.read().min() == 255
    canvas.begin(20, 20)
    for x in range(20, 200, 5):
        canvas.extend(x, 128)
    canvas.end()
    canvas.begin(128, 10)
    canvas.extend(128, 250)
    canvas.end()
    assert len(canvas.strokes) == 2 and canvas.read().min() == 0
    with Runtime(tiny_bundle) as rt:
        edges = Pipeline(rt).edges(canvas.read(), drawn=True)
    assert edges.shape == (32, 32) and set(np.unique(edges)) == {0, 255}
    assert (edges[16] == 0).sum() >= 15  # the horizontal stroke survives at 32x32
    thin = canvas.render_edges(32, 32)  # what the demo feeds the model: the strokes one pixel wide
    assert thin.shape == (32, 32) and (thin[16, 2:25] == 0).all() and (thin[:, 16] == 0).sum() == 31
    assert (thin[17] == 0).sum() == 1  # one pixel wide: below the horizontal stroke only the vertical one
    canvas.undo()
    assert len(canvas.strokes) == 1
    canvas.clear()
    assert canvas.strokes == [] and canvas.read().min() == 255
    assert CanvasSource(256, example=True).read().min() == 0


def test_mouse_draws_on_the_canvas_panel(tiny_bundle):
    with Runtime(tiny_bundle) as rt:
        canvas = CanvasSource(256)
        d = Demo(rt, canvas, Pipeline(rt), log=False)
        y0 = d.layout.panel_origin(0)[1]
        d._on_mouse(cv2.EVENT_LBUTTONDOWN, 10, y0 + 10, 0, None)
        d._on_mouse(cv2.EVENT_MOUSEMOVE, 100, y0 + 100, 0, None)
        d._on_mouse(cv2.EVENT_MOUSEMOVE, 600, y0 + 100, 0, None)  # outside the panel: clamped
        d._on_mouse(cv2.EVENT_LBUTTONUP, 600, y0 + 100, 0, None)
        d._on_mouse(cv2.EVENT_LBUTTONDOWN, 600, y0 + 100, 0, None)  # starts outside: ignored
        assert canvas.strokes == [[(10, 10), (100, 100), (255, 100)]]
        d.handle_key("z")
        assert canvas.strokes == []


class FakeWindowCv2(object):
    WND_PROP_VISIBLE = 4
    error = RuntimeError

    def __init__(self, values):
        self.values = list(values)

    def getWindowProperty(self, window, prop):
        return self.values.pop(0)


@pytest.mark.parametrize("values, closed_at", [([1.0, 1.0, 0.0], 2), ([-1.0, -1.0, -1.0], None)])
def test_window_closed_detection(tiny_bundle, clip, values, closed_at):
    with Runtime(tiny_bundle) as rt:
        d = Demo(rt, VideoSource(clip), Pipeline(rt), log=False)
        fake = FakeWindowCv2(values)
        closed = [d._window_closed(fake) for _ in values]
    assert closed == [i == closed_at for i in range(len(values))]


def test_headless_canvas_run(tiny_bundle, tmp_path):
    out = str(tmp_path / "canvas.mp4")
    assert demo(tiny_bundle, "--source", "canvas", "--headless", "--out", out, "--frames", "6",
                "--keys", "2:s", "--screenshot-dir", str(tmp_path)) == 0
    assert count_frames(out) == 6
    shots = [n for n in os.listdir(str(tmp_path)) if n.endswith(".png")]
    assert len(shots) == 1
    shot = cv2.imread(str(tmp_path / shots[0]))
    assert shot.shape == (Layout(256).height, Layout(256).width, 3)


def test_compose_layout_and_crop(tiny_bundle):
    frame = np.zeros((120, 200, 3), np.uint8)
    assert centre_crop(frame).shape == (120, 120, 3)
    with Runtime(tiny_bundle) as rt:
        result = Pipeline(rt).process(frame)
    assert result.edges.shape == (32, 32) and result.output.shape == (32, 32) and result.variant == "w1"
    layout = Layout(128)
    image = compose(result, layout)
    assert image.shape == (layout.height, layout.width, 3) and image.dtype == np.uint8
    assert layout.to_panel(0, 5, 30) == (5, 30 - layout.panel_origin(0)[1])
    assert layout.to_panel(1, 5, 30) is None


def test_small_helpers(tiny_bundle):
    assert parse_key_script("3:a, 3:+,10:space") == {3: ["a", "+"], 10: [" "]}
    with pytest.raises(InputError):
        parse_key_script("a:3")
    with Runtime(tiny_bundle) as rt:
        assert variant_order(rt.bundle) == ["w0.25", "w0.5", "w1"]
    t = [0.0]
    meter = RollingFPS(frames=5, seconds=10.0, clock=lambda: t[0])
    assert meter.tick() is None
    for _ in range(10):
        t[0] += 0.02
        meter.tick()
    assert abs(meter.fps - 50.0) < 1e-6
    assert format_macs(34.6e6) == "34.6 MMACs" and format_macs(12.7e9) == "12.70 GMACs"
    assert format_power(None) == "power: unknown"
    assert format_power({"mode": "0", "mode_name": "MAXN", "watts": 7.25, "on_ac": True}) == \
        "power: mode MAXN (0), 7.2 W, AC"
    recorder = StatsRecorder(max_frame_records=2, latency_window=3)
    for i in range(5):
        recorder.record(i, i * 0.01, "w1", 0.1, 1.0 + i, 10.0)
    summary = recorder.summary()
    assert summary["frames"] == 5 and len(summary["per_frame"]) == 2 and summary["per_frame_dropped"] == 3
    assert summary["variants"]["w1"]["fps"] == pytest.approx(100.0)
    assert summary["variants"]["w1"]["infer_ms"]["max"] == 5.0 and summary["variants"]["w1"]["latency_window"] == 3


# -- on the device: torch-free, Python 3.6, the launcher -----------------------------------------

def test_demo_runs_without_torch(tiny_bundle, clip, tmp_path):
    """The whole headless path with torch made unimportable (a Jetson has no torch)."""
    out = str(tmp_path / "result.mp4")
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgegan.cli.demo import main\n"
            "rc = main(['--bundle', %r, '--source', %r, '--headless', '--out', %r, '--frames', '5'])\n"
            "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
            "sys.exit(rc)\n" % (tiny_bundle, clip, out))
    # ASCII output, as Python 3.6 has under ssh with LANG=C: whatever the demo prints must encode
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout
    assert count_frames(out) == 5


def test_launcher_help():
    result = subprocess.run([sys.executable, os.path.join(REPO, "demos", "edges2shoes_webcam.py"), "--help"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60,
                            env=dict(os.environ, PYTHONIOENCODING="ascii"))
    assert result.returncode == 0, result.stdout
    assert "nvarguscamerasrc" in result.stdout and "--headless" in result.stdout


@pytest.mark.skipif(shutil.which("vermin") is None, reason="vermin is not installed (pip install vermin)")
def test_demo_is_python36_compatible():
    """Everything the demo imports on a JetPack 4.6 Nano (Python 3.6)."""
    paths = ["edgegan/demo", "demos", "edgegan/cli/demo.py", "edgegan/cli/_common.py", "edgegan/cli/__init__.py",
             "edgegan/__init__.py", "edgegan/errors.py", "edgegan/runtime"]
    result = subprocess.run(["vermin", "-t=3.6-", "--no-tips", "--violations"] + paths, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stdout


def test_demo_parses_as_python36():
    import ast
    import glob

    files = glob.glob(os.path.join(REPO, "edgegan", "demo", "*.py")) + \
        [os.path.join(REPO, p) for p in ("edgegan/cli/demo.py", "demos/edges2shoes_webcam.py")]
    for path in files:
        with open(path) as f:
            ast.parse(f.read(), path, feature_version=(3, 6))
