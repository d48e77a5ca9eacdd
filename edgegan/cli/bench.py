"""``edgegan bench``: FPS and latency of a bundle's variants by the protocol of ARCHITECTURE.md.

Torch-free: runs on the device with numpy and the bundle's backend.
"""

import argparse
import sys

from ..errors import EdgeganError
from ._common import emit_json, format_table

EPILOG = """examples:
  edgegan bench edgegan-jetson-nano                       # every variant, default protocol
  edgegan bench edgegan-cpu --variant w1 --variant 0.25   # some variants (by name or width)
  edgegan bench edgegan-cpu --runs 1000 --threads 1
  edgegan bench edgegan-cpu --json > bench.json           # machine-readable, with the environment
  edgegan bench edgegan-cpu --compare edgegan-cpu-int8 edgegan-android   # one table across targets/precisions

protocol: batch 1; warm-up of at least --warmup runs and --warmup-s seconds (discarded) before each
variant; then --runs timed runs, each synchronised. FPS = frames / wall time of the timed window.
The switch cost is the set_variant call alone; the first inference after it is reported apart.
"""

COLUMNS = [("variant", "variant", None), ("width", "width", "{:g}"), ("mmacs", "MMACs", "{:.2f}"),
           ("fps", "FPS", "{:.1f}"), ("mean_ms", "mean ms", "{:.3f}"), ("median_ms", "median ms", "{:.3f}"),
           ("p90_ms", "p90 ms", "{:.3f}"), ("p99_ms", "p99 ms", "{:.3f}"), ("cv_pct", "CV %", "{:.1f}"),
           ("parity_psnr_db", "parity dB", "{:.1f}")]


