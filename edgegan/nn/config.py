"""``SubnetConfig``: which sub-network of an elastic model runs — a width multiplier or per-slot channels.

It lives with the elastic layers (``set_width`` takes one); ``edgegan.subnet`` re-exports it beside
``extract`` and ``cost``.
"""

import hashlib
import json
from collections import OrderedDict

from .slots import channel_slots, width_to_channels


class SubnetConfig(object):
    """A width multiplier (``width=0.5``) or per-slot channel counts (``channels={"stem": 8, ...}``)."""

    def __init__(self, width=None, channels=None, name=None):
        if (width is None) == (channels is None):
            raise ValueError("give exactly one of width or channels")
        if width is not None and not 0.0 < float(width) <= 1.0:
            raise ValueError("width must be in (0, 1], got %r" % (width,))
        self.width = None if width is None else float(width)
        self.channels = None if channels is None else OrderedDict((str(k), int(v)) for k, v in channels.items())
        self._name = name

    @classmethod
    def coerce(cls, value):
        if isinstance(value, SubnetConfig):
            return value
        if isinstance(value, (int, float)):
            return cls(width=value)
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise TypeError("expected a width, a channel dict or a SubnetConfig, got %r" % (value,))

    @classmethod
    def from_dict(cls, d):
        if "width" in d or "channels" in d:
            return cls(width=d.get("width"), channels=d.get("channels"), name=d.get("name"))
        return cls(channels=d)

    def to_dict(self):
        d = {"name": self.name}
        if self.width is not None:
            d["width"] = self.width
        else:
            d["channels"] = dict(self.channels)
        return d

    @property
    def name(self):
        if self._name:
            return self._name
        if self.width is not None:
            return "w%g" % self.width
        digest = hashlib.sha1(json.dumps(self.channels, sort_keys=True).encode()).hexdigest()[:8]
        return "c-" + digest

    def resolve(self, model):
        """Slot → channel count for ``model``."""
        slots = channel_slots(model)
        if self.width is not None:
            return OrderedDict((k, width_to_channels(self.width, s.max_channels)) for k, s in slots.items())
        return OrderedDict(self.channels)

    def __eq__(self, other):
        return isinstance(other, SubnetConfig) and self.width == other.width and self.channels == other.channels

    def __hash__(self):
        return hash((self.width, tuple(self.channels.items()) if self.channels else None))

    def __repr__(self):
        if self.width is not None:
            return "SubnetConfig(width=%g)" % self.width
        return "SubnetConfig(channels=%s)" % dict(self.channels)
