"""``edgegan train slimgan``: the noise → image SlimGAN recipe on Fashion-MNIST (all 10 classes).
"""

import argparse
import sys

from ._common import emit_json, format_table, standalone_main
from ._training import run_training

EPILOG = """examples:
  # class-conditional DCGAN with sliceable cBN (SlimGAN "+"), 32² Fashion-MNIST
  edgegan train slimgan --model dcgan --n-classes 10 --steps 5000 --out runs/slimgan_c.pt
  # the naive switchable cBN ablation (SlimGAN "×"); unconditional SNGAN-style ResNet
  edgegan train slimgan --n-classes 10 --cbn switchable --out runs/naive_cbn.pt
  edgegan train slimgan --model resnet --ngf 64 --out runs/resnet_u.pt
  # discriminator ablations: one D for all widths / one D slimmed with the generator
  edgegan train slimgan --n-classes 10 --same-d --out runs/same_d.pt
  edgegan train slimgan --n-classes 10 --slimmable-d --out runs/slim_d.pt
  # resumable: checkpoint every 500 steps, CSV log; later continue the same run to 10000 steps
  edgegan train slimgan --steps 5000 --save-every 500 --log-csv runs/s.csv --out runs/s.pt
  edgegan train slimgan --steps 10000 --resume runs/s.pt --log-csv runs/s.csv --out runs/s.pt
  # data-parallel: the same command on 2 processes (gloo on CPU, nccl with --device cuda)
  torchrun --nproc_per_node 2 -m edgegan.cli.train_slimgan --steps 5000 --out runs/s.pt
"""


def add_arguments(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=("dcgan", "resnet"), default="dcgan")
    g.add_argument("--nz", type=int, default=128, help="noise dimension (default 128)")
    g.add_argument("--ngf", type=int, default=32, help="generator channels (default 32)")
    g.add_argument("--ndf", type=int, default=32, help="discriminator channels of its first layer (default 32)")
    g.add_argument("--d-share", "--n-share", dest="d_share", type=int, default=1,
                   help="discriminator stages shared by all heads (default 1; 0: a discriminator per width)")
    g.add_argument("--same-d", action="store_true",
                   help="ablation: one discriminator scores every width (default: one head per width)")
    g.add_argument("--slimmable-d", action="store_true",
                   help="ablation: one discriminator whose width switches with the generator's (width w runs "
                        "the first w·C channels of each D layer; --d-share is then unused)")
    g.add_argument("--n-classes", type=int, choices=(0, 10), default=0, help="0: unconditional; 10: class-conditional")
    g.add_argument("--cbn", choices=("sliceable", "switchable"), default="sliceable",
                   help="conditional BatchNorm: sliceable (SlimGAN, default) or switchable (naive ablation)")
    g.add_argument("--widths", default="0.25,0.5,0.75,1.0", help="width multipliers (default 0.25,0.5,0.75,1.0)")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=2000)
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--lr-g", type=float, default=2e-4)
    g.add_argument("--lr-d", type=float, default=2e-4)
    g.add_argument("--lambda-distill", type=float, default=1.0)
    g.add_argument("--distill", choices=("stepwise", "naive", "none"), default="stepwise")
    g.add_argument("--recalibrate-bn", type=int, default=0, metavar="N",
                   help="re-estimate every width's BatchNorm statistics on N noise batches after training")
    g.add_argument("--eval-images", type=int, default=1000, help="images per width for FD/IS/mIC (0: none)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    g.add_argument("--threads", type=int)
    g.add_argument("--data-root", metavar="DIR")
    g.add_argument("--resume", metavar="CKPT",
                   help="continue a run from a checkpoint it wrote (weights, optimizers, step, RNG states) up to "
                        "--steps; pass the same model arguments")
    g.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also write a resumable checkpoint to --out every N steps (atomic; default: only at the end)")
    g.add_argument("--log-csv", metavar="PATH", help="write one CSV row (losses per width, seconds) per logged step")
    g.add_argument("--log-every", type=int, default=100, metavar="N", help="log / report every N steps (default 100)")
    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, metavar="CKPT.pt")
    g.add_argument("--force", action="store_true")
    g.add_argument("--json", action="store_true")


def register_recipe(recipes):
    p = recipes.add_parser("slimgan", help="SlimGAN noise → image (DCGAN / ResNet, (un)conditional) on Fashion-MNIST",
                           description=__doc__.split("\n\n")[0], epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args):
    return run_training(args, _run)


def _run(args):
    import torch

    from ..checkpoint import save_checkpoint
    from ..errors import EdgeganError
    from ..train.classifier import load_fmnist
    from ..train.slimgan import SlimGANConfig, train_slimgan

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        widths = tuple(sorted(float(w) for w in args.widths.split(",") if w.strip()))
    except ValueError:
        raise EdgeganError("--widths takes comma-separated multipliers like 0.25,0.5,1.0, got %r" % args.widths)
    config = SlimGANConfig(model=args.model, nz=args.nz, ngf=args.ngf, ndf=args.ndf, d_share=args.d_share,
                           same_d=args.same_d, slimmable_d=args.slimmable_d,
                           n_classes=args.n_classes, cbn=args.cbn, widths=widths, steps=args.steps,
                           batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d,
                           lambda_distill=args.lambda_distill, distill=args.distill,
                           recalibrate_bn=args.recalibrate_bn, eval_images=args.eval_images, seed=args.seed,
                           device=args.device, log_every=args.log_every)
    config.validate()
    if args.save_every < 0:
        raise EdgeganError("--save-every must be 0 (off) or a number of steps, got %r" % args.save_every)
    images, labels = load_fmnist("train", args.data_root)
    test_images, _ = load_fmnist("test", args.data_root, limit=args.eval_images or 1)
    ckpt = train_slimgan(config, images, labels, test_images=test_images,
                         progress=None if args.json else (lambda line: print(line, file=sys.stderr)),
                         resume=args.resume, save_path=args.out, save_every=args.save_every, log_csv=args.log_csv)
    from ..train.distributed import is_main_process

    if not is_main_process():
        return 0  # rank 0 writes and reports
    save_checkpoint(args.out, ckpt)
    if args.json:
        emit_json({"out": args.out, "steps": args.steps, "seconds": ckpt["train"]["seconds"],
                   "metrics": ckpt["metrics"]})
        return 0
    if ckpt["metrics"]:
        rows = [dict(m, width=w) for w, m in ckpt["metrics"]["widths"].items()]
        print(format_table(rows, [("width", "width", None), ("fd_fmnist", "FD-FMNIST", "{:.2f}"),
                                  ("is_fmnist", "IS-FMNIST", "{:.3f}")]))
        print("mIC %.3f" % ckpt["metrics"]["mic"])
    print("%d steps in %.0f s; wrote %s" % (args.steps, ckpt["train"]["seconds"], args.out))
    return 0


def main(argv=None):
    return standalone_main("edgegan train slimgan", __doc__.split("\n\n")[0], EPILOG, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
