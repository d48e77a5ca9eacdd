"""`edgegan build` from per-slot channel configs (search fronts) and from pruned checkpoints."""

import json

import numpy as np
import pytest
import torch

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.models import MobileResnetGenerator, PrunedGenerator, ResnetGenerator
from edgegan.runtime.policy import effective_widths, manifest_policy
from edgegan.subnet import SubnetConfig, extract

SIZE = 32
DATA = {"name": "synthetic", "size": SIZE, "in_channels": 1, "out_channels": 1,
        "input": {"range": [-1.0, 1.0], "content": "edges"}, "output": {"range": [-1.0, 1.0], "content": "image"}}


def _supernet(path):
    torch.manual_seed(0)
    g = MobileResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="in").eval()
    save_checkpoint(path, {"generator": {"arch": g.arch(), "state_dict": g.state_dict()},
                           "widths": list(g.widths), "data": DATA})
    return g


def test_manifest_policy_orders_widthless_variants_by_macs():
    variants = [{"name": "c-big", "width": None, "macs": 1600}, {"name": "c-small", "width": None, "macs": 100},
                {"name": "c-mid", "width": None, "macs": 400}]
    assert effective_widths(variants) == [1.0, 0.25, 0.5]
    pol = manifest_policy({"default": 1.0, "modes": {"1": 0.5}, "battery": [{"below": 20, "width": 0.25}],
                           "on_battery": 0.3}, variants)
    assert pol["default"] == "c-big" and pol["modes"] == {"1": "c-mid"}
    assert pol["battery"][0]["variant"] == "c-small" and pol["on_battery"] == "c-small"


def test_search_front_to_bundle_and_runtime_switches(tmp_path):
    from edgegan.runtime import Runtime
    from edgegan.targets.build import build_bundle
    from edgegan.train.search import SearchSpace, search

    ckpt = str(tmp_path / "supernet.pt")
    gen = _supernet(ckpt)
    full = SearchSpace.from_model(gen).choices
    fixed = {k: v[-1] for k, v in full.items() if k not in ("stream", "block0")}
    space = SearchSpace.from_model(gen, choices=[0.5, 1.0], fixed=fixed)
    result = search(gen, lambda cfg: float(-sum(cfg.channels.values())) if cfg.channels["stream"] < 16 else 0.0,
                    (1, 1, SIZE, SIZE), budget_macs=1e12, space=space, mode="exhaustive")
    front = tmp_path / "front.json"
    front.write_text(json.dumps(result.to_dict()))
    assert len(result.front) >= 2
    out, manifest = build_bundle("cpu", checkpoint=ckpt, out=str(tmp_path / "b"), configs=str(front),
                                 progress=False, n_parity_inputs=2)
    names = [c.config.name for c in result.front]
    assert [v["name"] for v in manifest["variants"]] == names
    for v, c in zip(manifest["variants"], result.front):
        assert v["width"] is None and v["channels"] == dict(c.config.channels)
        assert v["macs"] == c.macs and v["params"] == c.params
        assert v["parity"]["psnr_db"] >= 40.0
        assert v["quality"]["psnr"] == c.quality
    biggest = max(manifest["variants"], key=lambda v: v["macs"])["name"]
    assert manifest["default_variant"] == biggest
    xs = np.random.RandomState(0).uniform(-1, 1, (1, 1, SIZE, SIZE)).astype(np.float32)
    with Runtime(out) as rt:
        assert rt.variant == biggest
        outs = {}
        for name in names:
            assert rt.set_variant(name) == name
            outs[name] = rt(xs)
            ref = extract(gen, SubnetConfig(channels=json.loads(front.read_text())["front"][names.index(name)]
                                           ["config"]["channels"]), input_shape=(1, 1, SIZE, SIZE))(torch.from_numpy(xs))
            np.testing.assert_allclose(outs[name], ref.numpy(), atol=1e-4)
        assert not np.allclose(outs[names[0]], outs[names[-1]])
    with pytest.raises(Exception):
        build_bundle("cpu", checkpoint=ckpt, out=str(tmp_path / "c"), configs=str(front), widths=[1.0])


