"""Width switching cost and runtime overhead against calling the backend directly.

One run builds (or takes) a bundle and measures, per variant and within the same run:

* ``switch``: ``Runtime.set_variant`` alone (median / p99 / max over many alternating switches), and the
  first inference after a switch next to a steady-state inference;
* ``overhead``: ``Runtime.run(x)`` against the backend library called directly
  (``session.run`` of onnxruntime, or the TorchScript module), in interleaved blocks so that drift and
  other load hit both alike; overhead = median(runtime) / median(direct) - 1;
* ``policy``: a frame loop that also calls ``PolicyMonitor.poll()`` before every frame (file power
  source, no switch), against the plain runtime loop.

Goals (issue 6): switch <= 1 ms, runtime overhead <= 2 %.

    python benchmarks/switch_overhead.py                       # 32², ngf 16 (the previous packaged architecture)
    python benchmarks/switch_overhead.py --ngf 32              # the packaged model's architecture
    python benchmarks/switch_overhead.py --size 128 --ngf 32   # a larger model
    python benchmarks/switch_overhead.py --bundle edgegan-cpu --json out.json
    python benchmarks/switch_overhead.py --target torch --size 256 --ngf 64 --n-blocks 9 --save-bundle g256 --build-only

The weights are random (latency does not depend on them).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from edgegan.cli._common import format_table
from edgegan.runtime import Runtime
from edgegan.runtime.fps import environment, warm_up
from edgegan.runtime.policy import Policy, PolicyMonitor
from edgegan.runtime.power import detect_source

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="an existing bundle (default: build one from a random checkpoint)")
    p.add_argument("--target", default="cpu", help="profile to build with (default cpu; torch for TorchScript)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--n-blocks", type=int, default=6)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1: least noise)")
    p.add_argument("--switches", type=int, default=20000, help="timed set_variant calls")
    p.add_argument("--blocks", type=int, default=20, help="interleaved blocks per variant")
    p.add_argument("--block-runs", type=int, default=100, help="calls per block")
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--save-bundle", metavar="DIR", help="keep the built bundle there (e.g. for `edgegan bench`)")
    p.add_argument("--build-only", action="store_true", help="with --save-bundle: build the bundle and stop")
    p.add_argument("--json", default=os.path.join(HERE, "results", "switch_overhead.json"))
    return p.parse_args(argv)


def build(args, tmp):
    import torch

    from edgegan.checkpoint import save_checkpoint
    from edgegan.models import ResnetGenerator
    from edgegan.nn import set_width
    from edgegan.targets.build import build_bundle

    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=args.ngf, n_blocks=args.n_blocks, norm="bn", padding="reflect")
    g.train()
    for w in g.widths:  # give BatchNorm running statistics
        set_width(g, w)
        g(torch.randn(4, 1, args.size, args.size))
    set_width(g, 1.0)
    data = {"name": "random", "size": args.size, "in_channels": 1, "out_channels": 1,
            "input": {"range": [-1.0, 1.0], "content": "edges"}, "output": {"range": [-1.0, 1.0], "content": "image"}}
    ckpt = os.path.join(tmp, "random.pt")
    save_checkpoint(ckpt, {"generator": {"arch": g.arch(), "state_dict": g.eval().state_dict()},
                           "widths": list(g.widths), "data": data})
    out, _ = build_bundle(args.target, checkpoint=ckpt, out=args.save_bundle or os.path.join(tmp, "bundle"),
                          progress=False)
    return out


def direct_call(backend):
    """The backend's library called without the runtime (no input checks, no variant lookup)."""
    if backend.name == "onnxruntime":
        session, names, feed_name = backend.session, [backend.output_name], backend.input_name
        return lambda x: session.run(names, {feed_name: x})[0]
    if backend.name == "torch":
        import torch

        module = backend.module

        def run(x):
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()
        return run
    raise SystemExit("no direct call for backend %s" % backend.name)


def timed(fn, n, clock=time.perf_counter):
    out = np.empty(n)
    for i in range(n):
        t0 = clock()
        fn()
        out[i] = clock() - t0
    return out


