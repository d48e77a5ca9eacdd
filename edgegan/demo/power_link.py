"""The power source behind the demo's overlay (mode, watts) and, in auto mode, the policy that picks the variant.

Torch-free and Python 3.6-compatible.
"""

import time

from ..errors import EdgeganError


def _import_power():
    """``(edgegan.runtime.power, edgegan.runtime.policy)``; ``None`` for the part this edgegan lacks."""
    try:
        from ..runtime import power
    except ImportError:
        power = None
    try:
        from ..runtime import policy
    except ImportError:
        policy = None
    return power, policy


class PowerLink(object):
    """The power source behind the overlay's mode/watts and, in auto mode, the policy that picks the variant.

    ``spec``: a ``detect_source`` spec (``None`` = auto-detect). The source is read every
    ``interval_s`` seconds from the demo loop (``tick``), never in a thread, so a variant switch
    happens between frames. Auto mode runs ``PolicyMonitor.poll()`` (``Policy.from_bundle``: the
    manifest's mode → variant map, battery caps, target FPS) and reports each switch through
    ``on_switch(entry)`` (the monitor's log entry: from, to, why, switch_ms). ``modules``: the
    ``(power, policy)`` modules (default ``_import_power()``). ``log``: a stream (stderr) where each
    distinct note of the source (e.g. "/tmp/mode is missing; keeping the last state") is said once.
    """

    def __init__(self, runtime, spec=None, interval_s=2.0, on_switch=None, clock=time.perf_counter, modules=None,
                 log=None):
        power, self._policy_module = modules if modules is not None else _import_power()
        if power is None:
            raise EdgeganError("power sources need edgegan.runtime.power (the power-aware runtime), which this "
                               "edgegan does not have; run without --auto/--power-source")
        self.runtime = runtime
        self.spec = spec
        self.interval_s = float(interval_s)
        self.on_switch = on_switch
        self.source = power.detect_source(spec)
        self.state = None
        self.monitor = None
        self._clock = clock
        self._last = None
        self.log = log
        self._said = set()

    def enable_auto(self):
        """Create the ``PolicyMonitor`` (once); ``EdgeganError`` if there is no policy module or bundle policy."""
        if self.monitor is not None:
            return self.monitor
        if self._policy_module is None:
            raise EdgeganError("auto mode needs edgegan.runtime.policy (the power-aware runtime), which this "
                               "edgegan does not have; pick variants with +/- or --variant")
        policy = self._policy_module.Policy.from_bundle(self.runtime.bundle)
        self.monitor = self._policy_module.PolicyMonitor(self.runtime, self.source, policy,
                                                         interval_s=self.interval_s, on_switch=self._switched)
        return self.monitor

    def _switched(self, entry):
        if self.on_switch is not None:
            self.on_switch(entry)

    def tick(self, auto, force=False):
        """Read the source when ``interval_s`` passed (or ``force``); in auto mode let the policy decide.

        Returns the current ``PowerState`` (possibly the previous reading).
        """
        now = self._clock()
        if not force and self._last is not None and now - self._last < self.interval_s:
            return self.state
        self._last = now
        if auto:
            monitor = self.enable_auto()
            monitor.poll()  # reads the source, decides, switches; a failed read keeps the variant
            state = monitor.last_state if monitor.last_state is not None else self.state
        else:
            state = self.source.read()
        self.state = state
        self._say_notes(state)
        return state

    def _say_notes(self, state):
        """Each distinct note of ``state`` once on ``log`` (a missing power file is said, not only recorded)."""
        if not self.log or state is None:
            return
        for note in getattr(state, "notes", None) or ():
            if note not in self._said:
                self._said.add(note)
                self.log.write("note: power source %s: %s\n" % (getattr(self.source, "name", self.spec), note))

    def close(self):
        if self.monitor is not None:
            try:
                self.monitor.stop()
            except Exception:  # noqa: BLE001 - never started; stopping must not mask the outcome
                pass
        self.source.close()
