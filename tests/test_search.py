"""Supernet search under MAC and latency budgets."""

import json
import math
import random
from collections import OrderedDict

import pytest
import torch

from edgegan.models import MobileResnetGenerator
from edgegan.nn import at_width
from edgegan.subnet import SubnetConfig, cost
from edgegan.train.search import LatencyTable, SearchSpace, pareto_front, psnr_evaluator, search

SHAPE = (1, 3, 16, 16)
CACHE = {}  # MACs per config of the module's model, shared by the searches below


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MobileResnetGenerator(3, 3, ngf=8, n_blocks=1, norm="in").eval()


def toy_quality(cfg):
    # more channels help, with diminishing returns; the stream matters most
    ch = cfg.channels
    return 3.0 * ch["stream"] ** 0.5 + ch["block0"] ** 0.5 + ch["down1"] ** 0.5 + 0.5 * ch["up1"] ** 0.5


def test_space_from_model(model):
    space = SearchSpace.from_model(model)
    assert space.choices["stream"] == [8, 16, 24, 32]
    assert space.choices["stem"] == [8]
    assert space.size == 1 * 2 * 4 * 4 * 2 * 1
    ratios = SearchSpace.from_model(model, choices=[0.25, 0.5, 1.0])
    assert ratios.choices["stream"] == [8, 16, 32]


