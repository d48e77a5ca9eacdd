"""The FPS protocol on a fake clock, the environment record, and `edgegan bench`."""

import json
import math

import pytest

from edgegan.cli import main
from edgegan.runtime.fps import environment, latency_stats, measure, measure_switch, parse_nvpmodel


class FakeClock(object):
    """A clock that moves only when told."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class FakeWork(object):
    """A timed function: each call advances the clock by the next latency (the last one repeats)."""

    def __init__(self, clock, latencies):
        self.clock = clock
        self.latencies = list(latencies)
        self.calls = 0

    def __call__(self):
        self.clock.advance(self.latencies[min(self.calls, len(self.latencies) - 1)])
        self.calls += 1


def test_latency_stats():
    stats = latency_stats([0.004, 0.001, 0.005, 0.002, 0.003], wall_s=0.02)
    assert stats["runs"] == 5
    assert stats["fps"] == pytest.approx(250.0)
    assert stats["mean_ms"] == pytest.approx(3.0)
    assert stats["median_ms"] == pytest.approx(3.0)
    assert stats["p90_ms"] == pytest.approx(4.6)   # linear interpolation between 4 and 5
    assert stats["p99_ms"] == pytest.approx(4.96)
    assert (stats["min_ms"], stats["max_ms"]) == (pytest.approx(1.0), pytest.approx(5.0))
    assert stats["std_ms"] == pytest.approx(math.sqrt(2.0))
    assert stats["cv"] == pytest.approx(math.sqrt(2.0) / 3.0)


def test_warmup_honours_the_time():
    clock = FakeClock()
    work = FakeWork(clock, [0.125] * 8 + [0.001])  # the first 8 runs are slow: 1 s of warm-up
    stats = measure(work, warmup=3, warmup_s=1.0, runs=10, clock=clock)
    assert stats["warmup_runs"] == 8 and stats["warmup_s"] == pytest.approx(1.0)
    assert work.calls == 18
    assert stats["median_ms"] == pytest.approx(1.0) and stats["max_ms"] == pytest.approx(1.0)
    assert stats["fps"] == pytest.approx(1000.0)  # the warm-up is not in the timed window


def test_warmup_honours_the_count():
    clock = FakeClock()
    work = FakeWork(clock, [0.5] * 20 + [0.002])
    calls = []
    stats = measure(work, warmup=20, warmup_s=1.0, runs=5, sync=lambda: calls.append(clock()), clock=clock)
    assert stats["warmup_runs"] == 20
    assert len(calls) == 25  # every run is synchronised, warm-up included
    assert stats["mean_ms"] == pytest.approx(2.0) and stats["cv"] == pytest.approx(0.0)


def test_sync_time_is_counted():
    clock = FakeClock()
    stats = measure(FakeWork(clock, [0.001]), warmup=0, warmup_s=0.0, runs=4,
                    sync=lambda: clock.advance(0.003), clock=clock)
    assert stats["mean_ms"] == pytest.approx(4.0) and stats["fps"] == pytest.approx(250.0)


class FakeRuntime(object):
    """set_variant costs 0.5 ms; the first run after a switch 3 ms, later runs 1 ms."""

    def __init__(self, clock):
        self.clock = clock
        self.cold = False
        self.bundle = self
        self.variant_calls = []

    def variant(self, name):
        return {"name": name}

    def set_variant(self, name):
        self.variant_calls.append(name)
        self.cold = True
        self.clock.advance(0.0005)

    def __call__(self, x):
        self.clock.advance(0.003 if self.cold else 0.001)
        self.cold = False

    def sync(self):
        pass


def test_measure_switch_separates_switch_and_first_inference():
    clock = FakeClock()
    runtime = FakeRuntime(clock)
    result = measure_switch(runtime, "w1", "w0.5", x=None, repeats=4, warmup=2, clock=clock)
    assert result["from"] == "w1" and result["to"] == "w0.5" and result["repeats"] == 4
    assert result["switch_ms"] == pytest.approx(0.5) and result["switch_max_ms"] == pytest.approx(0.5)
    assert result["first_inference_ms"] == pytest.approx(3.0)
    assert runtime.variant_calls == ["w1", "w0.5"] * 4


def test_parse_nvpmodel():
    assert parse_nvpmodel("NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert parse_nvpmodel("NV Power Mode: 5W\n1\n") == {"name": "5W", "id": 1}
    assert parse_nvpmodel("garbage") is None


def test_environment_never_fails():
    env = environment(threads=2, backends=["onnxruntime", "no-such-backend"])
    assert env["threads"] == 2 and env["cpu_count"] >= 1 and env["python"]
    assert env["versions"]["onnxruntime"] and env["versions"]["numpy"]
    assert env["versions"]["no-such-backend"] is None
    json.dumps(env)


FAST = ["--warmup", "2", "--warmup-s", "0", "--runs", "5"]


def test_bench_table(tiny_bundle, capsys):
    assert main(["bench", tiny_bundle] + FAST) == 0
    out = capsys.readouterr().out
    for text in ["FPS", "p99 ms", "CV %", "parity dB", "w0.25", "w0.5", "w1", "switch w0.25 -> w1", "environment:"]:
        assert text in out


def test_bench_json(tiny_bundle, capsys):
    assert main(["bench", tiny_bundle, "--variant", "0.5", "--variant", "w0.5", "--variant", "w1", "--threads", "1",
                 "--json"] + FAST) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in result["results"]] == ["w0.5", "w1"]
    row = result["results"][0]
    assert row["runs"] == 5 and row["warmup_runs"] >= 2 and row["fps"] > 0 and row["parity_psnr_db"] == 90.0
    assert row["median_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert [(s["from"], s["to"]) for s in result["switch"]] == [("w0.5", "w1"), ("w1", "w0.5")]
    assert result["protocol"] == {"batch": 1, "warmup": 2, "warmup_s": 0.0, "runs": 5}
    assert result["environment"]["threads"] == 1 and result["providers"] == ["CPUExecutionProvider"]


def test_bench_user_errors(tiny_bundle, capsys):
    assert main(["bench", tiny_bundle, "--runs", "0"]) == 2
    assert "--runs must be at least 1" in capsys.readouterr().err
    assert main(["bench", tiny_bundle, "--variant", "w3"] + FAST) == 2
    assert "no variant 'w3'" in capsys.readouterr().err
