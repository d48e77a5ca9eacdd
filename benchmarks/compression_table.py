"""Compression methods side by side on Fashion-MNIST shoes 32² (edges → shoes), at about one MAC budget.

Rows (every model cut out as a plain module, BatchNorm folded, as ``edgegan build`` does):

* teacher: the packaged slimmable ResNet (ngf 32, 6 blocks; the results in BENCHMARKS.md were measured
  with the previous ngf-16 model) at w1.0, and at the budget width as it is;
* GAN Compression: a once-for-all mobile supernet distilled from the teacher (``train_supernet``),
  searched under the budget (``search``, evolution, PSNR on held-out pairs), then the winner
  fine-tuned with L1 + distillation (``finetune_subnet``);
* Anycost: the teacher's channels sorted by importance, then consistency-trained (``train_anycost``),
  at the widest width under the budget; and, as an ablation, the same training without sorting;
* PPCD: learnable masks + sparsity + attention distillation from the teacher, pruned (``train_ppcd``);
* from scratch (plain paired L1 + hinge GAN, fresh PatchGAN): the mobile network at the searched
  winner's channels (as many steps as supernet + fine-tuning), the ResNet at the Anycost width's
  shape and the PPCD-pruned shape (as many steps as those recipes).

Columns: MACs, params, ONNX Runtime CPU latency (batch 1; warm-up, then the mean of timed runs),
PSNR / SSIM on held-out shoes and FD-FMNIST (Fréchet distance of the shipped Fashion-MNIST
classifier's features, generated vs real held-out shoes; lower is better). The held-out images the
search scores candidates on are excluded from the evaluation set. A second table gives MACs/params
of the 256² pix2pix architecture (ngf 64, 9 blocks, 3→3): teacher at w1.0 and the budget width, the
full mobile network, and the mobile network at the searched winner's channel ratios.

    python benchmarks/compression_table.py                 # default budget, ≈ 14 min on 1 thread
    python benchmarks/compression_table.py --quick         # < 2 min smoke
    python benchmarks/compression_table.py --steps 2000 --budget-width 0.25

Writes benchmarks/results/compression_table.json. The teacher's own training (1,000 steps × 4 widths;
800 for the ngf-16 teacher of the recorded results) is not counted in any row's steps; the from-scratch rows start from random weights.
"""

import argparse
import copy
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from torch.utils.data import DataLoader, Subset

from edgegan.checkpoint import load_generator
from edgegan.cli._common import format_table
from edgegan.models import MobileResnetGenerator, ResnetGenerator, SharedTrunkPatchGAN, build_model
from edgegan.nn import set_width
from edgegan.runtime.bundle import write_json_atomic
from edgegan.runtime.fps import environment, measure
from edgegan.subnet import SubnetConfig, cost, extract
from edgegan.targets.onnx import INPUT_NAME, compile_onnx
from edgegan.train.anycost import train_anycost
from edgegan.train.classifier import load_classifier
from edgegan.data import load_pair
from edgegan.train.distill import finetune_subnet, train_supernet
from edgegan.train.gan_metrics import classifier_outputs, fd_fmnist
from edgegan.train.losses import d_hinge_loss, g_hinge_loss
from edgegan.train.metrics import psnr_per_image, ssim_per_image
from edgegan.train.prune import train_ppcd
from edgegan.train.search import search_checkpoint_configs
from edgegan.train.slimmable import ADAM_BETAS, endless_batches, seed_everything

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = time.perf_counter()