def test_exhaustive_never_over_budget_and_finds_true_best(model):
    space = SearchSpace.from_model(model)
    res0 = search(model, toy_quality, SHAPE, mode="exhaustive", cost_cache=CACHE)
    macs = {c.config: c.macs for c in res0.evaluated}
    assert len(macs) == space.size
    budget = sorted(macs.values())[len(macs) // 2]
    res = search(model, toy_quality, SHAPE, budget_macs=budget, mode="auto", cost_cache=CACHE)
    assert res.mode == "exhaustive"
    assert res.front and all(c.macs <= budget for c in res.front + res.evaluated)
    true_best = max((cfg for cfg in macs if macs[cfg] <= budget), key=toy_quality)
    assert res.best.config == true_best
    costs = [c.macs for c in res.front]
    quals = [c.quality for c in res.front]
    assert costs == sorted(costs) and quals == sorted(quals)


def test_evolution_never_over_budget_and_is_seeded(model):
    space = SearchSpace.from_model(model)
    full = cost(model, SHAPE)["macs"]
    budget = 0.85 * full
    a = search(model, toy_quality, SHAPE, budget_macs=budget, mode="evolution", population=6, generations=3, seed=1, cost_cache=CACHE)
    b = search(model, toy_quality, SHAPE, budget_macs=budget, mode="evolution", population=6, generations=3, seed=1, cost_cache=CACHE)
    assert a.mode == "evolution" and a.front
    assert all(c.macs <= budget for c in a.evaluated)
    assert [c.config for c in a.front] == [c.config for c in b.front]
    assert space.size >= len(a.evaluated)


def _latency_table(space):
    # on this (imaginary) target the stream is slow and block0 nearly free: the opposite of MACs
    layers = {slot: {str(c): 0.01 * c for c in v} for slot, v in space.choices.items()}
    layers["stream"] = {str(c): 1.0 * c for c in space.choices["stream"]}
    layers["block0"] = {str(c): 0.001 * c for c in space.choices["block0"]}
    return {"unit": "ms", "base_ms": 1.0, "layers": layers}


def test_latency_budget_never_exceeded_and_differs_from_macs(model, tmp_path):
    space = SearchSpace.from_model(model)
    table = _latency_table(space)
    path = tmp_path / "lat.json"
    path.write_text(json.dumps(table))
    lt = LatencyTable.load(str(path))
    budget_ms = 20.0
    res_ms = search(model, toy_quality, SHAPE, budget_ms=budget_ms, latency_table=str(path), cost_cache=CACHE)
    assert res_ms.cost_key == "ms"
    assert all(c.ms is not None and c.ms <= budget_ms for c in res_ms.evaluated)
    assert all(lt.lookup(c.config) <= budget_ms for c in res_ms.front)
    # a MAC budget equal to the MACs of the latency winner picks something else
    macs_budget = res_ms.best.macs
    res_macs = search(model, toy_quality, SHAPE, budget_macs=macs_budget, cost_cache=CACHE)
    assert all(c.macs <= macs_budget for c in res_macs.evaluated)
    assert res_macs.best.config != res_ms.best.config
    assert res_macs.best.quality >= res_ms.best.quality


def test_latency_table_by_name_and_unpriced_configs_are_skipped(model):
    space = SearchSpace.from_model(model)
    cfgs = list(space.all())[:3]
    table = LatencyTable({"configs": {cfgs[0].name: 5.0, cfgs[1].name: 50.0}})
    assert table.lookup(cfgs[0]) == 5.0 and table.lookup(cfgs[2]) is None
    table2 = LatencyTable({"configs": [{"channels": dict(cfgs[2].channels), "ms": 7.0}]})
    assert table2.lookup(cfgs[2]) == 7.0
    res = search(model, toy_quality, SHAPE, budget_ms=10.0, latency_table=table.data, cost_cache=CACHE)
    assert [c.config for c in res.evaluated] == [cfgs[0]]


def test_latency_budget_needs_table(model):
    with pytest.raises(ValueError):
        search(model, toy_quality, SHAPE, budget_ms=10.0, cost_cache=CACHE)


def test_pareto_front():
    from edgegan.train.search import Candidate
    cs = [Candidate(None, m, 0, quality=q) for m, q in ((1, 1.0), (2, 0.5), (3, 2.0), (4, 2.0), (5, 3.0))]
    assert [(c.macs, c.quality) for c in pareto_front(cs)] == [(1, 1.0), (3, 2.0), (5, 3.0)]


def test_psnr_evaluator(model):
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    ev = psnr_evaluator(model, x, y)
    full = SearchSpace.from_model(model).largest()
    assert ev(full) > 80
    assert ev(SearchSpace.from_model(model).smallest()) < ev(full)


def test_recalibrated_evaluation_leaves_supernet_untouched():
    from edgegan.train.search import recalibrated_subnet

    torch.manual_seed(0)
    g = MobileResnetGenerator(3, 3, ngf=8, n_blocks=1, norm="bn").eval()
    state = {k: v.clone() for k, v in g.state_dict().items()}
    cfg = SearchSpace.from_model(g).smallest()
    batches = [torch.randn(4, 3, 16, 16) for _ in range(2)]
    sub = recalibrated_subnet(g, cfg, batches)
    bns = [m for m in sub.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(int(m.num_batches_tracked) == 2 for m in bns)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in state.items())
    x = torch.randn(2, 3, 16, 16)
    ev = psnr_evaluator(g, x, torch.zeros(2, 3, 16, 16), recalibrate=batches)
    assert torch.isfinite(torch.tensor(ev(cfg)))


def test_measured_latency_table_prices_its_configs(model):
    from edgegan.train.search import measure_latency_table

    space = SearchSpace.from_model(model)
    cfgs = [space.smallest(), space.largest()]
    data = measure_latency_table(model, cfgs, SHAPE, warmup=1, runs=2)
    table = LatencyTable(json.loads(json.dumps(data)))
    assert all(table.lookup(c) > 0 for c in cfgs)
    res = search(model, toy_quality, SHAPE, budget_ms=1e9, latency_table=data, cost_cache=CACHE)
    assert sorted(c.config.name for c in res.evaluated) == sorted(c.name for c in cfgs)


@pytest.mark.parametrize("fraction", [0.8, 0.9, 1.0])
@pytest.mark.parametrize("mode", ["exhaustive", "evolution"])
def test_never_over_budget_property(model, fraction, mode):
    full = cost(model, SHAPE)["macs"]
    budget = fraction * full
    for seed in range(3):
        res = search(model, lambda c: -sum(c.channels.values()) * ((seed + 1) % 2) + sum(c.channels.values()) * (seed % 2),
                     SHAPE, budget_macs=budget, mode=mode, population=5, generations=2, seed=seed, cost_cache=CACHE)
        assert all(c.macs <= budget for c in res.evaluated)
        assert all(c.macs <= budget for c in res.front)


def test_measured_latency_table_with_onnxruntime(model):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxsim")
    from edgegan.train.search import measure_latency_table

    space = SearchSpace.from_model(model)
    cfgs = [space.smallest(), space.largest()]
    data = measure_latency_table(model, cfgs, SHAPE, warmup=1, runs=2, engine="onnxruntime", threads=1, rounds=3)
    assert data["engine"] == "onnxruntime" and data["protocol"]["rounds"] == 3
    for entry in data["configs"]:
        assert len(entry["rounds_ms"]) == 3 and entry["ms"] == sorted(entry["rounds_ms"])[1]
    table = LatencyTable(json.loads(json.dumps(data)))
    assert all(table.lookup(c) > 0 for c in cfgs)
    with pytest.raises(ValueError):
        measure_latency_table(model, cfgs, SHAPE, engine="tflite")
    with pytest.raises(ValueError):
        measure_latency_table(model, cfgs, SHAPE, engine="onnxruntime", device="cuda")


# --- the space, the latency table and the front, checked against hand-computed values ------------------

class _Rng(object):
    """A stand-in for ``random.Random``: ``random()`` returns the given draws in turn, ``choice`` the element at
    ``pick`` (so an operator's use of the generator is visible)."""

    def __init__(self, draws=(), pick=-1):
        self.draws, self.pick = list(draws), pick

    def random(self):
        return self.draws.pop(0)

    def choice(self, seq):
        return seq[self.pick]


def test_space_choices_are_sorted_unique_ints_keyed_by_name():
    space = SearchSpace(OrderedDict([("a", [16, "8", 8, 24.0]), (3, [4])]))
    assert space.choices == OrderedDict([("a", [8, 16, 24]), ("3", [4])])
    assert space.size == 3
    with pytest.raises(ValueError, match=r"^slot 'b' has no channel choices$"):
        SearchSpace({"a": [8], "b": []})


def test_space_from_model_steps_ratios_overrides_and_fixed_slots(model):
    # slot maxima of the module's model: stem 8, down1 16, stream 32, block0 32, up1 16, up2 8
    assert dict(SearchSpace.from_model(model, step=12).choices) == {
        "stem": [8], "down1": [12, 16], "stream": [12, 24, 32], "block0": [12, 24, 32], "up1": [12, 16], "up2": [8]}
    assert dict(SearchSpace.from_model(model, step=16).choices) == {
        "stem": [8], "down1": [16], "stream": [16, 32], "block0": [16, 32], "up1": [16], "up2": [8]}
    by3 = SearchSpace.from_model(model, step=3).choices  # the maximum closes every list, right after m - 1
    assert (by3["stem"], by3["down1"], by3["stream"]) == ([3, 6, 8], [3, 6, 9, 12, 15, 16], list(range(3, 31, 3)) + [32])
    # ratios: round(r * max), at least one channel
    assert dict(SearchSpace.from_model(model, choices=[0.01, 0.3, 1.0]).choices) == {
        "stem": [1, 2, 8], "down1": [1, 5, 16], "stream": [1, 10, 32], "block0": [1, 10, 32], "up1": [1, 5, 16],
        "up2": [1, 2, 8]}
    over = SearchSpace.from_model(model, choices={"stream": [1, 32]}, fixed={"block0": 24})
    assert dict(over.choices) == {"stem": [8], "down1": [8, 16], "stream": [1, 32], "block0": [24], "up1": [8, 16],
                                  "up2": [8]}
    assert over.size == 8
    with pytest.raises(ValueError, match=r"^slot 'stream': choices \[0, 33\] outside 1\.\.32$"):
        SearchSpace.from_model(model, choices={"stream": [0, 8, 32, 33]})
    with pytest.raises(ValueError, match=r"^unknown slot 'head'$"):
        SearchSpace.from_model(model, fixed={"head": 8})


def test_space_configs_enumeration_and_evolution_operators():
    space = SearchSpace(OrderedDict([("a", [1, 2, 3]), ("b", [4, 5, 6])]))
    cfg = space.config([3, 4])
    assert list(cfg.channels.items()) == [("a", 3), ("b", 4)]
    assert [tuple(c.channels.values()) for c in space.all()] == [(a, b) for a in (1, 2, 3) for b in (4, 5, 6)]
    assert dict(space.largest().channels) == {"a": 3, "b": 6}
    assert dict(space.smallest().channels) == {"a": 1, "b": 4}
    rng, ref = random.Random(5), random.Random(5)
    for _ in range(5):
        assert dict(space.sample(rng).channels) == {"a": ref.choice([1, 2, 3]), "b": ref.choice([4, 5, 6])}
    # mutation: a slot is redrawn when its draw is below ``prob`` (so with probability ``prob``), else kept
    parent = space.config([2, 5])
    assert dict(space.mutate(parent, _Rng([0.5, 0.49], pick=0), 0.5).channels) == {"a": 2, "b": 4}
    assert dict(space.mutate(parent, _Rng([0.0, 0.99], pick=-1), 0.5).channels) == {"a": 3, "b": 5}
    # crossover: every slot from one of the two parents
    a, b = space.config([1, 4]), space.config([3, 6])
    assert dict(space.crossover(a, b, _Rng(pick=0)).channels) == {"a": 1, "b": 4}
    assert dict(space.crossover(a, b, _Rng(pick=1)).channels) == {"a": 3, "b": 6}


def test_latency_table_interpolates_between_measured_counts():
    table = LatencyTable({"base_ms": 0.5, "layers": {"x": {"32": 4.0, "8": 1.0, "16": 3.0}, "y": {"4": 2.0}}})
    assert table.layers["x"] == [(8, 1.0), (16, 3.0), (32, 4.0)]
    expected = {8: 1.0, 12: 2.0, 16: 3.0, 20: 3.25, 24: 3.5, 32: 4.0}
    for c, ms in expected.items():
        assert table.lookup({"x": c, "y": 4}) == pytest.approx(0.5 + ms + 2.0), c
    for c in (7, 33):
        assert table.lookup({"x": c, "y": 4}) is None
    assert table.lookup({"x": 8, "y": 5}) is None  # a one-point slot prices only its count
    assert table.lookup({"x": 8, "y": 2}) is None
    assert table.lookup({"x": 8}) == pytest.approx(1.5)  # a slot the config does not name costs nothing
    assert LatencyTable._interp([(4, 2.0)], 4) == 2.0 and LatencyTable._interp([(4, 2.0)], 2) is None
    # named entries and channel entries of one list, both priced; the name wins over the channels
    both = LatencyTable({"configs": [{"name": "tiny", "channels": {"x": 8}, "ms": 1.25},
                                     {"channels": {"x": 16}, "ms": 2.5}]})
    assert both.lookup(SubnetConfig(channels={"x": 99}, name="tiny")) == 1.25
    assert both.lookup({"x": 8}) == 1.25 and both.lookup({"x": 16}) == 2.5
    assert both.by_name == {"tiny": 1.25} and both.lookup(SubnetConfig(width=0.5)) is None
    named = LatencyTable({"configs": {"a": "2.5"}})
    assert named.by_name == {"a": 2.5} and named.lookup(SubnetConfig(channels={"x": 8})) is None
    assert named.lookup(SubnetConfig(channels={})) is None  # a per-config table prices only what it lists
    assert table.lookup(SubnetConfig(channels={})) == 0.5  # a per-layer table: the base alone


def test_latency_table_refuses_a_channel_count_listed_twice():
    """"8" and "08" are one count: interpolating between them would divide by zero."""
    bad = {"layers": {"x": {"8": 1.0, "08": 1.5, "16": 2.0, "016": 2.5, "32": 3.0}, "y": {"4": 1.0}}}
    with pytest.raises(ValueError, match=r"^latency table layer 'x' lists a channel count twice \(8, 16\); keep one "
                                         r"entry per count$"):
        LatencyTable(bad)
    assert LatencyTable({"layers": {"x": {"8": 1.0, "16": 1.0}}}).lookup({"x": 12}) == 1.0  # equal times are fine


def test_pareto_front_by_cost_key_with_ties():
    from edgegan.train.search import Candidate

    cs = [Candidate(None, m, 0, ms=ms, quality=q)
          for m, ms, q in ((5, 1.0, 3.0), (1, 9.0, 1.0), (1, 8.0, 2.0), (3, 4.0, 2.0), (3, 3.0, 2.5))]
    # by MACs: at cost 1 the better of the two, at cost 3 the better of the two, then 5
    assert [(c.macs, c.quality) for c in pareto_front(cs)] == [(1, 2.0), (3, 2.5), (5, 3.0)]
    # by ms: 1.0 ms is already the best quality, nothing slower can beat it
    assert [(c.ms, c.quality) for c in pareto_front(cs, "ms")] == [(1.0, 3.0)]
    assert pareto_front([]) == []
    low = [Candidate(None, 1, 0, quality=-1e300)]
    assert pareto_front(low) == low


def test_select_front_spreads_picks_by_cost_rank():
    from edgegan.train.search import select_front

    front = list("abcde")
    assert select_front(front) == ["e"]
    assert select_front(front, 1) == ["e"]
    assert select_front(front, 2) == ["a", "e"]
    assert select_front(front, 3) == ["a", "c", "e"]
    assert select_front(front, 4) == ["a", "b", "d", "e"]
    assert select_front(list("abcdefg"), 3) == ["a", "d", "g"]
    for n in (5, 6, 0, None, -1):
        assert select_front(front, n) == front
    assert select_front(iter(front), 2) == ["a", "e"]
    assert select_front([], 2) == []


def test_config_entries_are_what_build_reads():
    from edgegan.train.search import Candidate, config_entries

    a = Candidate(SubnetConfig(channels={"stem": 8}), 100, 10, ms=1.5, quality=20.0)
    a.test_quality = 19.0
    assert config_entries([a]) == [{"config": {"name": a.config.name, "channels": {"stem": 8}}, "quality": 20.0,
                                    "test_quality": 19.0, "macs": 100, "params": 10, "ms": 1.5}]


# --- budgets, caches and the search loop, on synthetic costs (no MAC counting) -------------------------------

def _grid(*sizes):
    """A space of ``len(sizes)`` slots, slot i with channels 1..sizes[i]."""
    return SearchSpace(OrderedDict(("s%d" % i, list(range(1, n + 1))) for i, n in enumerate(sizes)))


def _synthetic_costs(space):
    """MACs = the sum of a config's channels (params: their product), one entry per config of ``space``."""
    out = {}
    for cfg in space.all():
        ch = list(cfg.channels.values())
        out[cfg] = {"macs": sum(ch), "params": math.prod(ch)}
    return out


def _synthetic_quality(cfg):
    # not monotone in cost, no two configs alike
    return sum(math.sin(1.7 * (i + 1) * c + i) for i, c in enumerate(cfg.channels.values()))


def _one_slot_net(max_channels=16):
    """conv 1→c (slot "0", up to ``max_channels``) → ReLU → conv c→1, 3×3, padding 1."""
    from edgegan.nn import ElasticConv2d

    torch.manual_seed(0)
    return torch.nn.Sequential(ElasticConv2d(1, max_channels, 3, padding=1), torch.nn.ReLU(),
                               ElasticConv2d(max_channels, 1, 3, padding=1, fixed_out=True)).eval()


def test_searcher_prices_caches_and_checks_budgets():
    from edgegan.train.search import Searcher

    net, shape = _one_slot_net(), (1, 1, 8, 8)
    space = SearchSpace.from_model(net)
    assert dict(space.choices) == {"0": [8, 16]}
    small, large = space.smallest(), space.largest()
    cache = {large: {"macs": 123, "params": 4}}  # a shared cache is trusted: no recount
    table = {"configs": [{"channels": dict(small.channels), "ms": 2.0}]}
    s = Searcher(net, toy_quality, list(shape), budget_macs=None, budget_ms=2.0, latency_table=table, cost_cache=cache)
    assert s.input_shape == shape
    c = s.cost(small)
    macs = 8 * 8 * 9 * (1 * 8 + 8 * 1)  # output pixels × k² × (in × out) of both convs
    params = (9 * 8 + 8) + (8 * 9 + 1)
    assert (c.config, c.macs, c.params, c.ms, c.quality) == (small, macs, params, 2.0, None)
    assert (cache[small]["macs"], cache[small]["params"]) == (macs, params)  # the caller's cache is filled
    big = s.cost(large)
    assert (big.macs, big.params, big.ms) == (123, 4, None)
    assert s.feasible(small) is True and s.feasible(large) is False  # unpriced: over a latency budget
    assert Searcher(net, toy_quality, shape, budget_ms=1.99, latency_table=table, cost_cache=cache).feasible(small) is False
    assert Searcher(net, toy_quality, shape, cost_cache=cache).cost(small).ms is None
    at = Searcher(net, toy_quality, shape, budget_macs=macs, cost_cache=cache)
    assert at.feasible(small) is True and at.feasible(large) is True  # a budget is inclusive
    assert Searcher(net, toy_quality, shape, budget_macs=122, cost_cache=cache).feasible(large) is False
    assert Searcher(net, toy_quality, shape, cost_cache=cache).feasible(large) is True
    with pytest.raises(ValueError, match=r"^a latency budget needs a latency table measured on the target$"):
        Searcher(net, toy_quality, shape, budget_ms=1.0)


def test_searcher_evaluates_once_in_eval_mode_without_gradients_and_restores_the_mode():
    from edgegan.train.search import Searcher

    net = torch.nn.Linear(1, 1).train()
    space = _grid(3, 2)
    seen = []

    def evaluate(cfg):
        seen.append((cfg, net.training, torch.is_grad_enabled()))
        return _synthetic_quality(cfg)

    s = Searcher(net, evaluate, SHAPE, cost_cache=_synthetic_costs(space))
    cfg = space.config([2, 1])
    for _ in range(2):
        c = s.evaluate(cfg)
        assert (c.config, c.macs, c.params, c.ms, c.quality) == (cfg, 3, 2, None, _synthetic_quality(cfg))
    assert seen == [(cfg, False, False)] and net.training is True
    net.eval()
    s.evaluate(space.config([3, 2]))
    assert net.training is False


def _reference_evolution(choices, quality, feasible, population=16, generations=8, parent_ratio=0.25,
                         mutation_ratio=0.5, mutate_prob=0.2, seed=0, max_tries=200):
    """Once-for-all's evolutionary search written out on tuples: the configs evaluated, in order, and the best
    quality among the parents of each generation."""
    slots = list(choices.values())
    rng = random.Random(seed)
    q = OrderedDict()

    def consider(t):
        if t not in q and feasible(t):
            q[t] = quality(t)
        return t if t in q else None

    pop = []
    if consider(tuple(v[0] for v in slots)):  # the cheapest config first
        pop.append(tuple(v[0] for v in slots))
    for _ in range(4 * population):
        if len(pop) >= population:
            break
        for _ in range(max_tries):
            t = tuple(rng.choice(v) for v in slots)
            if feasible(t):
                break
        else:
            break
        if t not in q:
            pop.append(consider(t))
    n_parents, n_mutate = max(1, round(parent_ratio * population)), round(mutation_ratio * population)
    best = []
    for _ in range(generations):
        if not pop:
            break
        parents = sorted(pop, key=lambda t: -q[t])[:n_parents]
        best.append(q[parents[0]])
        children = []
        for i in range(population - n_parents):
            for _ in range(max_tries):
                if i < n_mutate:
                    p = rng.choice(parents)
                    t = tuple(rng.choice(v) if rng.random() < mutate_prob else p[j] for j, v in enumerate(slots))
                else:
                    a, b = rng.choice(parents), rng.choice(parents)
                    t = tuple(rng.choice((a[j], b[j])) for j in range(len(slots)))
                if feasible(t):
                    children.append(consider(t))
                    break
        pop = parents + children
    return list(q), best


@pytest.mark.parametrize("kw", [{}, dict(population=6, generations=3, parent_ratio=0.5, mutation_ratio=0.34,
                                         mutate_prob=0.7, seed=3, max_tries=2),
                                  dict(population=4, generations=3, seed=2)], ids=["defaults", "custom", "one-parent"])
def test_evolution_follows_once_for_all(kw):
    """Seeded evolution (init: cheapest config + random feasible ones; each generation: the best quarter are
    parents, half the population mutated from them, the rest crossed over) under a MAC budget."""
    space = _grid(8, 8, 8)  # 512 configs: above the exhaustive limit
    costs = _synthetic_costs(space)
    budget = 12
    calls, logs = [], []

    def evaluate(cfg):
        calls.append(cfg)
        return _synthetic_quality(cfg)

    res = search(torch.nn.Module(), evaluate, SHAPE, budget_macs=budget, space=space, cost_cache=costs, log=logs.append,
                 **kw)
    order, best = _reference_evolution(space.choices, lambda t: _synthetic_quality(space.config(t)),
                                       lambda t: sum(t) <= budget, **kw)
    assert res.mode == "evolution" and res.cost_key == "macs"
    assert [tuple(c.config.channels.values()) for c in res.evaluated] == order
    assert calls == [c.config for c in res.evaluated]  # each config evaluated once
    assert logs == ["generation %d: best %.4f" % (g, b) for g, b in enumerate(best)]
    assert len(logs) == kw.get("generations", 8)
    assert all(b1 <= b2 for b1, b2 in zip(best, best[1:]))  # the parents keep the best so far
    assert res.evaluated[0].config == space.smallest()
    assert [(c.config, c.macs, c.params, c.quality) for c in res.evaluated] == [
        (c.config, costs[c.config]["macs"], costs[c.config]["params"], _synthetic_quality(c.config)) for c in res.evaluated]
    front = [c for c in res.evaluated if not any(o.macs <= c.macs and o.quality > c.quality for o in res.evaluated)]
    assert [c.config for c in res.front] == [c.config for c in sorted(front, key=lambda c: c.macs)]


def test_initial_population_size_and_what_auto_chooses():
    space = _grid(8, 8, 8)
    costs = _synthetic_costs(space)
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, cost_cache=costs, generations=0)
    assert res.mode == "evolution" and len(res.evaluated) == 16  # the default population
    assert len({c.config for c in res.evaluated}) == 16
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, cost_cache=costs, generations=0,
                 population=5)
    assert len(res.evaluated) == 5
    for n, mode in ((256, "exhaustive"), (257, "evolution")):  # the default exhaustive limit is 256 configs
        line = _grid(n)
        res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=line, cost_cache=_synthetic_costs(line),
                     generations=0, population=3)
        assert res.mode == mode
        assert len(res.evaluated) == (n if mode == "exhaustive" else 3)
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=_grid(3, 2), cost_cache=_synthetic_costs(_grid(3, 2)),
                 exhaustive_limit=5)
    assert res.mode == "evolution"
    with pytest.raises(ValueError, match=r"^mode must be auto, exhaustive or evolution, got 'greedy'$"):
        search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, mode="greedy")


