"""`edgegan import --format pix2pix --netG unet_256 | unet_128`: a reference UNet written from the published
architecture, its state_dict saved in pix2pix's nested key layout, imported, built for `cpu`, outputs equal."""

import os

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.cli import main
from edgegan.imports import ImportMismatch, ImportOptions, import_generator, imported_checkpoint
from edgegan.models import UnetGenerator
from edgegan.targets.build import build_bundle
from edgegan.targets.onnx import psnr

from reference_generators import randomise, with_instance_norm_statistics
from reference_unet import PixUnet


def _reference(num_downs, norm, dropout=False, seed=0, input_nc=3, output_nc=3):
    """A reference UNet with random weights and BatchNorm statistics, its convs scaled to unit gain so that
    seven or eight levels neither blow up nor saturate the tanh (a saturated output would hide errors)."""
    torch.manual_seed(seed)
    model = randomise(PixUnet(input_nc, output_nc, ngf=4, num_downs=num_downs, norm=norm, dropout=dropout), seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # a 4×4 stride-2 transposed conv: 4 taps per output
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else 4 * m.weight.shape[0]
                m.weight.mul_(1.0 / (float(m.weight.std()) * fan_in ** 0.5))
    return model


def _save(state, tmp_path, name="latest_net_G.pth"):
    path = str(tmp_path / name)
    torch.save(state, path)
    return path


def _inputs(size, channels=3, n=2, seed=1):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_reference_layout_is_pix2pix_nested_keys():
    keys = list(PixUnet(num_downs=8, norm="batch", dropout=True).state_dict())
    assert keys[:2] == ["model.model.0.weight", "model.model.1.model.1.weight"]
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight" in keys  # innermost down
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.4.running_var" in keys  # its norm
    assert "model.model.3.bias" in keys and "model.model.0.bias" not in keys


@pytest.mark.parametrize("netg,num_downs,norm,dropout", [("unet_256", 8, "batch", True), ("unet_128", 7, "instance", False)])
def test_imported_unet_builds_for_cpu_with_the_reference_outputs(tmp_path, netg, num_downs, norm, dropout):
    size = 2 ** num_downs
    ref = _reference(num_downs, norm, dropout)
    state = ref.state_dict()
    if norm == "instance":
        state = with_instance_norm_statistics(state, ref)  # what old PyTorch saved for InstanceNorm
    src = _save({"module." + k: v for k, v in state.items()}, tmp_path)  # a DataParallel prefix too
    imported = import_generator(src, "pix2pix", netg, ImportOptions(norm, dropout))
    assert isinstance(imported.model, UnetGenerator)
    assert dict(imported.inferred)["ngf"] == 4 and dict(imported.inferred)["num_downs"] == num_downs
    assert bool(imported.dropped) == (norm == "instance")
    x = _inputs(size)
    with torch.no_grad():
        expected = ref(x).numpy()
        assert float(expected.std()) > 0.2 and float((np.abs(expected) > 0.99).mean()) < 0.01  # not flat, not saturated
        assert psnr(expected, imported.model(x).numpy(), 2.0) >= 100
    ckpt_path = save_checkpoint(str(tmp_path / "imported.pt"), imported_checkpoint(imported, size, "image"))
    out, manifest = build_bundle("cpu", checkpoint=ckpt_path, out=str(tmp_path / "bundle"), n_parity_inputs=2,
                                 progress=False)
    (variant,) = manifest["variants"]
    assert variant["width"] == 1.0 and variant["parity"]["psnr_db"] >= 60
    session = ort.InferenceSession(os.path.join(out, variant["file"]), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"input": x[i:i + 1].numpy()})[0] for i in range(len(x))])
    assert psnr(expected, got, 2.0) >= 40


def test_wrong_netg_or_norm_names_the_first_mismatching_key(tmp_path):
    src = _save(_reference(8, "batch").state_dict(), tmp_path)
    with pytest.raises(ImportMismatch) as e:
        import_generator(src, "pix2pix", "unet_128", ImportOptions("batch"))
    message = str(e.value)
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3" in message and "unet_256" in message
    with pytest.raises(ImportMismatch, match="the checkpoint holds this tensor|no such key|expected shape"):
        import_generator(src, "pix2pix", "unet_256", ImportOptions("instance"))
    grey = _save(_reference(7, "batch", input_nc=1).state_dict(), tmp_path, "grey.pth")
    with pytest.raises(ImportMismatch, match="model.model.0.weight.*--input-nc.*expected shape \\[4, 3, 4, 4\\]"):
        import_generator(grey, "pix2pix", "unet_128", ImportOptions("batch", input_nc=3))


def test_cli_import_unet_and_size_check(tmp_path, capsys):
    src = _save(_reference(7, "batch", input_nc=1, output_nc=1).state_dict(), tmp_path)
    out = str(tmp_path / "u.pt")
    assert main(["import", src, "--format", "pix2pix", "--netG", "unet_128", "--size", "96", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--size 96 does not fit" in err and "multiples of 128" in err and "Traceback" not in err
    assert not os.path.exists(out)
    assert main(["import", src, "--format", "pix2pix", "--netG", "unet_128", "--size", "128", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "pix2pix unet_128" in printed and "ngf 4" in printed and "1 → 1 channels" in printed
    g, ckpt = load_generator(out)
    assert ckpt["generator"]["arch"]["name"] == "unet_generator" and ckpt["widths"] == [1.0]
