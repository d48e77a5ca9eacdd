"""``edgegan search``: the best sub-networks of a checkpoint under a MACs or latency budget.

GAN Compression's search: candidates are per-slot channel counts (multiples of ``--step`` up to each
slot's maximum, or ``--choices`` ratios), priced in MACs (counted) or in ms (``--latency-table``
measured on the target), evaluated directly (PSNR on validation pairs drawn from the training split),
exhaustively for small spaces and by evolution otherwise. Prints the Pareto front (cost vs quality)
with each config's PSNR on the validation pairs that chose it and on the test split, which did not;
``--out`` writes it as JSON with per-slot ``channels`` configs (the form manifest variants carry).
"""

import argparse
import itertools
import json

from ._common import check_output_path, emit_json, format_table

EPILOG = """examples:
  edgegan search --budget-macs 4.9e9 --checkpoint runs/supernet.pt --out front.json
  edgegan search --budget-ms 30 --latency-table nano-latency.json --checkpoint runs/supernet.pt
  edgegan search --budget-macs 2e7 --choices 0.25,0.5,0.75,1.0 --mode exhaustive --eval-images 50

  # fine-tune the best config under budget (L1 to the target + distillation from the teacher), then build it
  edgegan search --checkpoint runs/supernet.pt --budget-macs 5e6 --finetune-steps 500 \\
      --teacher runs/fmnist_shoes_32.pt --finetune-out runs/winner.pt
  edgegan build --target cpu --checkpoint runs/winner.pt
"""


def _ratios(text):
    try:
        r = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected ratios like 0.25,0.5,1.0, got %r" % text)
    if not r or any(not 0.0 < x <= 1.0 for x in r):
        raise argparse.ArgumentTypeError("ratios must be in (0, 1], got %r" % text)
    return r


