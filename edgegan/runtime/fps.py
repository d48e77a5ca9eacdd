"""The FPS protocol (ARCHITECTURE.md, "Measuring") and the environment recorded with each result.

Batch 1; a warm-up of at least ``warmup`` runs *and* ``warmup_s`` seconds, discarded; then
``runs`` timed runs, each followed by ``sync()``; mean FPS is frames ÷ wall time of the timed
window. With a device ``timer`` (CUDA events, ``TorchBackend.event_timer()``) the per-run latency is
the device's elapsed time between events recorded around the run. ``measure_switch`` times a variant
switch separately from the first inference after it. ``measure_sustained`` runs for minutes and
compares the first and last minute's FPS to flag throttling. The clock is a parameter so the
statistics can be tested with a fake one.
"""

import os
import platform
import re
import socket
import sys
import time
from glob import glob

import numpy as np

from ..errors import EdgeganError
from .backends import get_backend
from .power import root_path
from .power.jetson import parse_nvpmodel, query_nvpmodel
from .power.sysfs import read_text as _read

__all__ = ["latency_stats", "warm_up", "measure", "measure_switch", "measure_sustained", "throttling",
           "environment", "parse_nvpmodel", "power_mode", "temperatures", "online_cpus"]

DEFAULT_WARMUP = 100
DEFAULT_WARMUP_S = 2.0
DEFAULT_RUNS = 100


def latency_stats(latencies_s, wall_s):
    """Statistics of per-run latencies (seconds) over a timed window of ``wall_s`` seconds.

    Returns ``runs``, ``wall_s``, ``fps`` (runs ÷ wall time), ``mean_ms``, ``median_ms``,
    ``p90_ms``, ``p99_ms`` (linear interpolation), ``min_ms``, ``max_ms``, ``std_ms``
    (population) and ``cv`` (std ÷ mean).
    """
    ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
    if ms.size == 0 or wall_s <= 0:
        raise ValueError("need at least one timed run and a positive wall time")
    mean = float(ms.mean())
    std = float(ms.std())
    return {
        "runs": int(ms.size),
        "wall_s": float(wall_s),
        "fps": ms.size / float(wall_s),
        "mean_ms": mean,
        "median_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
    }


def warm_up(fn, warmup=DEFAULT_WARMUP, warmup_s=DEFAULT_WARMUP_S, sync=None, clock=time.perf_counter):
    """Call ``fn`` (then ``sync``) until it ran at least ``warmup`` times and ``warmup_s`` seconds passed.

    Returns ``(runs, seconds)``.
    """
    start = clock()
    runs = 0
    while runs < warmup or clock() - start < warmup_s:
        fn()
        if sync is not None:
            sync()
        runs += 1
    return runs, clock() - start


def measure(fn, warmup=DEFAULT_WARMUP, warmup_s=DEFAULT_WARMUP_S, runs=DEFAULT_RUNS, sync=None,
            clock=time.perf_counter, timer=None):
    """Time ``fn()`` (one batch-1 inference) by the FPS protocol; returns ``latency_stats`` plus
    ``warmup_runs`` and ``warmup_s`` (what the warm-up actually took).

    ``timer``: an optional device timer with ``start()``, ``stop()`` and ``elapsed_s()`` (which waits
    for the stop event), e.g. CUDA events; the per-run latencies are then device times and
    ``latency_clock`` says ``"device"``. FPS is always frames ÷ host wall time.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    warm_runs, warm_s = warm_up(fn, warmup, warmup_s, sync, clock)
    latencies = []
    window_start = clock()
    for _ in range(runs):
        if timer is not None:
            timer.start()
            fn()
            timer.stop()
            if sync is not None:
                sync()
            latencies.append(timer.elapsed_s())
        else:
            t0 = clock()
            fn()
            if sync is not None:
                sync()
            latencies.append(clock() - t0)
    stats = latency_stats(latencies, clock() - window_start)
    stats["warmup_runs"] = warm_runs
    stats["warmup_s"] = warm_s
    stats["latency_clock"] = "host" if timer is None else "device"
    return stats


def throttling(first_fps, last_fps, threshold=0.9):
    """``{"first_fps", "last_fps", "ratio", "threshold", "throttled"}``: throttled when the last window's
    FPS fell below ``threshold`` × the first's."""
    ratio = last_fps / first_fps if first_fps > 0 else None
    return {"first_fps": first_fps, "last_fps": last_fps, "ratio": ratio, "threshold": threshold,
            "throttled": bool(ratio is not None and ratio < threshold)}


