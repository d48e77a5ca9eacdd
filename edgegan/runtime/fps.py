"""The FPS protocol (ARCHITECTURE.md, "Measuring") and the environment recorded with each result.

Batch 1; a warm-up of at least ``warmup`` runs *and* ``warmup_s`` seconds, discarded; then
``runs`` timed runs, each followed by ``sync()``; mean FPS is frames ÷ wall time of the timed
window. ``measure_switch`` times a variant switch separately from the first inference after it.
The clock is a parameter so the statistics can be tested with a fake one.
"""

import os
import platform
import socket
import subprocess
import sys
import time
from glob import glob

import numpy as np

from ..errors import EdgeganError
from .backends import get_backend

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
            clock=time.perf_counter):
    """Time ``fn()`` (one batch-1 inference) by the FPS protocol; returns ``latency_stats`` plus
    ``warmup_runs`` and ``warmup_s`` (what the warm-up actually took)."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    warm_runs, warm_s = warm_up(fn, warmup, warmup_s, sync, clock)
    latencies = []
    window_start = clock()
    for _ in range(runs):
        t0 = clock()
        fn()
        if sync is not None:
            sync()
        latencies.append(clock() - t0)
    stats = latency_stats(latencies, clock() - window_start)
    stats["warmup_runs"] = warm_runs
    stats["warmup_s"] = warm_s
    return stats


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

def _read(path):
    """Stripped text of a small file, or ``None``."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except (IOError, OSError):
        return None


def parse_nvpmodel(text):
    """``{"name": "MAXN", "id": 0}`` from the output of ``nvpmodel -q``, or ``None``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        if line.startswith("NV Power Mode"):
            mode = {"name": line.split(":", 1)[1].strip(), "id": None}
            if n + 1 < len(lines) and lines[n + 1].isdigit():
                mode["id"] = int(lines[n + 1])
            return mode
    return None


def power_mode():
    """The Jetson power mode from ``nvpmodel -q``; ``None`` where there is no nvpmodel or it fails."""
    try:
        result = subprocess.run(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvpmodel(result.stdout) if result.returncode == 0 else None


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


def environment(threads=None, backends=()):
    """Where a measurement ran: host, platform, Python, CPUs, threads, library versions, and on a
    Jetson the board model, ``nvpmodel`` power mode and clocks. Never fails on a missing source."""
    versions = {"numpy": np.__version__}
    for name in backends:
        try:
            versions[name] = get_backend(name).library_version()
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
        "power_mode": power_mode(),
        "clocks_mhz": _clocks_mhz(),
    }