def register(sub):
    p = sub.add_parser("search", help="search sub-networks under a MACs or latency budget (GAN Compression)",
                       description=__doc__.split("\n\n")[1].replace("\n", " "), epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", metavar="CKPT.pt", help="supernet checkpoint (default: the packaged model)")
    b = p.add_argument_group("budget")
    b.add_argument("--budget-macs", type=float, help="most MACs per image a config may cost")
    b.add_argument("--budget-ms", type=float, help="most ms a config may take (needs --latency-table)")
    b.add_argument("--latency-table", metavar="JSON", help="latency measured on the target (per config or per layer)")
    s = p.add_argument_group("space and search")
    s.add_argument("--step", type=int, default=8, help="channel counts are multiples of STEP (default 8)")
    s.add_argument("--choices", type=_ratios, metavar="R,R,...", help="per-slot ratios instead of multiples of --step")
    s.add_argument("--mode", choices=("auto", "exhaustive", "evolution"), default="auto",
                   help="auto: exhaustive up to --exhaustive-limit configs (default)")
    s.add_argument("--exhaustive-limit", type=int, default=256)
    s.add_argument("--population", type=int, default=16)
    s.add_argument("--generations", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    e = p.add_argument_group("evaluation")
    e.add_argument("--data", help="the data set (default: the checkpoint's)")
    e.add_argument("--data-root", metavar="DIR", help="Fashion-MNIST idx folder (as `edgegan train`)")
    e.add_argument("--eval-images", "--val-images", dest="eval_images", type=int, default=100,
                   help="validation pairs each config is scored on, drawn from the training split by a permutation "
                        "seeded with --val-seed; they choose the front (default 100: the pairs `edgegan train "
                        "supernet` holds out of its training)")
    e.add_argument("--val-seed", type=int, default=0,  # edgegan.data.split.VALIDATION_SEED (not imported: torch)
                   help="seed of that permutation (default 0, as `edgegan train supernet`)")
    e.add_argument("--test-images", "--finetune-images", dest="test_images", type=int, default=500,
                   help="test-split pairs the front, and a fine-tuned winner before and after, are reported on; "
                        "they choose nothing (default 500)")
    e.add_argument("--recalibrate", type=int, default=0, metavar="N",
                   help="re-estimate each candidate's BatchNorm statistics on N training batches of 16 (not the "
                        "validation pairs) before scoring it (once-for-all supernets with BatchNorm; default 0: as "
                        "stored)")
    e.add_argument("--threads", type=int, help="torch CPU threads")
    f = p.add_argument_group("fine-tuning the best config under budget")
    f.add_argument("--finetune-steps", type=int, default=0, metavar="N",
                   help="fine-tune the winner as a fixed sub-network for N steps (needs --finetune-out)")
    f.add_argument("--finetune-out", metavar="CKPT.pt",
                   help="write the fine-tuned checkpoint: the supernet's weights with the winner's slices "
                        "updated and \"configs\": [winner], which `edgegan build --checkpoint` compiles")
    f.add_argument("--teacher", metavar="CKPT.pt",
                   help="also distil from this teacher (L1 to its output + its features through the "
                        "supernet's stored adapters); default: L1 to the target only")
    f.add_argument("--finetune-lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    f.add_argument("--finetune-batch-size", type=int, default=16, help="default 16")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="FRONT.json", help="write the Pareto front as JSON")
    o.add_argument("--force", action="store_true", help="replace --out if it exists")
    o.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(func=run)


def run(args):
    from ..errors import EdgeganError

    if args.budget_macs is None and args.budget_ms is None:
        raise EdgeganError("give a budget: --budget-macs N or --budget-ms MS --latency-table JSON")
    if args.budget_ms is not None and not args.latency_table:
        raise EdgeganError("--budget-ms needs --latency-table (latency measured on the target)")
    if args.out:
        check_output_path(args.out, args.force)
    if bool(args.finetune_steps) != bool(args.finetune_out):
        raise EdgeganError("--finetune-steps N and --finetune-out CKPT go together")
    if args.finetune_out:
        check_output_path(args.finetune_out, args.force)

    import torch
    from torch.utils.data import DataLoader

    from ..checkpoint import load_generator
    from ..data import load_pair, require_paired
    from ..data.split import validation_split
    from ..train.search import SearchSpace, psnr_evaluator, report_front, search

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.eval_images < 1 or args.test_images < 1:
        raise EdgeganError("--eval-images and --test-images must be at least 1")
    gen, ckpt = load_generator(args.checkpoint)
    data = ckpt["data"]
    size = int(data["size"])
    train, test = load_pair(args.data or data["name"], size=size, root=args.data_root,
                            direction=data.get("direction") or "AtoB", test_limit=args.test_images)
    require_paired(test, "edgegan search", args.data or data["name"])
    try:
        val, rest = validation_split(train, args.eval_images, seed=args.val_seed)
    except ValueError as e:
        raise EdgeganError("--eval-images %d: %s" % (args.eval_images, e))
    inputs, targets = next(iter(DataLoader(val, batch_size=len(val))))
    test_inputs, test_targets = next(iter(DataLoader(test, batch_size=len(test))))
    calib = [x for x, _ in itertools.islice(DataLoader(rest, batch_size=16), args.recalibrate)] \
        if args.recalibrate else None
    space = SearchSpace.from_model(gen, step=args.step, choices=args.choices)
    try:
        result = search(gen, psnr_evaluator(gen, inputs, targets, recalibrate=calib), (1, data["in_channels"], size, size),
                        budget_macs=args.budget_macs, budget_ms=args.budget_ms, latency_table=args.latency_table,
                        space=space, mode=args.mode, exhaustive_limit=args.exhaustive_limit,
                        population=args.population, generations=args.generations, seed=args.seed)
    except ValueError as e:
        raise EdgeganError(str(e))
    report_front(gen, result.front, psnr_evaluator(gen, test_inputs, test_targets, recalibrate=calib))
    held = ckpt.get("train", {}).get("validation") or {}
    unseen = held.get("seed") == args.val_seed and int(held.get("images", 0)) >= args.eval_images
    out = dict(result.to_dict(), space_size=space.size, budget_macs=args.budget_macs, budget_ms=args.budget_ms,
               checkpoint=args.checkpoint, quality="psnr_db", macs_convention="edgegan",  # cost()'s default
               validation={"split": "train", "images": len(val), "seed": args.val_seed,
                           "held_out_of_training": bool(unseen)},
               test={"split": getattr(test, "split", "test"), "images": len(test)})
    if args.finetune_steps and result.best is not None:
        out["finetune"] = _finetune(gen, ckpt, result, rest, test, calib, args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)
    if args.json:
        emit_json(out)
        return 0
    if not result.front:
        print("no configuration fits the budget (%d evaluated of %d)" % (len(result.evaluated), space.size))
        return 1
    rows = [dict(name=c.config.name, macs=c.macs, params=c.params, ms=c.ms, psnr=c.quality, test=c.test_quality,
                 channels=",".join("%s=%d" % kv for kv in c.config.channels.items())) for c in result.front]
    print(format_table(rows, [("name", "config", None), ("macs", "MACs", "{:,}"), ("params", "params", "{:,}"),
                              ("ms", "ms", "{:.2f}"), ("psnr", "PSNR val dB", "{:.2f}"),
                              ("test", "PSNR test dB", "{:.2f}"), ("channels", "channels", None)]))
    print("%s search: %d configs evaluated of %d; best under budget: %s"
          % (result.mode, len(result.evaluated), space.size, result.best.config.name))
    print("PSNR val: %d training pairs (seed %d%s) chose the front; PSNR test: %d %s pairs report it"
          % (len(val), args.val_seed, ", held out of the supernet's training" if unseen else "", len(test),
             out["test"]["split"]))
    ft = out.get("finetune")
    if ft:
        print("fine-tuned %s for %d steps (%s): test PSNR %.2f → %.2f dB, SSIM %.4f → %.4f on %d pairs; wrote %s"
              % (ft["config"]["name"], ft["steps"], ft["losses"], ft["before"]["psnr"], ft["after"]["psnr"],
                 ft["before"]["ssim"], ft["after"]["ssim"], ft["images"], ft["out"]))
    return 0


def _finetune(gen, ckpt, result, train, held_out, calib, args):
    """Fine-tune the best config under budget and write a checkpoint that builds it (``"configs": [winner]``)."""
    import copy

    from ..checkpoint import load_generator, save_checkpoint
    from ..errors import EdgeganError
    from ..train.distill import evaluate_config, finetune_subnet
    from ..train.search import config_entries, recalibrated_subnet

    best = result.best
    model = copy.deepcopy(gen)
    if calib:  # score "before" as the search did: with BatchNorm statistics re-estimated for the winner
        before = evaluate_config(recalibrated_subnet(model, best.config, calib), held_out, 1.0)
    else:
        before = evaluate_config(model, held_out, best.config)
    teacher = None
    if args.teacher:
        teacher, tckpt = load_generator(args.teacher)
        if not hasattr(teacher, "blocks"):
            raise EdgeganError("--teacher must be a ResNet-style generator")
    adapters = ckpt.get("distill") if teacher is not None else None
    history = finetune_subnet(model, best.config, train, args.finetune_steps, teacher=teacher, adapters_state=adapters,
                              batch_size=args.finetune_batch_size, lr=args.finetune_lr, seed=args.seed)
    after = evaluate_config(model, held_out, best.config)
    entry = config_entries([best])[0]
    entry["test_quality"] = after["psnr"]  # "quality" stays the validation score that chose it
    new = dict(ckpt)
    new["generator"] = {"arch": model.arch(), "state_dict": {k: v.detach().cpu().clone()
                                                             for k, v in model.state_dict().items()}}
    new["configs"] = [entry]
    new["metrics"] = {best.config.name: dict(after, images=len(held_out))}
    losses = "L1 to the target" + (" + distillation from %s" % args.teacher if teacher is not None else "")
    info = {"config": best.config.to_dict(), "macs": best.macs, "params": best.params, "steps": args.finetune_steps,
            "lr": args.finetune_lr, "batch_size": args.finetune_batch_size, "teacher": args.teacher,
            "losses": losses, "images": len(held_out), "before": before, "after": after, "search_quality": best.quality,
            "history": history, "out": args.finetune_out}
    new["train"] = dict(ckpt.get("train", {}), finetune=info)
    new["search"] = dict(ckpt.get("search", {}), result=dict(result.to_dict(), budget_macs=args.budget_macs,
                                                             budget_ms=args.budget_ms))
    new.pop("discriminator", None)
    save_checkpoint(args.finetune_out, new)
    return info
