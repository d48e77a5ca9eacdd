"""Power sources: where the device's power mode, AC/battery state and power draw come from.

Torch-free and Python 3.6-compatible. Each source's ``read()`` returns a ``PowerState``; fields
a source cannot know are ``None``::

    from edgegan.runtime.power import detect_source
    source = detect_source()            # auto: jetson, else linux (sysfs), else psutil, else none
    state = source.read()               # PowerState(mode="1", mode_name="5W", watts=4.9, ...)

Sources (``detect_source(spec)``):

``jetson``
    ``nvpmodel`` mode (``/var/lib/nvpmodel/status`` + ``/etc/nvpmodel.conf``, else ``nvpmodel -q``),
    INA3221 rails (JetPack 4 iio layout in mW, JetPack 5+ hwmon layout V × I), total from
    ``POM_5V_IN`` / ``VDD_IN`` only (the rails are never summed), ``tegrastats`` when no rail is readable.
``linux``
    ``/sys/class/power_supply`` (AC online, battery %, ``power_now`` or current × voltage), Intel RAPL
    energy counters (wrap-around handled), ``/sys/firmware/acpi/platform_profile`` (used as the mode).
``psutil``
    ``psutil.sensors_battery()`` on any OS: battery % and AC, no watts.
``file:PATH``
    a file a script rewrites: ``1``, ``mode=1 battery=30 ac=0 watts=4.5`` or a JSON object.
``manual:MODE`` / ``manual:mode=1,battery=30``
    fixed values (``ManualSource.set`` changes them).
``none``
    knows nothing.

``detect_source`` wraps the chosen source in a ``FallbackSource``: a source that raises is set
aside for a while and the next one answers (at the end ``none``), so a sensor that vanishes
mid-run never stops it; the state's ``notes`` say what happened.
"""

import logging
import os
import time

from ...errors import EdgeganError

logger = logging.getLogger(__name__)

__all__ = ["PowerError", "PowerState", "PowerSource", "NullSource", "FallbackSource", "detect_source", "SPECS"]

SPECS = ("auto", "jetson", "linux", "psutil", "file:PATH", "manual:MODE", "none")


class PowerError(EdgeganError):
    """A power source was asked for that this machine does not have, or its spec is malformed."""


class PowerState(object):
    """One reading of a power source.

    ``source``: the source that answered. ``mode``: the power-mode id as a string (``"0"``) or a
    profile name (``"balanced"``), ``mode_name``: its name (``"MAXN"``). ``on_ac``: ``True`` on mains,
    ``False`` on battery. ``battery_percent``: 0–100. ``watts``: total power draw, with
    ``watts_source`` saying which sensor (``"rail:VDD_IN"``, ``"rapl:package"``, ``"battery"``).
    ``platform_profile``: the ACPI platform profile. ``rails``: watts per named rail or zone.
    ``time``: ``time.time()`` of the reading. ``notes``: what was missing or failed.
    """

    FIELDS = ("source", "mode", "mode_name", "on_ac", "battery_percent", "watts", "watts_source",
              "platform_profile", "rails", "time", "notes")

    def __init__(self, source, mode=None, mode_name=None, on_ac=None, battery_percent=None, watts=None,
                 platform_profile=None, time_s=None, watts_source=None, rails=None, notes=None, extra=None):
        self.source = source
        self.mode = None if mode is None else str(mode)
        self.mode_name = mode_name
        self.on_ac = on_ac
        self.battery_percent = None if battery_percent is None else float(battery_percent)
        self.watts = None if watts is None else float(watts)
        self.watts_source = watts_source
        self.platform_profile = platform_profile
        self.rails = dict(rails or {})
        self.time = time.time() if time_s is None else time_s
        self.notes = list(notes or [])
        self.extra = dict(extra or {})

    @property
    def mode_keys(self):
        """The keys a policy may look this state up by, in order: mode id, mode name, platform profile."""
        keys = []
        for key in (self.mode, self.mode_name, self.platform_profile):
            if key is not None and key not in keys:
                keys.append(key)
        return keys

    def to_dict(self):
        d = dict((name, getattr(self, name)) for name in self.FIELDS)
        if self.extra:
            d["extra"] = dict(self.extra)
        return d

    def describe(self):
        """``mode 1 (5W), battery 40% on battery, 4.90 W (rail:VDD_IN)``: a short human line."""
        parts = []
        if self.mode is not None:
            parts.append("mode %s%s" % (self.mode, " (%s)" % self.mode_name
                                        if self.mode_name and self.mode_name != self.mode else ""))
        if self.platform_profile is not None and self.platform_profile != self.mode:
            parts.append("profile %s" % self.platform_profile)
        if self.battery_percent is not None or self.on_ac is not None:
            power = {True: "on AC", False: "on battery", None: "AC unknown"}[self.on_ac]
            parts.append(power if self.battery_percent is None else "battery %.0f%% %s" % (self.battery_percent, power))
        if self.watts is not None:
            parts.append("%.2f W%s" % (self.watts, " (%s)" % self.watts_source if self.watts_source else ""))
        return ", ".join(parts) or "nothing known"

    def __repr__(self):
        return "PowerState(%s: %s)" % (self.source, self.describe())


