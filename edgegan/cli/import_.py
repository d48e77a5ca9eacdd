"""``edgegan import``: a generator trained with pix2pix / CycleGAN or GAN Compression → an edgegan checkpoint."""

import argparse

from ._common import check_output_path, emit_json

EPILOG = """examples:
  # a pix2pix edges2shoes generator (pix2pix's defaults: --norm batch, dropout in the blocks), then a Jetson bundle
  edgegan import checkpoints/edges2shoes_pix2pix/latest_net_G.pth --format pix2pix --netG resnet_9blocks \\
      --norm batch --dropout --size 256 --out runs/e2s_pix2pix.pt
  edgegan build --target jetson-nano --checkpoint runs/e2s_pix2pix.pt

  # a CycleGAN generator (InstanceNorm, no dropout); its inputs are photos
  edgegan import checkpoints/horse2zebra/latest_net_G_A.pth --format pix2pix --netG resnet_9blocks \\
      --norm instance --size 256 --input-content image --out runs/h2z.pt

  # GAN Compression's releases: the full teacher and the compressed student (channels read from the weights)
  edgegan import pretrained/pix2pix/edges2shoes-r/full/latest_net_G.pth --format gan-compression \\
      --netG resnet_9blocks --size 256 --out runs/e2s_full.pt
  edgegan import pretrained/pix2pix/edges2shoes-r/compressed/latest_net_G.pth --format gan-compression \\
      --netG sub_mobile_resnet_9blocks --size 256 --out runs/e2s_compressed.pt

  # make an imported generator slimmable (widths 0.25..1.0) on its data, Anycost's way
  edgegan train anycost --init runs/e2s_pix2pix.pt --data datasets/edges2shoes --steps 2000 --out runs/e2s_any.pt

The checkpoint holds one width (1.0). Its inputs are RGB in [-1, 1] (pix2pix's normalisation); with
--input-content edges (the default when the path names an edges2* set) `edgegan run --edges`, the demo and
INT8 calibration turn photos into Canny edge maps (dark lines on white) with the recorded parameters.
"""


# the parser is built without torch (`edgegan run` works on devices without it): the choices are spelled out
# here; edgegan.imports validates them again against its registry
FORMATS = ("pix2pix", "gan-compression")
NETG_HELP = ("its --netG (pix2pix: resnet_9blocks, resnet_6blocks; gan-compression: resnet_9blocks, "
             "mobile_resnet_9blocks, sub_mobile_resnet_9blocks, legacy_sub_mobile_resnet_9blocks); an unknown "
             "name lists the known ones")


def register(sub):
    p = sub.add_parser("import", help="import a pix2pix / CycleGAN / GAN Compression generator",
                       description="Read a generator's state_dict as its training code saved it (latest_net_G.pth), "
                                   "infer its channels from the tensor shapes, and write an edgegan checkpoint "
                                   "computing the same function, for `edgegan build` and the training recipes.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", help="the generator's weights (a state_dict .pth)")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="the code that trained it: pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix: pix2pix and "
                        "CycleGAN) or gan-compression (mit-han-lab/gan-compression)")
    p.add_argument("--netG", dest="netg", required=True, metavar="NAME", help=NETG_HELP)
    p.add_argument("--norm", choices=("batch", "instance"),
                   help="its --norm (default: the format's: pix2pix batch — CycleGAN models use instance —, "
                        "gan-compression instance)")
    p.add_argument("--dropout", action="store_true",
                   help="pix2pix: its blocks hold Dropout layers (pix2pix models unless trained with --no_dropout; "
                        "GAN Compression's blocks always do)")
    p.add_argument("--input-nc", type=int, metavar="N", help="input channels (default: read from the weights)")
    p.add_argument("--output-nc", type=int, metavar="N", help="output channels (default: read from the weights)")
    p.add_argument("--size", type=int, required=True, metavar="S",
                   help="the image side it runs at (256 for the public pix2pix / CycleGAN models)")
    p.add_argument("--input-content", choices=("edges", "image"),
                   help="edges: the model translates edge maps (photos are turned into edges at run time); "
                        "image: photos or label maps as they are (default: edges when the path names an "
                        "edges2* set, else image)")
    p.add_argument("--edges-low", type=float, metavar="T", help="Canny low threshold for --input-content edges")
    p.add_argument("--edges-high", type=float, metavar="T", help="Canny high threshold")
    p.add_argument("--edges-blur", type=int, metavar="K", help="Gaussian blur kernel before Canny (odd; 0: none)")
    p.add_argument("--name", help="the data name recorded in the checkpoint (default: import:<folder of CKPT>)")
    p.add_argument("--out", required=True, metavar="OUT.pt", help="the edgegan checkpoint to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")
    p.set_defaults(func=run)