def test_exhaustive_evaluates_every_feasible_config_in_order():
    space = _grid(4, 3)
    costs = _synthetic_costs(space)
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, cost_cache=costs, budget_macs=5)
    assert [tuple(c.config.channels.values()) for c in res.evaluated] == [
        (a, b) for a in range(1, 5) for b in range(1, 4) if a + b <= 5]


class _CountingTable(LatencyTable):
    def __init__(self, data):
        super().__init__(data)
        self.lookups = 0

    def lookup(self, config):
        self.lookups += 1
        return super().lookup(config)


def test_evolution_gives_up_after_max_tries_when_nothing_is_feasible():
    space = _grid(8, 8, 8)
    table = _CountingTable({"layers": {"s0": {"1": 5.0, "8": 12.0}, "s1": {"1": 5.0, "8": 12.0}}})  # no s2: unpriced
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, budget_ms=100.0, latency_table=table,
                 cost_cache=_synthetic_costs(space))
    assert res.front == [] and res.evaluated == [] and res.best is None and res.cost_key == "ms"
    assert table.lookups == 1 + 200  # the cheapest config, then the default 200 tries of one sample
    table.lookups = 0
    search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, budget_ms=100.0, latency_table=table,
           cost_cache=_synthetic_costs(space), max_tries=7)
    assert table.lookups == 1 + 7


