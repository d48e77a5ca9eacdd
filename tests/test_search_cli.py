"""`edgegan search` on the packaged model."""

import json
import os

import pytest

from edgegan.cli import main
from edgegan.data import FMNIST_DEBIAN_ROOT

needs_fmnist = pytest.mark.skipif(not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")),
                                  reason="Fashion-MNIST (Debian dataset-fashion-mnist) not installed")


def test_search_needs_a_budget(capsys):
    assert main(["search"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["search", "--budget-ms", "30"]) == 2
    assert "latency-table" in capsys.readouterr().err


@needs_fmnist
def test_search_cli_front_under_budget(tmp_path, capsys):
    from edgegan.checkpoint import load_generator
    from edgegan.subnet import cost

    gen, _ = load_generator()
    budget = 0.9 * cost(gen, (1, 1, 32, 32), config=0.5)["macs"]  # room for many mixes of 0.25 and 1.0
    out = tmp_path / "front.json"
    rc = main(["search", "--budget-macs", str(budget), "--choices", "0.25,1.0", "--mode", "evolution",
               "--population", "4", "--generations", "1", "--eval-images", "8", "--recalibrate", "1", "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["front"] and all(c["macs"] <= budget for c in res["front"])
    assert all("channels" in c["config"] for c in res["front"])
    assert json.loads(capsys.readouterr().out)["front"] == res["front"]
    # chosen on 8 validation pairs of the training split, reported on test pairs that chose nothing
    assert res["validation"] == {"split": "train", "images": 8, "seed": 0, "held_out_of_training": False}
    assert res["test"] == {"split": "test", "images": 500}
    assert all(c["quality"] > 0 and c["test_quality"] > 0 for c in res["front"])


@needs_fmnist
def test_search_cli_latency_budget(tmp_path, capsys):
    from edgegan.checkpoint import load_generator
    from edgegan.nn import channel_slots

    gen, _ = load_generator()
    layers = {name: {str(max(1, round(r * s.max_channels))): r * 2.0 for r in (0.25, 1.0)}
              for name, s in channel_slots(gen).items()}
    table = tmp_path / "lat.json"
    table.write_text(json.dumps({"unit": "ms", "base_ms": 1.0, "layers": layers}))
    out = tmp_path / "front.json"
    rc = main(["search", "--budget-ms", "10", "--latency-table", str(table), "--choices", "0.25,1.0",
               "--mode", "evolution", "--population", "4", "--generations", "1", "--eval-images", "8",
               "--test-images", "16", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "PSNR val dB" in text and "PSNR test dB" in text and "16 test pairs report it" in text
    res = json.loads(out.read_text())
    assert res["cost"] == "ms" and res["front"] and all(c["ms"] <= 10 for c in res["front"])
