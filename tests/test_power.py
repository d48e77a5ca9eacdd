"""Power sources on recorded sysfs trees and command outputs (tests/fixtures/power), including missing,
malformed and vanishing sensors; the environment record's temperatures and CPUs."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections import namedtuple

import pytest

from edgegan.runtime import fps
from edgegan.runtime.power import (FallbackSource, NullSource, PowerError, PowerSource, PowerState,
                                   detect_source)
from edgegan.runtime.power.battery import PsutilSource
from edgegan.runtime.power.jetson import (JetsonSource, find_rails, parse_nvpmodel, parse_nvpmodel_conf,
                                          parse_nvpmodel_status, parse_tegrastats)
from edgegan.runtime.power.linux import LinuxSource
from edgegan.runtime.power.scripted import ManualSource, parse_state_text

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "power")


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def read(*parts):
    with open(fixture(*parts)) as f:
        return f.read()


def tree_copy(name, tmp_path):
    return shutil.copytree(fixture(name), str(tmp_path / name))


class FakeClock(object):
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


# -- nvpmodel and tegrastats ---------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [
    ("nano_maxn.txt", {"name": "MAXN", "id": 0}),
    ("nano_5w.txt", {"name": "5W", "id": 1}),
    ("orin_nx_jp5.txt", {"name": "15W", "id": 2}),
    ("agx_xavier_jp4.txt", {"name": "MODE_30W_ALL", "id": 3}),
    ("garbage.txt", None),
])
def test_parse_nvpmodel_outputs(name, expected):
    assert parse_nvpmodel(read("nvpmodel", name)) == expected
    assert fps.parse_nvpmodel is parse_nvpmodel  # the name fps.py always exported


def test_parse_nvpmodel_conf_and_status():
    assert parse_nvpmodel_conf(read("nano_jp4", "etc", "nvpmodel.conf")) == {0: "MAXN", 1: "5W", "default": 0}
    assert parse_nvpmodel_status("pmode:0001") == 1
    assert parse_nvpmodel_status("pmode:0002 fmode:quiet\n") == 2
    assert parse_nvpmodel_status("pmode:garbage") is None and parse_nvpmodel_status("") is None


def test_tegrastats_nano_jetpack4():
    idle, busy = [parse_tegrastats(line) for line in read("tegrastats", "nano_jp4.txt").splitlines()]
    assert idle["rails_mw"] == {"POM_5V_IN": (2640, 2640), "POM_5V_GPU": (79, 79), "POM_5V_CPU": (449, 449)}
    assert idle["watts"] == pytest.approx(2.64) and idle["watts_rail"] == "POM_5V_IN"  # not the sum of rails
    assert busy["cpu"] == [{"load": 18, "mhz": 918}, {"load": 9, "mhz": 918}, None, None]  # 5W: two cores off
    assert (busy["gpu_load"], busy["gpu_mhz"], busy["emc_load"]) == (99, 640, 21)
    assert busy["temps_c"]["GPU"] == 29.5 and busy["ram_mb"] == (1741, 3964)
    assert "RAM" not in busy["rails_mw"] and "SWAP" not in busy["rails_mw"]


def test_tegrastats_orin_jetpack5():
    idle, busy = [parse_tegrastats(line) for line in read("tegrastats", "orin_nano_jp5.txt").splitlines()]
    assert idle["rails_mw"]["VDD_IN"] == (3926, 3926) and idle["watts"] == pytest.approx(3.926)
    assert "GPU" not in idle["temps_c"] and "CV0" not in idle["temps_c"]  # -256C: sensor off
    assert busy["gpu_mhz"] == 624 and busy["temps_c"]["GPU"] == 47.2
    assert busy["watts"] == pytest.approx(7.412) and len(busy["cpu"]) == 6 and busy["cpu"][4] is None


def test_tegrastats_xavier_and_a_board_without_input_rail():
    nx = parse_tegrastats(read("tegrastats", "xavier_nx_jp4.txt"))
    assert nx["watts"] == pytest.approx(4.351) and nx["emc_load"] == 0
    agx = parse_tegrastats(read("tegrastats", "agx_xavier_jp4.txt"))
    assert set(agx["rails_mw"]) == {"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}
    # no input rail: the module's power is the sum of its rails (0 + 311 + 932 + 0 + 155 + 1747 mW), labelled so
    assert agx["watts"] == pytest.approx(3.145)
    assert agx["watts_rail"] == "sum:GPU+CPU+SOC+CV+VDDRQ+SYS5V"
    assert parse_tegrastats("garbage line")["watts"] is None


def test_tegrastats_agx_orin_skips_unconnected_channels_in_its_sum():
    line = ("RAM 2850/30536MB CPU [0%@729,0%@729] VDD_GPU_SOC 2796mW/2796mW VDD_CPU_CV 397mW/397mW "
            "VIN_SYS_5V0 2523mW/2523mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW")
    info = parse_tegrastats(line)
    assert "NC" not in info["rails_mw"]
    assert info["watts"] == pytest.approx(2.796 + 0.397 + 2.523 + 0.301)
    assert info["watts_rail"] == "sum:VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO"


# -- Jetson sysfs ----------------------------------------------------------------------------------

def test_jetson_nano_jetpack4_iio_rails_and_mode():
    source = JetsonSource(fixture("nano_jp4"), nvpmodel=None, tegrastats=None)
    state = source.read()
    assert (state.source, state.mode, state.mode_name) == ("jetson", "1", "5W")
    assert state.rails == {"POM_5V_IN": 4.867, "POM_5V_GPU": 1.908, "POM_5V_CPU": 0.602}
    assert state.watts == pytest.approx(4.867) and state.watts_source == "rail:POM_5V_IN"
    assert state.watts != pytest.approx(sum(state.rails.values()))
    assert state.on_ac is None and state.notes == []
    json.dumps(state.to_dict())


def test_jetson_orin_jetpack5_hwmon_rails_are_volts_times_amps():
    state = JetsonSource(fixture("orin_nano_jp5"), nvpmodel=None, tegrastats=None).read()
    assert (state.mode, state.mode_name) == ("0", "15W")
    assert set(state.rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}  # shunt-sum channel 7 skipped
    assert state.watts == pytest.approx(5.064 * 1.464) and state.watts_source == "rail:VDD_IN"


def test_jetson_without_input_rail_totals_the_sum_of_its_rails():
    """AGX Orin (and AGX Xavier) have no POM_5V_IN / VDD_IN: the module's power is the sum of every rail, as
    jetson_stats computes it, labelled as a sum."""
    rails = find_rails(fixture("agx_orin_jp5"))
    assert sorted(r.name for r in rails) == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]  # NC out
    state = JetsonSource(fixture("agx_orin_jp5"), nvpmodel=None, tegrastats=None).read()
    expected = (4984 * 1204 + 4992 * 402 + 4976 * 640 + 4992 * 120) / 1e6   # mV × mA of each rail
    assert state.watts == pytest.approx(expected) and state.watts == pytest.approx(sum(state.rails.values()))
    assert state.watts_source == "sum:VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO"
    assert state.mode_name == "MODE_50W" and state.notes == []


def test_jetson_sum_needs_every_rail(tmp_path):
    import shutil

    root = str(tmp_path / "agx")
    shutil.copytree(fixture("agx_orin_jp5"), root)
    hwmon = os.path.join(root, "sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon2")
    with open(os.path.join(hwmon, "curr2_input"), "w") as f:
        f.write("n/a\n")  # VDDQ_VDD2_1V8AO unreadable: a sum of the rest would be too low
    state = JetsonSource(root, nvpmodel=None, tegrastats=None).read()
    assert state.watts is None and state.watts_source is None and "VDDQ_VDD2_1V8AO" not in state.rails
    assert any("summed only when all of them are read" in n and "VDDQ_VDD2_1V8AO" in n for n in state.notes)


def test_jetson_nano_never_sums_even_without_its_input_rail(tmp_path):
    import shutil

    root = str(tmp_path / "nano")
    shutil.copytree(fixture("nano_jp4"), root)
    iio = os.path.join(root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0")
    for name in ("in_power0_input", "in_voltage0_input", "in_current0_input"):  # POM_5V_IN unreadable
        os.remove(os.path.join(iio, name))
    state = JetsonSource(root, nvpmodel=None, tegrastats=None).read()
    assert set(state.rails) == {"POM_5V_GPU", "POM_5V_CPU"}
    assert state.watts is None and state.watts_source is None   # not GPU + CPU: they are parts of POM_5V_IN
    assert any("input rail POM_5V_IN could not be read" in n and "not summed" in n for n in state.notes)


def test_jetson_malformed_and_missing_values(tmp_path):
    state = JetsonSource(fixture("broken"), nvpmodel=None, tegrastats=None).read()
    assert state.watts == pytest.approx(4.0)  # in_power0_input "n/a": falls back to 5000 mV x 800 mA
    assert "POM_5V_GPU" not in state.rails and state.mode is None
    assert any("malformed" in n and "n/a" in n for n in state.notes)
    assert any("pmode:garbage" in n for n in state.notes)


def test_a_rail_that_vanishes_mid_run_does_not_stop_it(tmp_path):
    root = tree_copy("nano_jp4", tmp_path)
    source = detect_source("jetson", root=root)
    assert source.read().watts == pytest.approx(4.867)
    iio = os.path.join(root, "sys", "bus", "i2c", "drivers", "ina3221x")
    shutil.rmtree(iio)  # the driver unloads
    os.remove(os.path.join(root, "var", "lib", "nvpmodel", "status"))
    state = source.read()
    assert state.watts is None and state.mode is None and state.source == "jetson"


def test_jetson_falls_back_to_tegrastats_without_rails(tmp_path):
    script = tmp_path / "tegrastats"
    script.write_text("#!/bin/sh\ncat %s\nsleep 30\n" % fixture("tegrastats", "orin_nano_jp5.txt"))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    root = tree_copy("orin_nano_jp5", tmp_path)
    shutil.rmtree(os.path.join(root, "sys"))
    source = JetsonSource(root, nvpmodel=None, tegrastats=str(script))
    try:
        deadline = time.time() + 10
        state = source.read()
        while state.watts is None and time.time() < deadline:
            time.sleep(0.05)
            state = source.read()
        assert state.watts == pytest.approx(7.412) and state.extra["rails_from"] == "tegrastats"
    finally:
        source.close()
    assert source._tegrastats is None


# -- Linux laptops ---------------------------------------------------------------------------------

def test_laptop_on_battery_power_supply_and_platform_profile():
    state = LinuxSource(fixture("laptop_battery")).read()
    assert state.on_ac is False
    assert state.battery_percent == 57.0  # the mouse battery (scope Device) is not the laptop's
    assert state.platform_profile == "low-power" and state.mode == "low-power"
    assert state.watts == pytest.approx(9.856) and state.watts_source == "battery"  # RAPL needs a second read


def test_laptop_charging_current_times_voltage():
    state = LinuxSource(fixture("laptop_charging")).read()
    assert state.on_ac is True and state.battery_percent == pytest.approx(75.0)  # charge_now / charge_full
    assert state.rails["battery"] == pytest.approx(1.5 * 12.6)
    assert state.watts is None  # charging power is not the system's draw; no RAPL here
    assert state.platform_profile is None and state.mode is None


def _set(root, zone, value):
    with open(os.path.join(root, "sys", "class", "powercap", zone, "energy_uj"), "w") as f:
        f.write("%d\n" % value)


def test_rapl_watts_and_wraparound(tmp_path):
    root = tree_copy("laptop_battery", tmp_path)
    clock = FakeClock()
    top = 262143328850
    _set(root, "intel-rapl:0", top - 5000000)  # 5 J before the counter wraps
    source = LinuxSource(root, clock=clock)
    assert [z.name for z in source.rapl] == ["package-0"]  # package preferred over psys; sub-zones not summed
    clock.now += 2.0
    _set(root, "intel-rapl:0", top - 1000000)
    state = source.read()
    assert state.watts == pytest.approx(2.0) and state.watts_source == "rapl:package"
    clock.now += 1.0
    _set(root, "intel-rapl:0", 2999999)  # wrapped: 1 J + 1 uJ to the top, then 3 J
    assert source.read().watts == pytest.approx(4.000001)
    clock.now += 0.001  # too soon to measure: the previous value stands
    assert source.read().watts == pytest.approx(4.000001)


def test_rapl_unreadable_is_reported_and_skipped(tmp_path):
    root = tree_copy("laptop_battery", tmp_path)
    energy = os.path.join(root, "sys", "class", "powercap", "intel-rapl:0", "energy_uj")
    os.remove(energy)
    os.mkdir(energy)  # reading it fails like a root-only counter does
    source = LinuxSource(root)
    assert source.rapl == []
    state = source.read()
    assert state.watts_source == "battery" and any("root only" in n for n in state.notes)


def test_linux_malformed_sensors():
    state = LinuxSource(fixture("broken")).read()
    assert state.battery_percent is None and state.on_ac is False and state.watts is None
    assert state.platform_profile is None
    assert any("capacity is malformed" in n for n in state.notes)
    assert any("RAPL" in n for n in state.notes)


# -- psutil, file, manual ----------------------------------------------------------------------------

Battery = namedtuple("sbattery", "percent secsleft power_plugged")


def test_psutil_source(monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "sensors_battery", lambda: Battery(42.5, 3600, False), raising=False)
    assert PsutilSource.probe()
    state = detect_source("psutil").read()
    assert (state.source, state.battery_percent, state.on_ac, state.watts) == ("psutil", 42.5, False, None)
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None, raising=False)
    assert not PsutilSource.probe()
    with pytest.raises(PowerError, match="psutil reports no battery"):
        detect_source("psutil")


def test_parse_state_text_formats():
    assert parse_state_text("1\n") == {"mode": "1"}
    assert parse_state_text("mode=1 battery=30, ac=0;watts=4.5") == {"mode": "1", "battery_percent": 30.0,
                                                                     "on_ac": False, "watts": 4.5}
    assert parse_state_text('{"mode": 0, "mode_name": "MAXN", "on_ac": true}') == {
        "mode": "0", "mode_name": "MAXN", "on_ac": True}
    for bad, message in [("battery=120", "battery_percent must be in"), ("ac=maybe", "on_ac must be"),
                         ("speed=3", "unknown key"), ("a b", "expected key=value"), ("{", "not valid JSON")]:
        with pytest.raises(ValueError, match=message):
            parse_state_text(bad)


def _write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def test_file_source_follows_changes_and_survives_bad_files(tmp_path):
    path = str(tmp_path / "power")
    source = detect_source("file:" + path)
    state = source.read()
    assert state.mode is None and "missing" in state.notes[0]
    _write_atomically(path, "0\n")
    assert source.read().mode == "0"
    _write_atomically(path, "mode=1 battery=18 ac=0\n")
    state = source.read()
    assert (state.mode, state.battery_percent, state.on_ac) == ("1", 18.0, False)
    _write_atomically(path, "mode=2 battery=lots\n")
    state = source.read()
    assert state.mode == "1" and any("malformed" in n for n in state.notes)  # the last good state stays
    os.remove(path)
    state = source.read()
    assert state.mode == "1" and any("missing" in n for n in state.notes)
    with pytest.raises(PowerError, match="file: needs a path"):
        detect_source("file:")


def test_manual_source():
    source = detect_source("manual:mode=1,battery=30,ac=0")
    state = source.read()
    assert (state.source, state.mode, state.battery_percent, state.on_ac) == ("manual", "1", 30.0, False)
    manual = ManualSource("0")
    manual.set(mode=1, on_ac=True)
    assert manual.read().mode == "1" and manual.read().on_ac is True
    with pytest.raises(PowerError, match="manual power source 'battery=200'"):
        detect_source("manual:battery=200")
    with pytest.raises(PowerError, match="unknown power state field"):
        manual.set(speed=2)


# -- detection and fallback --------------------------------------------------------------------------

def test_detect_source_auto_and_errors(tmp_path):
    nano = detect_source(root=fixture("nano_jp4"))
    assert nano.name == "jetson>none" and nano.read().mode == "1"
    laptop = detect_source("auto", root=fixture("laptop_battery"))
    assert laptop.name == "linux>none" and laptop.read().on_ac is False
    empty = str(tmp_path)
    assert detect_source("jetson", root=fixture("orin_nano_jp5")).read().mode == "0"
    with pytest.raises(PowerError, match="not a Jetson"):
        detect_source("jetson", root=empty)
    with pytest.raises(PowerError, match="no Linux power interface"):
        detect_source("linux", root=empty)
    with pytest.raises(PowerError, match="unknown power source 'watts'.*file:PATH"):
        detect_source("watts")
    state = detect_source("none").read()
    assert state.source == "none" and state.watts is None
    assert isinstance(detect_source("manual:1", fallback=False), ManualSource)


class Flaky(PowerSource):
    name = "flaky"

    def __init__(self):
        self.broken = True

    def read(self):
        if self.broken:
            raise OSError("i2c bus error")
        return PowerState(self.name, mode="0")


def test_fallback_source_sets_a_failing_sensor_aside_and_retries():
    clock = FakeClock()
    flaky = Flaky()
    source = FallbackSource([flaky, ManualSource("1"), NullSource()], retry_s=30.0, clock=clock)
    state = source.read()
    assert state.source == "manual" and state.mode == "1" and "flaky failed: OSError: i2c bus error" in state.notes
    flaky.broken = False
    assert source.read().source == "manual"  # set aside for retry_s
    clock.now += 31
    state = source.read()
    assert state.source == "flaky" and state.notes == []
    assert repr(source) == "FallbackSource('flaky>manual>none')"


def test_state_describe_and_dict():
    state = PowerState("jetson", mode=1, mode_name="5W", on_ac=False, battery_percent=40, watts=4.9,
                       watts_source="rail:VDD_IN", platform_profile="balanced")
    assert state.mode == "1" and state.mode_keys == ["1", "5W", "balanced"]
    assert state.describe() == "mode 1 (5W), profile balanced, battery 40% on battery, 4.90 W (rail:VDD_IN)"
    d = state.to_dict()
    assert set(PowerState.FIELDS) <= set(d) and json.loads(json.dumps(d))["watts"] == 4.9
    assert PowerState("none").describe() == "nothing known"


# -- environment -------------------------------------------------------------------------------------

def test_temperatures_and_online_cpus():
    assert fps.temperatures(fixture("nano_jp4"))["GPU-therm"] == 29.5
    orin = fps.temperatures(fixture("orin_nano_jp5"))
    assert "cv0-thermal" not in orin and orin["cpu-thermal"] == 48.1
    assert fps.online_cpus("0-3,6") == [0, 1, 2, 3, 6] and fps.online_cpus("") == []


def test_environment_records_power_and_temperatures():
    env = fps.environment(threads=1, power_source=detect_source("manual:mode=1,watts=3"))
    assert env["power"]["mode"] == "1" and env["power"]["watts"] == 3.0
    assert "temperatures_c" in env and "cpus_online_count" in env and "cpu_governor" in env
    json.dumps(env)


def test_power_policy_profile_and_torch_backend_import_without_torch():
    code = ("import sys\n"
            "import edgegan.runtime.power, edgegan.runtime.policy, edgegan.runtime.fps, edgegan.profile\n"
            "import edgegan.runtime.backends.torch, edgegan.cli.profile\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'matplotlib')]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("vermin") is None, reason="vermin is not installed (pip install vermin)")
def test_power_policy_profile_are_python36_compatible():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = ["edgegan/runtime", "edgegan/profile", "edgegan/cli/profile.py", "edgegan/cli/bench.py"]
    result = subprocess.run(["vermin", "-t=3.6-", "--no-tips", "--violations"] + paths, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stdout
