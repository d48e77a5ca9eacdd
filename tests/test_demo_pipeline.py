"""The demo's overlapped stages, its outputs on unwritable paths, stats that survive a bad ending, power notes."""

import json
import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edgegan.cli import main  # noqa: E402
from edgegan.demo import app as demo_app  # noqa: E402
from edgegan.demo.loop import Demo  # noqa: E402
from edgegan.demo.pipeline import Pipeline  # noqa: E402
from edgegan.demo.sources import Source, SourceError, VideoSource  # noqa: E402
from edgegan.demo.stages import End, Handoff  # noqa: E402
from edgegan.runtime import Runtime  # noqa: E402
from edgegan.runtime.edges import edges_from_image  # noqa: E402

from test_demo import clip, count_frames, leftovers  # noqa: E402,F401


def demo(bundle, *args):
    return main(["demo", "edges2shoes", "--bundle", bundle] + list(args))


# -- the handoff between stages ------------------------------------------------------------------

def test_handoff_drops_the_waiting_item_for_realtime_sources():
    slot = Handoff(drop=True)
    for i in range(5):
        assert slot.put(i)
    assert slot.get() == 4 and slot.dropped == 4
    slot.put(5)
    t = threading.Thread(target=slot.put, args=(End("source-ended"),))  # an End is never dropped: it waits
    t.start()
    time.sleep(0.05)
    assert slot.get() == 5 and isinstance(slot.get(timeout=2), End)
    t.join(2)
    assert slot.get(timeout=0.01) is None


def test_handoff_waits_when_not_dropping():
    slot = Handoff()
    slot.put(1)
    done = []
    t = threading.Thread(target=lambda: done.append(slot.put(2)))
    t.start()
    time.sleep(0.05)
    assert not done  # the producer waits for the consumer
    assert slot.get() == 1
    t.join(2)
    assert done == [True] and slot.get() == 2 and slot.dropped == 0
    slot.close()
    assert slot.put(3) is False and slot.get() is None


# -- overlap -------------------------------------------------------------------------------------

class Paced(Source):
    """A source whose frames take ``read_s`` each (a decoder); ``realtime`` like a camera when asked.
    Frame i carries i in its first row."""

    kind = "video"

    def __init__(self, n, read_s, realtime=False):
        Source.__init__(self, "paced")
        self.n, self.read_s, self.realtime = n, read_s, realtime
        self.spans = []  # (start, end) of every read

    def read(self):
        if self.frames_read >= self.n:
            return None
        t0 = time.perf_counter()
        time.sleep(self.read_s)
        self.spans.append((t0, time.perf_counter()))
        frame = np.full((48, 64), 128, np.uint8)
        frame[0, :] = self.frames_read
        self.frames_read += 1
        return frame


class SlowPipeline(Pipeline):
    """The model takes at least ``infer_s`` (a sleep, like a busy accelerator); records which frames it saw."""

    def __init__(self, rt, infer_s):
        Pipeline.__init__(self, rt)
        self.infer_s = infer_s
        self.seen = []
        self.spans = []  # (start, end) of every inference

    def infer(self, prepared):
        t0 = time.perf_counter()
        time.sleep(self.infer_s)
        self.seen.append(int(prepared.crop[0, 0]))
        result = Pipeline.infer(self, prepared)
        self.spans.append((t0, time.perf_counter()))
        return result


def _run(rt, source, pipeline, overlap):
    d = Demo(rt, source, pipeline, log=False, overlap=overlap)
    t0 = time.perf_counter()
    assert d.run() == "source-ended"
    return d, time.perf_counter() - t0


def _overlapping(a, b):
    """How many intervals of ``a`` intersect an interval of ``b``."""
    return sum(1 for s0, e0 in a if any(s0 < e1 and s1 < e0 for s1, e1 in b))


