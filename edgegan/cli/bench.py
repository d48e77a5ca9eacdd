"""``edgegan bench``: FPS and latency of a bundle's variants by the protocol of ARCHITECTURE.md.

Torch-free: runs on the device with numpy and the bundle's backend.
"""

import argparse
import json
import sys

from ..errors import EdgeganError
from ._common import emit_json, format_table

EPILOG = """examples:
  edgegan bench edgegan-jetson-nano                       # every variant, default protocol
  edgegan bench edgegan-cpu --variant w1 --variant 0.25   # some variants (by name or width)
  edgegan bench edgegan-cpu --runs 1000 --threads 1
  edgegan bench edgegan-cpu --json > bench.json           # machine-readable, with the environment
  edgegan bench edgegan-cpu --compare edgegan-cpu-int8 edgegan-android   # one table across targets/precisions
  edgegan bench edgegan-cpu --policy --power-source file:/tmp/mode --duration 20   # live power-aware switching

  # a latency table for `edgegan search --budget-ms`: build the candidate configs, time them on the device
  edgegan build --target jetson-nano --checkpoint runs/supernet.pt --configs front.json --out cand-nano
  edgegan bench cand-nano --latency-table nano-latency.json      # on the Nano
  edgegan search --checkpoint runs/supernet.pt --budget-ms 30 --latency-table nano-latency.json

A noise → image bundle is timed on N(0, 1) noise (and a class label), one image per run.

protocol: batch 1; warm-up of at least --warmup runs and --warmup-s seconds (discarded) before each
variant; then --runs timed runs, each synchronised. FPS = frames / wall time of the timed window.
The switch cost is the set_variant call alone; the first inference after it is reported apart.
"""

COLUMNS = [("variant", "variant", None), ("width", "width", "{:g}"), ("mmacs", "MMACs", "{:.2f}"),
           ("ran_as", "ran as", None), ("fps", "FPS", "{:.1f}"), ("mean_ms", "mean ms", "{:.3f}"),
           ("median_ms", "median ms", "{:.3f}"), ("p90_ms", "p90 ms", "{:.3f}"), ("p99_ms", "p99 ms", "{:.3f}"),
           ("cv_pct", "CV %", "{:.1f}"), ("stability", "", None), ("parity_psnr_db", "parity dB", "{:.1f}"),
           ("parity_as", "parity measured as", None)]