def test_initial_sampling_stops_after_four_draws_per_member_when_the_space_cannot_fill_it():
    space = SearchSpace({"a": [1]})  # one config: every draw repeats it
    table = _CountingTable({"configs": [{"channels": {"a": 1}, "ms": 1.0}]})
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, budget_ms=2.0, latency_table=table,
                 cost_cache=_synthetic_costs(space), mode="evolution", population=3, generations=0)
    assert [c.ms for c in res.evaluated] == [1.0]
    assert table.lookups == 2 + 4 * 3  # the cheapest config checked and priced, then 4 × population draws


def test_latency_table_without_latency_budget_prices_but_ranks_by_macs():
    space = _grid(4, 3)
    table = {"configs": [{"channels": {"s0": a, "s1": 1}, "ms": 10.0 - a} for a in range(1, 5)]}
    res = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, latency_table=table,
                 cost_cache=_synthetic_costs(space))
    assert res.cost_key == "macs" and len(res.evaluated) == 12
    assert {tuple(c.config.channels.values()): c.ms for c in res.evaluated if c.ms is not None} == {
        (a, 1): 10.0 - a for a in range(1, 5)}
    best = max(res.evaluated, key=lambda c: c.quality)
    assert res.best.config == best.config
    by_ms = search(torch.nn.Module(), _synthetic_quality, SHAPE, space=space, latency_table=table, budget_ms=8.0,
                   cost_cache=_synthetic_costs(space))
    assert by_ms.cost_key == "ms"
    assert [tuple(c.config.channels.values()) for c in by_ms.evaluated] == [(2, 1), (3, 1), (4, 1)]
    assert [c.ms for c in by_ms.front] == sorted(c.ms for c in by_ms.front)


