"""Linux laptops and desktops: ``/sys/class/power_supply``, Intel RAPL, ACPI platform profile.

Python 3.6-compatible, torch-free.

* ``/sys/class/power_supply/*``: ``type`` ``Mains``/``USB`` with ``online``; ``Battery`` with ``status``,
  ``capacity`` (or ``energy_now``/``energy_full``, ``charge_now``/``charge_full``) and ``power_now`` (µW)
  or ``current_now`` (µA) × ``voltage_now`` (µV). Batteries with ``scope`` = ``Device`` (a mouse) are skipped.
* ``/sys/class/powercap/intel-rapl:N``: ``energy_uj`` counters that wrap at ``max_energy_range_uj``;
  watts = Δenergy / Δt between two reads. Since Linux 5.10 ``energy_uj`` is readable by root only.
* ``/sys/firmware/acpi/platform_profile``: ``low-power`` / ``balanced`` / ``performance``; it is the
  state's mode (policies map it like a Jetson mode id).

``watts`` is the RAPL package power when RAPL is readable, else the battery's discharge power when
on battery, else ``None``.
"""

import glob
import os
import time

from . import PowerSource, PowerState, root_path
from .sysfs import read_number, read_text

POWER_SUPPLY_GLOB = "/sys/class/power_supply/*"
RAPL_GLOB = "/sys/class/powercap/intel-rapl:*"
PLATFORM_PROFILE = "/sys/firmware/acpi/platform_profile"
AC_TYPES = ("Mains", "USB", "USB_C", "USB_PD", "USB_PD_DRP", "Wireless")


def read_power_supplies(root="/", notes=None):
    """``{"on_ac", "battery_percent", "battery_watts", "discharging", "supplies"}`` from power_supply."""
    notes = [] if notes is None else notes
    ac_seen, ac_online = False, False
    batteries = []
    supplies = []
    for directory in sorted(glob.glob(root_path(root, POWER_SUPPLY_GLOB))):
        name = os.path.basename(directory)
        kind = read_text(os.path.join(directory, "type"))
        if kind in AC_TYPES:
            online = read_number(os.path.join(directory, "online"), notes, "%s online" % name)
            if online is not None:
                ac_seen = True
                ac_online = ac_online or online > 0
            supplies.append(name)
        elif kind == "Battery":
            if (read_text(os.path.join(directory, "scope")) or "").lower() == "device":
                continue
            if read_number(os.path.join(directory, "present"), notes) == 0:
                continue
            supplies.append(name)
            batteries.append(_battery(directory, name, notes))
    info = {"supplies": supplies, "on_ac": None, "battery_percent": None, "battery_watts": None,
            "discharging": None}
    statuses = [b["status"] for b in batteries if b["status"]]
    if ac_seen:
        info["on_ac"] = ac_online
    elif statuses:
        if "Discharging" in statuses:
            info["on_ac"] = False
        elif any(s in ("Charging", "Full") for s in statuses):
            info["on_ac"] = True
    info["discharging"] = "Discharging" in statuses if statuses else None
    percents = [(b["percent"], b["full"] or 1.0) for b in batteries if b["percent"] is not None]
    if percents:
        info["battery_percent"] = sum(p * w for p, w in percents) / sum(w for _, w in percents)
    watts = [b["watts"] for b in batteries if b["watts"] is not None]
    if watts:
        info["battery_watts"] = sum(watts)
    return info


def _battery(directory, name, notes):
    def number(key):
        return read_number(os.path.join(directory, key), notes, "%s %s" % (name, key))

    percent = number("capacity")
    full = number("energy_full")
    if full is None:
        full = number("charge_full")
    if percent is None:
        now = number("energy_now")
        if now is None:
            now = number("charge_now")
        if now is not None and full:
            percent = 100.0 * now / full
    if percent is not None and not 0 <= percent <= 100:
        notes.append("%s capacity %r is outside 0..100; ignored" % (name, percent))
        percent = None
    watts = None
    power_now = number("power_now")
    if power_now is not None:
        watts = abs(power_now) / 1e6
    else:
        current, voltage = number("current_now"), number("voltage_now")
        if current is not None and voltage is not None:
            watts = abs(current) * voltage / 1e12
    return {"name": name, "status": read_text(os.path.join(directory, "status")), "percent": percent,
            "full": full, "watts": watts}


