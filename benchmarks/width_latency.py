"""Latency per width of the 256² pix2pix ResNet-9 generator (ngf 64): PyTorch eager vs ONNX Runtime.

One run measures every width with both engines by the FPS protocol of ``edgegan.runtime.fps`` and
reports latency(w)/latency(1.0) next to MACs(w)/MACs(1.0). The goal for the spine issue is
latency(0.25)/latency(1.0) ≤ 0.10 (the MAC ratio is ≈ 0.067).

    python benchmarks/width_latency.py                      # table + benchmarks/results/width_latency.json
    python benchmarks/width_latency.py --size 128 --runs 50 --json out.json

The weights are random (latency does not depend on them); BatchNorm is folded as in a real build.
"""

import argparse
import json
import os
import sys
import tempfile

import onnxruntime as ort
import torch

from edgegan.cli._common import format_table
from edgegan.models import ResnetGenerator
from edgegan.runtime.fps import environment, measure
from edgegan.subnet import cost, extract
from edgegan.targets.onnx import INPUT_NAME, compile_onnx

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n-blocks", type=int, default=9)
    p.add_argument("--widths", default="0.25,0.5,0.75,1.0")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads for both engines")
    p.add_argument("--warmup", type=int, default=5, help="warm-up runs (at least; plus --warmup-s seconds)")
    p.add_argument("--warmup-s", type=float, default=2.0)
    p.add_argument("--runs", type=int, default=20, help="timed runs per width and engine")
    p.add_argument("--json", default=os.path.join(HERE, "results", "width_latency.json"))
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    gen = ResnetGenerator(3, 3, ngf=args.ngf, n_blocks=args.n_blocks).eval()
    shape = (1, 3, args.size, args.size)
    x = torch.randn(shape)
    x_np = x.numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in [float(w) for w in args.widths.split(",")]:
            sub = extract(gen, width, input_shape=shape)
            path = os.path.join(tmp, "w%g.onnx" % width)
            compile_onnx(sub, shape, path, opset=17)
            session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            with torch.inference_mode():
                eager = measure(lambda: sub(x), args.warmup, args.warmup_s, args.runs)
            onnx_rt = measure(lambda: session.run(None, {INPUT_NAME: x_np}), args.warmup, args.warmup_s, args.runs)
            row = {"width": width, "eager": eager, "ort": onnx_rt}
            row.update(cost(sub, shape))
            rows.append(row)
            print("width %g: eager %.1f ms, ORT %.1f ms" % (width, eager["median_ms"], onnx_rt["median_ms"]),
                  file=sys.stderr)
    full = next(r for r in rows if r["width"] == 1.0)
    table = []
    for r in rows:
        table.append({"width": r["width"], "gmacs": r["macs"] / 1e9, "mac_ratio": r["macs"] / full["macs"],
                      "eager_ms": r["eager"]["median_ms"], "eager_p90": r["eager"]["p90_ms"],
                      "eager_ratio": r["eager"]["median_ms"] / full["eager"]["median_ms"],
                      "ort_ms": r["ort"]["median_ms"], "ort_p90": r["ort"]["p90_ms"],
                      "ort_ratio": r["ort"]["median_ms"] / full["ort"]["median_ms"],
                      "speedup": r["eager"]["median_ms"] / r["ort"]["median_ms"]})
    print(format_table(table, [
        ("width", "width", "{:g}"), ("gmacs", "GMACs", "{:.2f}"), ("mac_ratio", "MACs/1.0", "{:.3f}"),
        ("eager_ms", "eager ms", "{:.1f}"), ("eager_p90", "p90", "{:.1f}"), ("eager_ratio", "eager/1.0", "{:.3f}"),
        ("ort_ms", "ORT ms", "{:.1f}"), ("ort_p90", "p90", "{:.1f}"), ("ort_ratio", "ORT/1.0", "{:.3f}"),
        ("speedup", "eager/ORT", "{:.2f}")]))
    result = {"benchmark": "width_latency", "model": {"size": args.size, "ngf": args.ngf, "n_blocks": args.n_blocks},
              "protocol": {"warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs,
                           "threads": args.threads, "latency": "median of timed runs"},
              "environment": environment(threads=args.threads, backends=("onnxruntime",)),
              "torch": torch.__version__, "rows": rows, "table": table}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
