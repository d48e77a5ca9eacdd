"""``edgegan profile``: a bundle's variants × power modes → FPS, power, energy per frame, Pareto plots.

Torch-free: runs on the device (matplotlib only for the PNGs).
"""

import argparse
import os
import sys

from ..errors import EdgeganError, warn
from ._common import emit_json, format_table

EPILOG = """examples:
  edgegan profile edgegan-cpu                              # modes emulated by thread budgets (1, half, all CPUs)
  edgegan profile edgegan-cpu --emulate-threads 1,2 --write-table --target-fps 500
  edgegan profile edgegan-jetson-nano --nvpmodel 0,1       # Jetson: sets each mode (root or sudo), restores it
  edgegan profile edgegan-cpu --mode battery --power-source psutil   # name the mode this machine runs under

modes: --nvpmodel sets real Jetson modes with `nvpmodel -m`; --emulate-threads N,M emulates modes by thread
budgets (intra-op threads, process pinned to that many CPUs), keys t1, t2, ...; --mode NAME labels the mode the
machine runs under now. Default: the current nvpmodel mode on a Jetson, else thread budgets.

power: sampled with --power-source (auto: Jetson INA3221 rails, Intel RAPL, laptop battery) during each timed
window, minus an idle baseline taken per mode (--idle-s). Energy per frame = watts / FPS. Where no meter answers,
power is marked unavailable and FPS is still measured.

writes --out DIR (default profile-BUNDLE): profile.json (everything, with the environment per mode), profile.csv,
fps_vs_width.png, energy_per_frame.png, pareto.png. --write-table stores the FPS table in the bundle's manifest
(the artifacts and their checksums are untouched) for the target-FPS policy.
"""

COLUMNS = [("mode", "mode", None), ("variant", "variant", None), ("fps", "FPS", "{:.1f}"),
           ("median_ms", "median ms", "{:.3f}"), ("p99_ms", "p99 ms", "{:.3f}"), ("cv_pct", "CV %", "{:.1f}"),
           ("switch_ms", "switch ms", "{:.4f}"), ("first_inference_ms", "1st inf ms", "{:.3f}"),
           ("watts", "W", "{:.2f}"), ("active_w", "W > idle", "{:.2f}"), ("energy_mj", "mJ/frame", "{:.3f}"),
           ("quality", "quality", "{:.2f}"), ("pareto_mark", "Pareto", None)]


