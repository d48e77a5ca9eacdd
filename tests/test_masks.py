"""PPCD's channel masks (``edgegan.nn.masks``) at their boundaries: ``m = sigmoid(δ·w)``, a channel is off
when ``m ≤ pivot``, binarization keeps ``m > pivot`` and freezes the mask. A mask at exactly the pivot
(``w = 0``, pivot 0.5) tells ``<`` from ``≤``."""

import pytest
import torch
import torch.nn as nn

from edgegan.nn.masks import ChannelMask, mask_stats, sparsity_loss, update_masks


def _mask(weights, pivot=0.5):
    m = ChannelMask(len(weights), pivot=pivot)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weights))
    return m


def test_mask_is_sigmoid_of_delta_times_w():
    m = _mask([0.001, -0.002, 0.0])
    torch.testing.assert_close(m.mask(), torch.sigmoid(torch.tensor([1.0, -2.0, 0.0])))


def test_forward_scales_each_channel_and_keeps_the_input_dtype():
    m = _mask([0.001, -0.001])
    x = torch.ones(2, 2, 3, 3, dtype=torch.bfloat16)
    y = m(x)
    assert y.dtype == torch.bfloat16
    expected = torch.sigmoid(torch.tensor([1.0, -1.0])).to(torch.bfloat16)
    assert torch.equal(y[:, 0], torch.full((2, 3, 3), float(expected[0]), dtype=torch.bfloat16))
    assert torch.equal(y[:, 1], torch.full((2, 3, 3), float(expected[1]), dtype=torch.bfloat16))


def test_a_mask_at_the_pivot_is_off():
    m = _mask([0.0, 1.0])  # masks 0.5 (= pivot) and 1.0
    assert m.ratio() == 0.5
    assert m.kept().tolist() == [1]
    m.binarize()
    assert m.binary.tolist() == [0.0, 1.0] and bool(m.frozen)


def test_binarize_uses_sigmoid_of_delta_times_w():
    m = _mask([-0.001, 0.001], pivot=0.005)  # sigmoid(∓1) = 0.27, 0.73: both on
    m.binarize()
    assert m.binary.tolist() == [1.0, 1.0]
    assert not m.weight.requires_grad


def test_a_frozen_mask_stays_as_it_was_binarized():
    m = _mask([1.0, 1.0])
    m.binarize()
    with torch.no_grad():
        m.weight.fill_(-1.0)
    m.binarize()
    assert m.binary.tolist() == [1.0, 1.0]
    assert m.update(alpha=0.0) and m.binary.tolist() == [1.0, 1.0]
    assert float(m.sparsity_loss()) == 0.0


def test_update_binarizes_once_the_ratio_exceeds_alpha():
    m = _mask([-1.0, 1.0, 1.0, 1.0])  # ratio 0.25
    assert not m.update(alpha=0.25) and not bool(m.frozen)
    assert m.update(alpha=0.2) and m.binary.tolist() == [0.0, 1.0, 1.0, 1.0]


def test_model_level_helpers():
    model = nn.Sequential(nn.Conv2d(1, 3, 1), _mask([-1.0, 1.0, 1.0]), nn.Conv2d(3, 2, 1), _mask([1.0, 1.0]))
    assert float(sparsity_loss(model).detach()) == pytest.approx(0.0 + 2.0 + 2.0 + 2.0 + 2.0)
    assert update_masks(model, alpha=0.3) == 1
    assert mask_stats(model) == {"kept": 4, "total": 5, "frozen": 1, "masks": 2}
    with pytest.raises(ValueError, match=r"^the model has no ChannelMask$"):
        sparsity_loss(nn.Conv2d(1, 1, 1))


def test_reprs():
    m = _mask([1.0, 1.0], pivot=0.005)
    assert repr(m) == "ChannelMask(channels=2, delta=1000, pivot=0.005, frozen=False)"
    m.binarize()
    assert repr(m) == "ChannelMask(channels=2, delta=1000, pivot=0.005, frozen=True)"
