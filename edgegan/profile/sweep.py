"""The sweep: for each power mode, load the bundle, take an idle power baseline, then measure every
variant by the FPS protocol while sampling power during the timed window.

Modes are real (``nvpmodel -m ID`` on a Jetson, restored afterwards), the one the machine runs under
now (named by the user or read from nvpmodel / the platform profile), or emulated by thread budgets
(intra-op threads, and the process pinned to that many CPUs where the OS allows).
"""

import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time

from ..errors import EdgeganError

logger = logging.getLogger(__name__)

DEFAULT_IDLE_S = 3.0
DEFAULT_SAMPLE_INTERVAL_S = 0.1
DEFAULT_POWER_WINDOW_S = 2.0
NVPMODEL_SETTLE_S = 2.0


class Mode(object):
    """A power mode to measure under.

    ``key``: how policies and the FPS table name it (``"0"``, ``"t2"``, ``"balanced"``). ``how``:
    ``"nvpmodel"`` (set with ``nvpmodel -m``), ``"threads"`` (emulated by a thread budget) or
    ``"current"`` (whatever the machine runs under now). ``threads``: intra-op threads (``None``:
    the backend's default).
    """

    def __init__(self, key, label=None, how="current", threads=None, nvpmodel_id=None):
        self.key = str(key)
        self.label = label or self.key
        self.how = how
        self.threads = threads
        self.nvpmodel_id = nvpmodel_id

    def to_dict(self):
        return {"key": self.key, "label": self.label, "how": self.how, "threads": self.threads,
                "nvpmodel_id": self.nvpmodel_id}

    def __repr__(self):
        return "Mode(%r, %s)" % (self.key, self.how)


