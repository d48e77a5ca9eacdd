"""Scripted power states: a file a script rewrites (``file:PATH``) and fixed values (``manual:...``).

Text formats (the file's or the spec's)::

    1                                    # a bare word: the mode
    mode=1 battery=30 ac=0 watts=4.5     # key=value, separated by spaces, commas or new lines
    {"mode": "1", "mode_name": "5W", "on_ac": false, "battery_percent": 30}   # JSON

Keys: ``mode``, ``mode_name`` (``name``), ``on_ac`` (``ac``: 1/0/true/false/yes/no/ac/battery),
``battery_percent`` (``battery``), ``watts``, ``platform_profile`` (``profile``). Python 3.6-compatible.
"""

import json
import os
import re

from . import PowerError, PowerSource, PowerState

ALIASES = {"name": "mode_name", "ac": "on_ac", "battery": "battery_percent", "profile": "platform_profile",
           "power": "watts"}
KEYS = ("mode", "mode_name", "on_ac", "battery_percent", "watts", "platform_profile")
TRUE = ("1", "true", "yes", "on", "ac", "mains")
FALSE = ("0", "false", "no", "off", "battery", "dc")


def _bool(value):
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError("on_ac must be one of %s or %s, got %r" % ("/".join(TRUE), "/".join(FALSE), value))


def _number(key, value, low=None, high=None):
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("%s must be a number, got %r" % (key, value))
    if number != number or (low is not None and number < low) or (high is not None and number > high):
        raise ValueError("%s must be in %s..%s, got %r" % (key, low, "" if high is None else high, value))
    return number


def parse_state_text(text):
    """The fields of a scripted state (see the module doc); ``ValueError`` saying what is wrong."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise ValueError("not valid JSON: %s" % e)
        if not isinstance(raw, dict):
            raise ValueError("JSON must be an object")
    else:
        tokens = [t for t in re.split(r"[\s,;]+", text) if t]
        if len(tokens) == 1 and "=" not in tokens[0]:
            raw = {"mode": tokens[0]}
        else:
            raw = {}
            for token in tokens:
                key, sep, value = token.partition("=")
                if not sep or not key:
                    raise ValueError("expected key=value, got %r" % token)
                raw[key] = value
    fields = {}
    for key, value in raw.items():
        key = ALIASES.get(key.strip().lower(), key.strip().lower())
        if key not in KEYS:
            raise ValueError("unknown key %r (known: %s)" % (key, ", ".join(KEYS)))
        if key == "on_ac":
            value = _bool(value)
        elif key == "battery_percent":
            value = _number(key, value, 0, 100)
        elif key == "watts":
            value = _number(key, value, 0)
        elif value is not None:
            value = str(value)
        fields[key] = value
    return fields


def _state(source, fields, notes=None):
    return PowerState(source, mode=fields.get("mode"), mode_name=fields.get("mode_name"),
                      on_ac=fields.get("on_ac"), battery_percent=fields.get("battery_percent"),
                      watts=fields.get("watts"), watts_source=source if fields.get("watts") is not None else None,
                      platform_profile=fields.get("platform_profile"), notes=notes)


class FileSource(PowerSource):
    """Reads ``path`` when it changes (inode, size, mtime). A missing or malformed file keeps the last
    good state and says so in ``notes``; write the file atomically (temporary file + rename)."""

    name = "file"

    def __init__(self, path):
        self.path = path
        self._key = None
        self._fields = {}
        self._problem = None

    def read(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return _state(self.name, self._fields, ["%s is missing; keeping the last state" % self.path])
        key = (st.st_ino, st.st_size, st.st_mtime_ns if hasattr(st, "st_mtime_ns") else st.st_mtime)
        if key != self._key:
            self._key = key
            try:
                with open(self.path, encoding="utf-8") as f:
                    self._fields = parse_state_text(f.read())
                self._problem = None
            except (IOError, OSError, ValueError, UnicodeDecodeError) as e:
                self._problem = "%s is malformed (%s); keeping the last state" % (self.path, e)
        return _state(self.name, self._fields, [self._problem] if self._problem else None)


class ManualSource(PowerSource):
    """Fixed values from a spec (``"1"`` or ``"mode=1,battery=30,ac=0"``); ``set(**fields)`` changes them."""

    name = "manual"

    def __init__(self, spec=""):
        try:
            self.fields = parse_state_text(spec)
        except ValueError as e:
            raise PowerError("manual power source %r: %s" % (spec, e))

    def set(self, **fields):
        """Change fields (``mode="1"``, ``on_ac=False``, ...); ``None`` clears one."""
        for key, value in fields.items():
            key = ALIASES.get(key, key)
            if key not in KEYS:
                raise PowerError("unknown power state field %r (known: %s)" % (key, ", ".join(KEYS)))
            self.fields[key] = value if value is None or key in ("on_ac", "battery_percent", "watts") \
                else str(value)

    def read(self):
        return _state(self.name, self.fields)