# --- search_checkpoint_configs and BatchNorm recalibration ---------------------------------------------------

def _pairs(n, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n,) + tuple(shape[1:]), generator=g) * 2 - 1
    return x, torch.tanh(2 * x.roll(1, dims=-1))


def _psnr_at(net, config, x, y):
    from edgegan.train.metrics import psnr_per_image

    with torch.no_grad(), at_width(net, config):
        return float(psnr_per_image(net(x), y, 2.0).mean())


def test_search_checkpoint_configs_defaults_budget_step_and_choices():
    from edgegan.train.search import config_entries, search_checkpoint_configs

    net, shape = _one_slot_net(24), (1, 1, 4, 4)
    x = _pairs(3, shape, 0)[0]
    with torch.no_grad():
        y = net(x)  # the full network's outputs: every wider config is better, the front has three points
    result, entries = search_checkpoint_configs(net, x, y, shape)
    assert result.mode == "exhaustive" and result.cost_key == "macs"
    assert [c.config.channels["0"] for c in result.front] == [8, 16, 24]
    assert [c.config.channels["0"] for c in result.evaluated] == [8, 16, 24]  # multiples of 8
    for c in result.evaluated:
        assert c.quality == pytest.approx(_psnr_at(net, c.config, x, y), abs=1e-4)
        assert c.macs == 4 * 4 * 9 * 2 * c.config.channels["0"] and c.test_quality is None
    assert entries == config_entries([result.front[-1]])  # one config by default: the best
    budget = 4 * 4 * 9 * 2 * 16
    result, entries = search_checkpoint_configs(net, x, y, shape, budget_macs=budget, n_configs=3, step=16)
    assert [c.config.channels["0"] for c in result.evaluated] == [16]  # 24 is over the budget
    assert entries == config_entries(result.front)
    result, _ = search_checkpoint_configs(net, x, y, shape, choices={"0": [4, 12]}, mode="exhaustive")
    assert [c.config.channels["0"] for c in result.evaluated] == [4, 12]