def test_overlapped_stages_read_while_the_model_runs(tiny_bundle):
    n = 20
    with Runtime(tiny_bundle) as rt:
        serial_source, serial_model = Paced(n, 0.02), SlowPipeline(rt, 0.02)
        serial, serial_s = _run(rt, serial_source, serial_model, overlap=False)
        source, model = Paced(n, 0.02), SlowPipeline(rt, 0.02)
        overlapped, overlapped_s = _run(rt, source, model, overlap=True)
    assert serial.recorder.frames == overlapped.recorder.frames == n
    assert _overlapping(serial_source.spans, serial_model.spans) == 0  # one step after the other
    assert _overlapping(source.spans, model.spans) >= n // 2  # the next frame is read during an inference
    assert overlapped_s < serial_s
    summary = overlapped.pipeline_summary()
    assert summary["overlap"] and summary["frames_dropped"] == 0
    assert summary["stage_ms_mean"]["read_ms"] >= 19


def test_a_realtime_source_drops_frames_instead_of_queueing(tiny_bundle):
    with Runtime(tiny_bundle) as rt:
        pipeline = SlowPipeline(rt, 0.03)
        d, _ = _run(rt, Paced(40, 0.005, realtime=True), pipeline, overlap=True)
    assert d.dropped > 10 and d.recorder.frames + d.dropped == 40
    seen = pipeline.seen
    assert seen == sorted(seen) and seen[-1] >= 35  # always the newest frame, in order, up to the last ones
    assert max(b - a for a, b in zip(seen, seen[1:])) > 1


def test_demo_edges_are_the_training_edges(tiny_bundle):
    """Crop → grey → area-resize to the model size → Canny: what edgegan.data does to a training photo."""
    from edgegan.data.images import fit_square

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur((rng.random((480, 640, 3)) * 255).astype(np.uint8), (0, 0), 6)
    cv2.circle(frame, (320, 240), 120, (250, 250, 250), -1)
    with Runtime(tiny_bundle) as rt:
        pipeline = Pipeline(rt)
        prepared = pipeline.prepare(frame)
        crop = frame[:, 80:560]
        photo = fit_square(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), pipeline.height)
        expected = edges_from_image(photo, pipeline.low, pipeline.high, pipeline.blur, pipeline.invert)
    assert prepared.edges.shape == (pipeline.height, pipeline.width)
    assert np.array_equal(prepared.edges, expected) and (expected == 0).any()


# -- outputs: unwritable paths fail up front, stats survive ---------------------------------------

@pytest.mark.parametrize("flag", ["--out", "--stats"])
def test_output_under_a_regular_file_fails_before_the_work(tiny_bundle, clip, tmp_path, capsys, flag):  # noqa: F811
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    target = str(blocker / ("result.mp4" if flag == "--out" else "stats.json"))
    t0 = time.perf_counter()
    assert demo(tiny_bundle, "--source", clip, "--headless", flag, target) == 2
    err = capsys.readouterr().err
    assert "cannot write %s %s" % (flag, target) in err and "is a file, not a folder" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - t0 < 5


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr is not installed")
@pytest.mark.parametrize("flag", ["--out", "--stats"])
def test_output_in_an_immutable_folder_fails_before_the_work(tiny_bundle, clip, tmp_path, capsys, flag):  # noqa: F811
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], stderr=subprocess.DEVNULL).returncode:
        pytest.skip("this file system takes no immutable attribute")
    try:
        target = str(folder / ("result.mp4" if flag == "--out" else "stats.json"))
        assert demo(tiny_bundle, "--source", clip, "--headless", flag, target) == 2
        err = capsys.readouterr().err
        assert "is not writable" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert os.listdir(str(folder)) == []
    finally:
        subprocess.run(["chattr", "-i", str(folder)])


class FailsAt(VideoSource):
    """A video whose decoder fails at frame ``at`` (a corrupt file, a USB read error)."""

    def __init__(self, path, at, stats=None):
        VideoSource.__init__(self, path)
        self.at, self.stats, self.seen_on_disk = at, stats, None

    def read(self):
        if self.frames_read == self.at:
            if self.stats and os.path.exists(self.stats):
                with open(self.stats) as f:
                    self.seen_on_disk = json.load(f)
            raise SourceError("cannot decode frame %d of %s" % (self.at, self.path))
        time.sleep(0.01)
        return VideoSource.read(self)


