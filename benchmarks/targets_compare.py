"""CPU artifacts of the 256² pix2pix ResNet-9 generator (ngf 64) side by side: latency and PSNR vs fp32.

PyTorch eager fp32 · ONNX Runtime fp32 · ONNX Runtime INT8 (Q/DQ, through the quality gate) ·
TFLite fp32 · TFLite INT8 (when litert-torch / ai-edge-litert are installed: ``pip install .[tflite]``),
each timed by the FPS protocol of ``edgegan.runtime.fps`` in one run, and compared with the fp32
network on held-out inputs (real Fashion-MNIST shoe edge maps upscaled to 256², three channels).
Goal: the best CPU artifact ≥ 3× faster than eager at ≥ 35 dB.

    python benchmarks/targets_compare.py                     # table + benchmarks/results/targets_compare.json

The weights are random (BatchNorm statistics from random batches, folded): PSNR measures how faithfully
each artifact computes the network, not image quality.
"""

import argparse
import copy
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import torch

from edgegan.calibrate import CalibrationSet
from edgegan.cli._common import format_table
from edgegan.models import ResnetGenerator
from edgegan.nn import set_width
from edgegan.runtime.fps import environment, measure
from edgegan.subnet import extract
from edgegan.targets.onnx import INPUT_NAME, compile_onnx, psnr, quantize_with_gate
from edgegan.targets.profiles import load_profile

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n-blocks", type=int, default=9)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--warmup-s", type=float, default=2.0)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--calibration", type=int, default=16, help="calibration inputs")
    p.add_argument("--held-out", type=int, default=4, help="held-out inputs for PSNR")
    p.add_argument("--min-psnr", type=float, default=35.0, help="INT8 quality gate (dB vs fp32)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "targets_compare.json"))
    return p.parse_args(argv)


def shoe_edges(n, size, seed=0):
    """Real inputs: Fashion-MNIST shoe edge maps (the training convention), upscaled, three channels."""
    import cv2

    from edgegan.data import FashionMnistShoes

    ds = FashionMnistShoes("test", size=32)
    idx = np.random.default_rng(seed).choice(len(ds), n, replace=False)
    out = []
    for i in idx:
        x = ds[int(i)][0].numpy()[0]
        x = cv2.resize(x, (size, size), interpolation=cv2.INTER_NEAREST)
        out.append(np.repeat(x[None, None], 3, axis=1).astype(np.float32))
    return out


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    gen = ResnetGenerator(3, 3, ngf=args.ngf, n_blocks=args.n_blocks)
    gen.train()
    with torch.no_grad():
        for w in gen.widths:  # BatchNorm statistics for every width
            set_width(gen, w)
            gen(torch.randn(2, 3, args.size, args.size))
    shape = (1, 3, args.size, args.size)
    sub = extract(gen.eval(), args.width, input_shape=shape)
    inputs = shoe_edges(args.calibration + args.held_out, args.size)
    calib = CalibrationSet(inputs[:args.calibration], inputs[args.calibration:], "fmnist-shoes test edges, 256²")
    with torch.no_grad():
        refs = np.stack([sub(torch.from_numpy(x)).numpy() for x in calib.held_out])
    x = calib.held_out[0]
    rows = []

    def add(name, precision, fn, size_bytes, outputs, note=""):
        stats = measure(fn, args.warmup, args.warmup_s, args.runs)
        rows.append({"artifact": name, "precision": precision, "size_mb": size_bytes / 1e6 if size_bytes else None,
                     "psnr_db": round(psnr(refs, np.stack(outputs), 2.0), 2), "median_ms": stats["median_ms"],
                     "p90_ms": stats["p90_ms"], "fps": stats["fps"], "cv": stats["cv"], "note": note, "stats": stats})
        print("%s %s: %.1f ms" % (name, precision, stats["median_ms"]), file=sys.stderr)

    tmp = tempfile.mkdtemp(prefix="edgegan-bench-")
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        params = sum(p.numel() * p.element_size() for p in sub.parameters())
        add("PyTorch eager", "fp32", lambda: sub(xt), params, [sub(torch.from_numpy(h)).numpy() for h in calib.held_out])

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    fp32 = os.path.join(tmp, "fp32.onnx")
    compile_onnx(sub, shape, fp32, 17)
    s = ort.InferenceSession(fp32, opts, providers=["CPUExecutionProvider"])
    add("ONNX Runtime", "fp32", lambda: s.run(None, {INPUT_NAME: x}), os.path.getsize(fp32),
        [s.run(None, {INPUT_NAME: h})[0] for h in calib.held_out])

    profile = copy.deepcopy(load_profile("cpu-int8"))
    profile["calibrate"]["min_psnr_db"] = args.min_psnr
    report = quantize_with_gate(sub, fp32, tmp, calib, profile)
    s8 = ort.InferenceSession(report["path"], opts, providers=["CPUExecutionProvider"])
    add("ONNX Runtime", "int8 (Q/DQ u8s8)", lambda: s8.run(None, {INPUT_NAME: x}), os.path.getsize(report["path"]),
        [s8.run(None, {INPUT_NAME: h})[0] for h in calib.held_out],
        "%s, %d layers kept float" % (report["observer"], len(report["kept_float"])))

    try:
        from edgegan.runtime.backends import get_backend
        from edgegan.targets.tflite import compile_tflite, to_nhwc

        android = copy.deepcopy(load_profile("android"))
        android["calibrate"]["min_psnr_db"] = args.min_psnr
        for precision in ("fp32", "int8"):
            path = os.path.join(tmp, "m-%s.tflite" % precision)
            extra = compile_tflite(sub, shape, path, precision, android, calib if precision == "int8" else None)
            backend = get_backend("tflite")(path, threads=args.threads, layout="NHWC")
            xn = to_nhwc(x)
            outs = [to_nchw(backend.run(to_nhwc(h))) for h in calib.held_out]
            kept = len(extra.get("int8", {}).get("kept_float", [])) if precision == "int8" else None
            add("TFLite (LiteRT)", precision, lambda: backend.run(xn), os.path.getsize(path), outs,
                "" if kept is None else "%d layers kept float" % kept)
    except Exception as e:  # noqa: BLE001 — an optional target; say why it is missing
        rows.append({"artifact": "TFLite (LiteRT)", "precision": "-", "note": "not run: %s" % str(e).splitlines()[0]})

    eager = rows[0]["median_ms"]
    for r in rows:
        if r.get("median_ms"):
            r["speedup"] = eager / r["median_ms"]
    print(format_table(rows, [("artifact", "artifact", None), ("precision", "precision", None),
                              ("size_mb", "size MB", "{:.1f}"), ("median_ms", "median ms", "{:.1f}"),
                              ("p90_ms", "p90 ms", "{:.1f}"), ("fps", "FPS", "{:.2f}"),
                              ("speedup", "× eager", "{:.2f}"), ("psnr_db", "PSNR vs fp32 dB", "{:.1f}"),
                              ("note", "note", None)]))
    result = {"benchmark": "targets_compare", "model": {"size": args.size, "ngf": args.ngf, "n_blocks": args.n_blocks,
                                                        "width": args.width},
              "protocol": {"warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs, "threads": args.threads},
              "environment": environment(threads=args.threads, backends=("onnxruntime",)), "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        import json
        json.dump(result, f, indent=2, default=str)
    print("wrote %s" % args.json)


def to_nchw(y):
    return np.ascontiguousarray(np.transpose(y, (0, 3, 1, 2)))


if __name__ == "__main__":
    main()
