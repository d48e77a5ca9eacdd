"""Anycost channel sorting: same function at full width, importance non-increasing."""

import pytest
import torch
from conftest import with_bn_statistics
import torch.nn as nn

from edgegan.models import ResnetGenerator
from edgegan.nn import ElasticConv2d, SwitchableBatchNorm2d
from edgegan.nn.sorting import (Group, channel_importance, conv_norm_chain, group_importance, sort_channels,
                                sorting_groups)

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


# --- the generic chain, given groups, and exactly what each permutation moves -----------------------------

NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _randomize_norm(norm, gen):
    with torch.no_grad():
        for name in NORM_TENSORS:
            t = getattr(norm, name, None)
            if t is not None:
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)


def _norm_tensors(norm):
    return {n: getattr(norm, n).clone() for n in NORM_TENSORS if getattr(norm, n, None) is not None}


def test_generic_chain_permutes_every_norm_parameter_and_statistic():
    """Affine instance norms, instance norms with running statistics (used in eval mode), BatchNorm: each tensor
    of the norm after a producer or a depthwise passthrough moves with its channel."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True, track_running_stats=True),
                      nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.InstanceNorm2d(8, track_running_stats=True),
                      nn.ReLU(), nn.Conv2d(8, 6, 1), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.Conv2d(6, 5, 1), nn.InstanceNorm2d(5, affine=True), nn.ReLU(), nn.Conv2d(5, 3, 3, padding=1))
    gen = torch.Generator().manual_seed(1)
    norms = [m[1], m[4], m[7], m[10]]
    for norm in norms:
        _randomize_norm(norm, gen)
    m.eval()
    before = [_norm_tensors(norm) for norm in norms]
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        ref = m(x)
    perms = sort_channels(m)
    assert len(perms) == 3 and all(not torch.equal(p, torch.arange(len(p))) for p in perms)
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-5)
    for norm, old, perm in zip(norms, before, (perms[0], perms[0], perms[1], perms[2])):
        assert set(old) == set(_norm_tensors(norm))
        for name, t in old.items():
            assert torch.equal(getattr(norm, name), t[perm]), (norm, name)


def _same_modules(pairs_or_modules):
    return [id(x) if not isinstance(x, tuple) else tuple(id(y) for y in x) for x in pairs_or_modules]


def test_generic_groups_skip_fixed_outputs_and_pass_through_depthwise_convs():
    """A fixed-output conv keeps its channel order; a depthwise conv (groups == channels, even 2 of them, or an
    elastic one marked depthwise, even of one channel) passes its input's channels on; a 1-input-channel conv
    is not depthwise."""
    torch.manual_seed(0)
    fixed = ElasticConv2d(3, 4, 1, fixed_out=True)
    a, dw2, b = nn.Conv2d(4, 2, 1), nn.Conv2d(2, 2, 3, padding=1, groups=2), nn.Conv2d(2, 1, 1)
    dw1, c, d = ElasticConv2d(1, 1, 3, padding=1, depthwise=True), nn.Conv2d(1, 3, 1), nn.Conv2d(3, 5, 1)
    m = nn.Sequential(fixed, a, dw2, b, dw1, c, d)
    groups = sorting_groups(m)
    assert [_same_modules(g.producers) for g in groups] == [[(id(a), id(None))], [(id(b), id(None))],
                                                            [(id(c), id(None))]]
    assert [_same_modules(g.consumers) for g in groups] == [[id(b)], [id(c)], [id(d)]]
    assert [_same_modules(g.passthrough) for g in groups] == [[(id(dw2), id(None))], [(id(dw1), id(None))], []]
    assert sorting_groups(nn.Sequential(ElasticConv2d(3, 4, 1, fixed_out=True), nn.Conv2d(4, 3, 1))) == []
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        ref = m(x)
    fixed_weight = fixed.weight.clone()
    sort_channels(m)
    assert torch.equal(fixed.weight, fixed_weight)
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-5)


def test_conv_norm_chain_pairs_each_conv_with_the_first_norm_after_it():
    convs = [nn.Conv2d(2, 2, 1) for _ in range(3)]
    norms = [nn.BatchNorm2d(2) for _ in range(4)]
    chain = conv_norm_chain([norms[0], convs[0], nn.ReLU(), norms[1], norms[2], convs[1], nn.ReLU(), convs[2],
                             norms[3]])
    assert [tuple(map(id, pair)) for pair in chain] == [(id(convs[0]), id(norms[1])), (id(convs[1]), id(None)),
                                                       (id(convs[2]), id(norms[3]))]
    assert all(type(pair) is tuple for pair in chain) and conv_norm_chain([nn.ReLU(), norms[0]]) == []


def _segment_reader(device="cpu"):
    """``reader(cat([other(x), a(x)]))``: ``a``'s channels are the reader's inputs 3…6. Returns the three convs,
    the function, and the group that sorts ``a``'s channels."""
    torch.manual_seed(0)
    a, other, reader = (nn.Conv2d(i, o, 1).to(device) for i, o in ((2, 4), (2, 3), (7, 2)))
    x = torch.randn(1, 2, 3, 3, device=device)

    def run():
        with torch.no_grad():
            return reader(torch.cat([other(x), a(x)], 1))

    return (a, other, reader), run, Group([(a, None)], [(reader, 3)])


