"""`edgegan import`: reference networks in pix2pix / GAN Compression key layouts → edgegan checkpoints computing
the same function."""

import json
import os

import numpy as np
import pytest
import torch
from reference_generators import (gan_compression_compressed, gan_compression_mobile, gan_compression_resnet,
                                  pix2pix_resnet, randomise, with_instance_norm_statistics)

from edgegan.checkpoint import load_checkpoint, load_generator
from edgegan.cli import main
from edgegan.errors import CheckpointError
from edgegan.imports import ImportOptions, import_generator
from edgegan.subnet import cost

SIZE = 32


def _psnr(a, b, peak=2.0):
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def _save(state, path, prefix=""):
    torch.save({prefix + k: v for k, v in state.items()}, path)
    return str(path)


def _import(tmp_path, source, *flags):
    out = str(tmp_path / "imported.pt")
    assert main(["import", source, *flags, "--size", str(SIZE), "--out", out]) == 0
    return out


def _onnx_output(bundle, x):
    import onnxruntime as ort

    manifest = json.load(open(os.path.join(bundle, "manifest.json")))
    session = ort.InferenceSession(os.path.join(bundle, manifest["variants"][0]["file"]),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


CASES = {
    # name: (reference builder, import flags, how the state_dict is saved, build a cpu bundle too)
    "pix2pix-resnet9-batch-dropout": (lambda: pix2pix_resnet(n_blocks=9, norm="batch", dropout=True),
                                      ["--format", "pix2pix", "--netG", "resnet_9blocks", "--norm", "batch",
                                       "--dropout"], "module.", True),
    "pix2pix-resnet6-batch": (lambda: pix2pix_resnet(n_blocks=6, norm="batch", dropout=False),
                              ["--format", "pix2pix", "--netG", "resnet_6blocks", "--norm", "batch"], "", False),
    "pix2pix-resnet6-instance-old-stats": (lambda: pix2pix_resnet(n_blocks=6, norm="instance", dropout=False),
                                           ["--format", "pix2pix", "--netG", "resnet_6blocks", "--norm", "instance"],
                                           "old-instance-norm", True),
    "gan-compression-teacher": (lambda: gan_compression_resnet(),
                                ["--format", "gan-compression", "--netG", "resnet_9blocks"], "", False),
    "gan-compression-mobile": (lambda: gan_compression_mobile(),
                               ["--format", "gan-compression", "--netG", "mobile_resnet_9blocks"], "", False),
    "gan-compression-compressed": (lambda: gan_compression_compressed([8, 8, 12, 4, 8, 12, 4, 8]),
                                   ["--format", "gan-compression", "--netG", "sub_mobile_resnet_9blocks"], "", True),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_generator_matches_the_reference(tmp_path, case, capsys):
    """Every layout: the imported checkpoint computes the reference's function; three of them (one per edgegan
    generator class and norm: the others map onto the same classes) are also built for cpu and the ONNX
    artifact is compared with the reference."""
    from edgegan.targets.build import build_bundle

    make, flags, saving, build = CASES[case]
    torch.manual_seed(0)
    ref = randomise(make(), seed=1)
    state = ref.state_dict()
    if saving == "old-instance-norm":
        state = with_instance_norm_statistics(state, ref)
    source = _save(state, tmp_path / "latest_net_G.pth", "module." if saving == "module." else "")
    out = _import(tmp_path, source, *flags)
    printed = capsys.readouterr().out
    assert "inferred from the tensor shapes" in printed
    ckpt = load_checkpoint(out)
    if saving == "old-instance-norm":
        assert "dropped" in printed and ckpt["import"]["dropped_keys"]
    assert ckpt["widths"] == [1.0] and ckpt["data"]["size"] == SIZE and ckpt["data"]["in_channels"] == 3
    assert ckpt["data"]["input"]["range"] == [-1.0, 1.0] and ckpt["data"]["input"]["content"] == "image"
    x = (torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)) * 2 - 1)
    with torch.no_grad():
        expected = ref(x).numpy()
        assert float(expected.std()) > 0.05  # a non-trivial function: the comparison means something
        gen, _ = load_generator(out)
        assert _psnr(gen(x).numpy(), expected) >= 60.0
    if not build:
        return
    bundle, manifest = build_bundle("cpu", checkpoint=out, out=str(tmp_path / "bundle"), progress=False,
                                    n_parity_inputs=2)
    assert [v["name"] for v in manifest["variants"]] == ["w1"]
    assert manifest["variants"][0]["macs_convention"] == "edgegan"
    got = np.concatenate([_onnx_output(bundle, x[i:i + 1].numpy()) for i in range(len(x))])
    assert _psnr(got, expected) >= 40.0


