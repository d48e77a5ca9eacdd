"""Width policy: which variant to run in the current power state, and a monitor that switches live.

Torch-free, Python 3.6-compatible. The bundle manifest's ``policy`` (all keys optional but
``default``)::

    "policy": {
      "default": "w1",                               # when nothing else applies
      "modes": {"0": "w1", "1": "w0.5"},             # power mode (id, name or platform profile) -> variant
      "battery": [{"below": 20, "variant": "w0.25"},  # on battery (or AC unknown), battery % below -> at most
                  {"below": 50, "variant": "w0.5"}],
      "on_battery": "w0.5",                          # on battery: at most this variant
      "target_fps": 30                               # pick the widest variant meeting it in the current mode,
    }                                                #   from manifest["fps_table"] (`edgegan profile --write-table`)
    "fps_table": {"modes": {"0": {"w1": 24.1, "w0.5": 61.0}, "1": {...}}, "default_mode": "0", ...}

Variants may be named (``"w0.5"``) or given by width (``0.5``). The choice is: the target-FPS rule
when ``target_fps`` is set and the table has the current mode, else the ``modes`` entry of the
current mode, else ``default``; then the battery caps narrow it (never widen it).
"""

import logging
import threading
import time

from ..errors import BundleError

logger = logging.getLogger(__name__)

__all__ = ["Policy", "PolicyMonitor", "effective_widths", "manifest_policy", "run_live"]


def effective_widths(variants):
    """A width per variant for ordering: its ``width``, or for a width-less variant (per-slot channel
    counts: once-for-all search, pruning) ``sqrt(macs / max macs)`` over the variants — MACs grow with
    the square of a width multiplier, so the variant with the most MACs counts as width 1."""
    variants = list(variants)
    most = max([float(v.get("macs") or 0) for v in variants] or [0.0])
    out = []
    for v in variants:
        if v.get("width") is not None:
            out.append(float(v["width"]))
        elif most > 0 and v.get("macs"):
            out.append((float(v["macs"]) / most) ** 0.5)
        else:
            out.append(0.0)
    return out


def manifest_policy(profile_policy, variants):
    """The manifest ``policy`` for built ``variants`` from a device profile's ``[policy]`` table.

    Widths become the closest built variant not wider than asked (the narrowest if none is); a
    variant built from per-slot channel counts (``"width": null``) counts as width
    ``sqrt(macs / most MACs of the bundle)`` (``effective_widths``: widest = most MACs):
    ``default``, ``modes`` (mode → width), ``battery`` (``[{below = 20, width = 0.25}]``) and
    ``on_battery``; ``target_fps`` is copied. What ``edgegan build`` should write for a profile such as::

        [policy]
        default = 1.0
        target_fps = 30                    # optional: needs `edgegan profile --write-table` on the device
        on_battery = 0.5
        [policy.modes]
        0 = 1.0
        1 = 0.5
        [[policy.battery]]
        below = 20
        width = 0.25
    """
    widths = effective_widths(variants)
    by_width = sorted((w, v.get("macs") or 0, v["name"]) for w, v in zip(widths, variants))
    by_width = [(w, name) for w, _, name in by_width]

    def pick(width):
        if isinstance(width, str) and any(name == width for _, name in by_width):
            return width
        fitting = [name for w, name in by_width if w <= float(width) + 1e-9]
        return fitting[-1] if fitting else by_width[0][1]

    profile_policy = profile_policy or {}
    policy = {"default": pick(profile_policy.get("default", 1.0)),
              "modes": dict((str(mode), pick(width)) for mode, width in (profile_policy.get("modes") or {}).items())}
    if profile_policy.get("battery"):
        policy["battery"] = [{"below": float(t["below"]), "variant": pick(t.get("width", t.get("variant")))}
                             for t in profile_policy["battery"]]
    if profile_policy.get("on_battery") is not None:
        policy["on_battery"] = pick(profile_policy["on_battery"])
    if profile_policy.get("target_fps") is not None:
        policy["target_fps"] = float(profile_policy["target_fps"])
    return policy


