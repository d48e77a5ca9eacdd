"""``edgegan eval CKPT``: score a checkpoint per width (one table: metric × width).

Metrics without downloads. Noise → image checkpoints are scored with the project's Fashion-MNIST
classifier (``edgegan/assets/fmnist_classifier.pt``): FD-FMNIST (Fréchet distance of its features
to the Fashion-MNIST test set, lower is better), IS-FMNIST (Inception-Score analogue, 1 … 10,
higher is better) and mIC (consistency across widths, lower is better). Paired (image → image)
checkpoints are scored on their data's held-out pairs: PSNR, SSIM and L1, and, for grey outputs,
FD-FMNIST to the real targets and mIC. With ``--fid-weights PATH`` (a local pytorch-fid
Inception-v3 file; torchvision needed) also FID proper.
"""

import argparse
import sys

from ._common import emit_json, format_table, standalone_main, status

EPILOG = """examples:
  edgegan eval runs/slimgan_fmnist.pt                       # FD-FMNIST / IS-FMNIST per width, mIC
  edgegan eval edgegan/assets/fmnist_shoes_32.pt            # edges→shoes: PSNR / SSIM / L1 / FD-FMNIST
  edgegan eval runs/slimgan_fmnist.pt --images 5000 --recalibrate-bn 20 --json
  edgegan eval runs/slimgan_fmnist.pt --fid-weights ~/pt_inception-2015-12-05-6726825d.pth
"""


def register(subparsers):
    p = subparsers.add_parser(
        "eval", help="score a checkpoint per width (FD-FMNIST, IS-FMNIST, mIC, FID; PSNR/SSIM/L1 when paired)",
        description=__doc__.split("\n\n")[1], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_eval)
    return p


