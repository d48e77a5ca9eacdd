"""An imported 256² pix2pix ResNet-9 (ngf 64, BatchNorm, dropout layers) built for the device targets.

The generator is random (no trained pix2pix weights can be downloaded here), saved as pix2pix saves it
(``latest_net_G.pth``, ``model.N…`` keys; the reference network of ``tests/reference_generators.py``), in
two initialisations:

* ``pix2pix``: pix2pix's own ``init_weights('normal')`` — conv weights N(0, 0.02), BatchNorm weights
  N(1, 0.02), biases 0, fresh running statistics (mean 0, var 1): what a freshly initialised pix2pix
  generator saves. Its outputs are nearly constant (random networks are), so parity is easy.
* ``kaiming``: conv weights N(0, 2/fan_in), BatchNorm affines and running statistics drawn away from
  1 / 0 — activations keep their scale through the 9 blocks and the output varies from pixel to pixel,
  a harder parity check. Still not a trained model: INT8 calibration quality on it says little.

Each is imported (`edgegan import … --size 256`, the path names edges2shoes: inputs are edge maps) and
built with `edgegan build` for jetson-nano (fp16; engines are built on the device, parity here is the
exported ONNX graph with fp16 emulation), cpu-int8 (calibrated on scikit-image's sample photos turned
into edge maps, ``--calibration``), android (TFLite fp32) and ios (Core ML fp16; no prediction on
Linux). It prints build time, parity and size per target and writes
``benchmarks/results/import_build_256.json``. Also checks that cpu-int8 without ``--calibration`` is
refused with the message telling the user to pass it.

    nice -n 5 python benchmarks/import_build_256.py                    # both inits, all four targets
    nice -n 5 python benchmarks/import_build_256.py --init pix2pix --targets cpu-int8
"""

import argparse
import json
import os
import sys
import tempfile
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from reference_generators import pix2pix_resnet  # noqa: E402

from edgegan.cli import main as edgegan_main  # noqa: E402
from edgegan.cli._common import format_table  # noqa: E402
from edgegan.errors import EdgeganError  # noqa: E402
from edgegan.runtime.bundle import write_json_atomic  # noqa: E402
from edgegan.runtime.fps import environment  # noqa: E402
from edgegan.targets.build import build_bundle  # noqa: E402

TARGETS = ("jetson-nano", "cpu-int8", "android", "ios")


@torch.no_grad()
def initialise(model, kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight.shape[0] * m.weight[0, 0].numel()
            std = 0.02 if kind == "pix2pix" else (2.0 / fan_in) ** 0.5
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            if kind == "pix2pix":
                m.weight.copy_(1 + 0.02 * torch.randn(m.num_features, generator=g))
                m.bias.zero_()
            else:
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()


def photos_dir():
    import skimage

    return os.path.dirname(skimage.data.__file__)


def run(init, targets, workdir, calibration):
    folder = os.path.join(workdir, init, "edges2shoes_pix2pix")
    os.makedirs(folder)
    model = initialise(pix2pix_resnet(ngf=64, n_blocks=9, norm="batch", dropout=True), init)
    source = os.path.join(folder, "latest_net_G.pth")
    torch.save(model.state_dict(), source)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        out_std = float(model(x).std())
    ckpt = os.path.join(workdir, init, "imported.pt")
    t0 = time.perf_counter()
    assert edgegan_main(["import", source, "--format", "pix2pix", "--netG", "resnet_9blocks", "--norm", "batch",
                         "--dropout", "--size", "256", "--out", ckpt]) == 0
    import_s = time.perf_counter() - t0
    rows = []
    refused = None
    if "cpu-int8" in targets:
        try:
            build_bundle("cpu-int8", checkpoint=ckpt, out=os.path.join(workdir, init, "refused"), progress=False)
        except EdgeganError as e:
            refused = str(e)
    for target in targets:
        t0 = time.perf_counter()
        row = {"init": init, "target": target, "output_std": out_std}
        try:
            _, manifest = build_bundle(target, checkpoint=ckpt, out=os.path.join(workdir, init, target), progress=True,
                                       calibration=calibration if target == "cpu-int8" else None)
        except EdgeganError as e:
            row.update(seconds=time.perf_counter() - t0, error=str(e))
            rows.append(row)
            continue
        v = manifest["variants"][0]
        row.update(seconds=time.perf_counter() - t0, precision=v["precision"], psnr_db=v["parity"]["psnr_db"],
                   max_abs=v["parity"]["max_abs"], parity_inputs=v["parity"].get("inputs"),
                   size_mb=v["size_bytes"] / 2 ** 20, macs=v["macs"], macs_convention=v["macs_convention"],
                   kept_float=len(v["int8"]["kept_float"]) if "int8" in v else None,
                   fp16_emulated_psnr_db=(v.get("parity_fp16_emulated") or {}).get("psnr_db"))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"init": init, "import_seconds": import_s, "output_std": out_std, "refused_without_calibration": refused,
            "rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", choices=("pix2pix", "kaiming", "both"), default="both")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--out", default=os.path.join(HERE, "results", "import_build_256.json"))
    args = p.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    inits = ("pix2pix", "kaiming") if args.init == "both" else (args.init,)
    started = time.time()
    with tempfile.TemporaryDirectory() as workdir:
        runs = [run(init, targets, workdir, photos_dir()) for init in inits]
    rows = [r for run_ in runs for r in run_["rows"]]
    print(format_table(rows, [("init", "init", None), ("target", "target", None), ("precision", "precision", None),
                              ("seconds", "build s", "{:.0f}"), ("psnr_db", "parity dB", "{:.1f}"),
                              ("max_abs", "max-abs", "{:.1e}"), ("size_mb", "MB", "{:.1f}"),
                              ("kept_float", "int8 kept float", None), ("error", "error", None)]))
    for run_ in runs:
        print("%s init: import %.1f s, output std %.3f; cpu-int8 without --calibration: %s"
              % (run_["init"], run_["import_seconds"], run_["output_std"], run_["refused_without_calibration"]))
    result = {"benchmark": "import_build_256", "command": "python benchmarks/import_build_256.py " + " ".join(argv or
                                                                                                        sys.argv[1:]),
              "environment": environment(), "load_average_start": os.getloadavg(), "wall_s": time.time() - started,
              "runs": runs}
    write_json_atomic(args.out, result, force=True)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
