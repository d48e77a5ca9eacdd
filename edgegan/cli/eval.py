"""``edgegan eval CKPT``: score a noise → image checkpoint per width (one table: metric × width).

Metrics without downloads, from the project's Fashion-MNIST classifier
(``edgegan/assets/fmnist_classifier.pt``): FD-FMNIST (Fréchet distance of its features to the
Fashion-MNIST test set, lower is better), IS-FMNIST (Inception-Score analogue, 1 … 10, higher is
better) and mIC (consistency across widths, lower is better). With ``--fid-weights PATH`` (a
local pytorch-fid Inception-v3 file; torchvision needed) also FID proper.
"""

import argparse
import sys

from ._common import emit_json, format_table

EPILOG = """examples:
  edgegan eval runs/slimgan_fmnist.pt                       # FD-FMNIST / IS-FMNIST per width, mIC
  edgegan eval runs/slimgan_fmnist.pt --images 5000 --recalibrate-bn 20 --json
  edgegan eval runs/slimgan_fmnist.pt --fid-weights ~/pt_inception-2015-12-05-6726825d.pth
"""


def register(subparsers):
    p = subparsers.add_parser(
        "eval", help="score a noise → image checkpoint per width (FD-FMNIST, IS-FMNIST, mIC, FID)",
        description=__doc__.split("\n\n")[1], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_eval)
    return p


def add_arguments(p):
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by the slimgan recipe")
    p.add_argument("--images", type=int, default=2000, help="generated images per width (default 2000)")
    p.add_argument("--recalibrate-bn", type=int, default=0, metavar="N",
                   help="re-estimate every width's BatchNorm statistics on N batches of noise first")
    p.add_argument("--fid-weights", metavar="PATH", help="pytorch-fid Inception-v3 weights: also compute FID")
    p.add_argument("--classifier", metavar="PATH", help="another classifier asset (default: the shipped one)")
    p.add_argument("--data-root", metavar="DIR", help="folder of the Fashion-MNIST idx files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def evaluate_checkpoint(args):
    import torch

    from ..checkpoint import load_generator
    from ..train.classifier import load_classifier, load_fmnist
    from ..train.slimgan import evaluate_gan, sample_widths

    generator, ckpt = load_generator(args.checkpoint)
    if not hasattr(generator, "nz"):
        from ..errors import EdgeganError

        raise EdgeganError("%s holds a %s, not a noise → image generator" % (args.checkpoint,
                                                                            ckpt["generator"]["arch"]["name"]))
    if args.recalibrate_bn:
        from ..train.recalibrate import recalibrate_bn

        gen = torch.Generator().manual_seed(args.seed + 1)
        batches = []
        for _ in range(args.recalibrate_bn):
            z = torch.randn(64, generator.nz, generator=gen)
            batches.append((z, torch.randint(0, generator.n_classes, (64,), generator=gen))
                           if generator.n_classes else (z,))
        recalibrate_bn(generator, batches)
    classifier, _ = load_classifier(args.classifier)
    real, _ = load_fmnist("test", args.data_root, limit=args.images)
    result = evaluate_gan(generator, real, n=min(args.images, len(real)), classifier=classifier, seed=args.seed)
    if args.fid_weights:
        from ..train.gan_metrics import fid_inception

        samples = sample_widths(generator, min(args.images, len(real)), seed=args.seed)
        for w, images in samples.items():
            key = "w%g" % w
            result["widths"][key]["fid"] = fid_inception(args.fid_weights, real[:len(images)], images)
    result["checkpoint"] = args.checkpoint
    result["images"] = min(args.images, len(real))
    return result


METRICS = (("fd_fmnist", "FD-FMNIST ↓"), ("is_fmnist", "IS-FMNIST ↑"), ("fid", "FID ↓"))


def run_eval(args):
    result = evaluate_checkpoint(args)
    if args.json:
        emit_json(result)
        return 0
    widths = list(result["widths"])
    rows = []
    for key, name in METRICS:
        if not any(key in m for m in result["widths"].values()):
            continue
        row = {"metric": name}
        row.update({w: result["widths"][w].get(key) for w in widths})
        rows.append(row)
    print(format_table(rows, [("metric", "metric", None)] + [(w, w, "{:.3f}") for w in widths]))
    print("mIC ↓ (across widths): %.3f   (%d images per width, %s)" % (result["mic"], result["images"],
                                                                     args.checkpoint))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgegan eval", description=__doc__.split("\n\n")[1], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    from ..errors import EdgeganError

    try:
        return run_eval(args)
    except EdgeganError as e:
        print("edgegan eval: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
