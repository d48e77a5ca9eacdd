"""Width policy choices, the live monitor, the FPS table in the manifest, and `edgegan bench --policy`."""

import json
import os
import threading
import time

import numpy as np
import pytest

from edgegan.cli import main
from edgegan.errors import BundleError, EdgeganError
from edgegan.profile import write_fps_table
from edgegan.runtime import Runtime, load_bundle
from edgegan.runtime.policy import Policy, PolicyMonitor, run_live
from edgegan.runtime.power import PowerSource, PowerState
from edgegan.runtime.power.scripted import ManualSource

TABLE = {"modes": {"0": {"w0.25": 900.0, "w0.5": 400.0, "w1": 120.0},
                   "1": {"w0.25": 300.0, "w0.5": 110.0, "w1": 35.0}}, "default_mode": "0"}


def state(**fields):
    return PowerState("test", **fields)


def edit_manifest(bundle_dir, **changes):
    path = os.path.join(bundle_dir, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    with open(path, "w") as f:
        json.dump(manifest, f)
    return load_bundle(bundle_dir)


def test_modes_map_to_variants(tiny_bundle):
    policy = Policy.from_bundle(load_bundle(tiny_bundle))
    assert policy.choose(state(mode="0")) == "w1"
    assert policy.choose(state(mode="1", mode_name="5W")) == "w0.5"
    assert policy.decide(state(mode="7")) == ("w1", "default (mode 7 not in the policy)")
    assert policy.decide(state()) == ("w1", "default (mode unknown)")
    assert policy.to_dict() == {"default": "w1", "modes": {"0": "w1", "1": "w0.5"}}


def test_mode_names_and_platform_profiles_are_keys_too(tiny_bundle_copy):
    bundle = edit_manifest(tiny_bundle_copy, policy={"default": 1.0, "modes": {"5W": 0.5, "low-power": "w0.25"}})
    policy = Policy.from_bundle(bundle)
    assert policy.choose(state(mode="1", mode_name="5W")) == "w0.5"  # widths resolve to names
    assert policy.choose(state(mode="low-power", platform_profile="low-power")) == "w0.25"


def test_battery_thresholds_and_on_battery_cap(tiny_bundle_copy):
    bundle = edit_manifest(tiny_bundle_copy, policy={
        "default": "w1", "modes": {"0": "w1", "1": "w0.5"},
        "battery": [{"below": 50, "variant": "w0.5"}, {"below": 20, "variant": "w0.25"}]})
    policy = Policy.from_bundle(bundle)
    assert policy.choose(state(mode="0", on_ac=False, battery_percent=80)) == "w1"
    assert policy.decide(state(mode="0", on_ac=False, battery_percent=45)) == ("w0.5", "mode 0; battery 45% < 50%")
    assert policy.choose(state(mode="0", on_ac=False, battery_percent=15)) == "w0.25"
    assert policy.choose(state(mode="0", on_ac=True, battery_percent=15)) == "w1"  # charging: no cap
    assert policy.choose(state(mode="0", battery_percent=15)) == "w0.25"  # AC unknown: be careful
    assert policy.choose(state(mode="1", on_ac=False, battery_percent=45)) == "w0.5"  # caps never widen
    bundle = edit_manifest(tiny_bundle_copy, policy={"default": "w1", "on_battery": "w0.5"})
    policy = Policy.from_bundle(bundle)
    assert policy.decide(state(on_ac=False)) == ("w0.5", "default (mode unknown); on battery")
    assert policy.choose(state(on_ac=None)) == "w1"


def test_target_fps_picks_the_widest_variant_fast_enough(tiny_bundle_copy):
    bundle = edit_manifest(tiny_bundle_copy, policy={"default": "w1", "modes": {"0": "w1", "1": "w0.5"},
                                                     "target_fps": 100, "battery": [{"below": 20, "variant": "w0.25"}]},
                           fps_table=TABLE)
    policy = Policy.from_bundle(bundle)
    assert policy.decide(state(mode="0")) == ("w1", "widest at >= 100 FPS in mode 0 (120.0 FPS measured)")
    assert policy.choose(state(mode="1")) == "w0.5"
    assert policy.choose(state()) == "w1"  # no mode known: the table's default mode
    assert policy.choose(state(mode="3")) == "w1"  # a mode the table lacks: the modes map, then default
    assert Policy.from_bundle(bundle, target_fps=500).decide(state(mode="1")) == (
        "w0.25", "none reaches 500 FPS in mode 1; fastest (300.0 FPS)")
    assert Policy.from_bundle(bundle, target_fps=300).choose(state(mode="0")) == "w0.5"
    assert policy.choose(state(mode="0", on_ac=False, battery_percent=10)) == "w0.25"


@pytest.mark.parametrize("policy,message", [
    ({"default": "w3"}, "default names variant 'w3'"),
    ({"default": "w1", "modes": {"1": 0.3}}, "mode 1 names variant 0.3"),
    ({"default": "w1", "battery": [{"below": 120, "variant": "w1"}]}, "percentage in (0, 100]"),
    ({"default": "w1", "battery": [{"variant": "w1"}]}, "battery[0] must be"),
    ({"default": "w1", "target_fps": -3}, "target_fps must be a positive number"),
])
def test_bad_policies_are_refused(tiny_bundle_copy, policy, message):
    bundle = edit_manifest(tiny_bundle_copy, policy=policy)
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        Policy.from_bundle(bundle)


def test_no_policy_means_the_default_variant(tiny_bundle_copy):
    bundle = edit_manifest(tiny_bundle_copy, policy=None)
    assert Policy.from_bundle(bundle).choose(state(mode="1")) == "w1"


# -- the monitor -----------------------------------------------------------------------------------

def test_monitor_poll_switches_and_logs(tiny_bundle):
    source = ManualSource("0")
    seen = []
    with Runtime(tiny_bundle) as rt:
        monitor = PolicyMonitor(rt, source, Policy.from_bundle(rt), on_switch=seen.append)
        assert monitor.poll() is None and rt.variant == "w1"
        source.set(mode="1")
        entry = monitor.poll()
        assert rt.variant == "w0.5" and seen == [entry] == monitor.log
        assert (entry["from"], entry["to"], entry["why"]) == ("w1", "w0.5", "mode 1")
        assert entry["reason"]["mode"] == "1" and entry["reason"]["source"] == "manual"
        assert 0 <= entry["switch_ms"] < 1.0 and entry["time"] > 0
        assert monitor.poll() is None and len(monitor.log) == 1


class Broken(PowerSource):
    name = "broken"

    def read(self):
        raise RuntimeError("sensor gone")


def test_monitor_keeps_the_variant_when_the_source_fails(tiny_bundle):
    with Runtime(tiny_bundle, variant="w0.25") as rt:
        monitor = PolicyMonitor(rt, Broken(), Policy.from_bundle(rt))
        assert monitor.poll() is None and monitor.errors == 1 and rt.variant == "w0.25"


def test_monitor_background_thread(tiny_bundle):
    source = ManualSource("0")
    with Runtime(tiny_bundle, variant="w0.25") as rt:
        with PolicyMonitor(rt, source, Policy.from_bundle(rt), interval_s=0.01) as monitor:
            assert rt.variant == "w1"  # start() evaluates at once
            source.set(mode="1")
            deadline = time.time() + 5
            while rt.variant != "w0.5" and time.time() < deadline:
                rt(np.zeros((1, 1, 32, 32), np.float32))
            assert rt.variant == "w0.5"
        assert not monitor.running
        assert [(e["from"], e["to"]) for e in monitor.log] == [("w0.25", "w1"), ("w1", "w0.5")]
        with pytest.raises(ValueError):
            PolicyMonitor(rt, source, Policy.from_bundle(rt), interval_s=0)


class Scripted(PowerSource):
    """Flips the mode every ``every`` reads: a power mode change mid-stream."""

    name = "scripted"

    def __init__(self, modes, every):
        self.modes, self.every, self.reads = modes, every, 0

    def read(self):
        mode = self.modes[(self.reads // self.every) % len(self.modes)]
        self.reads += 1
        return PowerState(self.name, mode=mode)


def test_run_live_switches_per_frame_and_times_the_first_frame(tiny_bundle):
    with Runtime(tiny_bundle) as rt:
        monitor = PolicyMonitor(rt, Scripted(["0", "1"], 25), Policy.from_bundle(rt))
        x = np.zeros((1, 1, 32, 32), np.float32)
        result = run_live(rt, monitor, x, frames=100, per_frame=True)
    assert result["frames"] == 100 and result["polls"] == 100
    assert [(e["from"], e["to"]) for e in result["switches"]] == [("w1", "w0.5"), ("w0.5", "w1"), ("w1", "w0.5")]
    assert [e["frame"] for e in result["switches"]] == [26, 51, 76]
    assert all(e["first_frame_ms"] > 0 and e["switch_ms"] < 1.0 for e in result["switches"])
    assert result["variants"]["w1"]["frames"] == 50 and result["variants"]["w0.5"]["frames"] == 50
    with pytest.raises(ValueError):
        run_live(rt, monitor, x)


def test_bench_policy_follows_a_file_that_flips_modes_mid_stream(tiny_bundle, tmp_path, capsys):
    path = str(tmp_path / "mode")
    with open(path, "w") as f:
        f.write("0\n")
    stop = threading.Event()

    def flip():
        n = 0
        while not stop.wait(0.15):
            n += 1
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % (n % 2))
            os.replace(tmp, path)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        assert main(["bench", tiny_bundle, "--policy", "--power-source", "file:" + path, "--duration", "1.2",
                     "--interval", "0.02", "--warmup", "2", "--warmup-s", "0", "--json"]) == 0
    finally:
        stop.set()
        flipper.join()
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] > 50 and result["power_source"] == "file>none"
    assert set(result["variants"]) == {"w1", "w0.5"}
    switches = result["switches"]
    assert len(switches) >= 3
    assert all(s["to"] in ("w1", "w0.5") and s["switch_ms"] < 1.0 for s in switches)
    assert all(s["reason"]["source"] == "file" for s in switches)
    assert main(["bench", tiny_bundle, "--policy", "--power-source", "manual:1", "--duration", "0.2",
                 "--warmup", "1", "--warmup-s", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 switch:" in out and "switch cost: median" in out
    assert [line.split()[2:4] for line in out.splitlines() if line.endswith("mode 1")] == [["w1", "w0.5"]]
    assert main(["bench", tiny_bundle, "--policy", "--power-source", "bogus", "--duration", "0.2"]) == 2
    assert "unknown power source 'bogus'" in capsys.readouterr().err


# -- the FPS table in the manifest ------------------------------------------------------------------

def test_write_fps_table_keeps_the_checksums(tiny_bundle_copy):
    before = load_bundle(tiny_bundle_copy)
    shas = [v["sha256"] for v in before.variants]
    manifest = write_fps_table(tiny_bundle_copy, {"fps_table": TABLE}, target_fps=100)
    assert manifest["fps_table"] == TABLE and manifest["policy"]["target_fps"] == 100.0
    after = load_bundle(tiny_bundle_copy, verify=True)
    assert [v["sha256"] for v in after.variants] == shas and after.manifest["files"] == before.manifest["files"]
    assert not [n for n in os.listdir(tiny_bundle_copy) if n.startswith(".")]  # no temporary file left
    assert Policy.from_bundle(after).choose(state(mode="1")) == "w0.5"
    with pytest.raises(EdgeganError, match="already holds an FPS table"):
        write_fps_table(tiny_bundle_copy, TABLE)
    write_fps_table(tiny_bundle_copy, {"modes": {"0": {"w1": 50.0}}}, force=True)
    with pytest.raises(EdgeganError, match="no variant 'w9'"):
        write_fps_table(tiny_bundle_copy, {"modes": {"0": {"w9": 50.0}}}, force=True)
    with pytest.raises(EdgeganError, match="no FPS table"):
        write_fps_table(tiny_bundle_copy, {"modes": {}}, force=True)


def test_manifest_policy_from_a_device_profile():
    from edgegan.runtime.policy import manifest_policy

    variants = [{"name": "w0.25", "width": 0.25}, {"name": "w0.5", "width": 0.5}, {"name": "w1", "width": 1.0}]
    assert manifest_policy({"default": 1.0, "modes": {0: 1.0, 1: 0.5}}, variants) == {
        "default": "w1", "modes": {"0": "w1", "1": "w0.5"}}  # what build writes today
    policy = manifest_policy({"default": 0.75, "modes": {"1": 0.1}, "battery": [{"below": 20, "width": 0.25}],
                              "on_battery": 0.5, "target_fps": 30}, variants)
    assert policy == {"default": "w0.5", "modes": {"1": "w0.25"}, "battery": [{"below": 20.0, "variant": "w0.25"}],
                      "on_battery": "w0.5", "target_fps": 30.0}
