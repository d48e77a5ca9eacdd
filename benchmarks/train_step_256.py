"""Step time of the 256² paired recipe (pix2pix ResNet-9, ngf 64, all four widths, the recipe's PatchGAN D).

One SlimGAN step (``edgegan.train.slimmable.train_step``) runs the generator at 0.25 / 0.5 / 0.75 / 1.0, one
discriminator update and one generator update. The script builds the models exactly as
``edgegan train slimmable --size 256 --ngf 64 --n-blocks 9 --ndf 64`` does, then times a few steps per
configuration (batch size × ``--amp`` mode × memory format), the configurations interleaved step by step so
that machine noise hits them alike. It also counts the FLOPs of one step (``torch.utils.flop_counter``:
forward and backward) and times the data pipeline (JPEG decode + pix2pix jitter / flip of one A|B pair) on
synthetic 256×512 pairs. The table and ``benchmarks/results/train_step_256.json`` give the medians and the
extrapolated wall time of a full edges2shoes run (49,825 pairs, 15 epochs as pix2pix trains it).

    python benchmarks/train_step_256.py                         # batch 1 and 4, fp32 and bf16, 3 timed steps
    python benchmarks/train_step_256.py --batches 1,4,16 --amp none,bf16 --steps 5 --device cuda --channels-last both

Random weights and inputs: step time does not depend on them.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

from edgegan.cli._common import format_table
from edgegan.runtime.fps import environment
from edgegan.train.precision import Precision, channels_last
from edgegan.train.slimmable import ADAM_BETAS, SlimmableConfig, build_models, train_step

HERE = os.path.dirname(os.path.abspath(__file__))
EDGES2SHOES_TRAIN = 49825
PIX2PIX_EPOCHS = 15  # pix2pix's edges2shoes schedule (paper, appendix: 15 epochs, batch size 4)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n-blocks", type=int, default=9)
    p.add_argument("--ndf", type=int, default=64, help="discriminator width (pix2pix: 64)")
    p.add_argument("--widths", default="0.25,0.5,0.75,1.0")
    p.add_argument("--batches", default="1,4", help="batch sizes (default 1,4; pix2pix trains edges2shoes at 4)")
    p.add_argument("--amp", default="none,bf16", help="modes among none, bf16, fp16 (fp16: CUDA only)")
    p.add_argument("--channels-last", choices=("off", "on", "both"), default="off")
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up step)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data-samples", type=int, default=32, help="synthetic pairs timed through the data pipeline")
    p.add_argument("--json", default=os.path.join(HERE, "results", "train_step_256.json"))
    return p.parse_args(argv)


class Setup(object):
    """One configuration's models, optimizers and fixed batch."""

    def __init__(self, args, batch, amp, nhwc, device):
        self.batch, self.amp, self.nhwc = batch, amp, nhwc
        self.name = "b%d %s%s" % (batch, amp if amp != "none" else "fp32", " NHWC" if nhwc else "")
        widths = tuple(float(w) for w in args.widths.split(","))
        self.config = SlimmableConfig(ngf=args.ngf, n_blocks=args.n_blocks, ndf=args.ndf, widths=widths,
                                      batch_size=batch, amp=amp, channels_last=nhwc, device=str(device))
        meta = {"size": args.size, "in_channels": 3, "out_channels": 3}
        self.g, self.d = build_models(self.config, meta, device)
        self.g, self.d = channels_last(self.g, nhwc), channels_last(self.d, nhwc)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=ADAM_BETAS)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=ADAM_BETAS)
        self.precision = Precision(amp, device)
        shape = (batch, 3, args.size, args.size)
        self.x = channels_last(torch.rand(shape, device=device) * 2 - 1, nhwc)
        self.y = channels_last(torch.rand(shape, device=device) * 2 - 1, nhwc)
        self.d_layers = self.d.hparams["n_layers"]
        self.times = []

    def step(self):
        train_step(self.g, self.d, self.opt_g, self.opt_d, self.x, self.y, self.config, precision=self.precision)

    def timed_step(self, device):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        self.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.times.append(time.perf_counter() - start)