def say(msg):
    print("[%6.0f s] %s" % (time.perf_counter() - T0, msg), file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="teacher (default: the packaged fmnist_shoes_32 model)")
    p.add_argument("--steps", type=int, default=1200,
                   help="training steps of the supernet, Anycost, PPCD and the from-scratch rows (default 1200)")
    p.add_argument("--finetune-steps", type=int, help="fine-tuning steps of the searched winner (default steps/4)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--budget-width", type=float, default=0.5,
                   help="MAC budget = the teacher's MACs at this width (default 0.5)")
    p.add_argument("--budget-macs", type=float, help="MAC budget (overrides --budget-width)")
    p.add_argument("--search-images", type=int, default=200, help="held-out pairs scoring search candidates")
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--eval-images", type=int, default=0,
                   help="held-out pairs (after the search ones) scored per row; 0: all of them (default)")
    p.add_argument("--anycost-lambda-perceptual", type=float, default=0.0)
    p.add_argument("--no-unsorted", action="store_true",
                   help="skip the ablation row: consistency training without sorting the channels")
    p.add_argument("--ppcd-alpha", type=float, default=0.9, help="PPCD binarization threshold (default 0.9)")
    p.add_argument("--ppcd-lambda-pp", type=float, default=1.0,
                   help="PPCD sparsity weight (default 1.0: with the recipe's 0.01 nothing is pruned in "
                        "hundreds of steps)")
    p.add_argument("--ppcd-mask-lr", type=float, default=2e-3, help="PPCD mask learning rate (default 2e-3)")
    p.add_argument("--ppcd-lambda-recon", type=float, default=10.0,
                   help="PPCD's extra L1 term to the teacher's output (default 10, as the recorded table; the "
                        "recipe's default is 0: the paper's loss)")
    p.add_argument("--supernet-recon-target", choices=("real", "teacher"), default="teacher",
                   help="the supernet's L1 target (default teacher, as the recorded table; the recipe's default "
                        "on these paired shoes is the real target)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    p.add_argument("--warmup", type=int, default=50, help="latency warm-up runs (at least; plus --warmup-s)")
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=1000, help="timed latency runs per row (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a < 2 min smoke run (few steps, small search and eval)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "compression_table.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 20)
        args.search_images = min(args.search_images, 50)
        args.population, args.generations = 4, 1
        args.eval_images = args.eval_images or 300
        args.warmup, args.warmup_s, args.runs = 5, 0.2, 20
        if args.json == p.get_default("json"):
            args.json = os.path.join(HERE, "results", "compression_table_quick.json")
    if args.finetune_steps is None:
        args.finetune_steps = max(1, args.steps // 4)
    return args


# --- training from scratch (the plain paired recipe) -----------------------------------------------

def train_from_scratch(gen, config, train_set, steps, batch_size, lr, seed, lambda_l1=100.0):
    """pix2pix at one fixed config: λ_L1·L1 + hinge GAN against a fresh conditional one-head PatchGAN."""
    seed_everything(seed)
    meta = train_set.describe()
    disc = SharedTrunkPatchGAN(meta["in_channels"] + meta["out_channels"], ndf=16, n_layers=2, n_heads=1)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=ADAM_BETAS)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=ADAM_BETAS)
    batches = endless_batches(train_set, batch_size, seed)
    set_width(gen, config)
    gen.train()
    for _ in range(steps):
        x, y = next(batches)
        fake = gen(x)
        disc.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        d_hinge_loss(disc(torch.cat([x, y], 1)), disc(torch.cat([x, fake.detach()], 1))).backward()
        opt_d.step()
        disc.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        (g_hinge_loss(disc(torch.cat([x, fake], 1))) + lambda_l1 * torch.nn.functional.l1_loss(fake, y)).backward()
        opt_g.step()
    set_width(gen, 1.0)
    return gen.eval()


# --- measuring a row -------------------------------------------------------------------------------

@torch.no_grad()
def generate(module, inputs, batch=200):
    return torch.cat([module(inputs[i:i + batch]).clamp(-1, 1) for i in range(0, len(inputs), batch)])