@pytest.mark.parametrize("kw", [{}, dict(population=3, generations=2, seed=5)], ids=["defaults", "custom"])
def test_search_checkpoint_configs_runs_the_seeded_evolution(kw):
    from edgegan.train.search import search_checkpoint_configs

    net, shape = _one_slot_net(24), (1, 1, 4, 4)
    x, y = _pairs(3, shape, 1)
    choices = {"0": list(range(1, 25))}  # 24 configs: more than a population
    logs, ref_logs = [], []
    result, _ = search_checkpoint_configs(net, x, y, shape, choices=choices, mode="evolution", log=logs.append, **kw)
    space = SearchSpace.from_model(net, choices=choices)
    ref = search(net, psnr_evaluator(net, x, y), shape, space=space, mode="evolution", cost_cache=_synthetic_costs(space),
                 log=ref_logs.append, **dict(dict(population=16, generations=8, seed=0), **kw))
    assert result.mode == "evolution"
    assert [c.config for c in result.evaluated] == [c.config for c in ref.evaluated]
    assert len(result.evaluated) < space.size or not kw
    assert logs == ref_logs and len(logs) == kw.get("generations", 8)


def _bn_net():
    """conv 2→c (slot "0", up to 16) → switchable BN → ReLU → conv c→1; BN statistics never estimated."""
    from edgegan.nn import ElasticConv2d, SwitchableBatchNorm2d

    torch.manual_seed(0)
    return torch.nn.Sequential(ElasticConv2d(2, 16, 3, padding=1), SwitchableBatchNorm2d([16]), torch.nn.ReLU(),
                               ElasticConv2d(16, 1, 3, padding=1, fixed_out=True)).eval()