class Policy(object):
    """Maps a ``PowerState`` to a variant name.

    ``variants``: the manifest's variant dicts (``name``, ``width``, ``macs``). ``default``, ``modes``
    (key → name), ``battery`` (list of ``{"below": percent, "variant": name}``), ``on_battery``: variant
    names. ``target_fps`` with ``fps_table`` (``{"modes": {mode: {variant: fps}}, "default_mode": ...}``).
    """

    def __init__(self, variants, default, modes=None, battery=None, on_battery=None, target_fps=None,
                 fps_table=None):
        self.variants = list(variants)
        widths = effective_widths(self.variants)
        order = sorted(range(len(self.variants)), key=lambda i: (widths[i], self.variants[i].get("macs") or 0, i))
        self.rank = dict((self.variants[i]["name"], r) for r, i in enumerate(order))  # 0 = narrowest
        self.default = default
        self.modes = dict((str(k), v) for k, v in (modes or {}).items())
        self.battery = sorted(battery or [], key=lambda t: t["below"])
        self.on_battery = on_battery
        self.target_fps = target_fps
        self.fps_table = fps_table
        names = set(self.rank)
        for what, name in self._named():
            if name not in names:
                raise BundleError("policy %s names variant %r, which is not among %s"
                                  % (what, name, ", ".join(sorted(names))))

    def _named(self):
        yield "default", self.default
        for key, name in self.modes.items():
            yield "mode %s" % key, name
        for t in self.battery:
            yield "battery below %g%%" % t["below"], t["variant"]
        if self.on_battery is not None:
            yield "on_battery", self.on_battery

    @classmethod
    def from_dict(cls, policy, bundle, fps_table=None, target_fps=None):
        """A policy from a manifest-style dict, resolving names and widths against ``bundle``."""
        policy = dict(policy or {})
        where = "%s: manifest policy" % bundle.path

        def resolve(value, what):
            try:
                return bundle.variant(value)["name"]
            except Exception:
                raise BundleError("%s %s names variant %r, which the bundle does not have (%s)"
                                  % (where, what, value, ", ".join(bundle.variant_names)))

        default = resolve(policy["default"], "default") if policy.get("default") is not None \
            else bundle.default_variant["name"]
        modes = dict((str(k), resolve(v, "mode %s" % k)) for k, v in (policy.get("modes") or {}).items())
        battery = []
        for n, t in enumerate(policy.get("battery") or []):
            if not isinstance(t, dict) or "below" not in t or "variant" not in t:
                raise BundleError("%s battery[%d] must be {\"below\": percent, \"variant\": name}" % (where, n))
            try:
                below = float(t["below"])
            except (TypeError, ValueError):
                below = -1.0
            if not 0 < below <= 100:
                raise BundleError("%s battery[%d] below must be a percentage in (0, 100], got %r"
                                  % (where, n, t["below"]))
            battery.append({"below": below, "variant": resolve(t["variant"], "battery[%d]" % n)})
        on_battery = resolve(policy["on_battery"], "on_battery") if policy.get("on_battery") is not None else None
        if target_fps is None:
            target_fps = policy.get("target_fps")
        if target_fps is not None:
            try:
                target_fps = float(target_fps)
            except (TypeError, ValueError):
                target_fps = -1.0
            if not target_fps > 0:
                raise BundleError("%s target_fps must be a positive number" % where)
        table = None
        if fps_table:
            table = {"modes": {}, "default_mode": fps_table.get("default_mode")}
            for mode, row in (fps_table.get("modes") or {}).items():
                table["modes"][str(mode)] = dict((resolve(v, "fps_table mode %s" % mode), float(fps))
                                                 for v, fps in row.items() if fps is not None)
        return cls(bundle.variants, default, modes, battery, on_battery, target_fps, table)

    @classmethod
    def from_bundle(cls, bundle, target_fps=None):
        """The policy of a ``Bundle`` (or a ``Runtime``, or a bundle path): ``manifest["policy"]`` plus the
        ``fps_table`` that ``edgegan profile --write-table`` stored. ``target_fps`` overrides the manifest's."""
        if hasattr(bundle, "bundle"):
            bundle = bundle.bundle
        elif not hasattr(bundle, "manifest"):
            from .bundle import load_bundle
            bundle = load_bundle(bundle, verify=False)
        manifest = bundle.manifest
        return cls.from_dict(manifest.get("policy"), bundle, manifest.get("fps_table"), target_fps)

    def narrower(self, a, b):
        """The narrower of two variant names (``None`` counts as no limit)."""
        if a is None:
            return b
        if b is None:
            return a
        return a if self.rank[a] <= self.rank[b] else b

    def _table_mode(self, state):
        modes = self.fps_table["modes"]
        for key in state.mode_keys:
            if key in modes:
                return key
        default = self.fps_table.get("default_mode")
        if not state.mode_keys and default in modes:
            return default
        return None

    def decide(self, state):
        """``(variant name, reason)`` for a ``PowerState``; the reason says which rule chose."""
        choice, reason = None, None
        if self.target_fps is not None and self.fps_table:
            mode = self._table_mode(state)
            if mode is not None:
                fps = self.fps_table["modes"][mode]
                measured = [name for name in fps if name in self.rank]
                meeting = [name for name in measured if fps[name] >= self.target_fps]
                if meeting:
                    choice = max(meeting, key=lambda n: self.rank[n])
                    reason = "widest at >= %g FPS in mode %s (%.1f FPS measured)" % (
                        self.target_fps, mode, fps[choice])
                elif measured:
                    choice = max(measured, key=lambda n: fps[n])
                    reason = "none reaches %g FPS in mode %s; fastest (%.1f FPS)" % (
                        self.target_fps, mode, fps[choice])
        if choice is None:
            key = next((k for k in state.mode_keys if k in self.modes), None)
            if key is not None:
                choice, reason = self.modes[key], "mode %s" % key
            else:
                choice = self.default
                reason = "default (mode %s not in the policy)" % state.mode_keys[0] if state.mode_keys \
                    else "default (mode unknown)"
        if state.on_ac is not True:
            if state.battery_percent is not None:
                for t in self.battery:
                    if state.battery_percent < t["below"]:
                        capped = self.narrower(choice, t["variant"])
                        if capped != choice:
                            choice = capped
                            reason += "; battery %.0f%% < %g%%" % (state.battery_percent, t["below"])
                        break
            if state.on_ac is False and self.on_battery is not None:
                capped = self.narrower(choice, self.on_battery)
                if capped != choice:
                    choice = capped
                    reason += "; on battery"
        return choice, reason

    def choose(self, state):
        """The variant name for a ``PowerState``."""
        return self.decide(state)[0]

    def to_dict(self):
        d = {"default": self.default, "modes": dict(self.modes)}
        if self.battery:
            d["battery"] = [dict(t) for t in self.battery]
        if self.on_battery is not None:
            d["on_battery"] = self.on_battery
        if self.target_fps is not None:
            d["target_fps"] = self.target_fps
        return d