def _usable_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def default_thread_budgets(n_cpus=None):
    """1, half and all of the usable CPUs (deduplicated): the emulated modes when none are named."""
    n = n_cpus or len(_usable_cpus())
    return sorted(set([1, max(1, n // 2), n]))


def current_mode_key(source=None):
    """``(key, name)`` of the mode the machine runs under now: nvpmodel on a Jetson, else the power
    source's mode (platform profile), else ``("current", None)``."""
    from ..runtime.power.jetson import query_nvpmodel

    mode = query_nvpmodel()
    if mode and mode["id"] is not None:
        return str(mode["id"]), mode["name"]
    if source is not None:
        try:
            state = source.read()
        except Exception:
            state = None
        if state is not None and state.mode is not None:
            return state.mode, state.mode_name
    return "current", None


def plan_modes(emulate_threads=None, nvpmodel_ids=None, mode=None, threads=None, source=None):
    """The modes to sweep. One of: ``nvpmodel_ids`` (set each with ``nvpmodel -m``), ``emulate_threads``
    (thread budgets, keys ``t1``, ``t2``, ...), ``mode`` (a label for the current mode); by default the
    current nvpmodel mode on a Jetson, elsewhere thread budgets of 1, half and all CPUs."""
    chosen = [x for x in (emulate_threads, nvpmodel_ids, mode) if x]
    if len(chosen) > 1:
        raise EdgeganError("choose one of --emulate-threads, --nvpmodel and --mode")
    if nvpmodel_ids:
        return [Mode(str(int(i)), how="nvpmodel", threads=threads, nvpmodel_id=int(i)) for i in nvpmodel_ids]
    if emulate_threads:
        budgets = []
        for n in emulate_threads:
            if int(n) < 1:
                raise EdgeganError("thread budgets must be at least 1, got %r" % n)
            if int(n) not in budgets:
                budgets.append(int(n))
        return [Mode("t%d" % n, "%d thread%s" % (n, "" if n == 1 else "s"), "threads", threads=n) for n in budgets]
    if mode:
        return [Mode(mode, how="current", threads=threads)]
    from ..runtime.power.jetson import query_nvpmodel

    if query_nvpmodel() is not None:
        key, name = current_mode_key()
        return [Mode(key, name or key, "current", threads=threads)]
    return plan_modes(emulate_threads=default_thread_budgets())


# -- Jetson power modes ----------------------------------------------------------------------------

def set_nvpmodel(mode_id, settle_s=NVPMODEL_SETTLE_S, runner=subprocess.run):
    """``nvpmodel -m ID`` (through ``sudo -n`` when not root), then wait ``settle_s`` for the clocks."""
    if shutil.which("nvpmodel") is None:
        raise EdgeganError("--nvpmodel needs nvpmodel (a Jetson); elsewhere emulate modes with --emulate-threads "
                           "or name the current one with --mode")
    cmd = ["nvpmodel", "-m", str(int(mode_id))]
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        cmd = ["sudo", "-n"] + cmd
    try:
        result = runner(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise EdgeganError("%s failed: %s" % (" ".join(cmd), e))
    if result.returncode != 0:
        raise EdgeganError("%s failed (exit %d): %s; run edgegan profile as root or allow `sudo nvpmodel` without a "
                           "password" % (" ".join(cmd), result.returncode, (result.stdout or "").strip()[-300:]))
    time.sleep(settle_s)


# -- power sampling --------------------------------------------------------------------------------

class PowerSampler(object):
    """Reads a power source every ``interval_s`` in a background thread between ``start()`` and ``stop()``.

    ``stop()`` returns ``{"watts": time-weighted mean or None, "min_w", "max_w", "samples", "seconds",
    "sources", "notes"}``. A reading is weighted by the time since the previous one, which is exact
    for counters (RAPL gives the mean since the last read) and a fair average for instantaneous meters.
    """

    def __init__(self, source, interval_s=DEFAULT_SAMPLE_INTERVAL_S, clock=time.monotonic):
        self.source = source
        self.interval_s = interval_s
        self.clock = clock
        self._samples = []
        self._notes = []
        self._sources = set()
        self._stop = threading.Event()
        self._thread = None
        self._start = None

    def _read(self):
        try:
            state = self.source.read()
        except Exception as e:
            self._notes.append("%s: %s" % (type(e).__name__, e))
            return
        self._samples.append((self.clock(), state.watts))
        self._sources.add(state.watts_source or state.source)
        for note in state.notes:
            if note not in self._notes:
                self._notes.append(note)

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            self._read()

    def start(self):
        self._samples, self._notes, self._sources = [], [], set()
        self._stop.clear()
        self._read()  # a counter source restarts its interval here
        self._start = self.clock()
        self._thread = threading.Thread(target=self._loop, name="edgegan-power-sampler")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._read()
        return self.summary()

    def summary(self):
        weighted, total, values = 0.0, 0.0, []
        for (t0, _), (t1, watts) in zip(self._samples, self._samples[1:]):
            if watts is None or t1 <= t0:
                continue
            weighted += watts * (t1 - t0)
            total += t1 - t0
            values.append(watts)
        return {"watts": weighted / total if total > 0 else None, "min_w": min(values) if values else None,
                "max_w": max(values) if values else None, "samples": len(values),
                "seconds": (self._samples[-1][0] - self._samples[0][0]) if len(self._samples) > 1 else 0.0,
                "sources": sorted(s for s in self._sources if s), "notes": list(self._notes)}

    def measure_idle(self, seconds):
        """Sample for ``seconds`` with nothing running: the idle baseline."""
        self.start()
        time.sleep(max(seconds, 2 * self.interval_s))
        return self.stop()


# -- the sweep -------------------------------------------------------------------------------------

class _Affinity(object):
    """Pins the process to ``n`` CPUs for a thread-budget mode; restores the previous set on exit."""

    def __init__(self, n):
        self.n = n
        self.saved = None
        self.applied = None

    def __enter__(self):
        if self.n and hasattr(os, "sched_setaffinity"):
            cpus = _usable_cpus()
            if self.n < len(cpus):
                self.saved = set(cpus)
                self.applied = cpus[:self.n]
                os.sched_setaffinity(0, self.applied)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.saved is not None:
            os.sched_setaffinity(0, self.saved)
        return False


def _progress(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, disable=None, leave=False)


def _quality(variant):
    quality = variant.get("quality") or {}
    for key in ("psnr", "psnr_db"):
        if quality.get(key) is not None:
            return float(quality[key]), "PSNR dB"
    if quality.get("ssim") is not None:
        return float(quality["ssim"]), "SSIM"
    return None, None


def sweep(bundle, modes, variants=None, warmup=100, warmup_s=2.0, runs=100, power_source=None,
          idle_s=DEFAULT_IDLE_S, sample_interval_s=DEFAULT_SAMPLE_INTERVAL_S,
          power_window_s=DEFAULT_POWER_WINDOW_S, backend=None, providers=None, pin_cpus=True,
          progress=True, say=None):
    """Measure ``variants`` (names or widths; default all) of ``bundle`` (a path or ``Bundle``) in each of
    ``modes``; returns the result dict that ``write_outputs`` writes.

    Per mode: apply it, load the runtime, sample ``idle_s`` seconds of idle power, then per variant:
    time the switch and the first inference after it (reported apart), warm up by the protocol,
    and time ``runs`` runs (more when power is measured, so that the window lasts ``power_window_s``)
    while a ``PowerSampler`` reads ``power_source``. Energy per frame = mean watts ÷ FPS; active
    energy subtracts the idle baseline.
    """
    from ..runtime import Runtime, load_bundle
    from ..runtime.fps import environment, measure, warm_up
    from ..runtime.power import detect_source

    say = say or (lambda text: None)
    bundle = load_bundle(bundle) if not hasattr(bundle, "manifest") else bundle
    names = []
    for name in variants or bundle.variant_names:
        resolved = bundle.variant(name)["name"]
        if resolved not in names:
            names.append(resolved)
    if runs < 1 or warmup < 0 or warmup_s < 0 or idle_s < 0:
        raise EdgeganError("runs must be at least 1; warm-up and idle time cannot be negative")
    own_source = power_source is None
    source = detect_source() if own_source else power_source
    from ..runtime.noise import sample_model_input

    x = sample_model_input(bundle.inputs)  # an image input, or noise (and a label) for a noise bundle
    sampler = PowerSampler(source, sample_interval_s)
    result = {"bundle": os.path.abspath(bundle.path), "bundle_name": os.path.basename(os.path.abspath(bundle.path)),
              "target": bundle.manifest.get("target"), "backend": backend or bundle.manifest.get("backend"),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "protocol": {"batch": 1, "warmup": warmup, "warmup_s": warmup_s, "runs": runs,
                           "power_window_s": power_window_s, "idle_s": idle_s, "sample_interval_s": sample_interval_s},
              "power_source": source.name, "modes": [], "rows": []}
    original_nvpmodel = None
    bar = _progress(len(modes) * len(names), "profile") if progress else None
    try:
        for mode in modes:
            if mode.how == "nvpmodel":
                if original_nvpmodel is None:
                    original_nvpmodel = current_mode_key()[0]
                say("setting nvpmodel mode %s" % mode.nvpmodel_id)
                set_nvpmodel(mode.nvpmodel_id)
                mode.label = current_mode_key()[1] or mode.label
            with _Affinity(mode.threads if (mode.how == "threads" and pin_cpus) else None) as affinity:
                with Runtime(bundle, backend=backend, threads=mode.threads, providers=providers) as rt:
                    idle = sampler.measure_idle(idle_s) if idle_s > 0 else {"watts": None, "samples": 0, "notes": []}
                    info = mode.to_dict()
                    info.update({"cpus": affinity.applied, "idle": idle, "idle_w": idle["watts"],
                                 "environment": environment(threads=mode.threads, backends=[rt.backend_name],
                                                            power_source=source)})
                    result["modes"].append(info)
                    say("mode %s (%s): idle %s" % (mode.key, mode.label, "%.2f W" % idle["watts"]
                                                   if idle["watts"] is not None else "power unavailable"))
                    for name in names:
                        result["rows"].append(_measure_variant(rt, name, mode, x, warmup, warmup_s, runs, sampler,
                                                               power_window_s, idle["watts"], measure, warm_up))
                        row = result["rows"][-1]
                        say("  %s: %.1f FPS%s" % (name, row["fps"], "" if row["watts"] is None else
                                                  ", %.2f W, %.3f mJ/frame" % (row["watts"], row["energy_mj"])))
                        if bar is not None:
                            bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if original_nvpmodel is not None and original_nvpmodel.isdigit():
            try:
                set_nvpmodel(int(original_nvpmodel), settle_s=0)
            except EdgeganError as e:
                logger.warning("could not restore nvpmodel mode %s: %s", original_nvpmodel, e)
        if own_source:
            source.close()
    watts = [r["watts"] for r in result["rows"] if r["watts"] is not None]
    notes = []
    for m in result["modes"]:
        for note in m["idle"].get("notes", []):
            if note not in notes:
                notes.append(note)
    result["power"] = {"available": bool(watts), "source": source.name, "notes": notes,
                       "meters": sorted(set(s for m in result["modes"] for s in m["idle"].get("sources", [])))}
    from .report import fps_table, pareto_front

    result["fps_table"] = fps_table(result)
    pareto_front(result["rows"])
    return result


def _measure_variant(rt, name, mode, x, warmup, warmup_s, runs, sampler, power_window_s, idle_w, measure, warm_up):
    from ..runtime.bundle import macs_convention

    clock = time.perf_counter
    previous = rt.variant
    t0 = clock()
    rt.set_variant(name)
    t1 = clock()
    rt(x)
    rt.sync()
    t2 = clock()
    warm_runs, warm_seconds = warm_up(lambda: rt(x), warmup, warmup_s, rt.sync)
    timed_runs = runs
    if idle_w is not None and warm_seconds > 0 and warm_runs > 0:
        timed_runs = max(runs, int(math.ceil(power_window_s * warm_runs / warm_seconds)))
    sampler.start()
    stats = measure(lambda: rt(x), warmup=0, warmup_s=0.0, runs=timed_runs, sync=rt.sync)
    power = sampler.stop()
    info = rt.variant_info
    quality, quality_metric = _quality(info)
    row = {"mode": mode.key, "mode_label": mode.label, "threads": mode.threads, "variant": name,
           "width": info.get("width"), "macs": info.get("macs"), "macs_convention": macs_convention(info),
           "params": info.get("params"),
           "quality": quality, "quality_metric": quality_metric, "switch_from": previous,
           "switch_ms": (t1 - t0) * 1e3, "first_inference_ms": (t2 - t1) * 1e3}
    row.update(stats)
    row["warmup_runs"], row["warmup_s"] = warm_runs + 1, warm_seconds + (t2 - t1)
    watts = power["watts"]
    row.update({"watts": watts, "idle_w": idle_w, "power_samples": power["samples"],
                "active_w": None, "energy_mj": None, "active_energy_mj": None})
    if watts is not None:
        row["energy_mj"] = watts / row["fps"] * 1e3
        if idle_w is not None:
            row["active_w"] = max(0.0, watts - idle_w)
            row["active_energy_mj"] = row["active_w"] / row["fps"] * 1e3
    return row
