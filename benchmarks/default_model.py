"""The packaged default model per width, next to the individually trained model of its 0.25× architecture.

For each checkpoint this reads the held-out metrics that `edgegan train` stored in it (PSNR / SSIM / L1 per
width; all 3,000 test pairs for fmnist-shoes), counts the MACs and parameters of every extracted
sub-network (`edgegan.subnet.cost`, BatchNorm folded, batch 1), builds it as a `cpu` bundle (ONNX Runtime,
fp32) and times every variant of both bundles in interleaved blocks (ABBA order over all variants, so that
the load of a shared machine hits all of them alike): median and p90 of the per-call latency, and the
median CPU time of the calling thread per call (with one intra-op thread ONNX Runtime computes on the
caller, so on a loaded machine this leaves out the time spent waiting for a core).

Goal (issue 13): width 0.25 within 1 dB PSNR of width 1.0, and at least as good as the same architecture
trained alone (the baseline).

    python benchmarks/default_model.py --baseline runs/individual_ngf8.pt
    python benchmarks/default_model.py --checkpoint runs/other.pt --baseline runs/b.pt --threads 2

Writes benchmarks/results/default_model.json (``--json``).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from edgegan.cli._common import format_table
from edgegan.runtime import Runtime
from edgegan.runtime.bundle import write_json_atomic
from edgegan.runtime.fps import environment, warm_up

HERE = os.path.dirname(os.path.abspath(__file__))
GOAL_GAP_DB = 1.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="the slimmable checkpoint (default: the packaged model)")
    p.add_argument("--baseline", help="a one-width checkpoint of the 0.25× architecture trained alone")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--blocks", type=int, default=20, help="interleaved blocks per variant (default 20)")
    p.add_argument("--block-runs", type=int, default=50, help="timed calls per block (default 50)")
    p.add_argument("--warmup-s", type=float, default=1.0, help="warm-up seconds per variant (default 1)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "default_model.json"))
    return p.parse_args(argv)


def describe(path, label, tmp):
    """Per-width cost and stored held-out metrics of a checkpoint, and a `cpu` bundle built from it."""
    from edgegan.checkpoint import load_generator
    from edgegan.subnet import cost
    from edgegan.targets.build import build_bundle

    gen, ckpt = load_generator(path)
    size = ckpt["data"].get("size", 32)
    shape = (1, ckpt["data"].get("in_channels", 1), size, size)
    rows = []
    for w in ckpt["widths"]:
        name = "w%g" % w
        metrics = (ckpt.get("metrics") or {}).get(name, {})
        c = cost(gen, shape, config=w)
        rows.append({"model": label, "variant": name, "width": w, "macs": c["macs"], "params": c["params"],
                     "psnr": metrics.get("psnr"), "ssim": metrics.get("ssim"), "l1": metrics.get("l1")})
    bundle, _ = build_bundle("cpu", checkpoint=path, out=os.path.join(tmp, label), progress=False)
    train = ckpt.get("train", {})
    info = {"checkpoint": path or "packaged", "arch": ckpt["generator"]["arch"],
            "test_images": train.get("test_images"), "steps": train.get("steps"),
            "train_seconds": train.get("seconds"), "threads": train.get("threads")}
    return rows, bundle, info


def timed(fn, n):
    """``(wall seconds, this thread's CPU seconds)`` of ``n`` calls, one pair per call."""
    wall, cpu = np.empty(n), np.empty(n)
    for i in range(n):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        wall[i], cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
    return np.stack([wall, cpu])


def interleaved_latency(cases, blocks, block_runs):
    """``{key: 2×N array of per-call wall and CPU seconds}`` over ``blocks`` rounds, every case once per
    round, ABBA order."""
    samples = {key: [] for key, _ in cases}
    for k in range(blocks):
        for key, fn in (cases if k % 2 == 0 else cases[::-1]):
            samples[key].append(timed(fn, block_runs))
    return {key: np.concatenate(v, axis=1) for key, v in samples.items()}


def goal(rows):
    slim = {r["variant"]: r for r in rows if r["model"] == "slimmable"}
    base = [r for r in rows if r["model"] == "individual"]
    out = {"gap_db": None, "vs_individual_db": None}
    if "w0.25" in slim and "w1" in slim and slim["w1"]["psnr"] is not None:
        out["gap_db"] = slim["w1"]["psnr"] - slim["w0.25"]["psnr"]
    if base and "w0.25" in slim and base[0]["psnr"] is not None:
        out["vs_individual_db"] = slim["w0.25"]["psnr"] - base[0]["psnr"]
        out["same_architecture"] = base[0]["macs"] == slim["w0.25"]["macs"] and \
            base[0]["params"] == slim["w0.25"]["params"]
    out["met"] = (out["gap_db"] is not None and out["gap_db"] <= GOAL_GAP_DB
                  and (out["vs_individual_db"] is None or out["vs_individual_db"] >= 0))
    return out


def main(argv=None):
    args = parse_args(argv)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows, bundle, info = describe(args.checkpoint, "slimmable", tmp)
        models = {"slimmable": info}
        bundles = [("slimmable", bundle)]
        if args.baseline:
            base_rows, base_bundle, base_info = describe(args.baseline, "individual", tmp)
            if len(base_rows) != 1:
                raise SystemExit("--baseline must have one width (trained with --widths 1.0), not %d" % len(base_rows))
            rows += base_rows
            models["individual"] = base_info
            bundles.append(("individual", base_bundle))
        runtimes = [(label, Runtime(path, threads=args.threads)) for label, path in bundles]
        try:
            cases = []
            for label, rt in runtimes:
                spec = rt.bundle.input
                x = np.where(np.random.RandomState(0).rand(*spec["shape"]) < 0.15, -1.0, 1.0).astype(spec["dtype"])
                for name in rt.variants:
                    def call(rt=rt, name=name, x=x):
                        rt.set_variant(name)  # a lookup: every variant is loaded up front
                        return rt(x)
                    warm_up(call, 20, args.warmup_s, rt.sync)
                    cases.append(((label, name), call))
            print("timing %d variants in %d interleaved blocks of %d calls..." % (len(cases), args.blocks,
                                                                                 args.block_runs), file=sys.stderr)
            samples = interleaved_latency(cases, args.blocks, args.block_runs)
            env = environment(threads=args.threads, backends=[runtimes[0][1].backend_name])
        finally:
            for _, rt in runtimes:
                rt.close()
    for r in rows:
        wall, cpu = samples[(r["model"], r["variant"])] * 1e3
        r.update(median_ms=float(np.median(wall)), p90_ms=float(np.percentile(wall, 90)), mean_ms=float(wall.mean()),
                 cpu_median_ms=float(np.median(cpu)))
        r["fps_median"] = 1e3 / r["median_ms"]
    table = [dict(r, mmacs=r["macs"] / 1e6, kparams=r["params"] / 1e3) for r in rows]
    print(format_table(table, [("model", "model", None), ("variant", "width", None), ("mmacs", "MMACs", "{:.1f}"),
                               ("kparams", "kParams", "{:.1f}"), ("psnr", "PSNR dB", "{:.2f}"),
                               ("ssim", "SSIM", "{:.3f}"), ("l1", "L1", "{:.4f}"),
                               ("median_ms", "ORT ms (median)", "{:.3f}"), ("p90_ms", "p90 ms", "{:.3f}"),
                               ("cpu_median_ms", "CPU ms (median)", "{:.3f}"),
                               ("fps_median", "FPS (1/median)", "{:.0f}")]))
    g = goal(rows)
    if g["gap_db"] is not None:
        print("\nwidth 1.0 - width 0.25: %.2f dB (goal <= %.1f dB)" % (g["gap_db"], GOAL_GAP_DB))
    if g["vs_individual_db"] is not None:
        print("width 0.25 - the same architecture trained alone: %+.2f dB (goal >= 0)%s"
              % (g["vs_individual_db"], "" if g.get("same_architecture") else
                 "  [the baseline's MACs/params differ from width 0.25's: not the same architecture]"))
    print("goal met" if g["met"] else "goal NOT met")
    load_end = os.getloadavg()
    result = {"benchmark": "default_model", "models": models, "rows": rows, "goal": g, "threads": args.threads,
              "protocol": {"blocks": args.blocks, "block_runs": args.block_runs, "warmup_s": args.warmup_s,
                           "order": "interleaved ABBA blocks over every variant of both bundles; median of "
                                    "per-call latencies (wall clock, and the calling thread's CPU time: with 1 "
                                    "intra-op thread ONNX Runtime computes on the caller, so CPU time leaves out "
                                    "the waits of a shared machine); ONNX Runtime, batch 1, sparse binary edge "
                                    "input"},
              "loadavg": {"start": list(load_start), "end": list(load_end)}, "environment": env}
    write_json_atomic(args.json, result, force=True)
    print("load average (1/5/15 min) at start %s, at end %s" % ("/".join("%.2f" % v for v in load_start),
                                                               "/".join("%.2f" % v for v in load_end)))
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
