"""Jetson power: ``nvpmodel`` mode, INA3221 rails, ``tegrastats``. Python 3.6-compatible, torch-free.

Rails come from one of two sysfs layouts:

* JetPack 4 (L4T 32, NVIDIA's ``ina3221x`` iio driver):
  ``/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/rail_name_0`` (``POM_5V_IN``) with
  ``in_power0_input`` (mW), ``in_voltage0_input`` (mV), ``in_current0_input`` (mA).
* JetPack 5+ (upstream ``ina3221`` hwmon driver):
  ``/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_label`` (``VDD_IN``) with ``in1_input``
  (bus mV) and ``curr1_input`` (mA): watts = V × I. Channels without a label, labelled ``NC``, or
  without a current (the shunt-sum channel 7) are skipped.

The total is the module-input rail (``POM_5V_IN`` on the Nano, ``VDD_IN`` on Xavier NX / Orin
Nano / Orin NX); the other rails are sub-rails of it and are never summed — not even when the input
rail cannot be read. Boards without an input rail (AGX Xavier: ``GPU``, ``CPU``, ``SOC``, ``CV``,
``VDDRQ``, ``SYS5V``; AGX Orin: ``VDD_GPU_SOC``, ``VDD_CPU_CV``, ``VIN_SYS_5V0``, ``VDDQ_VDD2_1V8AO``)
monitor the module's supplies separately: their total is the sum of every rail (as jetson_stats
computes it), labelled as a sum (``sum:GPU+CPU+…``), and only when every rail was read.
"""

import glob
import os
import re
import shutil
import subprocess
import threading
import time

from . import PowerSource, PowerState, root_path
from .sysfs import read_number, read_text

INPUT_RAILS = ("POM_5V_IN", "VDD_IN")
STATUS_FILE = "/var/lib/nvpmodel/status"
CONF_FILE = "/etc/nvpmodel.conf"
IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"
HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
NVPMODEL_CACHE_S = 2.0


# -- nvpmodel ------------------------------------------------------------------------------------