def test_recalibrated_subnet_statistics_are_the_cumulative_batch_averages():
    from edgegan.train.search import recalibrated_subnet

    net = _bn_net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 2, 8, 8, generator=g) * 2 + 1, torch.randn(3, 2, 6, 6, generator=g) - 1]
    for c in (8, 16):
        sub = recalibrated_subnet(net, SubnetConfig(channels={"0": c}), iter(batches))
        bn = sub[1]
        assert isinstance(bn, torch.nn.BatchNorm2d) and bn.num_features == c and not sub.training
        conv = net[0]
        feats = [torch.nn.functional.conv2d(b, conv.weight[:c], conv.bias[:c], padding=1) for b in batches]
        mean = sum(f.mean((0, 2, 3)) for f in feats) / 2
        var = sum(f.transpose(0, 1).reshape(c, -1).var(1, unbiased=True) for f in feats) / 2
        assert torch.allclose(bn.running_mean, mean, atol=1e-5) and torch.allclose(bn.running_var, var, atol=1e-4)
        assert int(bn.num_batches_tracked) == 2
    one = recalibrated_subnet(net, SubnetConfig(channels={"0": 8}), batches[:1])
    assert int(one[1].num_batches_tracked) == 1
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())  # the supernet is untouched


def test_search_checkpoint_configs_recalibrates_each_candidate():
    from edgegan.train.search import search_checkpoint_configs

    net, shape = _bn_net(), (1, 2, 8, 8)
    x, y = _pairs(2, shape, 2)
    y = y[:, :1]
    xt, yt = _pairs(3, shape, 3)
    yt = yt[:, :1]
    batches = [torch.randn(4, 2, 8, 8, generator=torch.Generator().manual_seed(4)) * 3]

    def recalibrated_psnr(config, xs, ys):  # the sub-network by hand, BN statistics from ``batches``
        from edgegan.train.metrics import psnr_per_image

        F, c, bn = torch.nn.functional, config.channels["0"], net[1].bn[0]
        conv = lambda t: F.conv2d(t, net[0].weight[:c], net[0].bias[:c], padding=1)
        h = conv(batches[0])
        mean, var = h.mean((0, 2, 3)), h.transpose(0, 1).reshape(c, -1).var(1, unbiased=True)
        with torch.no_grad():
            h = F.batch_norm(conv(xs), mean, var, bn.weight[:c], bn.bias[:c], False, 0.0, bn.eps)
            out = F.conv2d(h.relu(), net[3].weight[:, :c], net[3].bias, padding=1)
        return float(psnr_per_image(out, ys, 2.0).mean())

    result, entries = search_checkpoint_configs(net, x, y, shape, n_configs=0, recalibrate=batches, test=(xt, yt))
    assert len(result.evaluated) == 2
    for c in result.evaluated:
        assert c.quality == pytest.approx(recalibrated_psnr(c.config, x, y), abs=1e-3)
        assert c.quality != pytest.approx(_psnr_at(net, c.config, x, y), abs=1e-2)
    for c in result.front:
        assert c.test_quality == pytest.approx(recalibrated_psnr(c.config, xt, yt), abs=1e-3)


