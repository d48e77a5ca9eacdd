"""SlimGAN on Fashion-MNIST: slimmable vs individually trained generators, and the ablation.

Two parts, each a set of training runs at one budget (same steps, batch and learning rates):

``noise`` — the shape of SlimGAN's Table 1 and Table 4 (unconditional DCGAN, all 10 classes):

* individual: one generator per width (ngf·w channels, trained alone), FD-FMNIST per width, and the
  mIC across those separately trained models on the same noise;
* the ablation rows: slimmable G with its own discriminator per width (``--d-share 0``, no
  distillation); + shared D (shared first stage); + shared D + stepwise distillation (SlimGAN);
  + same D (one discriminator for all widths); + slimmable D (one discriminator whose width
  follows the generator's); naive distillation (from the widest). FD-FMNIST per
  width, their mean, and mIC (with and without distillation side by side).

``paired`` — edges→shoes (fmnist-shoes, the spine's recipe): the slimmable ResNet generator vs the
same architecture trained individually at each width; held-out PSNR / SSIM per width (3,000 shoes).
The goal: slimmable 0.25× beats the individual 0.25× and stays within 1 dB of its own 1.0×.

    python benchmarks/slimgan_table.py                     # both parts, default budget
    python benchmarks/slimgan_table.py --part noise --steps 1200
    python benchmarks/slimgan_table.py --part paired --paired-ngf 32 --paired-steps 1000
    python benchmarks/slimgan_table.py --quick             # a minute-long smoke of the whole pipeline

Each finished run is kept in ``--cache`` (a checkpoint per run), so an interrupted benchmark goes
on where it stopped and the two parts can run as two processes; ``--fresh`` retrains everything.
FD-FMNIST is the Fréchet distance on the project's Fashion-MNIST classifier features (not FID:
Inception weights cannot be downloaded here); lower is better, as for mIC.
"""

import argparse
import json
import os
import sys
import time

import torch

from edgegan.checkpoint import load_generator, save_checkpoint
from edgegan.cli._common import format_table
from edgegan.runtime.bundle import write_json_atomic

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTHS = (0.25, 0.5, 0.75, 1.0)