class PolicyMonitor(object):
    """Re-evaluates a ``Policy`` on a ``PowerSource`` and switches the ``Runtime``'s variant.

    ``start()`` runs ``poll()`` now and then every ``interval_s`` seconds in a daemon thread;
    ``poll()`` evaluates once in the caller's thread (per frame, for instance). Switching is a
    ``runtime.set_variant`` (a dict lookup; frames keep flowing). Each switch is appended to ``log``
    as ``{"time", "from", "to", "reason" (the state as a dict), "why", "switch_ms"}``, logged, and
    passed to ``on_switch``. A source that raises is logged and the current variant kept.
    """

    def __init__(self, runtime, source, policy, interval_s=2.0, on_switch=None, clock=time.perf_counter):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.runtime = runtime
        self.source = source
        self.policy = policy
        self.interval_s = interval_s
        self.on_switch = on_switch
        self.clock = clock
        self.log = []
        self.polls = 0
        self.errors = 0
        self.last_state = None
        self.last_reason = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def poll(self):
        """Read the source, evaluate the policy, switch if needed; returns the log entry of a switch or ``None``."""
        with self._lock:
            self.polls += 1
            try:
                state = self.source.read()
                name, why = self.policy.decide(state)
            except Exception as e:  # never stop the frames for a sensor
                self.errors += 1
                if self.errors == 1 or self.errors % 100 == 0:
                    logger.warning("power policy: reading %s failed (%s: %s); keeping %s",
                                   getattr(self.source, "name", self.source), type(e).__name__, e,
                                   self.runtime.variant)
                return None
            self.last_state, self.last_reason = state, why
            current = self.runtime.variant
            if name == current:
                return None
            t0 = self.clock()
            self.runtime.set_variant(name)
            switch_ms = (self.clock() - t0) * 1e3
            entry = {"time": state.time, "from": current, "to": name, "reason": state.to_dict(), "why": why,
                     "switch_ms": switch_ms}
            self.log.append(entry)
        logger.info("switch %s -> %s in %.3f ms: %s (%s)", current, name, switch_ms, why, state.describe())
        if self.on_switch is not None:
            self.on_switch(entry)
        return entry

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            self.poll()

    def start(self):
        """Evaluate now, then every ``interval_s`` seconds in a background thread."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self.poll()
        self._thread = threading.Thread(target=self._loop, name="edgegan-policy")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        """Stop the background thread (the current variant stays)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.interval_s))
            self._thread = None

    @property
    def running(self):
        return self._thread is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False