def add_arguments(p):
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint (noise → image or paired)")
    p.add_argument("--images", type=int, default=2000,
                   help="generated images (noise) or held-out pairs (paired) per width (default 2000)")
    p.add_argument("--data", metavar="fmnist-shoes|DIR",
                   help="paired checkpoints: the data set to score on (default: the one it was trained on)")
    p.add_argument("--recalibrate-bn", type=int, default=0, metavar="N",
                   help="re-estimate every width's BatchNorm statistics on N batches of noise first")
    p.add_argument("--fid-weights", metavar="PATH", help="pytorch-fid Inception-v3 weights: also compute FID")
    p.add_argument("--classifier", metavar="PATH", help="another classifier asset (default: the shipped one)")
    p.add_argument("--data-root", metavar="DIR", help="folder of the Fashion-MNIST idx files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _say(text):
    """A progress line on a terminal's stderr (each phase of the evaluation takes seconds)."""
    status("eval: %s" % text)


def evaluate_checkpoint(args):
    import torch

    from ..checkpoint import load_generator
    from ..train.classifier import load_classifier, load_fmnist
    from ..train.slimgan import evaluate_gan, sample_widths

    generator, ckpt = load_generator(args.checkpoint)
    if not hasattr(generator, "nz"):
        return evaluate_paired(args, generator, ckpt)
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
    _say("loading the Fashion-MNIST test images")
    real, _ = load_fmnist("test", args.data_root, limit=args.images)
    _say("generating %d images per width (%s) and scoring them with the classifier"
         % (min(args.images, len(real)), ", ".join("%g" % w for w in generator.widths)))
    result = evaluate_gan(generator, real, n=min(args.images, len(real)), classifier=classifier, seed=args.seed)
    if args.fid_weights:
        from ..train.gan_metrics import fid_from_features, inception_pool_features, load_fid_inception

        _say("FID with the Inception-v3 weights %s, per width" % args.fid_weights)
        net = load_fid_inception(args.fid_weights)
        samples = sample_widths(generator, min(args.images, len(real)), seed=args.seed)
        for w, images in samples.items():
            real_feats = inception_pool_features(net, real[:len(images)])
            result["widths"]["w%g" % w]["fid"] = fid_from_features(real_feats, inception_pool_features(net, images))
    result["checkpoint"] = args.checkpoint
    result["images"] = min(args.images, len(real))
    return result


def evaluate_paired(args, generator, ckpt):
    """PSNR / SSIM / L1 per width on held-out pairs; FD-FMNIST, mIC (and FID) of the outputs too."""
    import torch

    from ..errors import EdgeganError
    from ..data import load_pair, require_paired
    from ..train.metrics import evaluate_widths, width_key

    data = args.data or ckpt.get("train", {}).get("data") or ckpt.get("data", {}).get("name")
    if not data or data.startswith("aligned:"):
        raise EdgeganError("%s does not record where its data set is; pass --data fmnist-shoes or --data DIR"
                           % args.checkpoint)
    size = int(ckpt["data"]["size"])
    _say("loading held-out pairs of %s%s" % (data, " (computing Canny edge maps)" if data == "fmnist-shoes" else ""))
    _, test_set = load_pair(data, size=size, root=args.data_root, test_limit=args.images,
                            direction=ckpt["data"].get("direction") or "AtoB")
    require_paired(test_set, "edgegan eval", data)
    if test_set.describe()["in_channels"] != ckpt["data"]["in_channels"]:
        raise EdgeganError("--data %s has %d-channel inputs; %s takes %d" % (
            data, test_set.describe()["in_channels"], args.checkpoint, ckpt["data"]["in_channels"]))
    widths = [float(w) for w in ckpt["widths"]]
    result = {"widths": evaluate_widths(generator, test_set, widths, progress=None), "data": data,
              "images": len(test_set)}
    inputs = torch.stack([test_set[i][0] for i in range(len(test_set))])
    targets = torch.stack([test_set[i][1] for i in range(len(test_set))])
    outputs = {}
    from ..nn import at_width

    _say("generating %d outputs per width for FD-FMNIST and mIC" % len(inputs))
    with torch.no_grad():
        for w in widths:
            with at_width(generator, w):
                outputs[w] = torch.cat([generator(inputs[i:i + 200]).clamp(-1, 1) for i in range(0, len(inputs), 200)])
    if ckpt["data"]["out_channels"] == 1:  # the Fashion-MNIST classifier reads grey images
        from ..train.classifier import load_classifier
        from ..train.gan_metrics import classifier_outputs, fd_fmnist, mic

        classifier, _ = load_classifier(args.classifier)
        _say("classifier features of the real targets and of every width")
        real_feats, _ = classifier_outputs(targets, classifier)
        feats = {}
        for w in widths:
            feats[w], _ = classifier_outputs(outputs[w], classifier)
            result["widths"][width_key(w)]["fd_fmnist"] = fd_fmnist(real_feats, feats[w])
        result["mic"] = mic(feats) if len(widths) > 1 else None
    if args.fid_weights:  # Inception features of the held-out targets and of each width's outputs
        from ..train.gan_metrics import fid_widths

        _say("FID with the Inception-v3 weights %s, per width" % args.fid_weights)
        for w, fid in fid_widths(generator, test_set, widths, args.fid_weights).items():
            result["widths"][width_key(w)]["fid"] = fid
    result["checkpoint"] = args.checkpoint
    return result


METRICS = (("psnr", "PSNR dB ↑"), ("ssim", "SSIM ↑"), ("l1", "L1 ↓"), ("fd_fmnist", "FD-FMNIST ↓"),
           ("is_fmnist", "IS-FMNIST ↑"), ("fid", "FID ↓"))


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
    what = "held-out pairs of %s" % result["data"] if "data" in result else "images"
    mic_text = "mIC ↓ (across widths): %.3f   " % result["mic"] if result.get("mic") is not None else ""
    print("%s(%d %s per width, %s)" % (mic_text, result["images"], what, args.checkpoint))
    return 0


def main(argv=None):
    return standalone_main("edgegan eval", __doc__.split("\n\n")[1], EPILOG, add_arguments, run_eval, argv)


if __name__ == "__main__":
    sys.exit(main())