def parse_nvpmodel(text):
    """``{"name": "MAXN", "id": 0}`` from the output of ``nvpmodel -q``, or ``None``.

    The output is ``NV Power Mode: NAME`` then the id on its own line; JetPack 5 may print
    ``NVPM WARN`` or fan-mode lines around them.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        if line.startswith("NV Power Mode"):
            mode = {"name": line.split(":", 1)[1].strip(), "id": None}
            if n + 1 < len(lines) and lines[n + 1].isdigit():
                mode["id"] = int(lines[n + 1])
            return mode
    return None


def parse_nvpmodel_status(text):
    """The mode id in ``/var/lib/nvpmodel/status`` (``pmode:0001`` or ``pmode:0002 fmode:quiet``), or ``None``."""
    match = re.search(r"pmode:\s*(\d+)", text or "")
    return int(match.group(1)) if match else None


def parse_nvpmodel_conf(text):
    """``{id: name}`` from ``/etc/nvpmodel.conf`` (``< POWER_MODEL ID=1 NAME=5W >`` lines) and the
    ``< PM_CONFIG DEFAULT=0 >`` default (key ``"default"``)."""
    modes = {}
    for match in re.finditer(r"<\s*POWER_MODEL\s+ID\s*=\s*(\d+)\s+NAME\s*=\s*([^\s>]+)", text or ""):
        modes[int(match.group(1))] = match.group(2)
    default = re.search(r"<\s*PM_CONFIG\s+DEFAULT\s*=\s*(\d+)", text or "")
    if default:
        modes["default"] = int(default.group(1))
    return modes


def query_nvpmodel(executable="nvpmodel", timeout=10):
    """``parse_nvpmodel`` of ``nvpmodel -q``; ``None`` where there is no nvpmodel or it fails."""
    try:
        result = subprocess.run([executable, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, universal_newlines=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvpmodel(result.stdout) if result.returncode == 0 else None


# -- INA3221 rails -------------------------------------------------------------------------------

class Rail(object):
    """One INA3221 channel: ``name`` and how to read its watts."""

    def __init__(self, name, layout, power=None, voltage=None, current=None):
        self.name = name
        self.layout = layout      # "iio" (JetPack 4) or "hwmon" (JetPack 5+)
        self.power = power        # iio: in_powerN_input, mW
        self.voltage = voltage    # mV
        self.current = current    # mA

    def read_watts(self, notes):
        if self.power is not None:
            mw = read_number(self.power, notes, "rail %s power" % self.name)
            if mw is not None:
                return mw / 1e3
        if self.voltage is not None and self.current is not None:
            mv = read_number(self.voltage, notes, "rail %s voltage" % self.name)
            ma = read_number(self.current, notes, "rail %s current" % self.name)
            if mv is not None and ma is not None:
                return mv * ma / 1e6
        return None

    def __repr__(self):
        return "Rail(%r, %s)" % (self.name, self.layout)


def _iio_rails(directory):
    rails = []
    for label_path in sorted(glob.glob(os.path.join(directory, "rail_name_*")) +
                             glob.glob(os.path.join(directory, "rail_name[0-9]*"))):
        n = re.sub(r"^rail_name_?", "", os.path.basename(label_path))
        name = read_text(label_path)
        if not n.isdigit() or not name:
            continue
        rails.append(Rail(name, "iio", power=os.path.join(directory, "in_power%s_input" % n),
                          voltage=os.path.join(directory, "in_voltage%s_input" % n),
                          current=os.path.join(directory, "in_current%s_input" % n)))
    return rails


def _hwmon_rails(directory):
    rails = []
    for label_path in sorted(glob.glob(os.path.join(directory, "in[0-9]*_label"))):
        n = os.path.basename(label_path)[2:-len("_label")]
        name = read_text(label_path)
        voltage = os.path.join(directory, "in%s_input" % n)
        current = os.path.join(directory, "curr%s_input" % n)
        if not name or name.upper() == "NC" or not os.path.exists(voltage) or not os.path.exists(current):
            continue  # unlabelled, not connected, or the shunt-voltage sum channel
        rails.append(Rail(name, "hwmon", voltage=voltage, current=current))
    return rails


def find_rails(root="/"):
    """Every INA3221 rail under ``root``, JetPack 4 iio layout and JetPack 5+ hwmon layout."""
    rails = []
    for directory in sorted(glob.glob(root_path(root, IIO_GLOB))):
        rails += _iio_rails(directory)
    for directory in sorted(glob.glob(root_path(root, HWMON_GLOB))):
        rails += _hwmon_rails(directory)
    return rails


SUM_PREFIX = "sum:"


def total_watts(rails_w, input_rails=INPUT_RAILS, rail_names=None):
    """``(watts, label)``: the module's power from ``rails_w`` (name → W, ``None`` for a rail that could
    not be read), or ``(None, None)``. ``rail_names``: every rail the board has (default: ``rails_w``'s).

    A board with an input rail (``label`` = its name): that rail alone, never a sum (the other rails are
    parts of it). A board without one: the sum of all its rails (``label`` = ``"sum:A+B+…"``), only when
    every rail was read."""
    names = list(rail_names) if rail_names is not None else list(rails_w)
    for name in input_rails:
        if name in names or name in rails_w:
            return (rails_w[name], name) if rails_w.get(name) is not None else (None, None)
    if names and all(rails_w.get(n) is not None for n in names):
        return sum(rails_w[n] for n in names), SUM_PREFIX + "+".join(names)
    return None, None


def watts_source(label):
    """``PowerState.watts_source`` for a ``total_watts`` label."""
    if not label:
        return None
    return label if label.startswith(SUM_PREFIX) else "rail:" + label


# -- tegrastats ----------------------------------------------------------------------------------

_RAIL_RE = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_TEMP_RE = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?=\s|$)")
_CPU_RE = re.compile(r"CPU \[([^\]]*)\]")
_FREQ_RE = re.compile(r"(GR3D_FREQ|EMC_FREQ) (\d+)%(?:@\[?([\d,]+)\]?)?")
_RAM_RE = re.compile(r"RAM (\d+)/(\d+)MB")
_NOT_RAILS = ("RAM", "SWAP", "IRAM", "NC")  # NC: an unconnected INA3221 channel (AGX Orin)


def parse_tegrastats(line, input_rails=INPUT_RAILS):
    """One ``tegrastats`` line → ``{"rails_mw": {name: (now, avg)}, "watts", "watts_rail", "temps_c",
    "cpu": [{"load", "mhz"} or None for an offline core], "gpu_load", "gpu_mhz", "emc_load", "ram_mb"}``.

    JetPack 4 prints rails as ``POM_5V_IN 2640/2640`` (mW), JetPack 5+ as ``VDD_IN 3926mW/3926mW``.
    ``watts`` is the input rail's current value, or on a board without one (AGX Xavier) the sum of the
    rails' current values (``watts_rail`` = ``"sum:GPU+CPU+…"``).
    """
    rails = {}
    for match in _RAIL_RE.finditer(line):
        name = match.group(1)
        if name not in _NOT_RAILS:
            rails[name] = (int(match.group(2)), int(match.group(3)))
    temps = dict((m.group(1), float(m.group(2))) for m in _TEMP_RE.finditer(line))
    temps = dict((k, v) for k, v in temps.items() if v > -200)  # -256C: a sensor that is off (Orin CV/GPU)
    cpus = []
    cpu = _CPU_RE.search(line)
    if cpu:
        for core in cpu.group(1).split(","):
            core = core.strip()
            m = re.match(r"(\d+)%@(\d+)", core)
            cpus.append({"load": int(m.group(1)), "mhz": int(m.group(2))} if m else None)
    info = {"rails_mw": rails, "temps_c": temps, "cpu": cpus, "gpu_load": None, "gpu_mhz": None, "emc_load": None}
    for m in _FREQ_RE.finditer(line):
        if m.group(1) == "GR3D_FREQ":
            info["gpu_load"] = int(m.group(2))
            if m.group(3):
                info["gpu_mhz"] = int(m.group(3).split(",")[0])
        else:
            info["emc_load"] = int(m.group(2))
    ram = _RAM_RE.search(line)
    info["ram_mb"] = (int(ram.group(1)), int(ram.group(2))) if ram else None
    watts, rail = total_watts(dict((k, v[0] / 1e3) for k, v in rails.items()), input_rails)
    info["watts"], info["watts_rail"] = watts, rail
    return info


class TegrastatsReader(object):
    """Runs ``tegrastats --interval MS`` and keeps the last parsed line (a daemon thread reads it)."""

    def __init__(self, executable="tegrastats", interval_ms=500):
        self.process = subprocess.Popen([executable, "--interval", str(int(interval_ms))], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, universal_newlines=True)
        self.last = None
        self.last_time = None
        self._thread = threading.Thread(target=self._loop, name="edgegan-tegrastats")
        self._thread.daemon = True
        self._thread.start()

    def _loop(self):
        for line in self.process.stdout:
            try:
                self.last = parse_tegrastats(line)
                self.last_time = time.time()
            except Exception:  # a malformed line: keep the previous one
                continue

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


# -- the source ----------------------------------------------------------------------------------

class JetsonSource(PowerSource):
    """Power mode from nvpmodel and power from the INA3221 rails (or tegrastats).

    ``root``: prefix of the sysfs/etc paths (tests). ``nvpmodel``: the executable (``None``: do not
    run it). ``tegrastats``: run ``tegrastats`` when no rail is readable (``None``: never).
    """

    name = "jetson"

    def __init__(self, root="/", nvpmodel="nvpmodel", tegrastats="tegrastats", input_rails=INPUT_RAILS):
        self.root = root
        self.nvpmodel = nvpmodel if nvpmodel and shutil.which(nvpmodel) else None
        self.input_rails = tuple(input_rails)
        conf = read_text(root_path(root, CONF_FILE))
        self.mode_names = parse_nvpmodel_conf(conf) if conf else {}
        self.rails = find_rails(root)
        self._tegrastats_exe = tegrastats if tegrastats and not self.rails and shutil.which(tegrastats) else None
        self._tegrastats = None
        self._nvpmodel_cache = (None, None)  # (time, result)

    @classmethod
    def probe(cls, root="/"):
        """Whether this looks like a Jetson: nvpmodel status/conf, INA3221 sysfs, or ``nvpmodel`` on PATH
        (with ``/etc/nv_tegra_release``)."""
        if os.path.exists(root_path(root, STATUS_FILE)) or os.path.exists(root_path(root, CONF_FILE)):
            return True
        if glob.glob(root_path(root, IIO_GLOB)) or glob.glob(root_path(root, HWMON_GLOB)):
            return True
        return root in ("/", "") and shutil.which("nvpmodel") is not None \
            and os.path.exists("/etc/nv_tegra_release")

    def _mode(self, notes):
        status = read_text(root_path(self.root, STATUS_FILE))
        mode_id = parse_nvpmodel_status(status) if status else None
        if mode_id is not None:
            return str(mode_id), self.mode_names.get(mode_id)
        if status is not None:
            notes.append("%s is malformed: %r" % (STATUS_FILE, status[:40]))
        if self.nvpmodel:
            when, result = self._nvpmodel_cache
            if when is None or time.monotonic() - when > NVPMODEL_CACHE_S:
                result = query_nvpmodel(self.nvpmodel)
                self._nvpmodel_cache = (time.monotonic(), result)
            if result:
                return (None if result["id"] is None else str(result["id"])), result["name"]
            notes.append("nvpmodel -q failed")
        else:
            notes.append("no nvpmodel status (%s) and no nvpmodel" % STATUS_FILE)
        return None, None

    def read(self):
        notes = []
        mode, mode_name = self._mode(notes)
        rails_w = {}
        for rail in self.rails:
            watts = rail.read_watts(notes)
            if watts is not None:
                rails_w[rail.name] = watts
        extra = {}
        if not rails_w and self._tegrastats_exe:
            if self._tegrastats is None:
                self._tegrastats = TegrastatsReader(self._tegrastats_exe)
            last = self._tegrastats.last
            if last is not None:
                rails_w = dict((k, v[0] / 1e3) for k, v in last["rails_mw"].items())
                extra["temps_c"] = last["temps_c"]
                extra["rails_from"] = "tegrastats"
        names = [r.name for r in self.rails] if self.rails and "rails_from" not in extra else list(rails_w)
        watts, label = total_watts(rails_w, self.input_rails, names)
        if watts is None:
            inputs = [n for n in self.input_rails if n in names]
            if inputs:
                notes.append("the input rail %s could not be read; the other rails are parts of it and are not "
                             "summed" % inputs[0])
            elif rails_w:
                notes.append("no total: the rails are summed only when all of them are read (%s unreadable)"
                             % ", ".join(sorted(set(names) - set(rails_w))))
            elif not self.rails and not self._tegrastats_exe:
                notes.append("no INA3221 rail found")
        return PowerState(self.name, mode=mode, mode_name=mode_name, on_ac=None, watts=watts,
                          watts_source=watts_source(label), rails=rails_w, notes=notes, extra=extra)

    def close(self):
        if self._tegrastats is not None:
            self._tegrastats.close()
            self._tegrastats = None