def _describe(inferred):
    parts = []
    if "ngf" in inferred:
        parts.append("ngf %d" % inferred["ngf"])
    if "channels" in inferred:
        parts.append("channels %s" % ", ".join("%s %d" % kv for kv in inferred["channels"].items()))
    if "hidden" in inferred:
        parts.append("block hidden widths %s" % ",".join(str(h) for h in inferred["hidden"]))
    if inferred.get("config_str"):
        parts.append("--config_str %s" % inferred["config_str"])
    if "n_blocks" in inferred:
        parts.append("%d residual blocks" % inferred["n_blocks"])
    for key, value in inferred.items():
        if key not in ("ngf", "channels", "hidden", "config_str", "n_blocks", "input_nc", "output_nc", "norm",
                       "dropout_layers"):
            parts.append("%s %s" % (key.replace("_", " "), value))
    parts.append("%d → %d channels" % (inferred["input_nc"], inferred["output_nc"]))
    return ", ".join(parts)


def run(args):
    from ..checkpoint import save_checkpoint
    from ..errors import CheckpointError
    from ..imports import (ImportOptions, default_input_content, edge_settings, get_converter, import_generator,
                           imported_checkpoint)
    from ..imports.convert import check_size
    from ..models import build_model

    check_output_path(args.out, args.force)
    if args.size < 8:
        raise CheckpointError("--size must be at least 8 pixels, got %d" % args.size)
    for flag, value in (("--input-nc", args.input_nc), ("--output-nc", args.output_nc)):
        if value is not None and value < 1:
            raise CheckpointError("%s must be at least 1, got %d" % (flag, value))
    converter = get_converter(args.format, args.netg)
    norm = args.norm or converter.default_norm
    imported = import_generator(args.checkpoint, args.format, args.netg,
                                ImportOptions(norm, args.dropout, args.input_nc, args.output_nc))
    check_size(imported, args.size)
    content, why = (args.input_content, "--input-content") if args.input_content else \
        default_input_content(args.checkpoint)
    edges = edge_settings(args.edges_low, args.edges_high, args.edges_blur) if content == "edges" else None
    if content != "edges" and any(v is not None for v in (args.edges_low, args.edges_high, args.edges_blur)):
        raise CheckpointError("--edges-low/--edges-high/--edges-blur apply to --input-content edges")
    ckpt = imported_checkpoint(imported, args.size, content, edges, name=args.name)
    rebuilt = build_model(ckpt["generator"]["arch"])  # the checkpoint must rebuild before it is written
    rebuilt.load_state_dict(ckpt["generator"]["state_dict"])
    save_checkpoint(args.out, ckpt)
    info = ckpt["import"]
    if args.json:
        emit_json({"out": args.out, "format": args.format, "netG": args.netg, "norm": imported.options.norm,
                   "dropout_layers": imported.options.dropout, "inferred": info["inferred"],
                   "dropped_keys": info["dropped_keys"], "size": args.size, "input_content": content,
                   "edges": edges, "arch": ckpt["generator"]["arch"], "params": info["params"],
                   "macs": info["macs"]["edgegan"], "macs_convention": "edgegan",
                   "macs_gan_compression": info["macs"]["gan-compression"], "sha256": info["sha256"]})
        return 0
    print("read %s: %s, --norm %s%s" % (args.checkpoint, imported.converter.name, imported.options.norm,
                                        ", with Dropout layers (identity at inference)" if imported.options.dropout
                                        else ""))
    print("inferred from the tensor shapes: %s" % _describe(imported.inferred))
    if imported.dropped:
        print("dropped %d InstanceNorm running-statistics entries that old PyTorch saved (InstanceNorm uses none): "
              "%s%s" % (len(imported.dropped), ", ".join(imported.dropped[:3]),
                        ", ..." if len(imported.dropped) > 3 else ""))
    if content == "edges":
        print("input: edge maps (%s; --input-content image for photos); photos become edges with Canny low %g, "
              "high %g, blur %d" % (why, edges["low"], edges["high"], edges["blur"]))
    else:
        print("input: images as they are (%s; --input-content edges for an edges → photo model)" % why)
    print("%d² RGB in [-1, 1]: %.2f GMACs (%.2f G as GAN Compression counts), %.2f M parameters"
          % (args.size, info["macs"]["edgegan"] / 1e9, info["macs"]["gan-compression"] / 1e9, info["params"] / 1e6)
          if imported.model.hparams["in_channels"] == 3 else
          "%d²: %.2f GMACs (%.2f G as GAN Compression counts), %.2f M parameters"
          % (args.size, info["macs"]["edgegan"] / 1e9, info["macs"]["gan-compression"] / 1e9, info["params"] / 1e6))
    print("wrote %s (one width, 1.0); next: edgegan build --target jetson-nano --checkpoint %s" % (args.out, args.out))
    return 0
