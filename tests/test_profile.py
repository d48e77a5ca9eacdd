"""`edgegan profile` (sweep, power sampling with idle baseline, JSON/CSV/PNG, FPS table), the Pareto
front, and the protocol's statistics: device timers, sustained mode and throttling."""

import csv
import json
import os

import pytest

from edgegan.cli import main
from edgegan.errors import EdgeganError
from edgegan.profile import Mode, PowerSampler, pareto_front, plan_modes, sweep
from edgegan.profile.sweep import default_thread_budgets
from edgegan.runtime import load_bundle
from edgegan.runtime.fps import measure, measure_sustained, throttling
from edgegan.runtime.power import PowerSource, PowerState, detect_source

FAST = ["--warmup", "2", "--warmup-s", "0", "--runs", "5", "--idle-s", "0.05", "--sample-interval", "0.01",
        "--power-window-s", "0", "--quiet"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeClock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# -- protocol statistics ----------------------------------------------------------------------------

class FakeTimer(object):
    """A device timer whose elapsed time differs from the host's (the host adds launch overhead)."""

    def __init__(self, clock, device_s):
        self.clock, self.device_s, self.calls = clock, device_s, []

    def start(self):
        self.calls.append("start")

    def stop(self):
        self.calls.append("stop")

    def elapsed_s(self):
        return self.device_s


def test_measure_with_a_device_timer():
    clock = FakeClock()
    timer = FakeTimer(clock, 0.002)

    def work():
        clock.now += 0.005

    stats = measure(work, warmup=1, warmup_s=0.0, runs=4, clock=clock, timer=timer)
    assert stats["median_ms"] == pytest.approx(2.0) and stats["latency_clock"] == "device"
    assert stats["fps"] == pytest.approx(200.0)  # FPS stays frames / host wall time
    assert timer.calls == ["start", "stop"] * 4
    assert measure(work, warmup=0, warmup_s=0.0, runs=2, clock=clock)["latency_clock"] == "host"


def test_sustained_mode_flags_throttling():
    clock = FakeClock()

    def work():  # 10 ms per frame for the first 60 s, then the clocks drop: 20 ms
        clock.now += 0.010 if clock.now < 60.0 else 0.020

    probes = []
    stats = measure_sustained(work, duration_s=120.0, window_s=30.0, warmup=0, warmup_s=0.0, clock=clock,
                              bucket_s=20.0, probe=lambda: probes.append(clock.now) or {"t": clock.now})
    assert stats["first"]["fps"] == pytest.approx(100.0, rel=0.01)
    assert stats["last"]["fps"] == pytest.approx(50.0, rel=0.01)
    assert stats["throttling"]["throttled"] and stats["throttling"]["ratio"] == pytest.approx(0.5, rel=0.02)
    assert [round(b["fps"]) for b in stats["series"]] == [100, 100, 100, 50, 50, 50]
    assert stats["probes"]["start"]["t"] == 0.0 and stats["probes"]["end"]["t"] >= 120.0
    steady = measure_sustained(lambda: setattr(clock, "now", clock.now + 0.01), duration_s=10, window_s=60,
                               warmup=0, warmup_s=0.0, clock=clock)
    assert steady["window_s"] == 5.0 and not steady["throttling"]["throttled"]
    assert throttling(100.0, 95.0)["throttled"] is False and throttling(100.0, 85.0)["throttled"] is True
    with pytest.raises(ValueError):
        measure_sustained(lambda: None, duration_s=0)


# -- modes, sampling, Pareto -------------------------------------------------------------------------

def test_plan_modes():
    assert [(m.key, m.how, m.threads) for m in plan_modes(emulate_threads=[1, 2, 2])] == [
        ("t1", "threads", 1), ("t2", "threads", 2)]
    assert [(m.key, m.how, m.nvpmodel_id) for m in plan_modes(nvpmodel_ids=[0, 1])] == [
        ("0", "nvpmodel", 0), ("1", "nvpmodel", 1)]
    assert [(m.key, m.how) for m in plan_modes(mode="balanced")] == [("balanced", "current")]
    assert default_thread_budgets(8) == [1, 4, 8] and default_thread_budgets(1) == [1]
    with pytest.raises(EdgeganError, match="choose one of"):
        plan_modes(emulate_threads=[1], mode="x")
    with pytest.raises(EdgeganError, match="at least 1"):
        plan_modes(emulate_threads=[0])


class Counter(PowerSource):
    """A counter-like meter: every read returns the next watts value."""

    name = "counter"

    def __init__(self, values):
        self.values, self.n = list(values), 0

    def read(self):
        value = self.values[min(self.n, len(self.values) - 1)]
        self.n += 1
        return PowerState(self.name, watts=value, watts_source="counter")


def test_power_sampler_time_weighted_mean():
    clock = FakeClock()
    sampler = PowerSampler(Counter([99.0, 2.0, 4.0, None]), interval_s=1.0, clock=clock)
    sampler._samples = []
    for t, w in [(0.0, 99.0), (1.0, 2.0), (4.0, 4.0), (5.0, None)]:  # the first reading opens the window
        clock.now = t
        sampler._samples.append((t, w))
    summary = sampler.summary()
    assert summary["watts"] == pytest.approx((2.0 * 1 + 4.0 * 3) / 4) and summary["samples"] == 2
    live = PowerSampler(detect_source("manual:watts=5"), interval_s=0.01)
    idle = live.measure_idle(0.05)
    assert idle["watts"] == pytest.approx(5.0) and idle["samples"] >= 2 and idle["sources"] == ["manual"]
    none = PowerSampler(detect_source("none"), interval_s=0.01).measure_idle(0.03)
    assert none["watts"] is None and "fallback" in none["notes"][0]


def test_pareto_front():
    rows = [{"fps": 100, "quality": 20, "energy_mj": 5, "width": 1},
            {"fps": 300, "quality": 15, "energy_mj": 2, "width": 0.5},
            {"fps": 90, "quality": 19, "energy_mj": 6, "width": 1},   # dominated by the first
            {"fps": 300, "quality": 15, "energy_mj": 3, "width": 0.5}]  # dominated by the second (energy)
    front = pareto_front(rows)
    assert [r["pareto"] for r in rows] == [True, True, False, False] and len(front) == 2
    no_energy = [{"fps": 10, "quality": None, "width": 1.0}, {"fps": 5, "quality": None, "width": 0.5}]
    pareto_front(no_energy)
    assert [r["pareto"] for r in no_energy] == [True, False]  # width stands in for quality


# -- the sweep and the command ---------------------------------------------------------------------

class Busy(PowerSource):
    """3 W idle, 7 W while the sweep is inside a timed window (the sampler runs then)."""

    name = "busy"

    def __init__(self):
        self.watts = 3.0

    def read(self):
        return PowerState(self.name, watts=self.watts, watts_source="busy")


def test_sweep_energy_per_frame_subtracts_the_idle_baseline(tiny_bundle, monkeypatch):
    source = Busy()
    real_measure_idle = PowerSampler.measure_idle

    def idle_then_busy(self, seconds):
        source.watts = 3.0
        summary = real_measure_idle(self, seconds)
        source.watts = 7.0
        return summary

    monkeypatch.setattr(PowerSampler, "measure_idle", idle_then_busy)
    usable = sorted(os.sched_getaffinity(0))
    result = sweep(tiny_bundle, [Mode("t1", how="threads", threads=1)], variants=["w0.25", 1.0], warmup=2,
                   warmup_s=0.0, runs=5, power_source=source, idle_s=0.03, sample_interval_s=0.01,
                   power_window_s=0.05, progress=False)
    assert [r["variant"] for r in result["rows"]] == ["w0.25", "w1"]
    row = result["rows"][0]
    assert row["idle_w"] == pytest.approx(3.0) and row["watts"] == pytest.approx(7.0)
    assert row["active_w"] == pytest.approx(4.0)
    assert row["energy_mj"] == pytest.approx(7.0 / row["fps"] * 1e3)
    assert row["active_energy_mj"] == pytest.approx(4.0 / row["fps"] * 1e3)
    # the window was stretched for the meter (estimated from the warm-up, so allow for a loaded machine)
    assert row["wall_s"] >= 0.05 * 0.25 and row["runs"] >= 5
    assert row["switch_ms"] >= 0 and row["first_inference_ms"] > 0 and row["warmup_runs"] >= 3
    assert result["power"]["available"] and result["modes"][0]["cpus"] == (usable[:1] if len(usable) > 1 else None)
    assert sorted(os.sched_getaffinity(0)) == usable  # the pinning was undone
    assert result["fps_table"]["modes"]["t1"]["w1"] == pytest.approx(result["rows"][1]["fps"], rel=1e-3)
    assert result["modes"][0]["environment"]["power"]["source"] == "busy"


def test_cli_profile_writes_json_csv_pngs_and_the_table(tiny_bundle_copy, tmp_path, capsys):
    out = str(tmp_path / "prof")
    args = ["profile", tiny_bundle_copy, "--emulate-threads", "1,2", "--out", out, "--write-table",
            "--target-fps", "100", "--power-source", "manual:watts=4.5"] + FAST
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "mode t1: 1 thread" in text and "mJ/frame" in text and "stored the FPS table" in text
    names = sorted(os.listdir(out))
    assert names == ["energy_per_frame.png", "fps_vs_width.png", "pareto.png", "profile.csv", "profile.json"]
    for name in names:
        if name.endswith(".png"):
            with open(os.path.join(out, name), "rb") as f:
                assert f.read(8) == PNG_MAGIC
            assert os.path.getsize(os.path.join(out, name)) > 10000
    with open(os.path.join(out, "profile.json")) as f:
        result = json.load(f)
    assert [(r["mode"], r["variant"]) for r in result["rows"]] == [
        ("t1", "w0.25"), ("t1", "w0.5"), ("t1", "w1"), ("t2", "w0.25"), ("t2", "w0.5"), ("t2", "w1")]
    assert result["power"]["available"] and all(r["energy_mj"] > 0 for r in result["rows"])
    assert result["table_written"] and result["files"][-1] == "pareto.png"
    assert all(m["environment"]["threads"] == m["threads"] for m in result["modes"])
    with open(os.path.join(out, "profile.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and float(rows[0]["fps"]) > 0 and rows[0]["pareto"] in ("True", "False")
    bundle = load_bundle(tiny_bundle_copy, verify=True)
    assert set(bundle.manifest["fps_table"]["modes"]) == {"t1", "t2"}
    assert bundle.manifest["policy"]["target_fps"] == 100.0
    # nothing is overwritten without --force
    assert main(args) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(args[:4] + ["--out", str(tmp_path / "other"), "--write-table"] + FAST) == 2
    assert "already holds an FPS table" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0


def test_cli_profile_without_a_power_meter(tiny_bundle, tmp_path, capsys):
    out = str(tmp_path / "prof")
    assert main(["profile", tiny_bundle, "--mode", "balanced", "--variant", "w0.5", "--out", out,
                 "--power-source", "none", "--no-plots", "--json"] + FAST) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["power"]["available"] is False and result["rows"][0]["energy_mj"] is None
    assert result["rows"][0]["mode"] == "balanced" and result["plots_note"] == "plots not requested"
    assert sorted(os.listdir(out)) == ["profile.csv", "profile.json"]
    plots = str(tmp_path / "plots")
    assert main(["profile", tiny_bundle, "--emulate-threads", "1", "--variant", "w1", "--variant", "w0.25",
                 "--out", plots, "--power-source", "none"] + FAST) == 0
    assert "power: unavailable" in capsys.readouterr().out
    assert os.path.getsize(os.path.join(plots, "energy_per_frame.png")) > 10000


@pytest.mark.parametrize("args,message", [
    (["--runs", "0"], "--runs must be at least 1"),
    (["--target-fps", "30"], "--target-fps goes with --write-table"),
    (["--power-source", "jetson"], "not a Jetson"),
    (["--variant", "w7"], "no variant 'w7'"),
    (["--idle-s", "-1"], "cannot be negative"),
])
def test_cli_profile_user_errors(tiny_bundle, tmp_path, capsys, args, message):
    if message == "not a Jetson" and os.path.exists("/var/lib/nvpmodel/status"):
        pytest.skip("this machine is a Jetson")
    assert main(["profile", tiny_bundle, "--out", str(tmp_path / "p"), "--emulate-threads", "1"] + FAST + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not os.path.exists(str(tmp_path / "p"))


def test_bench_sustained_mode(tiny_bundle, capsys):
    assert main(["bench", tiny_bundle, "--variant", "w0.25", "--sustained", "0.4", "--window-s", "0.1",
                 "--warmup", "2", "--warmup-s", "0"]) == 0
    out = capsys.readouterr().out
    assert "w0.25 sustained 0.4 s: first 0.1 s" in out and "throttl" in out.lower()
    assert main(["bench", tiny_bundle, "--variant", "w1", "--sustained", "0.2", "--window-s", "0.05", "--warmup", "1",
                 "--warmup-s", "0", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["throttling"]["first_fps"] > 0 and row["series"] and "temperatures_c" in row["probes"]["end"]
    assert main(["bench", tiny_bundle, "--sustained", "-1"]) == 2
    assert "--sustained and --window-s must be positive" in capsys.readouterr().err


def test_sustained_probes_tell_clocks_and_temperatures():
    from edgegan.runtime.fps import _probe_change

    probes = {"start": {"clocks_mhz": {"cpu0": 1500.0, "gpu": 900.0}, "temperatures_c": {"cpu": 40.0, "gpu": 38.0}},
              "end": {"clocks_mhz": {"cpu0": 1200.0, "gpu": 720.0}, "temperatures_c": {"cpu": 71.5, "gpu": 69.0}}}
    assert _probe_change(probes) == {"clock_ratio": pytest.approx(0.8), "temp_rise_c": pytest.approx(31.5)}
    assert _probe_change({"start": {}, "end": {}}) == {"clock_ratio": None, "temp_rise_c": None}