class PowerSource(object):
    """Base class: ``name``; ``read()`` → ``PowerState``; ``close()``."""

    name = None

    def read(self):
        raise NotImplementedError

    def close(self):
        """Release what the source holds (a subprocess, files)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.name)


class NullSource(PowerSource):
    """Knows nothing: every field ``None``. The last resort of a ``FallbackSource``."""

    name = "none"

    def __init__(self, note="no power sensor found"):
        self.note = note

    def read(self):
        return PowerState(self.name, notes=[self.note] if self.note else [])


class FallbackSource(PowerSource):
    """Reads the first of ``sources`` that answers.

    A source that raises is set aside for ``retry_s`` seconds (then tried again) and the next one
    answers; the failure is logged once per source and added to the state's ``notes``. The last
    source should be one that cannot fail (``NullSource``).
    """

    def __init__(self, sources, retry_s=30.0, clock=time.monotonic):
        if not sources:
            raise ValueError("FallbackSource needs at least one source")
        self.sources = list(sources)
        self.retry_s = retry_s
        self.clock = clock
        self._failed = {}  # index -> (time of failure, message)
        self.name = ">".join(s.name for s in self.sources)

    @property
    def primary(self):
        return self.sources[0]

    def read(self):
        notes = []
        now = self.clock()
        for n, source in enumerate(self.sources):
            failed = self._failed.get(n)
            if failed is not None and now - failed[0] < self.retry_s:
                notes.append("%s set aside: %s" % (source.name, failed[1]))
                continue
            try:
                state = source.read()
            except Exception as e:  # a sensor driver can raise anything; the run must go on
                message = "%s: %s" % (type(e).__name__, e)
                if failed is None:
                    logger.warning("power source %s failed (%s); falling back to %s", source.name, message,
                                   ", ".join(s.name for s in self.sources[n + 1:]) or "nothing")
                self._failed[n] = (now, message)
                notes.append("%s failed: %s" % (source.name, message))
                continue
            if failed is not None:
                logger.info("power source %s answers again", source.name)
                del self._failed[n]
            state.notes = notes + state.notes
            return state
        return PowerState("none", notes=notes)

    def close(self):
        for source in self.sources:
            try:
                source.close()
            except Exception:  # closing must not mask the run's own outcome
                logger.debug("closing %s failed", source.name, exc_info=True)


def detect_source(spec=None, root="/", fallback=True, helpers=True):
    """A ``PowerSource`` for ``spec``: ``None``/``"auto"``, ``"jetson"``, ``"linux"``, ``"psutil"``,
    ``"file:PATH"``, ``"manual:MODE"`` or ``"none"``.

    ``auto`` takes every source this machine has, in that order, then ``none``. A named source this
    machine lacks raises ``PowerError``. ``root`` prefixes sysfs/etc paths (tests point it at a
    recorded tree). With ``fallback`` (default) the result is a ``FallbackSource`` ending in ``none``.
    ``helpers=False`` starts no helper process (``tegrastats``): for a one-off reading.
    """
    from .battery import PsutilSource
    from .jetson import JetsonSource
    from .linux import LinuxSource
    from .scripted import FileSource, ManualSource

    spec = (spec or "auto").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "auto":
        sources = []
        if JetsonSource.probe(root):
            sources.append(JetsonSource(root, tegrastats="tegrastats" if helpers else None))
        if LinuxSource.probe(root):
            sources.append(LinuxSource(root))
        if not sources and PsutilSource.probe():
            sources.append(PsutilSource())
    elif kind == "jetson":
        if not JetsonSource.probe(root):
            raise PowerError("this machine is not a Jetson: no nvpmodel, no /var/lib/nvpmodel/status and no INA3221 "
                             "under /sys/bus/i2c/drivers; choose another power source (%s)" % ", ".join(SPECS))
        sources = [JetsonSource(root, tegrastats="tegrastats" if helpers else None)]
    elif kind == "linux":
        if not LinuxSource.probe(root):
            raise PowerError("no Linux power interface here: /sys/class/power_supply is empty and there is no RAPL "
                             "(/sys/class/powercap/intel-rapl:*) or platform_profile; choose another power source "
                             "(%s)" % ", ".join(SPECS))
        sources = [LinuxSource(root)]
    elif kind == "psutil":
        if not PsutilSource.probe():
            raise PowerError("psutil reports no battery here (or psutil is not installed: pip install psutil); "
                             "choose another power source (%s)" % ", ".join(SPECS))
        sources = [PsutilSource()]
    elif kind == "file":
        if not arg:
            raise PowerError("file: needs a path, e.g. file:/tmp/power-mode")
        sources = [FileSource(arg)]
    elif kind == "manual":
        sources = [ManualSource(arg)]
    elif kind == "none":
        sources = []
    else:
        raise PowerError("unknown power source %r; use one of %s" % (spec, ", ".join(SPECS)))
    if not fallback:
        return sources[0] if sources else NullSource()
    return FallbackSource(sources + [NullSource("no power sensor found" if kind == "auto" else "fallback")])


def root_path(root, path):
    """``path`` (absolute) under ``root`` (``"/"`` for the real system)."""
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))
