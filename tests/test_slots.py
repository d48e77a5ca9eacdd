"""Channel slots (``edgegan.nn.slots``): switching a slot sets its producers' output count and the input
segment it feeds in each reader (a UNet's skip concatenation)."""

import torch
import torch.nn.functional as F

from edgegan.nn import ElasticConv2d
from edgegan.nn.slots import Slot


def _slot():
    torch.manual_seed(0)
    producers = [ElasticConv2d(2, 8, 1), ElasticConv2d(2, 8, 1)]
    reader = ElasticConv2d(12, 4, 1, in_segments=[8, 4])  # reads cat([this slot, another one])
    return Slot(8, producers, readers=[(reader, 0)]), producers, reader


def test_set_switches_producers_and_the_readers_segment():
    slot, producers, reader = _slot()
    slot.set(3)
    assert [p.active_out for p in producers] == [3, 3]
    assert reader.active_in == [3, None] and reader.active_segments() == [3, 4]
    x = torch.randn(1, 7, 5, 5)  # the slot's first 3 channels, then the 4 of the other segment
    torch.testing.assert_close(reader(x), F.conv2d(x, reader.weight[:, [0, 1, 2, 8, 9, 10, 11]], reader.bias))
    slot.set(None)
    assert [p.active_out for p in producers] == [None, None] and reader.active_in == [None, None]


def test_reprs():
    slot, _, _ = _slot()
    assert repr(slot) == "Slot(max_channels=8, layers=2, readers=1)"
    assert repr(Slot(8, [ElasticConv2d(2, 8, 1)])) == "Slot(max_channels=8, layers=1)"
