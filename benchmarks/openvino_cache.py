"""Load time of the OpenVINO backend with an empty and with a filled model cache (``CACHE_DIR``).

Each load runs in a fresh child process (a new ``openvino.Core``), alternating cold (an empty cache
folder) and cached (the folder the previous load filled), for every variant of a bundle:

    python benchmarks/openvino_cache.py BUNDLE --rounds 3        # → benchmarks/results/openvino_cache.json
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from edgegan.cli._common import format_table  # noqa: E402
from edgegan.runtime.bundle import load_bundle, write_json_atomic  # noqa: E402
from edgegan.runtime.fps import environment  # noqa: E402

CHILD = """
import sys, time
t0 = time.perf_counter()
from edgegan.runtime.backends import get_backend
b = get_backend("openvino")(sys.argv[1], precision=sys.argv[2])
print(time.perf_counter() - t0)
"""


def load_s(path, precision, cache):
    env = dict(os.environ, EDGEGAN_OPENVINO_CACHE=cache, PYTHONPATH=os.path.dirname(HERE))
    out = subprocess.run([sys.executable, "-c", CHILD, path, precision], env=env, check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=os.path.join(HERE, "results", "openvino_cache.json"))
    args = p.parse_args(argv)
    bundle = load_bundle(args.bundle)
    rows = []
    for v in bundle.variants:
        cold, warm = [], []
        for _ in range(args.rounds):
            cache = tempfile.mkdtemp(prefix="edgegan-ovcache-")
            cold.append(load_s(bundle.artifact_path(v), v["precision"], cache))
            warm.append(load_s(bundle.artifact_path(v), v["precision"], cache))
            shutil.rmtree(cache)
        rows.append({"variant": v["name"], "precision": v["precision"], "cold_s": float(np.median(cold)),
                     "cached_s": float(np.median(warm)), "speedup": float(np.median(cold) / np.median(warm)),
                     "cold_runs": cold, "cached_runs": warm})
    print(format_table(rows, [("variant", "variant", None), ("precision", "precision", None),
                              ("cold_s", "load s (empty cache)", "{:.2f}"), ("cached_s", "load s (cached)", "{:.2f}"),
                              ("speedup", "x", "{:.1f}")]))
    write_json_atomic(args.json, {"benchmark": "openvino_cache", "bundle": bundle.path, "rounds": args.rounds,
                                  "rows": rows, "load_average": os.getloadavg(),
                                  "environment": environment(backends=("openvino",))}, force=True, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