def test_gan_compression_batchnorm_student_keeps_its_separable_layout(tmp_path):
    """GAN Compression's separable conv always holds an InstanceNorm and biases, also in a BatchNorm model."""
    ref = randomise(gan_compression_compressed([8, 8, 8, 4, 8, 12, 4, 8], norm="batch"), seed=3)
    imported = import_generator(_save(ref.state_dict(), tmp_path / "g.pth"), "gan-compression",
                                "sub_mobile_resnet_9blocks", ImportOptions("batch"))
    assert imported.inferred["config_str"] == "8_8_8_4_8_12_4_8"
    assert imported.inferred["hidden"] == [16, 16, 16, 32, 32, 32, 48, 48, 48]
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        assert _psnr(imported.model(x).numpy(), ref(x).numpy()) >= 60.0


def _error(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_wrong_netg_names_the_first_mismatching_key(tmp_path, capsys):
    ref = pix2pix_resnet(n_blocks=6, norm="batch", dropout=False)
    source = _save(ref.state_dict(), tmp_path / "g.pth")
    err = _error(capsys, "import", source, "--format", "pix2pix", "--netG", "resnet_9blocks", "--norm", "batch",
                 "--size", "32", "--out", str(tmp_path / "o.pt"))
    # 6 blocks end at model.15; resnet_9blocks expects a 7th block where the upsampling starts
    assert "model.16.conv_block.1.weight" in err and "[32, 32, 3, 3]" in err and "model.16.weight [32, 16, 3, 3]" in err
    assert "it fits --format pix2pix --netG resnet_6blocks --norm batch" in err
    assert not os.path.exists(tmp_path / "o.pt")


def test_wrong_norm_names_the_first_mismatching_key(tmp_path, capsys):
    ref = pix2pix_resnet(n_blocks=9, norm="instance", dropout=False)
    source = _save(ref.state_dict(), tmp_path / "g.pth")
    err = _error(capsys, "import", source, "--format", "pix2pix", "--netG", "resnet_9blocks", "--norm", "batch",
                 "--size", "32", "--out", str(tmp_path / "o.pt"))
    # InstanceNorm models' convs carry a bias, BatchNorm ones do not: the stem conv's bias is the first difference
    assert "model.1.bias [8] (in a conv): the checkpoint holds this tensor, which the layout does not have" in err
    assert "it fits --format pix2pix --netG resnet_9blocks --norm instance" in err
    batch = _save(pix2pix_resnet(n_blocks=9, norm="batch", dropout=False).state_dict(), tmp_path / "b.pth")
    err = _error(capsys, "import", batch, "--format", "pix2pix", "--netG", "resnet_9blocks", "--norm", "instance",
                 "--size", "32", "--out", str(tmp_path / "o.pt"))
    assert "model.1.bias (conv bias): expected a tensor of shape [8], the checkpoint has no such key" in err
    assert "it fits --format pix2pix --netG resnet_9blocks --norm batch" in err
    err = _error(capsys, "import", source, "--format", "pix2pix", "--netG", "resnet_9blocks", "--norm", "instance",
                 "--dropout", "--size", "32", "--out", str(tmp_path / "o.pt"))
    assert "model.10.conv_block.6.weight" in err and "it fits --format pix2pix --netG resnet_9blocks --norm instance" \
        in err


def test_wrong_channels_and_size(tmp_path, capsys):
    source = _save(pix2pix_resnet(n_blocks=6, norm="batch", dropout=False).state_dict(), tmp_path / "g.pth")
    base = ["import", source, "--format", "pix2pix", "--netG", "resnet_6blocks", "--out", str(tmp_path / "o.pt")]
    err = _error(capsys, *base, "--input-nc", "1", "--size", "32")
    assert "model.1.weight" in err and "[8, 1, 7, 7]" in err and "[8, 3, 7, 7]" in err
    assert "--size 30" in _error(capsys, *base, "--size", "30")


def test_bad_files_give_one_line(tmp_path, capsys):
    ref = pix2pix_resnet(n_blocks=6, norm="batch", dropout=False)
    common = ["--format", "pix2pix", "--netG", "resnet_6blocks", "--size", "32"]
    assert "no file at" in _error(capsys, "import", str(tmp_path / "nope.pth"), *common,
                                  "--out", str(tmp_path / "o.pt"))
    torch.save(ref, str(tmp_path / "whole.pth"))  # a pickled module, as `torch.save(netG)` writes it
    err = _error(capsys, "import", str(tmp_path / "whole.pth"), *common, "--out", str(tmp_path / "o.pt"))
    assert "weights_only" in err and "state_dict()" in err
    torch.save({"epoch": 3, "lr": 0.1}, str(tmp_path / "opts.pth"))
    assert "not a state_dict" in _error(capsys, "import", str(tmp_path / "opts.pth"), *common,
                                        "--out", str(tmp_path / "o.pt"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    assert "not a PyTorch checkpoint" in _error(capsys, "import", str(tmp_path / "text.pth"), *common,
                                                "--out", str(tmp_path / "o.pt"))
    source = _save(ref.state_dict(), tmp_path / "g.pth")
    (tmp_path / "exists.pt").write_text("keep me")
    assert "--force" in _error(capsys, "import", source, *common, "--out", str(tmp_path / "exists.pt"))
    assert (tmp_path / "exists.pt").read_text() == "keep me"
    assert "--netG 'unet_512'" in _error(capsys, "import", source, "--format", "pix2pix", "--netG", "unet_512",
                                         "--size", "32", "--out", str(tmp_path / "o.pt"))


def test_input_content_and_edges_are_recorded(tmp_path, capsys):
    folder = tmp_path / "edges2shoes_pix2pix"
    folder.mkdir()
    source = _save(pix2pix_resnet(n_blocks=6, norm="batch", dropout=False).state_dict(), folder / "latest_net_G.pth")
    out = str(tmp_path / "e.pt")
    assert main(["import", source, "--format", "pix2pix", "--netG", "resnet_6blocks", "--size", "32",
                 "--edges-low", "50", "--out", out, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_content"] == "edges" and report["macs_convention"] == "edgegan"
    assert report["macs_gan_compression"] > report["macs"]
    data = load_checkpoint(out)["data"]
    assert data["input"]["content"] == "edges" and data["edges"]["low"] == 50 and data["edges"]["method"] == "canny"
    assert data["input"]["color"] == "rgb" and data["name"] == "import:edges2shoes_pix2pix"
    with pytest.raises(CheckpointError, match="apply to --input-content edges"):
        from edgegan.cli.import_ import run as run_import
        from edgegan.cli import build_parser

        run_import(build_parser().parse_args(["import", source, "--format", "pix2pix", "--netG", "resnet_6blocks",
                                              "--size", "32", "--input-content", "image", "--edges-low", "5",
                                              "--out", str(tmp_path / "f.pt")]))


def test_gan_compression_mac_convention_reproduces_the_published_figures():
    """ResNet-9, ngf 64, 3 → 3 channels at 256²: 49.55 G in edgegan's count, GAN Compression's published 56.80 G."""
    from edgegan.models import ResnetGenerator

    with torch.device("meta"):  # shapes only: the count needs no arithmetic
        ours = ResnetGenerator(3, 3, ngf=64, n_blocks=9, norm="in", widths=[1.0])
        reference = pix2pix_resnet(ngf=64, n_blocks=9, norm="instance", dropout=False)
    shape = (1, 3, 256, 256)
    for model in (ours, reference):
        plain, published = cost(model, shape), cost(model, shape, convention="gan-compression")
        assert plain["macs"] == 49_551_507_456 and plain["macs_convention"] == "edgegan"
        assert published["macs"] == 56_799_264_768 and published["macs_convention"] == "gan-compression"
        assert round(published["macs"] / 1e9, 2) == 56.80 and round(plain["macs"] / 1e9, 2) == 49.55
    with pytest.raises(ValueError, match="convention"):
        cost(ours, shape, convention="torchprofile")


def test_mac_conventions_differ_only_in_transposed_convs():
    import torch.nn as nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
                        nn.Conv2d(4, 4, 3, padding=1, groups=4))
    conv, dw = 16 * 16 * 8 * 3 * 9, 32 * 32 * 4 * 1 * 9
    assert cost(net, (1, 3, 16, 16))["macs"] == conv + 16 * 16 * 8 * 4 * 9 + dw          # input pixels
    assert cost(net, (1, 3, 16, 16), convention="gan-compression")["macs"] == conv + 32 * 32 * 4 * 8 * 9 + dw


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["import", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "edgegan import" in out and "--netG" in out and "sub_mobile_resnet_9blocks" in out
