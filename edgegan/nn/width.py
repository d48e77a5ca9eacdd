"""Switching the active width of an elastic model.

A model groups its elastic layers into *channel slots* (``edgegan.nn.slots``). A width multiplier sets every slot to ``round(width × max)``; a per-layer
configuration (``SubnetConfig(channels=…)``) sets slots one by one. Switching is one call::

    set_width(model, 0.5)
    with at_width(model, 0.25):
        y = model(x)
"""

import contextlib

from .config import SubnetConfig
from .slots import ELASTIC_CONVS, Slot, channel_slots, width_to_channels  # noqa: F401 (re-exported)


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
        slot.set(c)


def set_width(model, config):
    """Switch ``model`` to a width multiplier (float) or a ``SubnetConfig``; returns the config."""
    config = SubnetConfig.coerce(config)
    apply_channels(model, config.resolve(model))
    model._edgegan_config = config
    return config


def current_config(model):
    """The config last set with ``set_width`` (full width if none)."""
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