def ort_latency(module, shape, path, args):
    compile_onnx(module, shape, path, opset=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    x = np.random.RandomState(0).uniform(-1, 1, shape).astype(np.float32)
    return measure(lambda: session.run(None, {INPUT_NAME: x}), args.warmup, args.warmup_s, args.runs)


def measure_row(name, method, model, config, ctx, args, **extra):
    shape = ctx["shape"]
    sub = extract(model, config, input_shape=shape)
    out = generate(sub, ctx["inputs"])
    feats, _ = classifier_outputs(out, ctx["classifier"])
    lat = ort_latency(sub, shape, os.path.join(ctx["tmp"], "%d.onnx" % len(ctx["rows"])), args)
    row = {"name": name, "method": method, "config": SubnetConfig.coerce(config).to_dict(),
           "psnr": float(psnr_per_image(out, ctx["targets"], 2.0).mean()),
           "ssim": float(ssim_per_image(out, ctx["targets"], 2.0).mean()),
           "fd_fmnist": fd_fmnist(ctx["real_feats"], feats), "ort_ms": lat["mean_ms"], "ort_p90_ms": lat["p90_ms"],
           "latency": lat}
    row.update(cost(sub, shape))
    row.update(extra)
    ctx["rows"].append(row)
    say("%-34s %6.2f MMACs  %6.1f kparams  %5.2f ms  PSNR %.2f  SSIM %.4f  FD %.2f" % (
        name, row["macs"] / 1e6, row["params"] / 1e3, row["ort_ms"], row["psnr"], row["ssim"], row["fd_fmnist"]))
    return row


# --- the 256² cost table ---------------------------------------------------------------------------

def scaled_config(winner, small, big):
    """The winner's per-slot channel ratios (of ``small``'s maxima) applied to ``big`` (multiples of 8);
    block i of ``big`` takes the ratio of block ⌊i·n_small/n_big⌋ of ``small``."""
    from edgegan.nn import channel_slots

    s_slots, b_slots = channel_slots(small), channel_slots(big)
    n_s, n_b = len(small.blocks), len(big.blocks)
    out = {}
    for name, slot in b_slots.items():
        src = name
        if name.startswith("block"):
            src = "block%d" % (int(name[5:]) * n_s // n_b)
        ratio = winner.channels[src] / float(s_slots[src].max_channels)
        out[name] = int(min(slot.max_channels, max(8, round(ratio * slot.max_channels / 8.0) * 8)))
    return SubnetConfig(channels=out)


def cost_256(model, config, size=256, probe=64):
    """MACs at ``size``² counted at ``probe``² and scaled by (size/probe)² (exact for these fully
    convolutional generators: every layer's MACs scale with its output area), and params."""
    c = cost(model, (1, model.hparams["in_channels"], probe, probe), config)
    return {"macs": c["macs"] * (size // probe) ** 2, "params": c["params"]}


def table_256(winner, student, budget_width):
    teacher = ResnetGenerator(3, 3, ngf=64, n_blocks=9, norm="bn")
    mobile = MobileResnetGenerator(3, 3, ngf=64, n_blocks=9, norm="in")
    scaled = scaled_config(winner, student, mobile)
    rows = [
        ("teacher ResNet-9 ngf64 w1.0", teacher, 1.0),
        ("teacher / Anycost w%g" % budget_width, teacher, budget_width),
        ("mobile ngf64 (full supernet)", mobile, 1.0),
        ("mobile at the searched ratios", mobile, scaled),
    ]
    out = []
    for name, model, cfg in rows:
        c = cost_256(model, cfg)
        out.append({"name": name, "config": SubnetConfig.coerce(cfg).to_dict(), "gmacs": c["macs"] / 1e9,
                    "mparams": c["params"] / 1e6, "macs": c["macs"], "params": c["params"]})
    full = out[0]["macs"]
    for r in out:
        r["vs_teacher"] = full / float(r["macs"])
    return out


# --- main ------------------------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    teacher, tckpt = load_generator(args.checkpoint)
    data = tckpt["data"]
    size = int(data["size"])
    shape = (1, int(data["in_channels"]), size, size)
    train_set, test_set = load_pair(data["name"], size=size, direction=data.get("direction") or "AtoB")
    n_search = min(args.search_images, len(test_set) // 2)
    search_set = Subset(test_set, range(n_search))
    end = len(test_set) if not args.eval_images else min(len(test_set), n_search + args.eval_images)
    eval_set = Subset(test_set, range(n_search, end))
    inputs, targets = next(iter(DataLoader(eval_set, batch_size=len(eval_set))))
    s_inputs, s_targets = next(iter(DataLoader(search_set, batch_size=len(search_set))))
    classifier, _ = load_classifier()
    real_feats, _ = classifier_outputs(targets, classifier)
    budget = args.budget_macs or cost(teacher, shape, args.budget_width)["macs"]
    widths_under = [w for w in teacher.widths if cost(teacher, shape, w)["macs"] <= budget]
    width = max(widths_under) if widths_under else min(teacher.widths)
    say("budget %.2f MMACs; held-out: %d search + %d evaluation pairs; steps %d (+%d fine-tuning)"
        % (budget / 1e6, n_search, len(eval_set), args.steps, args.finetune_steps))
    timings = {}
    tmp = tempfile.mkdtemp(prefix="compression_table-")
    ctx = {"shape": shape, "inputs": inputs, "targets": targets, "classifier": classifier, "real_feats": real_feats,
           "tmp": tmp, "rows": []}
    quiet = {"log": lambda line: None}
    teacher.eval()

    measure_row("teacher w1.0", "teacher", teacher, 1.0, ctx, args)
    measure_row("teacher w%g (slimmable, as is)" % width, "teacher", teacher, width, ctx, args)

    # GAN Compression: supernet → search → fine-tune
    t = time.perf_counter()
    sn = train_supernet(teacher, train_set, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        recon_target=args.supernet_recon_target)
    student = build_model(sn["generator"]["arch"])
    student.load_state_dict(sn["generator"]["state_dict"])
    student.eval()
    timings["supernet_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        result, entries = search_checkpoint_configs(student, s_inputs, s_targets, shape, budget_macs=budget,
                                                    n_configs=1, mode="evolution", population=args.population,
                                                    generations=args.generations, seed=args.seed)
    timings["search_s"] = time.perf_counter() - t
    winner = result.best.config
    say("supernet %.0f s, search %.0f s (%d evaluated): winner %s %s, search PSNR %.2f" % (
        timings["supernet_s"], timings["search_s"], len(result.evaluated), winner.name, dict(winner.channels),
        result.best.quality))
    measure_row("GAN Compression: searched", "gan_compression", student, winner, ctx, args,
                steps=args.steps, search_psnr=result.best.quality)
    t = time.perf_counter()
    tuned = copy.deepcopy(student)
    finetune_subnet(tuned, winner, train_set, args.finetune_steps, teacher=teacher, adapters_state=sn["distill"],
                    batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    timings["finetune_s"] = time.perf_counter() - t
    gc_row = measure_row("GAN Compression: + fine-tune", "gan_compression", tuned, winner, ctx, args,
                         steps=args.steps + args.finetune_steps)

    # Anycost: sort + consistency training, at the budget width
    t = time.perf_counter()
    ac = train_anycost(teacher, train_set, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       lambda_perceptual=args.anycost_lambda_perceptual, **quiet)
    anycost = build_model(ac["generator"]["arch"])
    anycost.load_state_dict(ac["generator"]["state_dict"])
    timings["anycost_s"] = time.perf_counter() - t
    ac_row = measure_row("Anycost w%g" % width, "anycost", anycost.eval(), width, ctx, args, steps=args.steps)
    if not args.no_unsorted:
        t = time.perf_counter()
        ac2 = train_anycost(teacher, train_set, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            lambda_perceptual=args.anycost_lambda_perceptual, sort=False, **quiet)
        unsorted = build_model(ac2["generator"]["arch"])
        unsorted.load_state_dict(ac2["generator"]["state_dict"])
        timings["anycost_unsorted_s"] = time.perf_counter() - t
        measure_row("Anycost w%g, channels not sorted" % width, "anycost", unsorted.eval(), width, ctx, args,
                    steps=args.steps)

    # PPCD: masks, sparsity, attention distillation, pruning
    t = time.perf_counter()
    pp, report = train_ppcd(teacher, train_set, args.steps, alpha=args.ppcd_alpha, batch_size=args.batch_size,
                            lr=args.lr, mask_lr=args.ppcd_mask_lr, lambda_pp=args.ppcd_lambda_pp,
                            lambda_recon=args.ppcd_lambda_recon, seed=args.seed)
    pruned = build_model(pp["generator"]["arch"])
    pruned.load_state_dict(pp["generator"]["state_dict"])
    timings["ppcd_s"] = time.perf_counter() - t
    pp_row = measure_row("PPCD pruned", "ppcd", pruned.eval(), 1.0, ctx, args, steps=args.steps,
                         masks=report["masks"])

    # from scratch, same shapes
    t = time.perf_counter()
    scratch_mobile = MobileResnetGenerator(**student.hparams)
    train_from_scratch(scratch_mobile, winner, train_set, args.steps + args.finetune_steps, args.batch_size, args.lr,
                       args.seed)
    s_gc = measure_row("scratch: mobile @ winner", "scratch", scratch_mobile, winner, ctx, args,
                       steps=args.steps + args.finetune_steps)
    kw = dict(teacher.hparams, widths=[width, 1.0])
    scratch_resnet = ResnetGenerator(**kw)
    train_from_scratch(scratch_resnet, width, train_set, args.steps, args.batch_size, args.lr, args.seed)
    s_ac = measure_row("scratch: ResNet @ w%g shape" % width, "scratch", scratch_resnet, width, ctx, args,
                       steps=args.steps)
    scratch_pruned = build_model(pp["generator"]["arch"])  # the pruned shape, fresh weights
    train_from_scratch(scratch_pruned, 1.0, train_set, args.steps, args.batch_size, args.lr, args.seed)
    s_pp = measure_row("scratch: PPCD-pruned shape", "scratch", scratch_pruned, 1.0, ctx, args, steps=args.steps)
    timings["scratch_s"] = time.perf_counter() - t

    rows = ctx["rows"]
    full = rows[0]
    for r in rows:
        r["macs_vs_teacher"] = full["macs"] / float(r["macs"])
    print(format_table([dict(r, mmacs=r["macs"] / 1e6, kparams=r["params"] / 1e3) for r in rows], [
        ("name", "model", None), ("mmacs", "MMACs", "{:.2f}"), ("macs_vs_teacher", "÷MACs", "{:.1f}"),
        ("kparams", "kParams", "{:.1f}"), ("ort_ms", "ORT ms", "{:.3f}"), ("psnr", "PSNR dB", "{:.2f}"),
        ("ssim", "SSIM", "{:.4f}"), ("fd_fmnist", "FD-FMNIST", "{:.2f}"), ("steps", "steps", None)]))
    verdict = []
    for dist, scratch in ((gc_row, s_gc), (ac_row, s_ac), (pp_row, s_pp)):
        verdict.append({"distilled": dist["name"], "scratch": scratch["name"], "macs": dist["macs"],
                        "psnr_gain_db": dist["psnr"] - scratch["psnr"], "ssim_gain": dist["ssim"] - scratch["ssim"],
                        "fd_gain": scratch["fd_fmnist"] - dist["fd_fmnist"]})
    print()
    for v in verdict:
        print("%s vs %s (equal MACs %.2fM): PSNR %+.2f dB, SSIM %+.4f, FD-FMNIST %+.2f (positive: distillation better)"
              % (v["distilled"], v["scratch"], v["macs"] / 1e6, v["psnr_gain_db"], v["ssim_gain"], v["fd_gain"]))

    big = table_256(winner, student, width)
    print()
    print(format_table(big, [("name", "256² pix2pix (3→3)", None), ("gmacs", "GMACs", "{:.2f}"),
                             ("vs_teacher", "÷MACs", "{:.1f}"), ("mparams", "MParams", "{:.3f}")]))
    print("searched ratios at 256²: %s" % big[-1]["config"]["channels"])
    total = time.perf_counter() - T0
    print("\n%.0f s in all (%s); wrote %s" % (total, ", ".join("%s %.0f" % kv for kv in timings.items()), args.json))

    result_json = {
        "benchmark": "compression_table", "data": data["name"], "size": size,
        "teacher": {"checkpoint": args.checkpoint or "packaged", "arch": teacher.arch(), "metrics": tckpt.get("metrics")},
        "budget_macs": budget, "budget_width": width, "winner": winner.to_dict(), "search": result.to_dict(),
        "args": vars(args), "held_out": {"search": n_search, "eval": len(eval_set)},
        "protocol": {"latency": "ONNX Runtime CPU EP, batch 1, mean of timed runs after warm-up",
                     "warmup": args.warmup, "warmup_s": args.warmup_s, "runs": args.runs, "threads": args.threads,
                     "quality": "PSNR/SSIM per image then mean; FD-FMNIST on classifier features vs real held-out"},
        "environment": environment(threads=args.threads, backends=("onnxruntime",)), "torch": torch.__version__,
        "rows": rows, "verdict": verdict, "table_256": big, "timings_s": timings, "seconds": total,
    }
    write_json_atomic(args.json, result_json, force=True, indent=2)
    return result_json


if __name__ == "__main__":
    main()
