"""The search ranks sub-networks by a real held-out quality, chosen on a validation split and reported on
the test split (METHODS.md §2: every candidate is evaluated directly, the best under budget is picked)."""

import numpy as np
import pytest
import torch
from pairs_data import Pairs

from edgegan.data.split import validation_split
from edgegan.models import MobileResnetGenerator
from edgegan.nn import at_width
from edgegan.subnet import SubnetConfig
from edgegan.train.metrics import psnr_per_image
from edgegan.train.search import SearchSpace, psnr_evaluator, search, search_checkpoint_configs

SHAPE = (1, 1, 16, 16)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


def _supernet():
    torch.manual_seed(0)
    return MobileResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").eval()


def _space(model):
    """stream and block0 at half or full width, every other slot at its maximum: four configs."""
    full = SearchSpace.from_model(model).choices
    return SearchSpace({k: ([v[-1] // 2, v[-1]] if k in ("stream", "block0") else [v[-1]]) for k, v in full.items()})


def _psnr(model, config, x, y):
    with torch.no_grad(), at_width(model, config):
        return float(np.mean(psnr_per_image(model(x), y, 2.0)))


def test_search_ranks_configs_by_their_psnr_on_held_out_pairs():
    """The held-out targets are what a *narrower* config computes (plus a little noise): the search must rank
    that config first, above the full network, with each candidate's PSNR as computed here."""
    model = _supernet()
    space = _space(model)
    winner = SubnetConfig(channels=dict(space.largest().channels, stream=space.choices["stream"][0]))
    x = Pairs(6, size=16, seed=3).x
    with torch.no_grad(), at_width(model, winner):
        y = model(x) + 0.01 * torch.randn(6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    result = search(model, psnr_evaluator(model, x, y, batch_size=4), SHAPE, space=space, mode="exhaustive")
    assert len(result.evaluated) == 4
    for c in result.evaluated:
        assert c.quality == pytest.approx(_psnr(model, c.config, x, y), abs=1e-4)
    assert result.best.config == winner and result.best.quality > 35.0
    full = next(c for c in result.evaluated if c.config == space.largest())
    assert full.quality < result.best.quality - 3.0


def test_front_is_reported_on_pairs_that_did_not_choose_it():
    model = _supernet()
    space = _space(model)
    val, test = Pairs(6, size=16, seed=1), Pairs(5, size=16, seed=2)
    choices = {k: v for k, v in space.choices.items()}
    result, entries = search_checkpoint_configs(model, val.x, val.y, SHAPE, n_configs=4, choices=choices,
                                                mode="exhaustive", test=(test.x, test.y))
    assert entries and len(entries) == len(result.front)
    for c, e in zip(result.front, entries):
        assert e["quality"] == pytest.approx(_psnr(model, c.config, val.x, val.y), abs=1e-4)
        assert e["test_quality"] == pytest.approx(_psnr(model, c.config, test.x, test.y), abs=1e-4)
        assert e["test_quality"] != e["quality"]


def test_validation_split_is_seeded_disjoint_and_nested():
    data = Pairs(20, size=8)
    val, rest = validation_split(data, 5)
    again, _ = validation_split(data, 5)
    assert val.indices == again.indices and sorted(set(val.indices) | set(rest.indices)) == list(range(20))
    assert not set(val.indices) & set(rest.indices)
    assert validation_split(data, 8)[0].indices[:5] == val.indices  # a smaller split is a prefix of a larger one
    assert validation_split(data, 5, seed=1)[0].indices != val.indices
    assert val.describe() == data.describe() and val.paired is True
    for n in (0, 20):
        with pytest.raises(ValueError):
            validation_split(data, n)


def test_candidates_and_results_as_json():
    from edgegan.train.search import Candidate, SearchResult

    a = Candidate(SubnetConfig(channels={"stem": 8}), 100, 10, ms=1.5, quality=20.0)
    a.test_quality = 19.0
    b = Candidate(SubnetConfig(width=0.5), 50, 5)
    assert a.to_dict() == {"config": {"name": a.config.name, "channels": {"stem": 8}}, "macs": 100, "params": 10,
                           "ms": 1.5, "quality": 20.0, "test_quality": 19.0}
    assert b.to_dict() == {"config": {"name": "w0.5", "width": 0.5}, "macs": 50, "params": 5, "ms": None,
                           "quality": None, "test_quality": None}
    result = SearchResult([b, a], [a, b, a], "exhaustive", "macs")
    assert result.best is a and SearchResult([], [], "evolution", "ms").best is None
    assert result.to_dict() == {"mode": "exhaustive", "cost": "macs", "front": [b.to_dict(), a.to_dict()],
                                "evaluated": 3}


def test_latency_table_prices_by_name_by_channels_and_by_layer():
    from edgegan.train.search import LatencyTable

    table = LatencyTable({"configs": [{"name": "small", "ms": 2.0}, {"channels": {"stem": 8, "stream": 16}, "ms": 3.0}]})
    assert table.lookup(SubnetConfig(channels={"stem": 1}, name="small")) == 2.0
    assert table.lookup(SubnetConfig(channels={"stream": 16, "stem": 8})) == 3.0  # any slot order
    assert table.lookup(SubnetConfig(channels={"stem": 8, "stream": 24})) is None
    assert LatencyTable._key({"b": 2, "a": 1}) == (("a", 1), ("b", 2))
    layers = LatencyTable({"base_ms": 1.5, "layers": {"stem": {"8": 0.5, "16": 1.5}, "stream": {"16": 2.0}}})
    assert layers.lookup({"stem": 8, "stream": 16}) == pytest.approx(4.0)
    assert layers.lookup({"stem": 12, "stream": 16}) == pytest.approx(4.5)  # linear between measured counts
    assert layers.lookup({"stem": 24, "stream": 16}) is None  # beyond what was measured
    assert layers.lookup({"stem": 8, "head": 3}) is None  # a slot the table does not have
    assert layers.lookup(SubnetConfig(width=0.5)) is None  # a width multiplier names no per-slot counts
    assert LatencyTable({"layers": {"stem": {"8": 1.0}}}).lookup({"stem": 8}) == 1.0  # base 0 by default
    with pytest.raises(ValueError, match=r"^latency table has neither 'configs' nor 'layers'$"):
        LatencyTable({"unit": "ms"})
    with pytest.raises(ValueError, match=r"^latency table unit must be ms, got 's'$"):
        LatencyTable({"unit": "s", "configs": {"a": 1.0}})