#: a coefficient of variation of the per-run latency above this marks the measurement unstable
UNSTABLE_CV = 0.20
#: backends whose intra-op thread count ``bench`` chooses by measurement when --threads is not given
THREADED_BACKENDS = ("onnxruntime", "tflite", "torch")


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
    p.add_argument("--sustained", type=float, metavar="S",
                   help="sustained mode: run each variant S seconds back to back (instead of --runs) and compare the "
                        "FPS of the first and last --window-s seconds; a drop below 90%% is flagged as throttling")
    p.add_argument("--window-s", type=float, default=60.0, metavar="S",
                   help="sustained mode: first/last window (default 60 s)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="intra-op threads (default: measured: one thread or the backend's default, whichever is "
                        "faster in a short probe of the default variant; the choice is printed)")
    p.add_argument("--backend", metavar="NAME", help="inference backend (default: the bundle's)")
    p.add_argument("--compare", nargs="+", metavar="BUNDLE",
                   help="more bundles to measure side by side with BUNDLE: one table of target/precision x size, "
                        "latency, FPS and PSNR vs fp32 (default variant of each unless --variant is given)")
    p.add_argument("--providers", metavar="P,P",
                   help="backend providers/options, e.g. cuda (onnxruntime) or cuda,fp16,cuda-graphs (torch)")
    live = p.add_argument_group("power-aware run (--policy)")
    live.add_argument("--policy", action="store_true",
                      help="stream frames for --duration seconds while the bundle's policy switches variants live "
                           "from --power-source; prints every switch with its cost")
    live.add_argument("--power-source", metavar="SPEC",
                      help="auto (default), jetson, linux, psutil, file:PATH (a script rewrites it), manual:MODE")
    live.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds of frames (default 10)")
    live.add_argument("--interval", type=float, default=0.5, metavar="S",
                      help="re-evaluate the policy every S seconds in the background (default 0.5)")
    live.add_argument("--per-frame", action="store_true", help="re-evaluate the policy before every frame instead")
    live.add_argument("--target-fps", type=float, metavar="FPS",
                      help="override the policy's target FPS (needs the FPS table of `edgegan profile --write-table`)")
    p.add_argument("--latency-table", metavar="OUT.json",
                   help="also write the mean ms of every variant as a latency table for `edgegan search --budget-ms` "
                        "(GAN Compression's protocol: batch 1, warm-up, mean of the timed runs)")
    p.add_argument("--force", action="store_true", help="replace an existing --latency-table file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def _check_protocol(args):
    if args.runs < 1:
        raise EdgeganError("--runs must be at least 1 (the protocol asks for 100 or more)")
    if args.warmup < 0 or args.warmup_s < 0:
        raise EdgeganError("--warmup and --warmup-s cannot be negative")
    if args.threads is not None and args.threads < 1:
        raise EdgeganError("--threads must be at least 1")
    if args.sustained is not None and not (args.sustained > 0 and args.window_s > 0):
        raise EdgeganError("--sustained and --window-s must be positive")


def _progress(items, desc):
    """``items`` with a tqdm bar on stderr when tqdm is installed and stderr is a terminal (each item takes
    seconds: warm-up, then the timed runs), the variant being measured in its postfix."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    bar = tqdm(items, desc=desc, unit="variant", file=sys.stderr, disable=None, leave=False)
    return _named(bar) if not bar.disable else items


def _named(bar):
    for item in bar:
        bar.set_postfix_str(str(getattr(item, "path", item)), refresh=True)
        yield item


def ran_as(variant, backend_name):
    """What runs here for a manifest variant: its precision as measured (a TensorRT fp16 variant runs as fp32
    ONNX until its engine is built) and the backend."""
    return "%s, %s" % (_ran_precision(variant), backend_name)


def parity_measured_as(variant):
    """The precision and backend the manifest's parity figure was measured in."""
    parity = variant.get("parity") or {}
    if parity.get("psnr_db") is None:
        return "not measured" + (": " + parity["why"].split(";")[0] if parity.get("why") else "")
    return "%s, %s" % (parity.get("measured_precision") or variant.get("precision"),
                       (parity.get("backend") or "?").split(" (")[0])


def choose_threads(bundle, backend_name, providers=None, rounds=4, runs=15, round_s=0.4):
    """``(threads, how)``: the intra-op thread count for a CPU backend, by measurement.

    The default variant runs under the backend's default thread count and under one thread, alternately
    (``rounds`` rounds of up to ``runs`` runs or ``round_s`` seconds each, after a warm-up); the faster median
    wins, the default unless one thread is at least 10 % faster. On a loaded machine the default (one thread
    per core, spinning) can be several times slower than one thread. ``threads`` is ``None`` for the
    backend's default; ``how`` says what was measured."""
    import time

    import numpy as np

    from ..runtime.backends import get_backend

    if backend_name not in THREADED_BACKENDS or providers:
        return None, "the backend's default (%s schedules its own threads)" % backend_name
    cls = get_backend(backend_name)
    variant = bundle.default_variant
    x = sample_inputs(bundle)
    candidates = {"default": cls(bundle.artifact_path(variant), threads=None, layout=bundle.input["layout"]),
                  "1": cls(bundle.artifact_path(variant), threads=1, layout=bundle.input["layout"])}
    medians = dict((k, []) for k in candidates)
    try:
        for backend in candidates.values():
            for _ in range(5):
                backend.run(x)
        for _ in range(rounds):
            for key, backend in candidates.items():
                times, start = [], time.perf_counter()
                while len(times) < runs and time.perf_counter() - start < round_s:
                    t0 = time.perf_counter()
                    backend.run(x)
                    times.append(time.perf_counter() - t0)
                medians[key].append(float(np.median(times)))
    finally:
        for backend in candidates.values():
            backend.close()
    default_ms = 1e3 * float(np.median(medians["default"]))
    one_ms = 1e3 * float(np.median(medians["1"]))
    probe = "probe of %s: median %.3f ms with 1 thread, %.3f ms with %s's default" % (
        variant["name"], one_ms, default_ms, backend_name)
    if one_ms < 0.9 * default_ms:
        return 1, "1 (chosen: %s; pass --threads N to set it)" % probe
    return None, "%s's default (chosen: %s; pass --threads N to set it)" % (backend_name, probe)


def flag_unstable(rows):
    """Mark rows whose latency CV exceeds ``UNSTABLE_CV`` (``row["unstable"]``) and warn once about them."""
    from ..errors import warn

    unstable = []
    for row in rows:
        row["unstable"] = bool(row.get("cv") is not None and row["cv"] > UNSTABLE_CV)
        if row["unstable"]:
            unstable.append("%s %.0f %%" % (row["variant"], 100.0 * row["cv"]))
    if unstable:
        warn("unstable measurement: latency CV %s (above %.0f %%): the machine is busy, throttling or switching "
             "clocks; close other work, raise --runs / --warmup-s, or compare ratios within one run"
             % (", ".join(unstable), 100.0 * UNSTABLE_CV))
    return unstable


def sample_input(spec, seed=0):
    """A fixed random model input following a manifest (image) input spec."""
    import numpy as np

    low, high = spec["range"]
    return np.random.RandomState(seed).uniform(low, high, spec["shape"]).astype(spec["dtype"])


def sample_inputs(bundle, seed=0):
    """A fixed random input for every timed run of ``bundle``: an array uniform in the input's range, or for
    a noise → image bundle N(0, 1) noise (and a class label) as a tuple (``edgegan.runtime.noise``)."""
    from ..runtime.noise import sample_model_input

    return sample_model_input(bundle.inputs, seed)


def _probe():
    from ..runtime.fps import _clocks_mhz, temperatures

    return {"temperatures_c": temperatures(), "clocks_mhz": _clocks_mhz()}


def bench(runtime, variants, warmup, warmup_s, runs, sustained_s=None, window_s=60.0):
    """Measure ``variants`` (names) of ``runtime``; returns (rows, switches).

    With ``sustained_s``, each variant runs that long back to back (``measure_sustained``)."""
    from ..runtime.bundle import macs_convention
    from ..runtime.fps import measure, measure_sustained, measure_switch

    x = sample_inputs(runtime.bundle)
    rows = []
    for name in _progress(variants, "bench"):
        runtime.set_variant(name)
        info = runtime.variant_info
        row = {"variant": name, "width": info.get("width"), "macs": info.get("macs"),
               "macs_convention": macs_convention(info), "params": info.get("params"),
               "precision": info.get("precision"), "ran_as": ran_as(info, runtime.backend_name),
               "parity_psnr_db": (info.get("parity") or {}).get("psnr_db"), "parity_as": parity_measured_as(info)}
        if sustained_s:
            row.update(measure_sustained(lambda: runtime(x), duration_s=sustained_s, window_s=window_s, warmup=warmup,
                                         warmup_s=warmup_s, sync=runtime.sync, probe=_probe))
            rows.append(row)
            continue
        timer = getattr(runtime.backend, "event_timer", lambda: None)()  # CUDA events on a GPU backend
        row.update(measure(lambda: runtime(x), warmup=warmup, warmup_s=warmup_s, runs=runs, sync=runtime.sync,
                           timer=timer))
        rows.append(row)
    switches = []
    if len(variants) > 1:
        for a, b in ((variants[0], variants[-1]), (variants[-1], variants[0])):
            switches.append(measure_switch(runtime, a, b, x))
    return rows, switches


def latency_table(runtime, rows, result):
    """The ``edgegan.train.search.LatencyTable`` JSON of measured ``rows``: one entry per variant, by
    name and (for searched configs) by per-slot channels, its mean ms under the bench protocol."""
    configs = []
    for row in rows:
        info = runtime.bundle.variant(row["variant"])
        entry = {"name": row["variant"], "ms": row["mean_ms"], "median_ms": row["median_ms"], "macs": row["macs"],
                 "macs_convention": row["macs_convention"]}
        if info.get("channels"):
            entry["channels"] = dict(info["channels"])
        if info.get("width") is not None:
            entry["width"] = info["width"]
        configs.append(entry)
    env = result["environment"]
    return {"unit": "ms", "configs": configs, "target": result["target"], "backend": result["backend"],
            "threads": result["threads"], "protocol": result["protocol"],
            "device": env.get("device_model") or env.get("hostname"), "power_mode": env.get("power_mode"),
            "source_checkpoint_sha256": (runtime.manifest.get("source") or {}).get("checkpoint_sha256")}


def write_latency_table(path, runtime, rows, result, force=False):
    from ..runtime.bundle import write_json_atomic

    table = latency_table(runtime, rows, result)
    write_json_atomic(path, table, force=force, indent=2)
    result["latency_table"] = path
    print("wrote latency table %s (%d variants)" % (path, len(table["configs"])), file=sys.stderr)


def _print_report(result):
    rows = [dict(r, mmacs=None if r["macs"] is None else r["macs"] / 1e6, cv_pct=100.0 * r["cv"],
                 stability="UNSTABLE" if r.get("unstable") else "") for r in result["results"]]
    p = result["protocol"]
    print("bundle %s (target %s), backend %s%s, threads %s" % (
        result["bundle"], result["target"], result["backend"],
        " [%s]" % ", ".join(result["providers"]) if result["providers"] else "",
        result.get("threads_choice") or result["threads"] or "default"))
    print("batch 1, warm-up >= %d runs and >= %g s per variant, %d timed runs\n"
          % (p["warmup"], p["warmup_s"], p["runs"]))
    print(format_table(rows, COLUMNS))
    for r in result["results"]:
        t = r.get("throttling")
        if t:
            if t.get("clock_ratio") is not None or t.get("temp_rise_c") is not None:
                seen = "clocks x%s, hottest zone %s" % (
                    "-" if t.get("clock_ratio") is None else "%.3f" % t["clock_ratio"],
                    "-" if t.get("temp_rise_c") is None else "%+.1f C" % t["temp_rise_c"])
            else:
                seen = "no clock or temperature readings here, so contention cannot be told apart"
            print("%s sustained %g s: first %g s %.1f FPS, last %g s %.1f FPS (x%.3f): %s (%s)" % (
                r["variant"], r["duration_s"], r["window_s"], t["first_fps"], r["window_s"], t["last_fps"],
                t["ratio"], "FPS DROP: throttling?" if t["throttled"] else "no throttling", seen))
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


def _ran_precision(variant):
    """The precision of what runs here: a TensorRT bundle's fp16 variant runs as fp32 ONNX until its engine exists."""
    return (variant.get("parity") or {}).get("measured_precision") or variant.get("precision")


def compare(paths, variant_names, warmup, warmup_s, runs, threads):
    """One row per bundle × variant: artifact size, latency, FPS and PSNR against the fp32 PyTorch network.

    A bundle whose backend cannot run here (e.g. Core ML off macOS) gets a row saying why.
    """
    import os

    from ..runtime import Runtime, load_bundle
    from ..runtime.fps import measure

    rows = []
    bundles = [load_bundle(path) for path in paths]  # every bundle checked before any measurement
    for bundle in bundles:
        [bundle.variant(n) for n in (variant_names or [None])]
    for bundle in _progress(bundles, "compare"):
        names = [bundle.variant(n)["name"] for n in (variant_names or [None])]
        base = {"bundle": bundle.path, "target": bundle.manifest.get("target")}
        try:
            runtime = Runtime(bundle, threads=threads)
        except EdgeganError as e:
            for name in names:
                v = bundle.variant(name)
                rows.append(dict(base, variant=name, precision=_ran_precision(v), format=v.get("format"),
                                 size_mb=os.path.getsize(bundle.artifact_path(v)) / 1e6,
                                 parity_psnr_db=(v.get("parity") or {}).get("psnr_db"),
                                 note="not run: %s" % str(e).split(";")[0]))
            continue
        with runtime:
            x = sample_inputs(bundle)
            for name in names:
                runtime.set_variant(name)
                v = runtime.variant_info
                row = dict(base, variant=name, precision=_ran_precision(v), format=v.get("format"),
                           size_mb=os.path.getsize(bundle.artifact_path(v)) / 1e6,
                           parity_psnr_db=(v.get("parity") or {}).get("psnr_db"), note=runtime.backend_name)
                row.update(measure(lambda: runtime(x), warmup=warmup, warmup_s=warmup_s, runs=runs,
                                   sync=runtime.sync))
                rows.append(row)
    return rows


SWITCH_COLUMNS = [("t_s", "t s", "{:.2f}"), ("frame", "frame", None), ("from", "from", None), ("to", "to", None),
                  ("switch_ms", "switch ms", "{:.4f}"), ("first_frame_ms", "1st frame ms", "{:.3f}"),
                  ("why", "why", None)]


def _note_missing_power_file(spec):
    """Say once on stderr when ``--power-source file:PATH`` names a file that does not exist (yet): the policy
    keeps its default until a script writes it."""
    import os

    from ..errors import warn

    kind, _, path = (spec or "").partition(":")
    if kind.strip().lower() == "file" and path and not os.path.exists(path):
        warn("power file %s does not exist (yet): the policy keeps its default variant until a script writes the "
             "file (e.g. echo 1 > %s)" % (path, path))


def live(args, providers):
    """``--policy``: frames through the runtime while a ``PolicyMonitor`` switches variants from a power source."""
    import time

    from ..runtime import Runtime
    from ..runtime.fps import environment, warm_up
    from ..runtime.policy import Policy, PolicyMonitor, run_live
    from ..runtime.power import detect_source

    if args.duration <= 0 or args.interval <= 0:
        raise EdgeganError("--duration and --interval must be positive")
    source = detect_source(args.power_source)
    _note_missing_power_file(args.power_source)
    try:
        with Runtime(args.bundle, backend=args.backend, threads=args.threads, providers=providers) as rt:
            policy = Policy.from_bundle(rt, target_fps=args.target_fps)
            monitor = PolicyMonitor(rt, source, policy, interval_s=args.interval)
            x = sample_inputs(rt.bundle)
            for name in rt.variants:  # every variant warm before the stream: switches cost a dict lookup
                rt.set_variant(name)
                warm_up(lambda: rt(x), args.warmup, args.warmup_s, rt.sync)
            start_time = time.time()
            stream = run_live(rt, monitor, x, duration_s=args.duration, per_frame=args.per_frame)
            result = {"bundle": rt.bundle.path, "target": rt.manifest.get("target"), "backend": rt.backend_name,
                      "threads": args.threads, "power_source": source.name, "policy": policy.to_dict(),
                      "fps_table": bool(policy.fps_table), "per_frame": args.per_frame, "interval_s": args.interval,
                      "last_state": monitor.last_state.to_dict() if monitor.last_state else None,
                      "environment": environment(threads=args.threads, backends=[rt.backend_name],
                                                 power_source=source)}
            result.update(stream)
            for entry in result["switches"]:
                entry["t_s"] = entry["time"] - start_time
    finally:
        source.close()
    if args.json:
        emit_json(result)
        return 0
    print("bundle %s, backend %s, power source %s, policy %s%s" % (
        result["bundle"], result["backend"], result["power_source"], json.dumps(result["policy"]),
        " (+ FPS table)" if result["fps_table"] else ""))
    print("%d frames in %.2f s: %.1f FPS; polled %s %d times%s\n" % (
        result["frames"], result["wall_s"], result["fps"] or 0.0,
        "before every frame" if args.per_frame else "every %g s" % args.interval, result["polls"],
        ", %d failed reads" % result["poll_errors"] if result["poll_errors"] else ""))
    rows = [dict(v, variant=k) for k, v in sorted(result["variants"].items())]
    print(format_table(rows, [("variant", "variant", None), ("frames", "frames", None),
                              ("fps", "FPS while current", "{:.1f}")]))
    if result["switches"]:
        print("\n%d switch%s:" % (len(result["switches"]), "" if len(result["switches"]) == 1 else "es"))
        print(format_table(result["switches"], SWITCH_COLUMNS))
        costs = sorted(e["switch_ms"] for e in result["switches"])
        print("switch cost: median %.4f ms, max %.4f ms" % (costs[len(costs) // 2], costs[-1]))
    else:
        print("\nno switch (the power state kept the policy's choice: %s)" % (
            result["last_state"] and monitor.last_reason))
    return 0


def run(args):
    from ..runtime import Runtime
    from ..runtime.fps import environment

    _check_protocol(args)
    if args.latency_table:
        from ._common import check_output_path

        if args.policy or args.compare or args.sustained:
            raise EdgeganError("--latency-table times the variants of one bundle; leave out --policy, --compare "
                               "and --sustained")
        check_output_path(args.latency_table, args.force)
    providers = [p for p in args.providers.split(",") if p] if args.providers else None
    if args.policy:
        return live(args, providers)
    if args.compare:
        rows = compare([args.bundle] + args.compare, args.variant, args.warmup, args.warmup_s, args.runs,
                       args.threads)
        flag_unstable([r for r in rows if "cv" in r])
        result = {"protocol": {"batch": 1, "warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs},
                  "threads": args.threads, "results": rows, "environment": environment(threads=args.threads)}
        if args.json:
            emit_json(result)
        else:
            print(format_table(rows, COMPARE_COLUMNS))
        return 0
    from ..runtime import load_bundle
    from ..runtime.backends import get_backend
    from ._common import status

    bundle = load_bundle(args.bundle)
    for name in args.variant or []:
        bundle.variant(name)  # an unknown variant is refused before any measurement
    get_backend(args.backend or bundle.manifest["backend"])  # and an unknown or missing backend
    threads, threads_choice = args.threads, "%s (--threads)" % args.threads if args.threads else None
    if threads is None:
        status("bench: choosing the thread count (a short probe of 1 thread vs the backend's default)...")
        threads, threads_choice = choose_threads(bundle, args.backend or bundle.manifest["backend"], providers)
    with Runtime(bundle, backend=args.backend, threads=threads, providers=providers) as rt:
        variants = []
        for name in args.variant or rt.variants:
            resolved = rt.bundle.variant(name)["name"]
            if resolved not in variants:
                variants.append(resolved)
        rows, switches = bench(rt, variants, args.warmup, args.warmup_s, args.runs, args.sustained, args.window_s)
        flag_unstable(rows)
        result = {"bundle": rt.bundle.path, "target": rt.manifest.get("target"), "backend": rt.backend_name,
                  "providers": getattr(rt.backend, "providers", None), "threads": threads,
                  "threads_choice": threads_choice,
                  "protocol": {"batch": 1, "warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs},
                  "results": rows, "switch": switches,
                  "environment": environment(threads=threads, backends=[rt.backend_name])}
        if args.sustained:
            result["protocol"].update({"sustained_s": args.sustained, "window_s": args.window_s})
        if args.latency_table:
            write_latency_table(args.latency_table, rt, rows, result, force=args.force)
    if args.json:
        emit_json(result)
    else:
        _print_report(result)
    return 0