def step_flops(args, device):
    """FLOPs of one batch-1 fp32 step, forward and backward (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    setup = Setup(args, 1, "none", False, device)
    counter = FlopCounterMode(display=False)
    with counter:
        setup.step()
    return int(counter.get_total_flops())


def data_pipeline_ms(args):
    """Median ms to read one synthetic 256×512 JPEG pair and apply pix2pix's jitter / flip (one process)."""
    from edgegan.data import AlignedFolder

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "train"))
        for k in range(args.data_samples):
            noise = rng.integers(0, 256, (args.size // 8, args.size // 4, 3), dtype=np.uint8)
            image = cv2.resize(noise, (2 * args.size, args.size), interpolation=cv2.INTER_CUBIC)  # smooth, like photos
            cv2.imwrite(os.path.join(tmp, "train", "%d_AB.jpg" % k), image)
        data = AlignedFolder(tmp, "train", size=args.size, augment=True)
        times = []
        for k in range(len(data)):
            start = time.perf_counter()
            data[(k, (0, 0, k, 0))]
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    modes = [m.strip() for m in args.amp.split(",")]
    layouts = {"off": [False], "on": [True], "both": [False, True]}[args.channels_last]
    setups = [Setup(args, b, m, nhwc, device) for b in batches for m in modes for nhwc in layouts]
    for s in setups:  # warm-up: allocator, oneDNN / cuDNN kernel selection
        s.step()
    for i in range(args.steps):  # interleaved: every configuration once per round
        for s in setups:
            s.timed_step(device)
            print("round %d %-12s %.2f s" % (i + 1, s.name, s.times[-1]), file=sys.stderr)
    flops = step_flops(args, device)
    data_ms = data_pipeline_ms(args)
    steps_per_epoch = {b: EDGES2SHOES_TRAIN // b for b in batches}
    fp32_b1 = next((s for s in setups if s.batch == batches[0] and s.amp == "none" and not s.nhwc), setups[0])
    rows = []
    for s in setups:
        median = statistics.median(s.times)
        total_steps = steps_per_epoch[s.batch] * PIX2PIX_EPOCHS
        rows.append({"config": s.name, "batch": s.batch, "amp": s.amp, "channels_last": s.nhwc,
                     "step_s": median, "step_s_all": s.times, "images_per_s": s.batch / median,
                     "ratio_to_first": median / statistics.median(fp32_b1.times),
                     "achieved_gflops": flops * s.batch / median / 1e9,
                     "full_run_steps": total_steps, "full_run_days": total_steps * median / 86400.0})
    print(format_table(rows, [("config", "config", None), ("step_s", "s/step", "{:.2f}"),
                              ("images_per_s", "img/s", "{:.2f}"), ("ratio_to_first", "vs b%d fp32" % batches[0],
                                                                   "{:.2f}"),
                              ("achieved_gflops", "GFLOP/s", "{:.0f}"), ("full_run_steps", "steps (15 ep)", "{:,}"),
                              ("full_run_days", "days (extrapolated)", "{:.1f}")]))
    print("one step at batch 1: %.1f GFLOP (forward + backward, all widths, G and D); data pipeline: %.1f ms per "
          "pair per process (JPEG decode + jitter / flip)" % (flops / 1e9, data_ms))
    result = {"benchmark": "train_step_256",
              "model": {"size": args.size, "ngf": args.ngf, "n_blocks": args.n_blocks, "ndf": args.ndf,
                        "d_layers": setups[0].d_layers, "widths": args.widths},
              "protocol": {"warmup_steps": 1, "timed_steps": args.steps, "interleaved": True,
                           "statistic": "median", "device": str(device), "threads": args.threads},
              "full_run": {"train_pairs": EDGES2SHOES_TRAIN, "epochs": PIX2PIX_EPOCHS,
                           "note": "extrapolated from the measured step times, not run"},
              "step_gflop_batch1": flops / 1e9, "data_pipeline_ms_per_pair": data_ms,
              "load_average": list(os.getloadavg()), "cpu_flags": cpu_flags(),
              "environment": environment(threads=args.threads), "torch": torch.__version__, "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.json)
    print("load average %s; wrote %s" % (" ".join("%.1f" % v for v in os.getloadavg()), args.json))


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return sorted(f for f in set(flags) if f.startswith(("avx512", "amx")) or f == "avx_vnni")


if __name__ == "__main__":
    main()