# name, label, SlimGANConfig overrides (the ablation of Table 4, in its order)
ABLATION = [
    ("slim_g", "slimmable G (own D per width)", dict(d_share=0, distill="none")),
    ("shared_d", "+ shared D", dict(d_share=1, distill="none")),
    ("slimgan", "+ shared D + stepwise distillation (SlimGAN)", dict(d_share=1, distill="stepwise")),
    ("same_d", "+ same D (one D for all widths)", dict(d_share=1, distill="stepwise", same_d=True)),
    ("slim_d", "+ slimmable D (one D, width follows G)", dict(distill="stepwise", slimmable_d=True)),
    ("naive", "naive distillation (from the widest)", dict(d_share=1, distill="naive")),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("noise", "paired", "both"), default="both")
    p.add_argument("--steps", type=int, default=1200, help="noise part: steps per run (default 1200)")
    p.add_argument("--ngf", type=int, default=32, help="noise part: generator channels at 1.0× (default 32)")
    p.add_argument("--ndf", type=int, default=16, help="noise part: discriminator channels (default 16)")
    p.add_argument("--batch-size", type=int, default=32, help="noise part (default 32)")
    p.add_argument("--lambda-distill", type=float, default=1.0, help="noise part (default 1)")
    p.add_argument("--eval-images", type=int, default=2000, help="noise part: images per width for FD / mIC")
    p.add_argument("--paired-steps", type=int, default=1000, help="paired part: steps per run (default 1000)")
    p.add_argument("--paired-ngf", type=int, default=32, help="paired part: ngf at 1.0× (default 32)")
    p.add_argument("--paired-batch-size", type=int, default=32)
    p.add_argument("--paired-test", type=int, help="paired part: held-out pairs scored (default: all 3,000)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=os.path.join(HERE, "results", ".slimgan_runs"),
                   help="folder of finished runs (resumes from it)")
    p.add_argument("--fresh", action="store_true", help="retrain runs already in --cache")
    p.add_argument("--quick", action="store_true", help="tiny budget, for a smoke run (own cache)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "slimgan_table.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.paired_steps, args.eval_images, args.paired_test = 20, 10, 200, 100
        args.ngf, args.paired_ngf = 16, 16
        args.cache = args.cache + "-quick"
        if args.json == p.get_default("json"):
            args.json = os.path.join(HERE, "results", "slimgan_table_quick.json")
    return args


def _say(text):
    print(text, file=sys.stderr, flush=True)


def _cached(args, name, train):
    """Run ``train()`` (→ checkpoint dict) once; later calls load the saved generator."""
    path = os.path.join(args.cache, name + ".pt")
    if args.fresh or not os.path.exists(path):
        _say("training %s ..." % name)
        start = time.perf_counter()
        ckpt = train()
        ckpt.pop("resume", None)
        ckpt.pop("discriminator", None)
        os.makedirs(args.cache, exist_ok=True)
        save_checkpoint(path, ckpt)
        _say("  %s: %.0f s" % (name, time.perf_counter() - start))
    return load_generator(path)


# ---------------------------------------------------------------- noise → image

def run_noise(args):
    from edgegan.train.classifier import load_classifier, load_fmnist
    from edgegan.train.gan_metrics import classifier_outputs, fd_fmnist, mic
    from edgegan.train.slimgan import SlimGANConfig, sample_widths, train_slimgan

    images, labels = load_fmnist("train")
    real, _ = load_fmnist("test", limit=args.eval_images)
    classifier, _ = load_classifier()
    real_feats, _ = classifier_outputs(real, classifier)
    base = dict(model="dcgan", ndf=args.ndf, steps=args.steps, batch_size=args.batch_size,
                lambda_distill=args.lambda_distill, eval_images=0, seed=args.seed, log_every=10 ** 9)

    def scored(gen, width_of):
        """FD-FMNIST per width and features (same noise for every model: seed 0)."""
        feats, fds = {}, {}
        for w, imgs in width_of(gen).items():
            f, _ = classifier_outputs(imgs, classifier)
            feats[w], fds["%g" % w] = f, fd_fmnist(real_feats, f)
        return feats, fds

    result = {"individual": {}, "ablation": []}
    # individual: a one-width generator of ngf·w channels per width, same steps
    ind_feats, ind_fd, ind_cost = {}, {}, {}
    for w in WIDTHS:
        ngf = max(1, int(round(args.ngf * w)))
        cfg = SlimGANConfig(ngf=ngf, widths=(1.0,), distill="none", **{k: v for k, v in base.items()})
        gen, ckpt = _cached(args, "noise_individual_w%g" % w, lambda cfg=cfg: train_slimgan(cfg, images, labels))
        feats, fds = scored(gen, lambda g: sample_widths(g, args.eval_images, seed=0))
        ind_feats[w], ind_fd["%g" % w] = feats[1.0], fds["1"]
        ind_cost["%g" % w] = ckpt["train"]["seconds"]
    result["individual"] = {"fd_fmnist": ind_fd, "mic": mic(ind_feats), "seconds": ind_cost}

    for name, label, overrides in ABLATION:
        cfg = SlimGANConfig(ngf=args.ngf, widths=WIDTHS, **dict(base, **overrides))
        gen, ckpt = _cached(args, "noise_" + name, lambda cfg=cfg: train_slimgan(cfg, images, labels))
        feats, fds = scored(gen, lambda g: sample_widths(g, args.eval_images, seed=0))
        result["ablation"].append({"name": name, "label": label, "config": overrides, "fd_fmnist": fds,
                                   "mean_fd": sum(fds.values()) / len(fds), "mic": mic(feats),
                                   "seconds": ckpt["train"]["seconds"]})
    return result


def print_noise(result):
    cols = [("row", "", None)] + [("w%g" % w, "FD %g×" % w, "{:.2f}") for w in WIDTHS] + \
        [("mean", "mean", "{:.2f}"), ("mic", "mIC", "{:.3f}"), ("seconds", "train s", "{:.0f}")]

    def row(label, fds, mic_value, seconds):
        r = {"row": label, "mean": sum(fds.values()) / len(fds), "mic": mic_value, "seconds": seconds}
        r.update({"w" + k: v for k, v in fds.items()})
        return r

    ind = result["individual"]
    slim = next(r for r in result["ablation"] if r["name"] == "slimgan")
    print("\nTable 1 shape — FD-FMNIST per width (lower is better), DCGAN, unconditional")
    print(format_table([row("individual", ind["fd_fmnist"], ind["mic"], sum(ind["seconds"].values())),
                        row("slimmable (SlimGAN)", slim["fd_fmnist"], slim["mic"], slim["seconds"])], cols))
    print("\nTable 4 shape — ablation")
    print(format_table([row(r["label"], r["fd_fmnist"], r["mic"], r["seconds"]) for r in result["ablation"]],
                       cols))


# ---------------------------------------------------------------- edges → shoes

def run_paired(args):
    from edgegan.data import load_pair
    from edgegan.train.metrics import evaluate_widths
    from edgegan.train.slimmable import SlimmableConfig, train_slimmable

    train_set, test_set = load_pair("fmnist-shoes", test_limit=args.paired_test)
    base = dict(steps=args.paired_steps, batch_size=args.paired_batch_size, eval_every=0, seed=args.seed)
    result = {"individual": {}, "slimmable": {}, "ngf": args.paired_ngf, "steps": args.paired_steps,
              "test_images": len(test_set)}
    for w in WIDTHS:
        ngf = max(1, int(round(args.paired_ngf * w)))
        cfg = SlimmableConfig(ngf=ngf, widths=(1.0,), distill="none", **base)
        gen, ckpt = _cached(args, "paired_individual_w%g" % w,
                            lambda cfg=cfg: train_slimmable(cfg, train_set, test_set, progress=False))
        m = evaluate_widths(gen, test_set, [1.0], "cpu")["w1"]
        result["individual"]["%g" % w] = dict(m, ngf=ngf, seconds=ckpt["train"]["seconds"])
    cfg = SlimmableConfig(ngf=args.paired_ngf, widths=WIDTHS, distill="stepwise", **base)
    gen, ckpt = _cached(args, "paired_slimmable", lambda: train_slimmable(cfg, train_set, test_set, progress=False))
    scores = evaluate_widths(gen, test_set, WIDTHS, "cpu")
    for w in WIDTHS:
        result["slimmable"]["%g" % w] = dict(scores["w%g" % w], seconds=ckpt["train"]["seconds"])
    s, i = result["slimmable"], result["individual"]
    result["goal"] = {"slim_0.25_minus_individual_0.25_db": s["0.25"]["psnr"] - i["0.25"]["psnr"],
                      "slim_1.0_minus_slim_0.25_db": s["1"]["psnr"] - s["0.25"]["psnr"]}
    result["goal"]["met"] = bool(result["goal"]["slim_0.25_minus_individual_0.25_db"] > 0
                                 and result["goal"]["slim_1.0_minus_slim_0.25_db"] <= 1.0)
    return result


def print_paired(result):
    print("\nedges→shoes (fmnist-shoes 32², ngf %d, %d steps), held-out PSNR dB / SSIM (%d pairs)"
          % (result["ngf"], result["steps"], result["test_images"]))
    rows = []
    for kind in ("individual", "slimmable"):
        r = {"row": kind}
        for w in WIDTHS:
            m = result[kind]["%g" % w]
            r["w%g" % w] = "%.2f / %.3f" % (m["psnr"], m["ssim"])
        rows.append(r)
    print(format_table(rows, [("row", "", None)] + [("w%g" % w, "%g×" % w, None) for w in WIDTHS]))
    g = result["goal"]
    print("slimmable 0.25× − individual 0.25×: %+.2f dB; slimmable 1.0× − 0.25×: %.2f dB; goal %s"
          % (g["slim_0.25_minus_individual_0.25_db"], g["slim_1.0_minus_slim_0.25_db"],
             "met" if g["met"] else "NOT met"))


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from edgegan.runtime.fps import environment

    command = "python benchmarks/" + os.path.basename(__file__) + " " + " ".join(sys.argv[1:] if argv is None else argv)
    new = {}
    if args.part in ("noise", "both"):
        new["noise"] = dict(run_noise(args), steps=args.steps, ngf=args.ngf, ndf=args.ndf,
                            batch_size=args.batch_size, eval_images=args.eval_images)
        print_noise(new["noise"])
    if args.part in ("paired", "both"):
        new["paired"] = run_paired(args)
        print_paired(new["paired"])
    for part in new.values():
        part.update(command=command.strip(), environment=environment())
    out = {}
    if os.path.exists(args.json):  # keep the other part's results when one part is rerun
        with open(args.json) as f:
            out = json.load(f)
    out.update(new)
    write_json_atomic(args.json, out, force=True, indent=2)
    print("\nwrote %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
