"""``edgegan eval`` on paired (edges → image) checkpoints: PSNR / SSIM / L1 and FD-FMNIST per width."""

import json

import pytest

from edgegan.cli import main


def _fmnist_or_skip():
    try:
        from edgegan.data import fmnist_paths

        fmnist_paths(None, "test")
    except Exception as e:
        pytest.skip("Fashion-MNIST not available: %s" % e)


def test_eval_paired_checkpoint_table_and_json(tiny_checkpoint, capsys):
    _fmnist_or_skip()
    assert main(["eval", tiny_checkpoint, "--data", "fmnist-shoes", "--images", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 16 and result["data"] == "fmnist-shoes"
    assert set(result["widths"]) == {"w0.25", "w0.5", "w0.75", "w1"}
    for m in result["widths"].values():
        assert {"psnr", "ssim", "l1", "fd_fmnist"} <= set(m) and m["fd_fmnist"] > 0
    assert result["mic"] > 0  # an untrained model's widths disagree
    assert main(["eval", tiny_checkpoint, "--data", "fmnist-shoes", "--images", "8"]) == 0
    out = capsys.readouterr().out
    assert "PSNR dB" in out and "FD-FMNIST" in out and "held-out pairs of fmnist-shoes" in out


def test_eval_paired_without_known_data_is_a_clear_error(tiny_checkpoint, capsys):
    assert main(["eval", tiny_checkpoint, "--images", "8"]) == 2
    err = capsys.readouterr().err
    assert "synthetic" in err and "Traceback" not in err
