"""Channel slots: the groups of elastic layers that share one channel count.

A model groups its elastic layers into *slots*: layers that must share one channel count (e.g. the
residual stream of a ResNet generator and the last conv of every block) form one slot. A model may
define ``channel_slots()``; otherwise every elastic conv is a slot of its own.
"""

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