def register(sub):
    p = sub.add_parser("bench", help="FPS and latency percentiles of a bundle's variants",
                       description="Measure each variant of a bundle (FPS, mean/median/p90/p99 latency, CV) and the "
                                   "cost of switching variants, and record the environment.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="a bundle directory written by `edgegan build`")
    p.add_argument("--variant", action="append", metavar="NAME",
                   help="a variant name or width to measure; repeat for several (default: all)")
    p.add_argument("--warmup", type=int, default=100, metavar="N", help="warm-up runs, at least (default 100)")
    p.add_argument("--warmup-s", type=float, default=2.0, metavar="S", help="warm-up seconds, at least (default 2)")
    p.add_argument("--runs", type=int, default=100, metavar="N", help="timed runs per variant (default 100)")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: the backend's)")
    p.add_argument("--backend", metavar="NAME", help="inference backend (default: the bundle's)")
    p.add_argument("--compare", nargs="+", metavar="BUNDLE",
                   help="more bundles to measure side by side with BUNDLE: one table of target/precision x size, "
                        "latency, FPS and PSNR vs fp32 (default variant of each unless --variant is given)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def _check_protocol(args):
    if args.runs < 1:
        raise EdgeganError("--runs must be at least 1 (the protocol asks for 100 or more)")
    if args.warmup < 0 or args.warmup_s < 0:
        raise EdgeganError("--warmup and --warmup-s cannot be negative")
    if args.threads is not None and args.threads < 1:
        raise EdgeganError("--threads must be at least 1")


def _progress(items, desc):
    """``items`` with a tqdm bar on stderr when tqdm is installed and stderr is a terminal."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="variant", file=sys.stderr, disable=None, leave=False)


def sample_input(spec, seed=0):
    """A fixed random model input following a manifest input spec."""
    import numpy as np

    low, high = spec["range"]
    return np.random.RandomState(seed).uniform(low, high, spec["shape"]).astype(spec["dtype"])


def bench(runtime, variants, warmup, warmup_s, runs):
    """Measure ``variants`` (names) of ``runtime``; returns (rows, switches)."""
    from ..runtime.fps import measure, measure_switch

    x = sample_input(runtime.bundle.input)
    rows = []
    for name in _progress(variants, "bench"):
        runtime.set_variant(name)
        info = runtime.variant_info
        row = {"variant": name, "width": info.get("width"), "macs": info.get("macs"), "params": info.get("params"),
               "precision": info.get("precision"), "parity_psnr_db": (info.get("parity") or {}).get("psnr_db")}
        row.update(measure(lambda: runtime(x), warmup=warmup, warmup_s=warmup_s, runs=runs, sync=runtime.sync))
        rows.append(row)
    switches = []
    if len(variants) > 1:
        for a, b in ((variants[0], variants[-1]), (variants[-1], variants[0])):
            switches.append(measure_switch(runtime, a, b, x))
    return rows, switches


def _print_report(result):
    rows = [dict(r, mmacs=None if r["macs"] is None else r["macs"] / 1e6, cv_pct=100.0 * r["cv"])
            for r in result["results"]]
    p = result["protocol"]
    print("bundle %s (target %s), backend %s%s, threads %s" % (
        result["bundle"], result["target"], result["backend"],
        " [%s]" % ", ".join(result["providers"]) if result["providers"] else "",
        result["threads"] or "default"))
    print("batch 1, warm-up >= %d runs and >= %g s per variant, %d timed runs\n"
          % (p["warmup"], p["warmup_s"], p["runs"]))
    print(format_table(rows, COLUMNS))
    for s in result["switch"]:
        print("switch %s -> %s: %.4f ms (max %.4f ms); first inference after it %.3f ms (max %.3f ms)"
              % (s["from"], s["to"], s["switch_ms"], s["switch_max_ms"], s["first_inference_ms"],
                 s["first_inference_max_ms"]))
    env = result["environment"]
    mode = env["power_mode"]
    print("\nenvironment: %s, %s, Python %s, %s CPUs (online %s, usable %s), %s%s" % (
        env["device_model"] or env["hostname"], env["platform"], env["python"], env["cpu_count"],
        env["cpus_online"] or "?", env["cpus_usable"],
        ", ".join("%s %s" % (k, v or "missing") for k, v in sorted(env["versions"].items())),
        ", power mode %s (%s)" % (mode["name"], mode["id"]) if mode else ""))


COMPARE_COLUMNS = [("target", "target", None), ("precision", "precision", None), ("format", "format", None),
                   ("variant", "variant", None), ("size_mb", "size MB", "{:.2f}"), ("median_ms", "median ms", "{:.3f}"),
                   ("p90_ms", "p90 ms", "{:.3f}"), ("fps", "FPS", "{:.1f}"), ("parity_psnr_db", "PSNR vs fp32 dB", "{:.1f}"),
                   ("note", "note", None)]


def compare(paths, variant_names, warmup, warmup_s, runs, threads):
    """One row per bundle × variant: artifact size, latency, FPS and PSNR against the fp32 PyTorch network.

    A bundle whose backend cannot run here (e.g. Core ML off macOS) gets a row saying why.
    """
    import os

    from ..runtime import Runtime, load_bundle
    from ..runtime.fps import measure

    rows = []
    for path in _progress(paths, "compare"):
        bundle = load_bundle(path)
        names = [bundle.variant(n)["name"] for n in (variant_names or [None])]
        base = {"bundle": bundle.path, "target": bundle.manifest.get("target")}
        try:
            runtime = Runtime(bundle, threads=threads)
        except EdgeganError as e:
            for name in names:
                v = bundle.variant(name)
                rows.append(dict(base, variant=name, precision=v.get("precision"), format=v.get("format"),
                                 size_mb=os.path.getsize(bundle.artifact_path(v)) / 1e6,
                                 parity_psnr_db=(v.get("parity") or {}).get("psnr_db"),
                                 note="not run: %s" % str(e).split(";")[0]))
            continue
        with runtime:
            x = sample_input(bundle.input)
            for name in names:
                runtime.set_variant(name)
                v = runtime.variant_info
                row = dict(base, variant=name, precision=v.get("precision"), format=v.get("format"),
                           size_mb=os.path.getsize(bundle.artifact_path(v)) / 1e6,
                           parity_psnr_db=(v.get("parity") or {}).get("psnr_db"), note=runtime.backend_name)
                row.update(measure(lambda: runtime(x), warmup=warmup, warmup_s=warmup_s, runs=runs,
                                   sync=runtime.sync))
                rows.append(row)
    return rows


def run(args):
    from ..runtime import Runtime
    from ..runtime.fps import environment

    _check_protocol(args)
    if args.compare:
        rows = compare([args.bundle] + args.compare, args.variant, args.warmup, args.warmup_s, args.runs,
                       args.threads)
        result = {"protocol": {"batch": 1, "warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs},
                  "threads": args.threads, "results": rows, "environment": environment(threads=args.threads)}
        if args.json:
            emit_json(result)
        else:
            print(format_table(rows, COMPARE_COLUMNS))
        return 0
    with Runtime(args.bundle, backend=args.backend, threads=args.threads) as rt:
        variants = []
        for name in args.variant or rt.variants:
            resolved = rt.bundle.variant(name)["name"]
            if resolved not in variants:
                variants.append(resolved)
        rows, switches = bench(rt, variants, args.warmup, args.warmup_s, args.runs)
        result = {"bundle": rt.bundle.path, "target": rt.manifest.get("target"), "backend": rt.backend_name,
                  "providers": getattr(rt.backend, "providers", None), "threads": args.threads,
                  "protocol": {"batch": 1, "warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs},
                  "results": rows, "switch": switches,
                  "environment": environment(threads=args.threads, backends=[rt.backend_name])}
    if args.json:
        emit_json(result)
    else:
        _print_report(result)
    return 0