def measure_switch(rt, variants, n):
    names = [variants[i % len(variants)] for i in range(n)]
    costs = np.empty(n)
    clock = time.perf_counter
    for i, name in enumerate(names):
        t0 = clock()
        rt.set_variant(name)
        costs[i] = clock() - t0
    ms = costs * 1e3
    return {"n": n, "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def first_after_switch(rt, x, variants, repeats=50):
    """Latency of the first inference after a switch vs a steady-state inference of the same variant."""
    rows = {}
    for name in variants:
        other = next(v for v in variants if v != name)
        first, steady = [], []
        for _ in range(repeats):
            rt.set_variant(other)
            rt(x)
            rt(x)
            rt.set_variant(name)
            t0 = time.perf_counter()
            rt(x)
            t1 = time.perf_counter()
            rt(x)
            t2 = time.perf_counter()
            first.append(t1 - t0)
            steady.append(t2 - t1)
        rows[name] = {"first_ms": float(np.median(first)) * 1e3, "steady_ms": float(np.median(steady)) * 1e3}
    return rows


def interleaved(a, b, blocks, block_runs):
    """Median latencies of ``a`` and ``b`` over alternating blocks (ABBA order per pair)."""
    ta, tb = [], []
    for k in range(blocks):
        order = (a, b) if k % 2 == 0 else (b, a)
        for fn in order:
            (ta if fn is a else tb).append(timed(fn, block_runs))
    ta, tb = np.concatenate(ta), np.concatenate(tb)
    return float(np.median(ta)), float(np.median(tb)), float(ta.mean()), float(tb.mean())


def main(argv=None):
    args = parse_args(argv)
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.build_only and not args.save_bundle:
        raise SystemExit("--build-only needs --save-bundle DIR")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle or build(args, tmp)
        if args.build_only:
            print("wrote %s" % path)
            return
        power_file = os.path.join(tmp, "mode")
        with open(power_file, "w") as f:
            f.write("0\n")
        with Runtime(path, threads=args.threads) as rt:
            spec = rt.bundle.input
            x = np.random.RandomState(0).uniform(spec["range"][0], spec["range"][1], spec["shape"]).astype(
                spec["dtype"])
            variants = rt.variants
            for name in variants:
                rt.set_variant(name)
                warm_up(lambda: rt(x), 20, args.warmup_s, rt.sync)
            switch = measure_switch(rt, variants, args.switches)
            first = first_after_switch(rt, x, variants)
            rows = []
            for name in variants:
                rt.set_variant(name)
                direct = direct_call(rt.backend)
                runtime_call = lambda: rt(x)  # noqa: E731
                direct_fn = lambda: direct(x)  # noqa: E731
                med_rt, med_direct, mean_rt, mean_direct = interleaved(runtime_call, direct_fn, args.blocks,
                                                                       args.block_runs)
                info = rt.variant_info
                rows.append({"variant": name, "width": info.get("width"), "macs": info.get("macs"),
                             "direct_ms": med_direct * 1e3, "runtime_ms": med_rt * 1e3,
                             "overhead_us": (med_rt - med_direct) * 1e6,
                             "overhead_pct": 100.0 * (med_rt / med_direct - 1.0),
                             "overhead_mean_pct": 100.0 * (mean_rt / mean_direct - 1.0),
                             "first_ms": first[name]["first_ms"], "steady_ms": first[name]["steady_ms"]})
                print("%s: direct %.4f ms, runtime %.4f ms (%+.2f %%)" % (
                    name, rows[-1]["direct_ms"], rows[-1]["runtime_ms"], rows[-1]["overhead_pct"]), file=sys.stderr)
            # the power-aware loop: poll a file source before every frame (no switch happens)
            source = detect_source("file:" + power_file)
            monitor = PolicyMonitor(rt, source, Policy.from_bundle(rt))
            monitor.poll()
            narrow = rt.variant

            def polled():
                monitor.poll()
                rt(x)

            med_poll, med_plain, _, _ = interleaved(polled, lambda: rt(x), args.blocks, args.block_runs)
            poll_cost = timed(monitor.poll, 2000)
            policy = {"variant": narrow, "loop_ms": med_poll * 1e3, "plain_ms": med_plain * 1e3,
                      "overhead_pct": 100.0 * (med_poll / med_plain - 1.0),
                      "poll_median_us": float(np.median(poll_cost)) * 1e6, "switches_during": len(monitor.log)}
            env = environment(threads=args.threads, backends=[rt.backend_name])
            backend_name = rt.backend_name
    print(format_table(rows, [("variant", "variant", None), ("width", "width", "{:g}"),
                              ("direct_ms", "direct ms", "{:.4f}"), ("runtime_ms", "runtime ms", "{:.4f}"),
                              ("overhead_us", "overhead us", "{:.2f}"), ("overhead_pct", "overhead %", "{:+.2f}"),
                              ("overhead_mean_pct", "(means) %", "{:+.2f}"), ("steady_ms", "steady ms", "{:.4f}"),
                              ("first_ms", "1st after switch ms", "{:.4f}")]))
    print("\nset_variant: median %.5f ms, p99 %.5f ms, max %.5f ms over %d switches (goal <= 1 ms)"
          % (switch["median_ms"], switch["p99_ms"], switch["max_ms"], switch["n"]))
    print("poll() per frame (file source, no switch): %.2f us per poll; loop %.4f ms vs %.4f ms plain (%+.2f %%) on %s"
          % (policy["poll_median_us"], policy["loop_ms"], policy["plain_ms"], policy["overhead_pct"], policy["variant"]))
    result = {"benchmark": "switch_overhead", "bundle": None if not args.bundle else os.path.abspath(args.bundle),
              "model": None if args.bundle else {"size": args.size, "ngf": args.ngf, "n_blocks": args.n_blocks,
                                                 "target": args.target},
              "backend": backend_name, "threads": args.threads,
              "protocol": {"switches": args.switches, "blocks": args.blocks, "block_runs": args.block_runs,
                           "order": "interleaved ABBA blocks, medians of per-call latencies"},
              "switch": switch, "rows": rows, "policy_loop": policy, "environment": env,
              "loadavg": {"start": load_start, "end": os.getloadavg() if hasattr(os, "getloadavg") else None}}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    if load_start:
        print("load average (1/5/15 min) at start %s, at end %s" % (
            "/".join("%.2f" % v for v in load_start), "/".join("%.2f" % v for v in result["loadavg"]["end"])))
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
