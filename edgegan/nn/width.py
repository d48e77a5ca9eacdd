"""Switching the active width of an elastic model.

A model groups its elastic layers into *channel slots*: layers that must share one channel
count (e.g. the residual stream of a ResNet generator and the last conv of every block) form
one slot. A width multiplier sets every slot to ``round(width × max)``; a per-layer
configuration (``SubnetConfig(channels=…)``) sets slots one by one. Switching is one call::

    set_width(model, 0.5)
    with at_width(model, 0.25):
        y = model(x)
"""

import contextlib
from collections import OrderedDict

from .elastic import ElasticConv2d, ElasticConvTranspose2d

ELASTIC_CONVS = (ElasticConv2d, ElasticConvTranspose2d)


class Slot(object):
    """One channel count shared by ``modules`` (elastic convs), at most ``max_channels``."""

    def __init__(self, max_channels, modules):
        self.max_channels = int(max_channels)
        self.modules = list(modules)

    def __repr__(self):
        return "Slot(max_channels=%d, layers=%d)" % (self.max_channels, len(self.modules))


def channel_slots(model):
    """The model's slots: its own ``channel_slots()`` if it defines one, else one slot per elastic conv."""
    if hasattr(model, "channel_slots"):
        return model.channel_slots()
    slots = OrderedDict()
    for name, m in model.named_modules():
        if isinstance(m, ELASTIC_CONVS) and not m.fixed_out and not getattr(m, "depthwise", False):
            slots[name] = Slot(m.out_channels, [m])
    return slots


def width_to_channels(width, max_channels):
    return max(1, int(round(float(width) * max_channels)))


def apply_channels(model, channels):
    """Set every slot named in ``channels`` (slot → count); slots not named run at full width."""
    slots = channel_slots(model)
    unknown = set(channels) - set(slots)
    if unknown:
        raise ValueError("unknown channel slots %s; this model has %s" % (sorted(unknown), list(slots)))
    for name, slot in slots.items():
        c = int(channels.get(name, slot.max_channels))
        if not 1 <= c <= slot.max_channels:
            raise ValueError("slot %r: %d channels asked, 1..%d allowed" % (name, c, slot.max_channels))
        for m in slot.modules:
            m.active_out = c


def set_width(model, config):
    """Switch ``model`` to a width multiplier (float) or a ``SubnetConfig``; returns the config."""
    from ..subnet import SubnetConfig

    config = SubnetConfig.coerce(config)
    apply_channels(model, config.resolve(model))
    model._edgegan_config = config
    return config


def current_config(model):
    """The config last set with ``set_width`` (full width if none)."""
    from ..subnet import SubnetConfig

    return getattr(model, "_edgegan_config", None) or SubnetConfig(width=1.0)


@contextlib.contextmanager
def at_width(model, config):
    """Run a block at a width, then restore the previous one."""
    previous = current_config(model)
    set_width(model, config)
    try:
        yield model
    finally:
        set_width(model, previous)
