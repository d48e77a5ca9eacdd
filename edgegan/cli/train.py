"""``edgegan train RECIPE``: train a generator and write a checkpoint.

Recipes are sub-commands of ``train`` (``slimmable``, ``supernet``, ``ppcd`` here); the argument groups shared by
recipes (data, generator, optimisation, output) are helpers so that later recipes reuse them.
Torch and the training code are imported inside the handlers.
"""

import argparse

from ._common import check_output_path, emit_json, format_table, status
from ._training import run_training

SLIMMABLE_EPILOG = """examples:
  # the packaged default model (Fashion-MNIST shoes, 32², grey): ~22 CPU-minutes on 1 thread
  edgegan train slimmable --data fmnist-shoes --ngf 32 --steps 1000 --eval-every 0 --threads 1 \\
      --generator-only --out runs/fmnist_shoes_32.pt

  # a quick smoke run
  edgegan train slimmable --data fmnist-shoes --ngf 4 --n-blocks 2 --steps 20 --out /tmp/tiny.pt

  # the pix2pix UNet instead of the ResNet (5 levels at 32²; unet_256 at --size 256)
  edgegan train slimmable --data fmnist-shoes --arch unet --ngf 16 --steps 800 --out runs/unet32.pt

  # a pix2pix aligned folder (DIR/train, DIR/val or DIR/test of A|B images), photo → edges, on a GPU
  edgegan data get edges2shoes
  edgegan train slimmable --data datasets/edges2shoes --direction BtoA --size 64 --ngf 32 \\
      --steps 20000 --batch-size 16 --device cuda --out runs/e2s64.pt

  # the 256² edges → shoes model on a GPU: pix2pix's ResNet-9 (ngf 64), 15 epochs of 49,825 pairs at batch 4
  # (186,840 steps); bf16 autocast, channels-last, 8 loader workers, jitter/flip, FID per width on 200 val pairs
  edgegan train slimmable --data datasets/edges2shoes --size 256 --ngf 64 --n-blocks 9 --ndf 64 \\
      --batch-size 4 --steps 186840 --device cuda --amp bf16 --channels-last --workers 8 \\
      --eval-every 10000 --eval-images 200 --save-every 2000 --log-csv runs/e2s256.csv \\
      --fid-weights ~/pt_inception-2015-12-05-6726825d.pth --out runs/e2s256.pt

  # ablations: distil every width from the widest, or not at all; one D for all widths
  edgegan train slimmable --data fmnist-shoes --distill naive --out runs/naive.pt
  edgegan train slimmable --data fmnist-shoes --same-d --out runs/same_d.pt

  # long runs: a resumable checkpoint every 500 steps and a CSV of losses; continue after a stop
  edgegan train slimmable --data fmnist-shoes --steps 20000 --save-every 500 --log-csv runs/e2s.csv \\
      --out runs/e2s.pt
  edgegan train slimmable --data fmnist-shoes --steps 20000 --save-every 500 --resume runs/e2s.pt --out runs/e2s.pt

  # the same command on N GPUs (or N CPU processes: gloo): DistributedDataParallel, one shard per rank
  torchrun --nproc-per-node 4 -m edgegan train slimmable --data fmnist-shoes --device cuda --out runs/e2s.pt
"""


