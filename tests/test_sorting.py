"""Anycost channel sorting: same function at full width, importance non-increasing."""

import pytest
import torch
from conftest import with_bn_statistics
import torch.nn as nn

from edgegan.models import ResnetGenerator
from edgegan.nn.sorting import channel_importance, group_importance, sort_channels, sorting_groups

VARIANTS = [
    dict(norm="bn", padding="reflect", upsample="transposed"),
    dict(norm="in", padding="zero", upsample="resize"),
]


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return with_bn_statistics(ResnetGenerator(3, 3, ngf=8, n_blocks=2, **kw), (4, 3, 32, 32), seed=seed)


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(kw.values()))
def test_sorting_preserves_full_width_function(kw):
    g = _model(**kw)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = g(x)
    sort_channels(g)
    with torch.no_grad():
        out = g(x)
    assert (ref - out).abs().max().item() <= 1e-5
    for group in sorting_groups(g):
        imp = group_importance(group)
        assert bool((imp[:-1] >= imp[1:]).all())


def test_sorting_actually_permutes_and_stream_is_one_group():
    g = _model(norm="bn")
    before = channel_importance(g.down[3]).clone()
    perms = sort_channels(g)
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms)
    stream = sorting_groups(g)[2]
    assert len(stream.producers) == 1 + 2 and len(stream.consumers) == 2 + 1
    assert torch.allclose(channel_importance(g.down[3]).sum(), before.sum())


def test_full_width_switchable_bn_exact_narrow_best_effort():
    g = _model(norm="bn")
    sbn = g.stem[2]
    full_mean = sbn.bn[-1].running_mean.clone()
    perm = sort_channels(g)[0]
    assert torch.equal(sbn.bn[-1].running_mean, full_mean[perm])
    k = sbn.bn[0].num_features
    assert sbn.bn[0].running_mean.shape[0] == k


def test_generic_chain_with_depthwise():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 6, 1), nn.InstanceNorm2d(6, affine=True), nn.ReLU(),
                      nn.Conv2d(6, 3, 3, padding=1))
    m.train()
    for _ in range(3):
        m(torch.randn(4, 3, 16, 16))
    m.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = m(x)
    sort_channels(m)
    with torch.no_grad():
        assert (m(x) - ref).abs().max().item() <= 1e-5
    imp = channel_importance(m[0])
    assert bool((imp[:-1] >= imp[1:]).all())


def test_first_k_channels_keep_more_importance_after_sorting():
    g = _model(norm="in")
    groups = sorting_groups(g)
    before = [group_importance(gr).clone() for gr in groups]
    sort_channels(g)
    after = [group_importance(gr) for gr in sorting_groups(g)]
    for b, a in zip(before, after):
        k = max(1, len(a) // 4)
        assert float(a[:k].sum()) >= float(b[:k].sum()) - 1e-6
        assert torch.allclose(a.sum(), b.sum(), rtol=1e-5)
