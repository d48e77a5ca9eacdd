"""The demo's statistics: per-frame records and per-variant aggregates in bounded memory, and the
``--stats`` file, rewritten atomically while the run goes on so that a long run that ends badly
keeps its summary.

Torch-free and Python 3.6-compatible.
"""

import collections
import time

import numpy as np

from ..runtime.bundle import write_json_atomic

STATS_FORMAT = "edgegan-demo-stats/1"
DEFAULT_FRAME_RECORDS = 10000
LATENCY_WINDOW = 10000
#: seconds between two rewrites of the --stats file during a run
STATS_EVERY_S = 10.0
#: CPU time of the calling thread (Python 3.7+); 0 where there is none (3.6), so CPU figures read 0
thread_time = getattr(time, "thread_time", lambda: 0.0)


class Ring(object):
    """The last ``size`` floats, in a numpy array allocated (and touched) up front: a fixed footprint."""

    def __init__(self, size):
        self._data = np.full(max(1, int(size)), np.nan)
        self._next = 0
        self.count = 0

    def append(self, value):
        self._data[self._next] = value
        self._next = (self._next + 1) % self._data.size
        self.count += 1

    def values(self):
        return self._data[:min(self.count, self._data.size)]


def _percentiles(values):
    a = np.asarray(values, dtype=np.float64)
    if not a.size:
        return None
    return {"mean": float(a.mean()), "median": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a.min()), "max": float(a.max())}


class StatsRecorder(object):
    """Per-frame records and per-variant aggregates, in bounded memory.

    Per variant: exact frame count and time sums (FPS end to end = frames ÷ their frame time, model
    FPS = frames ÷ their inference time) and the latencies of its last ``latency_window`` frames
    for percentiles (``Ring``: numpy, allocated up front). Per frame: up to ``max_frame_records``
    records (the first ones), so a long run keeps a fixed footprint; ``per_frame_truncated`` says
    when records were dropped.
    """

    FRAME_FIELDS = ("frame", "t_s", "variant", "edges_ms", "infer_ms", "frame_ms", "fps", "auto", "mode", "watts")

    def __init__(self, max_frame_records=DEFAULT_FRAME_RECORDS, latency_window=LATENCY_WINDOW, max_switches=10000):
        self.max_frame_records = max(0, int(max_frame_records))
        self.latency_window = latency_window
        self.max_switches = max_switches
        self.frames = 0
        self.records = []
        self.dropped_records = 0
        self.switches = []
        self.dropped_switches = 0
        self._variants = collections.OrderedDict()

    def _variant(self, name):
        entry = self._variants.get(name)
        if entry is None:
            entry = {"frames": 0, "frame_s": 0.0, "infer_s": 0.0, "edges_s": 0.0,
                     "frame_ms": Ring(self.latency_window), "infer_ms": Ring(self.latency_window)}
            self._variants[name] = entry
        return entry

    def record(self, frame, t_s, variant, edges_ms, infer_ms, frame_ms, fps=None, auto=False, mode=None, watts=None):
        self.frames += 1
        entry = self._variant(variant)
        entry["frames"] += 1
        entry["frame_s"] += frame_ms / 1e3
        entry["infer_s"] += infer_ms / 1e3
        entry["edges_s"] += edges_ms / 1e3
        entry["frame_ms"].append(frame_ms)
        entry["infer_ms"].append(infer_ms)
        if len(self.records) < self.max_frame_records:
            self.records.append((frame, round(t_s, 6), variant, round(edges_ms, 4), round(infer_ms, 4),
                                 round(frame_ms, 4), None if fps is None else round(fps, 3), bool(auto), mode,
                                 None if watts is None else round(watts, 4)))
        else:
            self.dropped_records += 1

    def switch(self, frame, old, new, reason, why=None):
        if len(self.switches) < self.max_switches:
            entry = {"frame": frame, "from": old, "to": new, "reason": reason}
            if why:
                entry["why"] = why
            self.switches.append(entry)
        else:
            self.dropped_switches += 1

    def variants(self):
        """Per-variant summary: frames, fps, model_fps, frame_ms / infer_ms percentiles, edges_ms mean."""
        out = collections.OrderedDict()
        for name, e in self._variants.items():
            out[name] = {
                "frames": e["frames"],
                "seconds": e["frame_s"],
                "fps": e["frames"] / e["frame_s"] if e["frame_s"] > 0 else None,
                "model_fps": e["frames"] / e["infer_s"] if e["infer_s"] > 0 else None,
                "frame_ms": _percentiles(e["frame_ms"].values()),
                "infer_ms": _percentiles(e["infer_ms"].values()),
                "edges_ms_mean": e["edges_s"] * 1e3 / e["frames"],
                "latency_window": min(e["frames"], self.latency_window),
            }
        return out

    def summary(self):
        return {
            "frames": self.frames,
            "variants": self.variants(),
            "switches": list(self.switches),
            "switches_dropped": self.dropped_switches,
            "per_frame_fields": list(self.FRAME_FIELDS),
            "per_frame": [dict(zip(self.FRAME_FIELDS, r)) for r in self.records],
            "per_frame_truncated": self.dropped_records > 0,
            "per_frame_dropped": self.dropped_records,
        }


class StatsFile(object):
    """The ``--stats`` JSON, written through a temporary file renamed into place: every ``every_s``
    seconds during the run (``maybe_write``) and once more at the end, whatever ended it (``write``).

    ``summary``: a function returning the summary dict so far. The first write refuses an existing
    file without ``force``; later ones replace the file this run wrote. ``every_s`` 0 or ``None``: only
    the final write. A write error is an ``EdgeganError`` (one line, exit 2).
    """

    def __init__(self, path, summary, force=False, every_s=STATS_EVERY_S, clock=time.monotonic):
        self.path = path
        self.summary = summary
        self.force = force
        self.every_s = every_s
        self.writes = 0
        self._clock = clock
        self._last = clock()

    def maybe_write(self):
        """Write when ``every_s`` passed since the last write; returns whether it wrote."""
        if not self.every_s or self._clock() - self._last < self.every_s:
            return False
        self.write(final=False)
        return True

    def write(self, final=True):
        from ..errors import EdgeganError

        summary = self.summary()
        summary["stats_final"] = bool(final)
        try:
            write_json_atomic(self.path, summary, force=self.force or self.writes > 0)
        except (IOError, OSError) as e:
            raise EdgeganError("cannot write --stats %s (%s); choose a writable path"
                               % (self.path, getattr(e, "strerror", None) or e))
        self.writes += 1
        self._last = self._clock()
