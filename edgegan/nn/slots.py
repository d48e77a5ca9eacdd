"""Channel slots: the groups of elastic layers that share one channel count.

A model groups its elastic layers into *slots*: layers that must share one channel count (e.g. the
residual stream of a ResNet generator and the last conv of every block) form one slot. A model may
define ``channel_slots()``; otherwise every elastic conv is a slot of its own.

A slot's channels may reach a layer as one segment of a concatenated input (a UNet's skip
connections): such a layer is one of the slot's ``readers``, ``(layer, segment)``, and switching
the slot sets that segment's active count too.
"""

from collections import OrderedDict

from .elastic import ElasticConv2d, ElasticConvTranspose2d

ELASTIC_CONVS = (ElasticConv2d, ElasticConvTranspose2d)


class Slot(object):
    """One channel count shared by ``modules`` (elastic convs that produce it), at most ``max_channels``.

    ``readers``: ``(layer, segment)`` pairs, layers built with ``in_segments`` whose input segment
    ``segment`` holds this slot's channels.
    """

    def __init__(self, max_channels, modules, readers=()):
        self.max_channels = int(max_channels)
        self.modules = list(modules)
        self.readers = [(m, int(j)) for m, j in readers]
        for m, j in self.readers:
            if m.in_segments is None or m.in_segments[j] != self.max_channels:
                raise ValueError("reader %s segment %d does not hold the slot's %d channels"
                                 % (type(m).__name__, j, self.max_channels))

    def set(self, channels):
        """Switch the producing layers and the readers' segments to ``channels``."""
        for m in self.modules:
            m.active_out = channels
        for m, j in self.readers:
            m.set_active_in(j, channels)

    def __repr__(self):
        extra = ", readers=%d" % len(self.readers) if self.readers else ""
        return "Slot(max_channels=%d, layers=%d%s)" % (self.max_channels, len(self.modules), extra)


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
