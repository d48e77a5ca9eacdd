"""Supernet search under MAC and latency budgets."""

import json

import pytest
import torch

from edgegan.models import MobileResnetGenerator
from edgegan.subnet import cost
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