def _widths(text):
    try:
        widths = sorted(float(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated width multipliers like 0.25,0.5,1.0, got %r" % text)
    if not widths or any(not 0.0 < w <= 1.0 for w in widths):
        raise argparse.ArgumentTypeError("widths must be in (0, 1], got %r" % text)
    return tuple(widths)


def _size(text):
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an image side in pixels such as 32, got %r" % text)
    if size < 8 or size % 4:
        raise argparse.ArgumentTypeError("the image side must be a multiple of 4 and at least 8 (the generator "
                                         "halves it twice), got %d" % size)
    return size


def add_data_arguments(parser, from_teacher=False):
    """``--data``, ``--data-root``, ``--direction``, ``--size``; ``from_teacher``: --size and --direction default
    to the teacher checkpoint's data (the recipe resolves ``None``)."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", required=True, metavar="fmnist-shoes|DIR",
                   help="fmnist-shoes (Fashion-MNIST shoes, edges → photo) or a pix2pix aligned folder")
    g.add_argument("--data-root", metavar="DIR",
                   help="folder holding the four Fashion-MNIST idx files (default: the Debian "
                        "dataset-fashion-mnist package's /usr/share/datasets/fashion-mnist)")
    g.add_argument("--direction", choices=("AtoB", "BtoA"), default=None if from_teacher else "AtoB",
                   help="aligned folders: which half is the input (default: %s)"
                        % ("the teacher's, else AtoB" if from_teacher else "AtoB"))
    g.add_argument("--size", type=_size, default=None if from_teacher else 32,
                   help="image side in pixels, a multiple of 4 (default: %s)"
                        % ("the teacher's" if from_teacher else "32"))


def add_generator_arguments(parser):
    g = parser.add_argument_group("generator")
    g.add_argument("--arch", choices=("resnet", "unet"), default="resnet",
                   help="resnet: the pix2pix ResNet generator (default); unet: the pix2pix UNet (unet_256 / unet_128)")
    g.add_argument("--ngf", type=int, default=16, help="channels of the first layer at full width (default 16)")
    g.add_argument("--n-blocks", type=int, help="resnet: residual blocks (default 6)")
    g.add_argument("--num-downs", type=int,
                   help="unet: levels, each halving the image (default: as many as --size allows, at most 8: "
                        "unet_256 at 256², unet_128 is 7; 5 at 32²)")
    g.add_argument("--dropout", action="store_true",
                   help="unet: Dropout(0.5) in the middle levels, as pix2pix's --dropout (off at inference)")
    g.add_argument("--norm", choices=("bn", "in"), default="bn",
                   help="bn: switchable BatchNorm, folds into convs on export (default); in: InstanceNorm")
    g.add_argument("--padding", choices=("reflect", "zero"), help="resnet: default reflect")
    g.add_argument("--upsample", choices=("transposed", "resize"),
                   help="resnet: transposed conv or nearest-resize + conv (default transposed)")
    g.add_argument("--widths", type=_widths, default=(0.25, 0.5, 0.75, 1.0), metavar="W,W,...",
                   help="width multipliers to train (default 0.25,0.5,0.75,1.0)")


def generator_options(args):
    """The ``SlimmableConfig`` fields of the generator arguments; options of the other architecture refused."""
    from ..errors import EdgeganError

    own = {"resnet": ("n_blocks", "padding", "upsample"), "unet": ("num_downs", "dropout")}
    for arch, names in own.items():
        given = [n for n in names if getattr(args, n) not in (None, False)]
        if given and args.arch != arch:
            raise EdgeganError("%s: %s of --arch %s, not of --arch %s" % (
                ", ".join("--" + n.replace("_", "-") for n in given), "options" if len(given) > 1 else "an option",
                arch, args.arch))
    options = {"arch": args.arch, "ngf": args.ngf, "norm": args.norm, "widths": args.widths}
    for name in own[args.arch]:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def add_optimisation_arguments(parser):
    g = parser.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    g.add_argument("--batch-size", type=int, default=32, help="default 32")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate, betas (0.5, 0.999) (default 2e-4)")
    g.add_argument("--eval-every", type=int, default=500,
                   help="score the first --eval-images held-out pairs every N steps; 0: only at the end")
    g.add_argument("--eval-images", type=int, default=500, help="held-out pairs of the periodic evaluation")
    g.add_argument("--seed", type=int, default=0, help="seeds python, numpy and torch (default 0)")
    g.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def add_output_arguments(parser):
    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, metavar="CKPT.pt", help="checkpoint to write")
    g.add_argument("--force", action="store_true", help="replace --out if it exists")
    g.add_argument("--generator-only", action="store_true",
                   help="leave the discriminator out of the checkpoint (smaller; build needs only the generator)")
    g.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def register(subparsers):
    train = subparsers.add_parser(
        "train", help="train a generator (recipes: slimmable, supernet, ppcd, anycost, slimgan)",
        description="Train a generator with one of the recipes and write a checkpoint for `edgegan build`.")
    recipes = train.add_subparsers(dest="recipe", metavar="RECIPE")
    train.set_defaults(func=lambda args: train.print_help() or 2)
    _register_slimmable(recipes)
    _register_supernet(recipes)
    _register_ppcd(recipes)
    _register_anycost(recipes)
    from .train_slimgan import register_recipe as register_slimgan

    register_slimgan(recipes)


def _register_slimmable(recipes):
    p = recipes.add_parser(
        "slimmable", help="SlimGAN: one generator for every width, shared-trunk multi-head D, inplace distillation",
        description="Train a width-switchable (slimmable) pix2pix ResNet or UNet generator the SlimGAN way: every step "
                    "runs all widths widest first; a conditional shared-trunk PatchGAN has one hinge-loss head "
                    "per width; each width also gets λ_L1·L1 to the target and λ_distill·MSE to the next wider "
                    "width's (detached) output. Prints held-out PSNR / SSIM / L1 per width at the end.",
        epilog=SLIMMABLE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p)
    add_generator_arguments(p)
    g = p.add_argument_group("discriminator and losses")
    g.add_argument("--ndf", type=int, default=16, help="discriminator channels of its first layer (default 16)")
    g.add_argument("--d-layers", type=int,
                   help="PatchGAN stride-2 layers (default: 2 below 128², 3 from 128²)")
    g.add_argument("--d-share", "--n-share", dest="d_share", type=int, default=2,
                   help="discriminator layers shared by the per-width heads (default 2; 0: one D per width)")
    g.add_argument("--same-d", action="store_true",
                   help="ablation: one discriminator scores every width (default: one head per width)")
    g.add_argument("--slimmable-d", action="store_true",
                   help="ablation: one discriminator whose width switches with the generator's (--d-share unused)")
    g.add_argument("--lambda-l1", type=float, default=100.0, help="weight of L1 to the target (default 100)")
    g.add_argument("--lambda-distill", type=float, default=100.0, help="weight of inplace distillation (default 100)")
    g.add_argument("--distill", choices=("stepwise", "naive", "none"), default="stepwise",
                   help="stepwise: from the next wider width (SlimGAN, default); naive: from the widest")
    g.add_argument("--recalibrate-bn", type=int, default=0, metavar="N",
                   help="re-estimate every width's BatchNorm statistics on N batches after training")
    add_optimisation_arguments(p)
    g = p.add_argument_group("speed and held-out FID (the 256² recipe on a GPU)")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="autocast the forward passes: bf16 (CUDA, or CPUs with AVX512-BF16/AMX) or fp16 (CUDA, with "
                        "loss scaling); default none (fp32)")
    g.add_argument("--channels-last", action="store_true",
                   help="NHWC memory format for the models and batches (faster convolutions on recent GPUs)")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="DataLoader processes decoding images (persistent; pinned memory with --device cuda); "
                        "default 0: in the training process")
    g.add_argument("--no-augment", action="store_true",
                   help="folders: no pix2pix jitter / flip (default: resize to 286/256 of --size, random crop, "
                        "random horizontal flip, the same for input and target; never on held-out data)")
    g.add_argument("--fid-weights", metavar="PATH",
                   help="pytorch-fid Inception weights (pt_inception-2015-12-05-6726825d.pth): FID per width on the "
                        "held-out set at the end")
    g = p.add_argument_group("resuming and logging")
    g.add_argument("--resume", metavar="CKPT",
                   help="continue a run from a checkpoint written with --save-every (or a finished one) up to --steps; "
                        "--out may be the same file")
    g.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="write a resumable checkpoint to --out every N steps (default 0: only at the end)")
    g.add_argument("--log-csv", metavar="PATH", help="write one CSV row (losses per width, seconds) per logged step")
    g.add_argument("--log-every", type=int, default=100, metavar="N", help="CSV row every N steps (default 100)")
    add_output_arguments(p)
    p.set_defaults(func=run_slimmable)


def _configure_threads(args):
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _say_loading(args, name=None):
    """A line on stderr before the data set loads (Fashion-MNIST edge maps take seconds to compute)."""
    name = name or args.data
    if not getattr(args, "json", False):
        status("loading %s (held-out pairs too%s)..." % (
            name, ", computing Canny edge maps" if name == "fmnist-shoes" else ""))


def run_slimmable(args):
    return run_training(args, _run_slimmable)


def _run_slimmable(args):
    from ..checkpoint import save_checkpoint
    from ..errors import EdgeganError
    from ..data import load_pair, require_paired
    from ..train.slimmable import SlimmableConfig, resolve_device, train_slimmable

    _configure_threads(args)
    config = SlimmableConfig(
        **generator_options(args), ndf=args.ndf, d_layers=args.d_layers, d_share=args.d_share, same_d=args.same_d,
        slimmable_d=args.slimmable_d,
        steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, lambda_l1=args.lambda_l1, lambda_distill=args.lambda_distill, distill=args.distill,
        eval_every=args.eval_every, eval_images=args.eval_images, recalibrate_bn=args.recalibrate_bn,
        seed=args.seed, device=args.device, amp=args.amp, channels_last=args.channels_last, workers=args.workers,
        fid_weights=args.fid_weights)
    config.validate()
    if args.save_every < 0:
        raise EdgeganError("--save-every must be 0 (off) or a number of steps, got %r" % args.save_every)
    from ..train.precision import Precision

    Precision(args.amp, resolve_device(args.device))  # a clear error for --amp fp16 on the CPU, before loading data
    _say_loading(args)
    train_set, test_set = load_pair(args.data, size=args.size, root=args.data_root, direction=args.direction,
                                    augment=not args.no_augment)
    require_paired(train_set, "edgegan train slimmable", args.data)
    ckpt = train_slimmable(config, train_set, test_set, progress=not args.json, resume=args.resume,
                           save_path=args.out, save_every=args.save_every, log_csv=args.log_csv,
                           log_every=args.log_every)
    from ..train.distributed import is_main_process

    if not is_main_process():
        return 0  # rank 0 writes and reports
    ckpt["train"]["data"] = args.data
    if args.generator_only:
        del ckpt["discriminator"]
        ckpt.pop("resume", None)  # optimizer state without its discriminator cannot resume
    save_checkpoint(args.out, ckpt)
    report_metrics(args, ckpt)


def report_metrics(args, ckpt):
    """Print the held-out metrics per width (table, or JSON with ``--json``)."""
    train = ckpt["train"]
    if args.json:
        emit_json({"out": args.out, "recipe": train["recipe"], "steps": train["steps"],
                   "seconds": train["seconds"], "data": ckpt["data"]["name"],
                   "test_images": train["test_images"], "metrics": ckpt["metrics"]})
        return
    rows = [dict(m, width=key) for key, m in ckpt["metrics"].items()]
    columns = [("width", "width", None), ("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
               ("l1", "L1", "{:.4f}")]
    if any("fid" in r for r in rows):  # --fid-weights
        columns.append(("fid", "FID", "{:.2f}"))
    print(format_table(rows, columns))
    print("held-out: %d pairs of %s; %d steps in %.0f s; wrote %s"
          % (train["test_images"], ckpt["data"]["name"], train["steps"], train["seconds"], args.out))


SUPERNET_EPILOG = """examples:
  # a once-for-all mobile student of a trained teacher, then search it and build the front
  edgegan train supernet --teacher runs/fmnist_shoes_32.pt --data fmnist-shoes --steps 2000 --out runs/supernet.pt
  edgegan search --checkpoint runs/supernet.pt --budget-macs 2e7 --out front.json
  edgegan build --target cpu --checkpoint runs/supernet.pt --configs front.json

  # search right after training and store 3 configs of the front in the checkpoint; build builds them
  edgegan train supernet --teacher runs/fmnist_shoes_32.pt --data fmnist-shoes --steps 2000 \\
      --budget-macs 9e6 --search-configs 3 --eval-every 500 --out runs/supernet.pt
  edgegan build --target cpu --checkpoint runs/supernet.pt
"""

PPCD_EPILOG = """examples:
  # prune the teacher itself with learnable masks, distilling its attention maps
  edgegan train ppcd --teacher runs/fmnist_shoes_32.pt --data fmnist-shoes --steps 2000 --out runs/ppcd.pt
  edgegan build --target cpu --checkpoint runs/ppcd.pt

  # short budgets (hundreds of steps): with the default --lambda-pp 0.01 nothing is pruned in 400 steps;
  # benchmarks/compression_table.py uses these, plus an L1 term to the teacher's output (not in the paper)
  edgegan train ppcd --teacher runs/fmnist_shoes_32.pt --data fmnist-shoes --steps 1200 \\
      --alpha 0.9 --lambda-pp 1.0 --mask-lr 2e-3 --lambda-recon 10 --out runs/ppcd.pt
"""


def add_teacher_arguments(parser):
    g = parser.add_argument_group("teacher")
    g.add_argument("--teacher", required=True, metavar="CKPT.pt",
                   help="the teacher's checkpoint (`edgegan train slimmable`, or a generator brought in with "
                        "`edgegan import`); run at full width. --size and --direction default to its data's")
    g.add_argument("--no-inherit-d", action="store_true",
                   help="start the discriminator from scratch even when the teacher checkpoint has one")
    return g


def _load_teacher(args):
    from ..checkpoint import load_generator
    from ..errors import EdgeganError

    teacher, ckpt = load_generator(args.teacher)
    if not hasattr(teacher, "blocks"):
        raise EdgeganError("%s: the teacher must be a ResNet-style generator (resnet_generator, "
                           "mobile_resnet_generator), not %s" % (args.teacher, ckpt["generator"]["arch"]["name"]))
    teacher_d = None
    d = ckpt.get("discriminator")
    if d is not None and not args.no_inherit_d and d.get("arch", {}).get("name") == "shared_trunk_patchgan":
        teacher_d = d
    return teacher, ckpt, teacher_d


def _check_data(teacher_ckpt, train_set, args):
    from ..errors import EdgeganError

    meta, tdata = train_set.describe(), teacher_ckpt["data"]
    for key in ("in_channels", "out_channels"):
        if int(meta[key]) != int(tdata[key]):
            raise EdgeganError("--data %s has %s=%s but the teacher takes %s; pass the teacher's own kind of data "
                               "(an RGB generator needs a colour pix2pix aligned folder, --data DIR)"
                               % (args.data, key, meta[key], tdata[key]))


def _load_teacher_data(args, tckpt):
    """The (train, held-out) pairs for a teacher: ``--size`` and ``--direction`` default to the teacher's data;
    an aligned folder is read with the teacher's channel count."""
    from ..data import load_pair

    tdata = tckpt["data"]
    args.size = args.size or int(tdata["size"])
    args.direction = args.direction or tdata.get("direction") or "AtoB"
    return load_pair(args.data, size=args.size, root=args.data_root, direction=args.direction,
                     channels=tdata.get("in_channels"))


def inherit_input_spec(ckpt, source_data):
    """Keep what a generator's inputs are when the data set cannot say: an aligned folder describes its
    input as its "A"/"B" half, while an imported (or fmnist) generator records that it takes edge maps and
    with which Canny parameters; carry those over so that `edgegan run --edges` and the demo still work."""
    data, source_input = ckpt["data"], source_data.get("input") or {}
    if data.get("edges") or source_input.get("content") != "edges" or not source_data.get("edges"):
        return ckpt
    if int(data.get("in_channels", -1)) != int(source_data.get("in_channels", -2)):
        return ckpt
    data["input"] = dict(data.get("input") or {}, content="edges")
    data["edges"] = dict(source_data["edges"])
    return ckpt


def _register_supernet(recipes):
    p = recipes.add_parser(
        "supernet", help="GAN Compression: a once-for-all mobile student distilled from a teacher",
        description="Train a mobile (separable-conv ResBlock) student as a once-for-all supernet: each step "
                    "samples per-slot channel counts (multiples of --step), and the student learns "
                    "L = L_cGAN + λ_recon·L1(student, target) + λ_distill·Σ‖f_t(S_t) − T_t‖² over 4 "
                    "intermediate features (learnable 1×1 adapters); the target is the real one, or the teacher's "
                    "output with --recon-target teacher. --val-images training "
                    "pairs are held out for the search. The checkpoint is what `edgegan search` reads; prints "
                    "held-out PSNR / SSIM / L1 at the student's widths.",
        epilog=SUPERNET_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_teacher_arguments(p)
    add_data_arguments(p, from_teacher=True)
    g = p.add_argument_group("student")
    g.add_argument("--ngf", type=int, help="student channels of its first layer (default: the teacher's)")
    g.add_argument("--n-blocks", type=int, help="student residual blocks (default: the teacher's)")
    g.add_argument("--norm", choices=("bn", "in"), default="in",
                   help="in: InstanceNorm (default: a supernet's BN statistics belong to no sub-network); "
                        "bn: search it with --recalibrate")
    g.add_argument("--step", type=int, default=8, help="channel counts are multiples of STEP (default 8)")
    g.add_argument("--lambda-recon", type=float, default=10.0, help="weight of the L1 reconstruction term (default 10)")
    g.add_argument("--recon-target", choices=("auto", "real", "teacher"), default="auto",
                   help="what the L1 term pulls the student toward: auto (default) is the real target of the "
                        "pair (this recipe takes paired data; train_supernet uses the teacher's output on unpaired "
                        "data, GAN Compression's unpaired → paired); teacher: the teacher's output instead")
    g.add_argument("--lambda-distill", type=float, default=1.0, help="weight of feature distillation (default 1)")
    g.add_argument("--val-images", "--search-images", dest="val_images", type=int, default=100,
                   help="training pairs held out of training (a permutation seeded with 0) on which the search "
                        "scores candidates, here and in `edgegan search` (default 100; 0: hold none out)")
    g = p.add_argument_group("search after training (stores \"configs\" in the checkpoint for `edgegan build`)")
    g.add_argument("--budget-macs", type=float,
                   help="search the trained supernet under this MACs budget and store the chosen configs")
    g.add_argument("--search-configs", type=int, metavar="N",
                   help="store N configs of the Pareto front, spread by cost, the best included (default 1 with "
                        "--budget-macs; alone: search without a budget)")
    g.add_argument("--search-mode", choices=("auto", "exhaustive", "evolution"), default="auto",
                   help="as `edgegan search --mode` (default auto)")
    g.add_argument("--population", type=int, default=16, help="evolutionary search population (default 16)")
    g.add_argument("--generations", type=int, default=8, help="evolutionary search generations (default 8)")
    add_optimisation_arguments(p)
    p.set_defaults(batch_size=16)
    add_output_arguments(p)
    p.set_defaults(func=run_supernet)


def _register_ppcd(recipes):
    p = recipes.add_parser(
        "ppcd", help="PPCD-GAN: learnable channel masks + sparsity + attention distillation, then pruning",
        description="Put a learnable mask (sigmoid(10³·w)) after each conv of every residual block of the "
                    "teacher (or of --init) plus a transition 1×1 conv, train with PPCD's loss L = L_ADV + "
                    "λ_PP·Σ|w+1| + λ_CD·ℓ_CD (attention maps distilled from the teacher; --lambda-recon adds an "
                    "L1 term to the teacher's output), binarize masks once more than --alpha of their channels "
                    "are off, then remove the zero channels and fold each transition conv into its block's last "
                    "conv. Writes a pruned checkpoint `edgegan build` compiles, with fewer MACs than the teacher "
                    "once any channel is removed.",
        epilog=PPCD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_teacher_arguments(p)
    add_data_arguments(p, from_teacher=True)
    g = p.add_argument_group("masks and losses")
    g.add_argument("--init", metavar="CKPT.pt", help="generator to prune (default: the teacher); same block count")
    g.add_argument("--init-width", type=float, default=1.0, help="width of --init (or the teacher) to start from")
    g.add_argument("--alpha", type=float, default=0.5,
                   help="binarize a mask once this fraction of its channels is at most 0.005 (default 0.5)")
    g.add_argument("--lambda-pp", type=float, default=0.01, help="weight of the sparsity loss (default 0.01)")
    g.add_argument("--lambda-cd", type=float, default=1.0, help="weight of attention distillation (default 1)")
    g.add_argument("--lambda-recon", type=float, default=0.0,
                   help="weight of an extra L1 term to the teacher's output (default 0: PPCD's loss). The paper "
                        "has no pixel-level term: its pruned generator follows the teacher through the attention "
                        "maps and the discriminator only; this term also pulls its outputs toward the teacher's "
                        "pixel by pixel (what PSNR measures)")
    g.add_argument("--mask-lr", type=float, help="learning rate of the mask parameters (default: --lr)")
    g.add_argument("--mask-init", type=float, default=0.01, help="initial mask parameter w (default 0.01: m ≈ 1)")
    add_optimisation_arguments(p)
    p.set_defaults(batch_size=16)
    add_output_arguments(p)
    p.set_defaults(func=run_ppcd)


def _evaluate_into(ckpt, test_set, args):
    from torch.utils.data import Subset

    from ..models import build_model
    from ..train.metrics import evaluate_widths

    gen = build_model(ckpt["generator"]["arch"])
    gen.load_state_dict(ckpt["generator"]["state_dict"])
    gen = gen.to(args.device).eval()
    n = min(len(test_set), args.eval_images) if args.eval_images else len(test_set)
    ckpt["metrics"] = evaluate_widths(gen, Subset(test_set, range(n)), [float(w) for w in ckpt["widths"]],
                                      device=args.device, progress=not getattr(args, "json", False))
    ckpt["train"]["test_images"] = n


def _finish(args, ckpt, test_set, teacher_ckpt=None):
    from ..checkpoint import save_checkpoint

    if teacher_ckpt is not None:
        inherit_input_spec(ckpt, teacher_ckpt["data"])
    _evaluate_into(ckpt, test_set, args)
    ckpt["train"]["data"] = args.data
    ckpt["train"]["teacher"] = args.teacher
    if args.generator_only:
        ckpt.pop("discriminator", None)
    save_checkpoint(args.out, ckpt)
    report_metrics(args, ckpt)


def run_supernet(args):
    check_output_path(args.out, args.force)
    from ..data import require_paired
    from ..train.distill import train_supernet
    from ..train.slimmable import resolve_device

    _configure_threads(args)
    resolve_device(args.device)
    from ..data.split import VALIDATION_SEED, validation_split
    from ..errors import EdgeganError

    teacher, tckpt, teacher_d = _load_teacher(args)
    _say_loading(args)
    train_set, test_set = _load_teacher_data(args, tckpt)
    require_paired(train_set, "edgegan train supernet", args.data)
    _check_data(tckpt, train_set, args)
    searching = args.budget_macs is not None or bool(args.search_configs)
    if args.val_images < 0 or (searching and not args.val_images):
        raise EdgeganError("--val-images must be at least 1 to search (the search scores candidates on them), "
                           "or 0 without a search, got %d" % args.val_images)
    val_set = None
    if args.val_images:
        try:
            val_set, train_set = validation_split(train_set, args.val_images, seed=VALIDATION_SEED)
        except ValueError as e:
            raise EdgeganError("--val-images %d: %s; hold out fewer pairs (or 0 without a search)"
                               % (args.val_images, e))
    ckpt = train_supernet(teacher, train_set, args.steps, ngf=args.ngf, n_blocks=args.n_blocks, norm=args.norm,
                          step=args.step, batch_size=args.batch_size, lr=args.lr, lambda_recon=args.lambda_recon,
                          lambda_distill=args.lambda_distill, seed=args.seed, device=args.device, teacher_d=teacher_d,
                          eval_set=test_set, eval_every=args.eval_every, eval_images=args.eval_images,
                          recon_target=args.recon_target)
    if val_set is not None:
        ckpt["train"]["validation"] = {"split": "train", "images": len(val_set), "seed": VALIDATION_SEED}
    if searching:
        _search_into(ckpt, val_set, test_set, args)
    _finish(args, ckpt, test_set, tckpt)
    if ckpt.get("configs") and not args.json:
        print(format_table([{"name": e["config"]["name"], "macs": e["macs"], "params": e["params"],
                             "psnr": e["quality"], "test": e["test_quality"]} for e in ckpt["configs"]],
                           [("name", "stored config", None), ("macs", "MACs", "{:,}"), ("params", "params", "{:,}"),
                            ("psnr", "PSNR val dB", "{:.2f}"), ("test", "PSNR test dB", "{:.2f}")]))
        result = ckpt["search"]["result"]
        print("PSNR val: %d held-out training pairs chose them; PSNR test: %d test pairs report them"
              % (result["validation"]["images"], result["test"]["images"]))
        print("`edgegan build --checkpoint %s` builds these configs" % args.out)


def _search_into(ckpt, val_set, test_set, args):
    """Search the trained supernet on ``val_set`` and store the chosen front configs in ``ckpt["configs"]``,
    with the front's PSNR on the held-out test pairs (the ones the checkpoint's metrics are on)."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from ..errors import EdgeganError
    from ..models import build_model
    from ..train.search import search_checkpoint_configs

    gen = build_model(ckpt["generator"]["arch"])
    gen.load_state_dict(ckpt["generator"]["state_dict"])
    gen = gen.to(args.device).eval()
    inputs, targets = next(iter(DataLoader(val_set, batch_size=len(val_set))))
    n_test = min(len(test_set), args.eval_images) if args.eval_images else len(test_set)
    test_x, test_y = next(iter(DataLoader(Subset(test_set, range(n_test)), batch_size=n_test)))
    meta = ckpt["data"]
    shape = (1, int(meta["in_channels"]), int(meta["size"]), int(meta["size"]))
    with torch.no_grad():
        try:
            result, entries = search_checkpoint_configs(
                gen, inputs.to(args.device), targets.to(args.device), shape, budget_macs=args.budget_macs,
                n_configs=args.search_configs or 1, step=args.step, mode=args.search_mode,
                population=args.population, generations=args.generations, seed=args.seed,
                test=(test_x.to(args.device), test_y.to(args.device)))
        except ValueError as e:
            raise EdgeganError(str(e))
    if not entries:
        raise EdgeganError("no sub-network of the supernet fits --budget-macs %g (%d evaluated)"
                           % (args.budget_macs, len(result.evaluated)))
    # BatchNorm supernets are scored with their stored statistics: the ones `edgegan build` compiles
    ckpt["configs"] = entries
    ckpt["search"] = dict(ckpt.get("search", {}), result=dict(
        result.to_dict(), budget_macs=args.budget_macs, images=len(val_set), quality="psnr_db",
        validation=dict(ckpt["train"]["validation"]), test={"split": getattr(test_set, "split", "test"),
                                                            "images": n_test}))


def run_ppcd(args):
    check_output_path(args.out, args.force)
    from ..checkpoint import load_generator
    from ..data import require_paired
    from ..train.prune import train_ppcd
    from ..train.slimmable import resolve_device

    _configure_threads(args)
    resolve_device(args.device)
    teacher, tckpt, teacher_d = _load_teacher(args)
    init = load_generator(args.init)[0] if args.init else None
    _say_loading(args)
    train_set, test_set = _load_teacher_data(args, tckpt)
    require_paired(train_set, "edgegan train ppcd", args.data)
    _check_data(tckpt, train_set, args)
    ckpt, report = train_ppcd(teacher, train_set, args.steps, init=init, config=args.init_width, alpha=args.alpha,
                              batch_size=args.batch_size, lr=args.lr, mask_lr=args.mask_lr,
                              lambda_pp=args.lambda_pp, lambda_cd=args.lambda_cd, lambda_recon=args.lambda_recon,
                              mask_init=args.mask_init, seed=args.seed, device=args.device, teacher_d=teacher_d,
                              eval_set=test_set, eval_every=args.eval_every, eval_images=args.eval_images)
    _finish(args, ckpt, test_set, tckpt)
    if not args.json:
        print("pruned: %d → %d params (%.2f×), %d → %d MACs (%.2f×) from the unpruned generator; %d of %d masked "
              "channels kept, %d of %d transition convs folded"
              % (report["unpruned"]["params"], report["pruned"]["params"], report["unpruned_params_ratio"],
                 report["unpruned"]["macs"], report["pruned"]["macs"], report["unpruned_macs_ratio"],
                 report["masks"]["kept"], report["masks"]["total"], report["folded_transitions"],
                 report["blocks"]))


ANYCOST_EPILOG = """examples:
  # sort the packaged model's channels by importance and make its widths consistent with w1.0
  edgegan train anycost --steps 500 --out runs/anycost.pt
  edgegan build --target cpu --checkpoint runs/anycost.pt

  # your own slimmable checkpoint, a perceptual term, all sub-widths every step, GAN loss on w1.0
  edgegan train anycost --init runs/fmnist_shoes_32.pt --lambda-perceptual 0.1 --sample all \\
      --lambda-gan 1 --eval-every 100 --out runs/anycost.pt

  # an InstanceNorm generator can be made consistent at widths it was not trained at
  edgegan train anycost --init runs/shoes_in.pt --widths 0.3,0.6,1.0 --out runs/anycost.pt

  # an imported pix2pix generator (one width) made slimmable on its own data: widths 0.25..1.0
  edgegan train anycost --init runs/e2s_pix2pix.pt --data datasets/edges2shoes --steps 2000 --out runs/e2s_any.pt

  # a quick smoke run
  edgegan train anycost --steps 20 --eval-images 100 --out /tmp/anycost.pt
"""


def _register_anycost(recipes):
    p = recipes.add_parser(
        "anycost", help="Anycost: sort channels by importance, then train sub-widths to match the full width",
        description="Load a trained slimmable generator, sort its channels by importance (L1 norm of the "
                    "kernels; the full-width function is checked to be unchanged), then fine-tune: each step "
                    "samples a sub-width w and adds λ_c·[MSE(G_w(x), sg(G_1(x))) + λ_p·‖φ(G_w(x)) − "
                    "φ(G_1(x))‖²] (φ: the Fashion-MNIST classifier's features) to the full width's task loss "
                    "λ_L1·L1(G_1(x), y) (+ λ_GAN·hinge). BatchNorm statistics are recalibrated per width at "
                    "the end. Writes a slimmable checkpoint `edgegan build` compiles; prints held-out "
                    "PSNR / SSIM / L1 per width.",
        epilog=ANYCOST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("init and data")
    g.add_argument("--init", metavar="CKPT.pt",
                   help="the trained generator (a slimmable ResNet or UNet checkpoint, or a one-width one from "
                        "`edgegan import`, which becomes slimmable at 0.25,0.5,0.75,1.0; default: the packaged model)")
    g.add_argument("--data", metavar="fmnist-shoes|DIR", help="training data (default: the --init checkpoint's)")
    g.add_argument("--data-root", metavar="DIR", help="Fashion-MNIST idx folder (as the slimmable recipe)")
    g.add_argument("--direction", choices=("AtoB", "BtoA"),
                   help="aligned folders: which half is the input (default: the checkpoint's, else AtoB)")
    g = p.add_argument_group("widths and losses")
    g.add_argument("--widths", type=_widths, metavar="W,W,...",
                   help="sub-widths to make consistent (default: the checkpoint's widths; 1.0 is the reference)")
    g.add_argument("--sample", choices=("one", "all"), default="one",
                   help="one sub-width per step, drawn uniformly (Anycost, default), or all of them")
    g.add_argument("--lambda-consistency", type=float, default=100.0,
                   help="weight of the consistency loss of the sub-widths (default 100)")
    g.add_argument("--lambda-perceptual", type=float, default=0.0,
                   help="weight λ_p of the classifier-feature term inside the consistency loss (default 0)")
    g.add_argument("--lambda-l1", type=float, default=100.0, help="weight of the full width's L1 to the target (default 100)")
    g.add_argument("--lambda-gan", type=float, default=0.0,
                   help="weight of the full width's hinge GAN loss, against the checkpoint's discriminator "
                        "(trunk + widest head) if it has one, else a new one (default 0: off)")
    g.add_argument("--recalibrate-bn", type=int, default=20, metavar="N",
                   help="re-estimate every width's BatchNorm statistics on N training batches at the end (default 20)")
    g.add_argument("--no-sort", action="store_true",
                   help="keep the channel order (a checkpoint trained slimmable already has its sub-networks "
                        "in its first channels; sorting replaces them by the most important channels)")
    add_optimisation_arguments(p)
    p.set_defaults(steps=500, batch_size=16, eval_every=0)
    add_output_arguments(p)
    p.set_defaults(func=run_anycost)


def run_anycost(args):
    check_output_path(args.out, args.force)
    from ..checkpoint import load_generator, save_checkpoint
    from ..errors import EdgeganError
    from ..models import ResnetGenerator, UnetGenerator
    from ..train.anycost import train_anycost
    from ..data import load_pair, require_paired
    from ..train.slimmable import resolve_device

    _configure_threads(args)
    resolve_device(args.device)
    gen, ickpt = load_generator(args.init)
    if not isinstance(gen, (ResnetGenerator, UnetGenerator)):
        raise EdgeganError("%s: anycost needs an elastic ResNet or UNet generator (resnet_generator, "
                           "mobile_resnet_generator, unet_generator), not %s" % (args.init or "the packaged model",
                                                                                ickpt["generator"]["arch"]["name"]))
    data = ickpt["data"]
    name = args.data or data["name"]
    if name.startswith("aligned:") and not args.data:
        raise EdgeganError("the checkpoint was trained on an aligned folder (%s); pass it with --data DIR" % name)
    if ickpt.get("import") and not args.data:
        raise EdgeganError("%s was imported (%s %s) and carries no training data; pass its data set with --data DIR "
                           "(a pix2pix aligned folder, e.g. datasets/edges2shoes)"
                           % (args.init, ickpt["import"].get("format"), ickpt["import"].get("netG")))
    _say_loading(args, name)
    train_set, test_set = load_pair(name, size=int(data["size"]), root=args.data_root,
                                    direction=args.direction or data.get("direction") or "AtoB",
                                    channels=data.get("in_channels"))
    require_paired(train_set, "edgegan train anycost", name)
    meta = train_set.describe()
    for key in ("in_channels", "out_channels", "size"):
        if int(meta[key]) != int(data[key]):
            raise EdgeganError("--data has %s=%s but the checkpoint was trained with %s" % (key, meta[key], data[key]))
    ckpt = train_anycost(gen, train_set, args.steps, test_set=test_set, widths=args.widths, sample=args.sample,
                         lambda_l1=args.lambda_l1, lambda_consistency=args.lambda_consistency,
                         lambda_perceptual=args.lambda_perceptual, lambda_gan=args.lambda_gan,
                         discriminator=ickpt.get("discriminator"), batch_size=args.batch_size, lr=args.lr,
                         recalibrate_batches=args.recalibrate_bn, eval_every=args.eval_every,
                         eval_images=args.eval_images, seed=args.seed, device=args.device, sort=not args.no_sort,
                         init={"checkpoint": args.init or "packaged", "metrics": ickpt.get("metrics", {})})
    ckpt["train"]["data"] = name
    inherit_input_spec(ckpt, data)
    if args.generator_only:
        ckpt.pop("discriminator", None)
    save_checkpoint(args.out, ckpt)
    report_metrics(args, ckpt)
    before = ickpt.get("metrics") or {}
    if not args.json and before:
        print("before (init checkpoint): %s" % "  ".join(
            "%s %.2f dB" % (k, v["psnr"]) for k, v in before.items() if k in ckpt["metrics"] and "psnr" in v))