def test_build_cli_configs(tmp_path, capsys):
    from edgegan.cli import main

    ckpt = str(tmp_path / "supernet.pt")
    _supernet(ckpt)
    front = tmp_path / "front.json"
    front.write_text(json.dumps({"front": [{"config": {"name": "small", "channels": {"stream": 8, "block0": 8}},
                                            "quality": 10.0},
                                           {"config": {"name": "big", "channels": {"stream": 16}}}]}))
    assert main(["build", "--target", "cpu", "--checkpoint", ckpt, "--configs", str(front), "--out",
                 str(tmp_path / "b"), "--parity-inputs", "1", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)["manifest"]
    assert [v["name"] for v in manifest["variants"]] == ["small", "big"]
    assert manifest["default_variant"] == "big"


@pytest.mark.parametrize("cls,kw", [(MobileResnetGenerator, dict(norm="bn")),
                                     (ResnetGenerator, dict(norm="in", upsample="resize"))], ids=["mobile-bn", "resnet-in"])
def test_pruned_checkpoint_loads_and_builds(tmp_path, cls, kw):
    from edgegan.nn.masks import masks
    from edgegan.targets.build import build_bundle
    from edgegan.train.prune import insert_masks, physically_prune, pruned_checkpoint

    torch.manual_seed(0)
    g = cls(1, 1, ngf=4, n_blocks=2, **kw)
    model = insert_masks(g, input_shape=(1, 1, SIZE, SIZE))
    model.train()
    for _ in range(2):
        model(torch.randn(4, 1, SIZE, SIZE))
    model.eval()
    gen = torch.Generator().manual_seed(1)
    for m in masks(model):
        m.binarize()
        m.binary.copy_((torch.rand(m.channels, generator=gen) > 0.5).float())
    x = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        ref = model(x)
    pruned = physically_prune(model)
    path = str(tmp_path / "pruned.pt")
    save_checkpoint(path, pruned_checkpoint(pruned, DATA))
    loaded, ckpt = load_generator(path)
    assert isinstance(loaded, PrunedGenerator) and ckpt["generator"]["arch"]["name"] == "pruned_generator"
    with torch.no_grad():
        assert (loaded(x) - ref).abs().max().item() <= 1e-5
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in pruned.parameters())
    _, manifest = build_bundle("cpu", checkpoint=path, out=str(tmp_path / "b"), progress=False, n_parity_inputs=2)
    (v,) = manifest["variants"]
    assert v["parity"]["psnr_db"] >= 40.0 and v["width"] == 1.0


def test_bench_latency_table_prices_the_built_configs(tmp_path, capsys):
    """build a front → `edgegan bench --latency-table` → the table prices every built config (by channels
    and by name) with the bench's mean ms, and refuses to overwrite itself without --force."""
    from edgegan.cli import main
    from edgegan.train.search import LatencyTable, SearchSpace, search

    ckpt = str(tmp_path / "supernet.pt")
    gen = _supernet(ckpt)
    full = SearchSpace.from_model(gen).choices
    fixed = {k: v[-1] for k, v in full.items() if k not in ("stream", "block0")}
    space = SearchSpace.from_model(gen, choices=[0.5, 1.0], fixed=fixed)
    result = search(gen, lambda cfg: float(sum(cfg.channels.values())), (1, 1, SIZE, SIZE), budget_macs=1e12,
                    space=space, mode="exhaustive")
    front = tmp_path / "front.json"
    front.write_text(json.dumps(result.to_dict()))
    bundle, table = str(tmp_path / "b"), str(tmp_path / "lat.json")
    assert main(["build", "--target", "cpu", "--checkpoint", ckpt, "--configs", str(front), "--out", bundle,
                 "--parity-inputs", "1", "--json"]) == 0
    capsys.readouterr()
    bench = ["bench", bundle, "--warmup", "1", "--warmup-s", "0", "--runs", "3", "--threads", "1",
             "--latency-table", table, "--json"]
    assert main(bench) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    lat = LatencyTable.load(table)
    assert len(lat.data["configs"]) == len(result.front) and lat.data["target"] == "cpu"
    for c in result.front:
        assert lat.lookup(c.config) == rows[c.config.name]["mean_ms"] > 0
        assert lat.lookup(SubnetConfig(channels=dict(c.config.channels))) == rows[c.config.name]["mean_ms"]
    assert main(bench) == 2 and "--force" in capsys.readouterr().err