class RaplZone(object):
    """One RAPL zone's energy counter; ``watts()`` is the mean power since the previous call."""

    def __init__(self, directory, clock=time.monotonic):
        self.directory = directory
        self.name = read_text(os.path.join(directory, "name")) or os.path.basename(directory)
        self.max_uj = read_number(os.path.join(directory, "max_energy_range_uj"))
        self.clock = clock
        self._last = None  # (time, energy_uj)
        self._watts = None

    def energy_uj(self, notes=None):
        return read_number(os.path.join(self.directory, "energy_uj"), notes, "RAPL %s energy_uj" % self.name)

    def delta_uj(self, before, after):
        """Energy between two counter values, across one wrap-around at ``max_energy_range_uj``."""
        if after >= before:
            return after - before
        if self.max_uj:
            return after + self.max_uj + 1 - before
        return None

    def watts(self, notes=None, min_interval_s=0.005):
        energy = self.energy_uj(notes)
        now = self.clock()
        if energy is None:
            self._last = None
            return None
        if self._last is not None:
            dt = now - self._last[0]
            if dt < min_interval_s:
                return self._watts  # too short to measure: the previous value stands
            delta = self.delta_uj(self._last[1], energy)
            self._watts = None if delta is None else delta / 1e6 / dt
        self._last = (now, energy)
        return self._watts


def find_rapl_zones(root="/", clock=time.monotonic):
    """Top-level RAPL zones (``intel-rapl:0``, not the ``intel-rapl:0:0`` sub-zones)."""
    zones = []
    for directory in sorted(glob.glob(root_path(root, RAPL_GLOB))):
        if os.path.basename(directory).count(":") == 1 and os.path.exists(os.path.join(directory, "energy_uj")):
            zones.append(RaplZone(directory, clock))
    return zones


class LinuxSource(PowerSource):
    """power_supply + RAPL + platform_profile. ``root``: prefix of the sysfs paths (tests)."""

    name = "linux"

    def __init__(self, root="/", clock=time.monotonic):
        self.root = root
        zones = find_rapl_zones(root, clock)
        packages = [z for z in zones if z.name.startswith("package")]
        self.rapl = packages or [z for z in zones if z.name == "psys"]
        self.rapl_kind = "package" if packages else ("psys" if self.rapl else None)
        self._rapl_error = None
        probe_notes = []
        for zone in self.rapl:
            zone.watts(probe_notes)  # starts each counter
        if probe_notes:
            self._rapl_error = "; ".join(probe_notes) + " (root only since Linux 5.10: run as root or " \
                                                        "chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj)"
            self.rapl = []

    @classmethod
    def probe(cls, root="/"):
        return bool(glob.glob(root_path(root, POWER_SUPPLY_GLOB)) or glob.glob(root_path(root, RAPL_GLOB))
                    or os.path.exists(root_path(root, PLATFORM_PROFILE)))

    def read(self):
        notes = []
        supplies = read_power_supplies(self.root, notes)
        profile = read_text(root_path(self.root, PLATFORM_PROFILE)) or None
        rails = {}
        watts, watts_source = None, None
        if self.rapl:
            values = [(z.name, z.watts(notes)) for z in self.rapl]
            rails = dict(("rapl:%s" % name, w) for name, w in values if w is not None)
            if values and all(w is not None for _, w in values):
                watts, watts_source = sum(w for _, w in values), "rapl:%s" % self.rapl_kind
            elif not rails:
                notes.append("RAPL: no second reading yet")
        elif self._rapl_error:
            notes.append(self._rapl_error)
        if watts is None and supplies["on_ac"] is False and supplies["battery_watts"] is not None:
            watts, watts_source = supplies["battery_watts"], "battery"
        if supplies["battery_watts"] is not None:
            rails["battery"] = supplies["battery_watts"]
        if watts is None and not notes:
            notes.append("no power meter: no readable RAPL and not discharging a battery")
        return PowerState(self.name, mode=profile, mode_name=profile, on_ac=supplies["on_ac"],
                          battery_percent=supplies["battery_percent"], watts=watts, watts_source=watts_source,
                          platform_profile=profile, rails=rails, notes=notes,
                          extra={"supplies": supplies["supplies"]} if supplies["supplies"] else None)