def run_live(runtime, monitor, x, duration_s=None, frames=None, per_frame=False, clock=time.perf_counter):
    """Stream ``x`` through ``runtime`` while ``monitor`` switches variants: the power-aware frame loop.

    Runs for ``duration_s`` seconds or ``frames`` frames. ``per_frame``: call ``monitor.poll()``
    before every frame; else the monitor's background thread polls every ``interval_s``. The
    first frame after each switch is timed into its log entry (``first_frame_ms``). Returns
    ``{"frames", "wall_s", "fps", "variants": {name: {"frames", "seconds", "fps"}}, "switches", "polls"}``.
    """
    if duration_s is None and frames is None:
        raise ValueError("give duration_s or frames")
    per_variant = {}
    seen = len(monitor.log)
    started_here = False
    if not per_frame and not monitor.running:
        monitor.start()
        started_here = True
    count = 0
    pending = None
    start = clock()
    try:
        while (frames is None or count < frames) and (duration_s is None or clock() - start < duration_s):
            if per_frame:
                monitor.poll()
            logged = len(monitor.log)  # switches logged before this frame starts
            name = runtime.variant
            t0 = clock()
            runtime(x)
            runtime.sync()
            dt = clock() - t0
            count += 1
            stats = per_variant.setdefault(name, {"frames": 0, "seconds": 0.0})
            stats["frames"] += 1
            stats["seconds"] += dt
            if logged > seen:
                for entry in monitor.log[seen:logged]:
                    entry.setdefault("first_frame_ms", None)
                pending = monitor.log[logged - 1]
                seen = logged
            if pending is not None and pending["to"] == name:
                pending["first_frame_ms"], pending["frame"] = dt * 1e3, count
                pending = None
    finally:
        if started_here:
            monitor.stop()
    wall = clock() - start
    for stats in per_variant.values():
        stats["fps"] = stats["frames"] / stats["seconds"] if stats["seconds"] > 0 else None
    return {"frames": count, "wall_s": wall, "fps": count / wall if wall > 0 else None, "variants": per_variant,
            "switches": list(monitor.log), "polls": monitor.polls, "poll_errors": monitor.errors}