def test_sort_channels_takes_given_groups_and_consumers_reading_a_segment():
    (a, other, reader), run, group = _segment_reader()
    ref = run()
    reader_before, other_before = reader.weight.clone(), other.weight.clone()
    (perm,) = sort_channels(nn.ModuleList([a, other, reader]), groups=[group])
    assert not torch.equal(perm, torch.arange(4))
    assert torch.equal(other.weight, other_before)  # only the group given is sorted
    assert torch.equal(reader.weight[:, :3], reader_before[:, :3])
    assert torch.equal(reader.weight[:, 3:], reader_before[:, 3:][:, perm])
    torch.testing.assert_close(run(), ref, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"^a depthwise conv is a passthrough, not a consumer$"):
        sort_channels(nn.Sequential(), groups=[Group([(nn.Conv2d(2, 4, 1), None)], [nn.Conv2d(4, 4, 3, groups=4)])])


def test_equal_importances_keep_their_order():
    """Ties sort stably: 64 channels of two alternating importances (an unstable sort reorders ties from 32 on)."""
    conv = nn.Conv2d(1, 64, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0] * 32).reshape(64, 1, 1, 1))
    (perm,) = sort_channels(nn.Sequential(), groups=[Group([(conv, None)], [nn.Conv2d(64, 1, 1)])])
    assert perm.tolist() == list(range(1, 64, 2)) + list(range(0, 64, 2))


def test_switchable_bn_narrow_copies_keep_their_own_entries_where_they_can():
    """Each narrow BatchNorm (k channels) keeps its own entry for a channel it already held (perm[j] < k), moved to
    the channel's new place, and takes the widest copy's entry for a channel new to it."""
    sbn = SwitchableBatchNorm2d([2, 4, 6, 8])
    gen = torch.Generator().manual_seed(0)
    for bn in sbn.bn:
        _randomize_norm(bn, gen)
    before = [_norm_tensors(bn) for bn in sbn.bn]
    conv = nn.Conv2d(1, 8, 1, bias=False)
    order = [5, 0, 7, 1, 3, 2, 6, 4]  # the channels from most to least important
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([8.0 - order.index(c) for c in range(8)]).reshape(8, 1, 1, 1))
    (perm,) = sort_channels(nn.Sequential(), groups=[Group([(conv, sbn)], [nn.Conv2d(8, 1, 1)])])
    assert perm.tolist() == order
    full = before[-1]
    for bn, old in zip(sbn.bn, before):
        k = bn.num_features
        for name, t in old.items():
            expected = [(old if order[j] < k else full)[name][order[j]] for j in range(k)]
            assert torch.equal(getattr(bn, name), torch.stack(expected)), (k, name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sorting_on_cuda():
    """The permutations index tensors on the model's device: a whole generator, and a consumer reading a segment."""
    g = _model(norm="bn").cuda()
    x = torch.randn(2, 3, 32, 32, device="cuda")
    with torch.no_grad():
        ref = g(x)
    sort_channels(g)
    assert (g(x) - ref).abs().max().item() <= 1e-4
    convs, run, group = _segment_reader("cuda")
    ref = run()
    sort_channels(nn.ModuleList(convs), groups=[group])
    torch.testing.assert_close(run(), ref, rtol=0, atol=1e-5)