def test_psnr_evaluator_runs_batch_size_images_at_a_time():
    net, shape = _one_slot_net(), (1, 1, 4, 4)
    x, y = _pairs(101, shape, 5)
    sizes = []
    net.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    cfg = SubnetConfig(channels={"0": 8})
    expected = _psnr_at(net, cfg, x, y)
    sizes.clear()
    assert psnr_evaluator(net, x, y)(cfg) == pytest.approx(expected, abs=1e-4)
    assert sizes == [100, 1]  # 100 images at a time by default
    sizes.clear()
    assert psnr_evaluator(net, x, y, batch_size=40)(cfg) == pytest.approx(expected, abs=1e-4)
    assert sizes == [40, 40, 21]
    assert psnr_evaluator(net, x, y, data_range=1.0)(cfg) == pytest.approx(expected - 20 * math.log10(2.0), abs=1e-4)


def test_search_builds_its_space_from_step_or_choices():
    net, shape = _one_slot_net(24), (1, 1, 4, 4)
    cache = {SubnetConfig(channels={"0": c}): {"macs": c, "params": c} for c in range(1, 25)}
    channels = lambda **kw: [c.config.channels["0"] for c in search(net, lambda cfg: 1.0 * cfg.channels["0"], shape,
                                                                       cost_cache=cache, **kw).evaluated]
    assert channels() == [8, 16, 24]
    assert channels(step=16) == [16, 24]
    assert channels(choices=[0.5, 1.0]) == [12, 24]
    assert channels(choices={"0": [4, 12]}) == [4, 12]