def measure_sustained(fn, duration_s=180.0, window_s=60.0, warmup=DEFAULT_WARMUP, warmup_s=DEFAULT_WARMUP_S,
                      sync=None, clock=time.perf_counter, bucket_s=5.0, threshold=0.9, probe=None):
    """Sustained mode: after the warm-up, run ``fn`` back to back for ``duration_s`` seconds.

    Returns ``latency_stats`` of every run, ``first`` and ``last`` (stats of the first and last
    ``window_s`` seconds), ``throttling`` (last vs first FPS, ``throttled`` below ``threshold``),
    ``series`` (FPS per ``bucket_s`` bucket: ``[{"t_s", "fps"}]``) and, when ``probe`` is given
    (a function returning a dict, e.g. temperatures and clocks), ``probes`` at the start and end.
    """
    if duration_s <= 0 or window_s <= 0:
        raise ValueError("duration_s and window_s must be positive")
    window_s = min(window_s, duration_s / 2.0)
    warm_runs, warm_s = warm_up(fn, warmup, warmup_s, sync, clock)
    probes = {"start": probe()} if probe is not None else None
    ends, latencies = [], []
    start = clock()
    now = start
    while now - start < duration_s:
        t0 = clock()
        fn()
        if sync is not None:
            sync()
        now = clock()
        latencies.append(now - t0)
        ends.append(now - start)
    if probes is not None:
        probes["end"] = probe()
    wall = ends[-1]
    ends = np.asarray(ends)
    lat = np.asarray(latencies)

    def window(lo, hi):
        mask = (ends > lo) & (ends <= hi)
        if not mask.any():
            return None
        return latency_stats(lat[mask], hi - lo)

    first, last = window(0.0, window_s), window(wall - window_s, wall)
    series = []
    edges = np.linspace(0.0, wall, max(1, int(round(wall / bucket_s))) + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        n = int(((ends > lo) & (ends <= hi)).sum())
        series.append({"t_s": float(hi), "fps": n / (hi - lo)})
    stats = latency_stats(lat, wall)
    stats.update({"warmup_runs": warm_runs, "warmup_s": warm_s, "duration_s": duration_s, "window_s": window_s,
                  "first": first, "last": last, "series": series,
                  "throttling": throttling(first["fps"], last["fps"], threshold) if first and last else None})
    if probes is not None:
        stats["probes"] = probes
        if stats["throttling"] is not None:
            stats["throttling"].update(_probe_change(probes))
    return stats


def _probe_change(probes):
    """``clock_ratio`` (mean clock at the end ÷ at the start) and ``temp_rise_c`` (hottest zone) from
    sustained-mode probes holding ``clocks_mhz`` / ``temperatures_c``; ``None`` where not recorded."""
    start, end = probes.get("start") or {}, probes.get("end") or {}
    change = {"clock_ratio": None, "temp_rise_c": None}
    c0, c1 = start.get("clocks_mhz") or {}, end.get("clocks_mhz") or {}
    common = [k for k in c0 if k in c1 and c0[k]]
    if common:
        change["clock_ratio"] = sum(c1[k] for k in common) / sum(c0[k] for k in common)
    t0, t1 = start.get("temperatures_c") or {}, end.get("temperatures_c") or {}
    if t0 and t1:
        change["temp_rise_c"] = max(t1.values()) - max(t0.values())
    return change


def measure_switch(runtime, from_variant, to_variant, x, repeats=10, warmup=10, warmup_s=0.0,
                   clock=time.perf_counter):
    """Cost of ``runtime.set_variant(to_variant)`` and of the first inference after it.

    Each of ``repeats`` rounds selects ``from_variant``, warms it up (``warmup`` runs and
    ``warmup_s`` seconds), then times the switch call and, separately, one inference on ``x``.
    Returns ``from``, ``to``, ``switch_ms`` / ``first_inference_ms`` (medians) and their maxima.
    """
    switch_ms, first_ms = [], []
    for _ in range(repeats):
        runtime.set_variant(from_variant)
        warm_up(lambda: runtime(x), warmup, warmup_s, runtime.sync, clock)
        t0 = clock()
        runtime.set_variant(to_variant)
        t1 = clock()
        runtime(x)
        runtime.sync()
        t2 = clock()
        switch_ms.append((t1 - t0) * 1e3)
        first_ms.append((t2 - t1) * 1e3)
    return {
        "from": runtime.bundle.variant(from_variant)["name"],
        "to": runtime.bundle.variant(to_variant)["name"],
        "repeats": repeats,
        "switch_ms": float(np.median(switch_ms)),
        "switch_max_ms": float(np.max(switch_ms)),
        "first_inference_ms": float(np.median(first_ms)),
        "first_inference_max_ms": float(np.max(first_ms)),
    }


# -- environment ---------------------------------------------------------------------------------

def power_mode():
    """The Jetson power mode from ``nvpmodel -q``; ``None`` where there is no nvpmodel or it fails."""
    return query_nvpmodel()


def _cpus_usable():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _clocks_mhz():
    """Current CPU and devfreq (GPU, ...) clocks in MHz, by name; empty where sysfs does not have them."""
    clocks = {}
    for path in sorted(glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq")):
        value = _read(path)
        if value and value.isdigit():
            clocks[path.split("/")[5]] = int(value) / 1e3
    for path in sorted(glob("/sys/class/devfreq/*/cur_freq")):
        value = _read(path)
        if value and value.isdigit():
            clocks[path.split("/")[4]] = int(value) / 1e6
    return clocks


def online_cpus(text=None):
    """CPU ids from a sysfs cpu list such as ``0-3,6`` (default: ``/sys/devices/system/cpu/online``)."""
    text = _read("/sys/devices/system/cpu/online") if text is None else text
    cpus = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            cpus.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            return []
    return cpus


def temperatures(root="/"):
    """Degrees Celsius by thermal zone type (``/sys/class/thermal/thermal_zone*``); empty where there are none.

    Zones reporting below -40 °C (switched-off sensors report -256 °C on Orin) are left out."""
    temps = {}
    for directory in sorted(glob(root_path(root, "/sys/class/thermal/thermal_zone*"))):
        name = _read(os.path.join(directory, "type")) or os.path.basename(directory)
        value = _read(os.path.join(directory, "temp"))
        try:
            celsius = int(value) / 1e3
        except (TypeError, ValueError):
            continue
        if celsius > -40:
            key, n = name, 1
            while key in temps:
                n += 1
                key = "%s#%d" % (name, n)
            temps[key] = celsius
    return temps


def _governors():
    found = sorted(set(filter(None, (_read(p) for p in
                                     glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")))))
    return found or None


def environment(threads=None, backends=(), power_source=None):
    """Where a measurement ran: host, platform, Python, CPUs (online, usable), threads, library versions,
    temperatures, CPU governor, and on a Jetson the board model, ``nvpmodel`` power mode and clocks;
    ``power``: a reading of ``power_source`` (a ``PowerSource``; default: auto-detected). Never fails on a
    missing source."""
    versions = {"numpy": np.__version__}
    engines = {}
    for name in backends:
        try:
            cls = get_backend(name)
            versions[name] = cls.library_version()
            if hasattr(cls, "engine_info"):  # e.g. OpenVINO: device capabilities (BF16, INT8)
                engines[name] = cls.engine_info()
        except EdgeganError:
            versions[name] = None
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device_model": _read("/proc/device-tree/model"),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpus_online": _read("/sys/devices/system/cpu/online"),
        "cpus_usable": _cpus_usable(),
        "threads": threads,
        "versions": versions,
        "cpus_online_count": len(online_cpus()) or None,
        "power_mode": power_mode(),
        "clocks_mhz": _clocks_mhz(),
        "cpu_governor": _governors(),
        "temperatures_c": temperatures(),
        "power": _power_reading(power_source),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_isa_flags(),
        "load_average": _load_average(),
        "engines": engines,
    }


#: /proc/cpuinfo flags that decide which CPU engine and precision is fastest (bf16, int8, fp16 units)
ISA_FLAGS = ("amx_bf16", "amx_int8", "amx_fp16", "amx_tile", "avx512_bf16", "avx512_fp16", "avx512_vnni",
             "avx512f", "avx_vnni", "avx2", "fma", "asimd", "asimddp", "sve", "i8mm", "bf16")


def _cpuinfo_field(name, path="/proc/cpuinfo"):
    text = _read(path) or ""
    match = re.search(r"^%s\s*:(.*)$" % name, text, re.M)
    return match.group(1).strip() if match else None


def cpu_isa_flags(path="/proc/cpuinfo"):
    """The ``ISA_FLAGS`` this CPU reports in ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on ARM)."""
    present = set(((_cpuinfo_field("flags", path) or "") + " " + (_cpuinfo_field("Features", path) or "")).split())
    return [flag for flag in ISA_FLAGS if flag in present]


def cpu_model(path="/proc/cpuinfo"):
    """The CPU's name from ``/proc/cpuinfo`` (``model name``), or ``None``."""
    return _cpuinfo_field("model name", path)


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _power_reading(source):
    from .power import detect_source

    try:
        if source is None:
            with detect_source(helpers=False) as auto:
                return auto.read().to_dict()
        return source.read().to_dict()
    except Exception as e:  # the environment record never fails
        return {"source": None, "notes": ["%s: %s" % (type(e).__name__, e)]}