def _ints(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected integers separated by commas, got %r" % text)
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def register(sub):
    p = sub.add_parser("profile", help="variants x power modes: FPS, power, energy per frame, plots",
                       description="Sweep a bundle's variants across power modes by the FPS protocol, sample power "
                                   "during each timed window minus an idle baseline, and write JSON, CSV and PNG "
                                   "plots (FPS vs width, energy per frame, FPS-quality-power Pareto front).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="a bundle directory written by `edgegan build`")
    p.add_argument("--variant", action="append", metavar="NAME", help="a variant name or width (default: all)")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--emulate-threads", type=_ints, metavar="N,M", help="emulate modes by thread budgets")
    modes.add_argument("--nvpmodel", type=_ints, metavar="ID,ID",
                       help="Jetson: set these nvpmodel modes in turn (needs root or passwordless sudo)")
    modes.add_argument("--mode", metavar="NAME", help="name of the mode this machine runs under now")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads with --nvpmodel/--mode (default: backend's)")
    p.add_argument("--no-pin", action="store_true", help="with --emulate-threads, do not pin the process to N CPUs")
    p.add_argument("--warmup", type=int, default=100, metavar="N", help="warm-up runs, at least (default 100)")
    p.add_argument("--warmup-s", type=float, default=2.0, metavar="S", help="warm-up seconds, at least (default 2)")
    p.add_argument("--runs", type=int, default=100, metavar="N", help="timed runs, at least (default 100)")
    p.add_argument("--power-source", metavar="SPEC", default=None,
                   help="auto (default), jetson, linux, psutil, file:PATH, manual:MODE or none")
    p.add_argument("--idle-s", type=float, default=3.0, metavar="S", help="idle baseline per mode (default 3 s)")
    p.add_argument("--sample-interval", type=float, default=0.1, metavar="S", help="power sampling (default 0.1 s)")
    p.add_argument("--power-window-s", type=float, default=2.0, metavar="S",
                   help="with a power meter, time each variant at least this long (default 2 s)")
    p.add_argument("--backend", metavar="NAME", help="inference backend (default: the bundle's)")
    p.add_argument("--providers", metavar="P,P", help="backend providers/options, e.g. cuda or cuda,fp16,cuda-graphs")
    p.add_argument("--out", metavar="DIR", help="output directory (default profile-BUNDLE)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")
    p.add_argument("--write-table", action="store_true",
                   help="store the measured FPS table in the bundle's manifest (for the target-FPS policy)")
    p.add_argument("--target-fps", type=float, metavar="FPS", help="with --write-table: set the policy's target FPS")
    p.add_argument("--force", action="store_true", help="replace --out and an FPS table already in the bundle")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _check(args):
    if args.runs < 1:
        raise EdgeganError("--runs must be at least 1 (the protocol asks for 100 or more)")
    if args.warmup < 0 or args.warmup_s < 0 or args.idle_s < 0:
        raise EdgeganError("--warmup, --warmup-s and --idle-s cannot be negative")
    if args.sample_interval <= 0 or args.power_window_s < 0:
        raise EdgeganError("--sample-interval must be positive and --power-window-s not negative")
    if args.threads is not None and args.threads < 1:
        raise EdgeganError("--threads must be at least 1")
    if args.target_fps is not None and not args.write_table:
        raise EdgeganError("--target-fps goes with --write-table (it is stored in the bundle's policy)")
    if args.target_fps is not None and not args.target_fps > 0:
        raise EdgeganError("--target-fps must be positive")
    if args.emulate_threads and any(n < 1 for n in args.emulate_threads):
        raise EdgeganError("--emulate-threads budgets must be at least 1")
    if args.emulate_threads:
        from ..profile.sweep import _usable_cpus

        usable = len(_usable_cpus())
        over = [n for n in args.emulate_threads if n > usable]
        if over:
            warn("--emulate-threads %s: this machine lets the process use %d CPU%s, so a budget of %s threads "
                 "oversubscribes them and emulates no real mode (it runs like %d); use budgets of 1..%d"
                 % (",".join(str(n) for n in args.emulate_threads), usable, "" if usable == 1 else "s",
                    ", ".join(str(n) for n in over), usable, usable))


def _print_report(result, out_dir):
    rows = [dict(r, cv_pct=100.0 * r["cv"], pareto_mark="*" if r.get("pareto") else "") for r in result["rows"]]
    p = result["protocol"]
    print("bundle %s (target %s), backend %s, power source %s" % (result["bundle"], result["target"],
                                                                  result["backend"], result["power_source"]))
    print("batch 1, warm-up >= %d runs and >= %g s after each switch, >= %d timed runs%s\n" % (
        p["warmup"], p["warmup_s"], p["runs"],
        ", each timed window >= %g s (power)" % p["power_window_s"] if result["power"]["available"] else ""))
    for mode in result["modes"]:
        desc = mode["label"] if mode["label"] != mode["key"] else mode["how"]
        if mode.get("cpus"):
            desc += ", pinned to CPUs %s" % ",".join(str(c) for c in mode["cpus"])
        elif mode.get("threads") and mode["how"] != "threads":
            desc += ", %d threads" % mode["threads"]
        print("mode %s: %s; idle power %s" % (mode["key"], desc, "%.2f W" % mode["idle_w"]
                                              if mode.get("idle_w") is not None else "unavailable"))
    print()
    print(format_table(rows, COLUMNS))
    if not result["power"]["available"]:
        print("\npower: unavailable (%s)" % "; ".join(result["power"]["notes"][:3] or ["no meter"]))
    print("\nwrote %s: %s" % (out_dir, ", ".join(result.get("files", []))))
    if result.get("plots_note"):
        print(result["plots_note"])
    if result.get("table_written"):
        print("stored the FPS table in %s/manifest.json%s" % (
            result["bundle"], " with target %g FPS" % result["target_fps"] if result.get("target_fps") else ""))


def run(args):
    from ..profile import plan_modes, sweep, write_fps_table, write_outputs
    from ..runtime.bundle import check_writable, load_bundle
    from ..runtime.power import detect_source

    _check(args)
    bundle = load_bundle(args.bundle)
    out_dir = args.out or "profile-%s" % os.path.basename(os.path.abspath(bundle.path))
    if os.path.lexists(out_dir) and not args.force:
        raise EdgeganError("%s already exists; pass --force to replace it, or choose another --out" % out_dir)
    check_writable(out_dir, "--out")
    if args.write_table and bundle.manifest.get("fps_table") and not args.force:
        raise EdgeganError("%s already holds an FPS table; pass --force to replace it" % bundle.path)
    if args.write_table:
        check_writable(os.path.join(bundle.path, "manifest.json"), "--write-table into")
    source = detect_source(args.power_source)
    providers = [s for s in args.providers.split(",") if s] if args.providers else None
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    try:
        modes = plan_modes(args.emulate_threads, args.nvpmodel, args.mode, args.threads, source)
        result = sweep(bundle, modes, args.variant, args.warmup, args.warmup_s, args.runs, source, args.idle_s,
                       args.sample_interval, args.power_window_s, args.backend, providers,
                       pin_cpus=not args.no_pin, progress=not args.quiet, say=say)
    finally:
        source.close()
    if args.write_table:
        write_fps_table(bundle.path, result, force=args.force, target_fps=args.target_fps)
        result["table_written"] = True
        result["target_fps"] = args.target_fps
    write_outputs(result, out_dir, force=args.force, plots=not args.no_plots)
    if args.json:
        emit_json(result)
    else:
        _print_report(result, out_dir)
    return 0
