"""Search under a latency budget vs a MAC budget: a measured CPU latency table on a trained supernet.

A once-for-all mobile supernet (GAN Compression, distilled from the packaged Fashion-MNIST shoes 32²
teacher; trained once and cached) is searched over a space small enough to enumerate. Every
candidate's latency is measured on this CPU with ONNX Runtime (``measure_latency_table(...,
engine="onnxruntime")``: each sub-network exported with BatchNorm folded as ``edgegan build`` does,
batch 1, warm-up, then the mean of timed runs, 1 thread; round-robin rounds, median of the round
means). Then two searches per budget case, both exhaustive (each winner is the true best of its
budget) and both scoring candidates by ``psnr_evaluator`` on the same held-out pairs:

* (a) MAC-budgeted: ``search(..., budget_macs=B_macs)``;
* (b) latency-budgeted: ``search(..., budget_ms=B_ms, latency_table=table)``.

Cases: the reference (``--reference-width``: the teacher at w0.5, B_macs = its MACs and B_ms = its
latency measured here by the same protocol: one deployment target stated both ways), then each
``--budget-fractions`` MAC budget with B_ms = (1 − margin) × the measured latency of (a)'s winner
for each ``--margins`` value. The distinct winners and the reference are re-measured afterwards
(more rounds, interleaved) and scored on other held-out pairs. Also printed: the Spearman and
Kendall rank correlations of MACs vs measured ms over the whole table, each varying slot's effect
on MACs and on ms (mean over the space of its max choice − its min choice), and a sweep of the MAC
Pareto front: for each config on it, what the latency search finds at that config's measured ms.

    python benchmarks/search_latency_vs_macs.py                  # ≈ 3.5 min on 1 thread (+1 min to train once)
    python benchmarks/search_latency_vs_macs.py --supernet runs/supernet.pt --budget-fractions 0.5
    python benchmarks/search_latency_vs_macs.py --quick          # < 1 min smoke (tiny space and protocol)

The supernet is trained by ``train_supernet`` (``--steps``, recipe defaults) and kept in ``--cache``
unless ``--supernet`` names a checkpoint (``edgegan train supernet --out``). Writes
benchmarks/results/search_latency_vs_macs.json (the latency table included).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from scipy import stats
from torch.utils.data import DataLoader, Subset

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.cli._common import format_table
from edgegan.runtime.bundle import write_json_atomic
from edgegan.runtime.fps import environment
from edgegan.data import load_pair
from edgegan.subnet import cost
from edgegan.train.search import LatencyTable, SearchSpace, measure_latency_table, psnr_evaluator, search

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
T0 = time.perf_counter()

# per-slot choices of the enumerated space (2·2·3·2·2·2·2 = 192 configs); blocks 1–4 fixed at 32
DEFAULT_SPACE = ("stem=8,16 down1=16,32 stream=24,40,64 block0=16,64 block1=32 block2=32 block3=32 block4=32 "
                 "block5=16,64 up1=16,32 up2=8,16")
QUICK_SPACE = ("stem=8 down1=16,32 stream=24,64 block0=32 block1=32 block2=32 block3=32 block4=32 block5=32 "
               "up1=16,32 up2=8,16")
SHORT = {"stem": "st", "down1": "d1", "stream": "s", "up1": "u1", "up2": "u2"}


def say(msg):
    print("[%5.0f s] %s" % (time.perf_counter() - T0, msg), file=sys.stderr, flush=True)


def parse_space(text):
    """``slot=c,c,... slot=c ...`` → slot → list of channel counts."""
    out = {}
    for item in text.split():
        slot, _, values = item.partition("=")
        out[slot] = [int(v) for v in values.split(",") if v]
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="teacher of the supernet (default: the packaged fmnist_shoes_32 model)")
    p.add_argument("--supernet", metavar="CKPT.pt", help="a trained supernet checkpoint (default: train one, cached)")
    p.add_argument("--steps", type=int, default=600, help="supernet training steps when training one (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=os.path.join(ROOT, "runs", ".bench_cache", "search_latency_vs_macs"),
                   help="folder keeping the trained supernet (default runs/.bench_cache/search_latency_vs_macs)")
    p.add_argument("--fresh", action="store_true", help="retrain the supernet even if it is cached")
    p.add_argument("--space", default=DEFAULT_SPACE,
                   help="per-slot channel choices, 'slot=c,c slot=c ...', every slot of the supernet "
                        "(default: %(default)s)")
    p.add_argument("--reference-width", type=float, default=0.5,
                   help="first budget case: the teacher at this width, priced as its MACs (MAC search) and as its "
                        "latency measured here (latency search); 0: none (default 0.5)")
    p.add_argument("--budget-fractions", default="0.5",
                   help="more MAC budgets, as fractions of the largest config's MACs (default 0.5)")
    p.add_argument("--budget-macs", type=float, nargs="*", help="MAC budgets (override --budget-fractions)")
    p.add_argument("--margins", default="0,0.1",
                   help="latency budgets: (1 − margin) × the MAC winner's measured ms (default 0,0.1)")
    p.add_argument("--search-images", type=int, default=200, help="held-out pairs scoring candidates (default 200)")
    p.add_argument("--eval-images", type=int, default=1000,
                   help="other held-out pairs on which the winners are scored again (default 1000)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime and torch threads (default 1)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up runs per config and round (default 20)")
    p.add_argument("--runs", type=int, default=200, help="timed runs per config and round (default 200)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin rounds of the table (default 3)")
    p.add_argument("--verify-runs", type=int, default=500, help="timed runs per round re-measuring winners")
    p.add_argument("--verify-rounds", type=int, default=7, help="rounds re-measuring the winners (default 7)")
    p.add_argument("--quick", action="store_true", help="a < 1 min smoke run (tiny space, short protocol)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "search_latency_vs_macs.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 20)
        args.space = QUICK_SPACE if args.space == DEFAULT_SPACE else args.space
        args.search_images, args.eval_images = min(args.search_images, 50), min(args.eval_images, 100)
        args.warmup, args.runs, args.rounds = 2, 10, 1
        args.verify_runs, args.verify_rounds = 10, 1
        args.cache = args.cache + "-quick"
        if args.json == p.get_default("json"):
            args.json = os.path.join(HERE, "results", "search_latency_vs_macs_quick.json")
    return args


def load_supernet(args, teacher_path):
    if args.supernet:
        return load_generator(args.supernet) + (args.supernet,)
    path = os.path.join(args.cache, "supernet_%dsteps_seed%d.pt" % (args.steps, args.seed))
    if args.fresh or not os.path.exists(path):
        from edgegan.train.distill import train_supernet

        teacher, tckpt = load_generator(teacher_path)
        data = tckpt["data"]
        train_set, _ = load_pair(data["name"], size=int(data["size"]), direction=data.get("direction") or "AtoB")
        say("training the supernet: %d steps (recipe defaults, L1 to the teacher's output), cached as %s"
            % (args.steps, path))
        ckpt = train_supernet(teacher, train_set, args.steps, seed=args.seed, recon_target="teacher")
        os.makedirs(args.cache, exist_ok=True)
        save_checkpoint(path, ckpt)
    else:
        say("supernet from the cache: %s" % path)
    return load_generator(path) + (path,)


def short(cfg, space):
    """The slots that vary in ``space``, e.g. ``st=16 d1=32 s=64 b0=64 b5=16 u1=32 u2=8``."""
    parts = []
    for k, v in cfg.channels.items():
        if len(space.choices[k]) > 1:
            parts.append("%s=%d" % (SHORT.get(k, "b" + k[5:] if k.startswith("block") else k), v))
    return " ".join(parts)


def slot_effects(space, cands):
    """Per varying slot: mean over the space of (value at its max choice − at its min choice), in MMACs and ms."""
    by = {c.config: c for c in cands}
    out = []
    for slot, choices in space.choices.items():
        if len(choices) < 2:
            continue
        lo, hi = choices[0], choices[-1]
        d_macs, d_ms = [], []
        for cfg, c in by.items():
            if cfg.channels[slot] != lo:
                continue
            twin = space.config([hi if k == slot else v for k, v in cfg.channels.items()])
            if twin in by:
                d_macs.append(by[twin].macs - c.macs)
                d_ms.append(by[twin].ms - c.ms)
        if d_macs:
            out.append({"slot": slot, "from": lo, "to": hi, "d_mmacs": float(np.mean(d_macs)) / 1e6,
                        "d_ms": float(np.mean(d_ms))})
            out[-1]["ms_per_mmac"] = out[-1]["d_ms"] / out[-1]["d_mmacs"] if out[-1]["d_mmacs"] else None
    return out


def front_sweep(gen, quality, shape, space, lt, costs):
    """For each config of the MAC Pareto front (each MAC budget's winner): the latency search at its measured ms
    (best PSNR), and the fastest config on that search's front with at least its PSNR (iso-quality)."""
    out = []
    for w in search(gen, quality, shape, space=space, mode="exhaustive", budget_macs=float("inf"),
                    cost_cache=costs).front:
        w_ms = lt.lookup(w.config)
        res = search(gen, quality, shape, budget_ms=w_ms, latency_table=lt, space=space, mode="exhaustive",
                     cost_cache=costs)
        iso = next(c for c in res.front if c.quality >= w.quality)
        out.append({"mac_winner": w.config.name, "macs": w.macs, "ms": w_ms, "psnr": w.quality,
                    "ms_winner": res.best.config.name, "ms_winner_psnr": res.best.quality,
                    "ms_winner_ms": res.best.ms, "iso": iso.config.name, "iso_ms": iso.ms, "iso_psnr": iso.quality})
    return out


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    gen, ckpt, sn_path = load_supernet(args, args.checkpoint)
    data = ckpt["data"]
    size = int(data["size"])
    shape = (1, int(data["in_channels"]), size, size)
    _, test_set = load_pair(data["name"], size=size, direction=data.get("direction") or "AtoB")
    n_search = min(args.search_images, len(test_set) // 2)
    n_eval = min(args.eval_images, len(test_set) - n_search)
    s_inputs, s_targets = next(iter(DataLoader(Subset(test_set, range(n_search)), batch_size=n_search)))
    e_inputs, e_targets = next(iter(DataLoader(Subset(test_set, range(n_search, n_search + n_eval)),
                                               batch_size=n_eval)))
    space = SearchSpace.from_model(gen, choices=parse_space(args.space))
    say("space: %d configs (%s)" % (space.size, args.space))

    # 1. the latency table: every config of the space, ONNX Runtime, this CPU
    t = time.perf_counter()
    table = measure_latency_table(gen, list(space.all()), shape, warmup=args.warmup, runs=args.runs,
                                  engine="onnxruntime", threads=args.threads, rounds=args.rounds, log=say)
    table_s = time.perf_counter() - t
    lt = LatencyTable(table)

    # 2. quality: one memoised evaluator (PSNR on the search pairs) shared by all searches
    psnr_search = psnr_evaluator(gen, s_inputs, s_targets)
    memo = {}

    def quality(cfg):
        if cfg not in memo:
            memo[cfg] = psnr_search(cfg)
        return memo[cfg]

    costs = {}
    everything = search(gen, quality, shape, budget_ms=float("inf"), latency_table=lt, space=space,
                        mode="exhaustive", cost_cache=costs).evaluated
    macs = np.array([c.macs for c in everything], float)
    ms = np.array([c.ms for c in everything], float)
    rho, tau = stats.spearmanr(macs, ms), stats.kendalltau(macs, ms)
    largest = max(macs)
    budgets = args.budget_macs or [float(f) * largest for f in args.budget_fractions.split(",") if f]
    margins = [float(m) for m in args.margins.split(",")]
    ort_kw = dict(engine="onnxruntime", threads=args.threads, warmup=args.warmup)

    # 3. budget cases: the reference (teacher at a width, priced in MACs and in measured ms), then MAC budgets
    ref = None
    if args.reference_width:
        teacher, _ = load_generator(args.checkpoint)
        w = args.reference_width
        ref_t = measure_latency_table(teacher, [w], shape, runs=args.runs, rounds=args.rounds, **ort_kw)
        with torch.no_grad():
            ref = {"name": "teacher w%g" % w, "width": w, "macs": cost(teacher, shape, w)["macs"],
                   "params": cost(teacher, shape, w)["params"], "ms": ref_t["configs"][0]["ms"],
                   "psnr": psnr_evaluator(teacher, s_inputs, s_targets)(w),
                   "eval_psnr": psnr_evaluator(teacher, e_inputs, e_targets)(w)}
        say("reference %s: %.2f MMACs, %.3f ms" % (ref["name"], ref["macs"] / 1e6, ref["ms"]))
    cases = ([(ref["name"], ref["macs"], ref["ms"])] if ref else []) + [("%.2f× max MACs" % (b / largest), b, None)
                                                                        for b in budgets]
    rows = []
    for case, b, b_ms in cases:
        by_macs = search(gen, quality, shape, budget_macs=b, space=space, mode="exhaustive", cost_cache=costs)
        if by_macs.best is None:
            say("no config under %.2f MMACs" % (b / 1e6))
            continue
        w = by_macs.best
        w_ms = lt.lookup(w.config)
        rows.append({"case": case, "budget": "MACs ≤ %.2fM" % (b / 1e6), "search": "MACs", "budget_macs": b,
                     "budget_ms": None, "cand": w, "ms": w_ms, "evaluated": len(by_macs.evaluated)})
        if b_ms is not None:
            ms_budgets = [("ms ≤ %.3f (= %s)" % (b_ms, case), b_ms)]
        else:
            ms_budgets = [("ms ≤ %.3f (%s)" % ((1 - m) * w_ms, "= MAC winner" if m == 0 else "−%g%%" % (100 * m)),
                           (1 - m) * w_ms) for m in margins]
        for label, bm in ms_budgets:
            by_ms = search(gen, quality, shape, budget_ms=bm, latency_table=lt, space=space, mode="exhaustive",
                           cost_cache=costs)
            rows.append({"case": case, "budget": label, "search": "ms", "budget_macs": b, "budget_ms": bm,
                         "cand": by_ms.best, "ms": by_ms.best.ms if by_ms.best else None,
                         "evaluated": len(by_ms.evaluated)})
    sweep = front_sweep(gen, quality, shape, space, lt, costs)

    # 4. re-measure the distinct winners (interleaved, more rounds) and score them on other held-out pairs
    winners = []
    for r in rows:
        if r["cand"] is not None and r["cand"].config not in winners:
            winners.append(r["cand"].config)
    # (the teacher is another model: each round measures the winners, then the teacher, so that both see
    # the same load of the machine; the median of the rounds is kept)
    verify = {"winners": [c.name for c in winners], "rounds_ms": {c.name: [] for c in winners}}
    for _ in range(args.verify_rounds):
        for cfg, e in zip(winners, measure_latency_table(gen, winners, shape, runs=args.verify_runs,
                                                         **ort_kw)["configs"]):
            verify["rounds_ms"][cfg.name].append(e["ms"])
        if ref:
            e = measure_latency_table(teacher, [ref["width"]], shape, runs=args.verify_runs, **ort_kw)["configs"][0]
            verify["rounds_ms"].setdefault(ref["name"], []).append(e["ms"])
    re_ms = {cfg: float(np.median(verify["rounds_ms"][cfg.name])) for cfg in winners}
    if ref:
        ref["re_ms"] = float(np.median(verify["rounds_ms"][ref["name"]]))
    psnr_eval = psnr_evaluator(gen, e_inputs, e_targets)
    with torch.no_grad():
        eval_q = {cfg: psnr_eval(cfg) for cfg in winners}
    out_rows = []
    if ref:
        out_rows.append({"case": "reference", "budget": "-", "search": None, "short": ref["name"] + " (ResNet)",
                         "mmacs": ref["macs"] / 1e6, "ms": ref["ms"], "re_ms": ref["re_ms"], "psnr": ref["psnr"],
                         "eval_psnr": ref["eval_psnr"]})
    for r in rows:
        c = r["cand"]
        row = {"case": r["case"], "budget": r["budget"], "search": r["search"], "budget_macs": r["budget_macs"],
               "budget_ms": r["budget_ms"], "evaluated": r["evaluated"]}
        if c is not None:
            row.update(config=c.config.to_dict(), short=short(c.config, space), mmacs=c.macs / 1e6,
                       macs=c.macs, params=c.params, ms=r["ms"], re_ms=re_ms[c.config], psnr=c.quality,
                       eval_psnr=eval_q[c.config])
            if r["search"] == "ms":
                base = next(x for x in out_rows if x["search"] == "MACs" and x["case"] == r["case"])
                row["differs"] = "yes" if c.config.name != base["config"]["name"] else "no"
                row["faster_pct"] = 100.0 * (1.0 - re_ms[c.config] / base["re_ms"])
                row["d_psnr"] = c.quality - base["psnr"]
                row["d_eval_psnr"] = eval_q[c.config] - base["eval_psnr"]
        out_rows.append(row)

    effects = slot_effects(space, everything)
    print(format_table(out_rows, [
        ("case", "case", None), ("budget", "budget", None), ("short", "winner (varying slots)", None),
        ("mmacs", "MMACs", "{:.2f}"), ("ms", "table ms", "{:.3f}"), ("re_ms", "re-measured ms", "{:.3f}"),
        ("psnr", "PSNR search", "{:.2f}"), ("eval_psnr", "PSNR held-out", "{:.2f}"), ("differs", "differs", None),
        ("faster_pct", "faster %", "{:+.1f}"), ("d_psnr", "ΔPSNR search", "{:+.2f}"),
        ("d_eval_psnr", "ΔPSNR held-out", "{:+.2f}")]))
    print()
    print(format_table(effects, [("slot", "slot", None), ("from", "from", None), ("to", "to", None),
                                 ("d_mmacs", "Δ MMACs", "{:+.3f}"), ("d_ms", "Δ ms", "{:+.3f}"),
                                 ("ms_per_mmac", "ms per MMAC", "{:.3f}")]))
    print()
    print("MACs vs measured ORT ms over all %d configs: Spearman ρ = %.3f, Kendall τ = %.3f; "
          "ms %.3f–%.3f, MMACs %.2f–%.2f" % (len(everything), rho.statistic, tau.statistic, ms.min(), ms.max(),
                                             macs.min() / 1e6, macs.max() / 1e6))
    if ref:
        mw = next((r for r in out_rows if r["case"] == ref["name"] and r["search"] == "MACs"), None)
        lw = next((r for r in out_rows if r["case"] == ref["name"] and r["search"] == "ms"), None)
        if mw and lw and "re_ms" in lw:
            print("%s budget (%.2f MMACs / %.3f ms): the MAC winner runs at %.3f ms (%+.1f%% vs the teacher), the "
                  "latency winner at %.3f ms (%+.1f%%)" % (ref["name"], ref["macs"] / 1e6, ref["re_ms"], mw["re_ms"],
                                                          100 * (mw["re_ms"] / ref["re_ms"] - 1), lw["re_ms"],
                                                          100 * (lw["re_ms"] / ref["re_ms"] - 1)))
    for r in out_rows:
        if r["search"] == "ms" and "differs" in r:
            print("%s, %s: latency winner %s the MAC winner; %+.1f%% faster re-measured, %+.2f dB PSNR (search), "
                  "%+.2f dB (held-out)" % (r["case"], r["budget"], "differs from" if r["differs"] == "yes" else "is",
                                            r["faster_pct"], r["d_psnr"], r["d_eval_psnr"]))
    better = [r for r in sweep if r["ms_winner"] != r["mac_winner"]]
    quicker = [r for r in sweep if r["iso"] != r["mac_winner"]]
    print("MAC Pareto front, %d configs: at each one's measured ms the latency search picked another config for %d "
          "(PSNR %s); the fastest config with at least its PSNR was another for %d (table ms %s)"
          % (len(sweep), len(better),
             "+%.3f dB mean, +%.3f max" % (np.mean([r["ms_winner_psnr"] - r["psnr"] for r in better]),
                                           max(r["ms_winner_psnr"] - r["psnr"] for r in better)) if better else "-",
             len(quicker),
             "−%.1f%% mean, −%.1f%% max" % (100 * np.mean([1 - r["iso_ms"] / r["ms"] for r in quicker]),
                                           100 * max(1 - r["iso_ms"] / r["ms"] for r in quicker)) if quicker else "-"))
    total = time.perf_counter() - T0
    print("%.0f s in all (table %.0f s, %d configs × %d rounds); wrote %s" % (total, table_s, len(everything),
                                                                              args.rounds, args.json))

    result = {
        "benchmark": "search_latency_vs_macs", "data": data["name"], "size": size, "supernet": sn_path,
        "supernet_arch": ckpt["generator"]["arch"], "space": {k: v for k, v in space.choices.items()},
        "space_size": space.size, "args": vars(args),
        "held_out": {"search": n_search, "eval": n_eval},
        "protocol": {"latency": "ONNX Runtime CPU EP, BatchNorm folded, batch 1; per round warm-up then the mean "
                                "of timed runs; median over round-robin rounds", "threads": args.threads,
                     "warmup": args.warmup, "runs": args.runs, "rounds": args.rounds,
                     "verify_runs": args.verify_runs, "verify_rounds": args.verify_rounds,
                     "quality": "psnr_evaluator (mean PSNR, data range 2) on held-out pairs"},
        "correlation": {"spearman": float(rho.statistic), "spearman_p": float(rho.pvalue),
                        "kendall": float(tau.statistic), "kendall_p": float(tau.pvalue), "n": len(everything)},
        "reference": ref, "rows": out_rows, "front_sweep": sweep, "slot_effects": effects, "latency_table": table, "verify_table": verify,
        "candidates": [dict(c.to_dict(), quality=c.quality) for c in everything],
        "environment": environment(threads=args.threads, backends=("onnxruntime",)), "torch": torch.__version__,
        "seconds": total, "table_seconds": table_s,
    }
    write_json_atomic(args.json, result, force=True, indent=2)
    return result


if __name__ == "__main__":
    main()