@pytest.mark.parametrize("serial", [False, True])
def test_a_source_failing_mid_run_keeps_video_and_stats(tiny_bundle, clip, tmp_path, capsys, monkeypatch,  # noqa: F811
                                                        serial):
    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    sources = []

    def failing(*args, **kwargs):
        sources.append(FailsAt(clip, 15, stats))
        return sources[-1]

    monkeypatch.setattr(demo_app, "open_source", failing)
    args = ["--source", clip, "--headless", "--out", out, "--stats", stats, "--stats-every", "0.02"]
    assert demo(tiny_bundle, *(args + (["--serial"] if serial else []))) == 2
    err = capsys.readouterr().err
    assert "cannot decode frame 15" in err and "15 frames kept in" in err and "Traceback" not in err
    with open(stats) as f:
        s = json.load(f)
    assert s["end_reason"] == "source-failed" and "cannot decode frame 15" in s["error"] and s["stats_final"]
    assert s["frames"] == 15 and len(s["per_frame"]) == 15
    assert count_frames(out) == 15
    mid_run = sources[0].seen_on_disk  # written while the run went on
    assert mid_run is not None and not mid_run["stats_final"] and 0 < mid_run["frames"] <= 15
    assert not leftovers(str(tmp_path))


@pytest.mark.parametrize("serial", [False, True])
def test_stats_survive_a_write_error_mid_run(tiny_bundle, clip, tmp_path, capsys, monkeypatch, serial):  # noqa: F811
    """The disk fills up while the video is written: one line, exit 2, and the stats of the frames so far."""
    import errno

    from edgegan.runtime.imageio import FrameWriter

    out, stats = str(tmp_path / "result.mp4"), str(tmp_path / "stats.json")
    write = FrameWriter.write

    def full_disk(self, name, frame):
        if self.frames == 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, name, frame)

    monkeypatch.setattr(FrameWriter, "write", full_disk)
    args = ["--source", clip, "--headless", "--out", out, "--stats", stats]
    assert demo(tiny_bundle, *(args + (["--serial"] if serial else []))) == 2
    err = capsys.readouterr().err
    assert "cannot write --out %s (No space left on device)" % out in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with open(stats) as f:
        s = json.load(f)
    assert s["end_reason"] == "error" and "No space left" in s["error"] and s["stats_final"]
    assert 10 <= s["frames"] <= 12  # the model stage may have run a frame or two ahead of the writer
    assert not os.path.exists(out) and not leftovers(str(tmp_path))


def test_missing_power_file_is_said_once(tiny_bundle, clip, tmp_path, capsys):  # noqa: F811
    pytest.importorskip("edgegan.runtime.policy")
    missing = tmp_path / "mode"
    assert demo(tiny_bundle, "--source", clip, "--headless", "--auto", "--power-source", "file:%s" % missing,
                "--power-interval", "0.001") == 0
    err = capsys.readouterr().err
    assert err.count("%s is missing" % missing) == 1 and "note: power source" in err


class BrokenModel(Pipeline):
    def infer(self, prepared):
        raise RuntimeError("the accelerator fell over")


class BrokenReader(Pipeline):
    def prepare(self, frame, drawn=False, edges=None):
        raise RuntimeError("bad frame layout")


@pytest.mark.parametrize("pipeline_cls, message", [(BrokenModel, "fell over"), (BrokenReader, "bad frame")])
def test_an_error_in_a_stage_thread_ends_the_run_in_the_main_thread(tiny_bundle, pipeline_cls, message):
    """No stage waits forever for a thread that died: the error comes out of run(), in the caller's thread."""
    outcome = []
    with Runtime(tiny_bundle) as rt:
        d = Demo(rt, Paced(50, 0.001), pipeline_cls(rt), log=False, overlap=True)

        def run():
            try:
                d.run()
            except RuntimeError as e:
                outcome.append(str(e))

        t = threading.Thread(target=run)
        t.daemon = True  # a hang must fail the test, not the interpreter's exit
        t.start()
        t.join(60)
    assert not t.is_alive() and outcome and message in outcome[0]
