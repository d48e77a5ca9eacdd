"""`edgegan bench`'s thread default: one intra-op thread against the backend's default, per variant, alternating.

ONNX Runtime's default is one intra-op thread per physical core, and its threads spin while they wait: on a
machine whose cores are busy with other work this can be several times slower than one thread; on an idle
machine with a large model the default is faster. `edgegan bench` therefore decides by measurement (a short
probe of the default variant, ``choose_threads``); this script measures the same comparison at length, for
every variant of a bundle, as ratios within one run (blocks of runs alternate between the two settings), and
records the load average next to the numbers.

    python benchmarks/bench_threads.py                        # the packaged model, built for the cpu target
    python benchmarks/bench_threads.py --bundle edgegan-cpu --rounds 20 --json out.json
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from edgegan.cli._common import format_table
from edgegan.runtime import load_bundle
from edgegan.runtime.backends import get_backend
from edgegan.runtime.fps import environment

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="an existing bundle (default: build the packaged model for --target)")
    p.add_argument("--target", default="cpu")
    p.add_argument("--rounds", type=int, default=12, help="alternating rounds per variant (default 12)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per round and setting (default 50)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "bench_threads.json"))
    return p.parse_args(argv)


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def measure(bundle, variant, rounds, runs):
    """Median ms of each round with one thread and with the backend's default, alternating."""
    from edgegan.cli.bench import sample_inputs

    cls = get_backend(bundle.manifest["backend"])
    x = sample_inputs(bundle)
    settings = {"1": cls(bundle.artifact_path(variant), threads=1, layout=bundle.input["layout"]),
                "default": cls(bundle.artifact_path(variant), threads=None, layout=bundle.input["layout"])}
    medians = dict((k, []) for k in settings)
    try:
        for backend in settings.values():
            for _ in range(20):
                backend.run(x)
        for _ in range(rounds):
            for key, backend in settings.items():
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    backend.run(x)
                    times.append(time.perf_counter() - t0)
                medians[key].append(1e3 * float(np.median(times)))
    finally:
        for backend in settings.values():
            backend.close()
    one, default = float(np.median(medians["1"])), float(np.median(medians["default"]))
    return {"variant": variant["name"], "one_thread_ms": one, "default_ms": default, "default_over_one": default / one,
            "rounds_one_ms": medians["1"], "rounds_default_ms": medians["default"]}


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle
        if path is None:
            from edgegan.targets.build import build_bundle

            path, _ = build_bundle(args.target, out=os.path.join(tmp, "b"), progress=False, quality_images=0)
        bundle = load_bundle(path)
        load_before = _loadavg()
        rows = [measure(bundle, v, args.rounds, args.runs) for v in bundle.variants]
        load_after = _loadavg()
    result = {"bundle": args.bundle or "packaged model, target %s" % args.target,
              "backend": bundle.manifest["backend"], "rounds": args.rounds, "runs": args.runs,
              "loadavg_before": load_before, "loadavg_after": load_after, "results": rows,
              "environment": environment(threads=None, backends=[bundle.manifest["backend"]]),
              "command": "python " + " ".join([os.path.relpath(__file__)] + (argv or sys.argv[1:]))}
    print(format_table(rows, [("variant", "variant", None), ("one_thread_ms", "1 thread ms", "{:.3f}"),
                              ("default_ms", "default ms", "{:.3f}"), ("default_over_one", "default / 1", "{:.2f}")]))
    print("load average before %s, after %s" % (load_before, load_after))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print("wrote %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
