"""``edgegan build``: compile a checkpoint's widths for a device into a bundle."""

import argparse
import os

from ..errors import EdgeganError
from ._common import emit_json, format_table

EPILOG = """examples:
  edgegan build --target jetson-nano                  # packaged default model, every width
  edgegan build --target cpu --checkpoint runs/shoes.pt --widths 0.25,1.0 --out shoes-cpu
  edgegan build --target my-board.toml --force        # your own device profile
  edgegan build --target cpu --json                   # the manifest on stdout
  edgegan build --target cpu --checkpoint runs/supernet.pt --configs front.json   # searched sub-networks
  edgegan build --target cpu-int8 --calibration photos/ --observer percentile
  edgegan build --target cpu --checkpoint runs/slimgan.pt --out slimgan-cpu   # noise (+ label) → image generator
  edgegan build --target jetson-nano --with-runtime   # + wheels/edgegan_runtime-*.whl for an offline device
"""


def _widths(text):
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("--widths takes comma-separated numbers such as 0.25,0.5,1.0")


def register(sub):
    p = sub.add_parser("build", help="compile a checkpoint into a bundle for a device",
                       description="Cut each width (or each --configs channel config) out of a checkpoint, compile it "
                                   "for a device "
                                   "profile, measure parity against PyTorch, and write a bundle directory.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="a profile name (see `edgegan targets`) or a profile .toml file")
    p.add_argument("--checkpoint", help="a checkpoint from `edgegan train` (default: the packaged model)")
    p.add_argument("--out", help="bundle directory to write (default: ./edgegan-TARGET)")
    p.add_argument("--widths", type=_widths, help="widths to include, e.g. 0.25,1.0 (default: all trained)")
    p.add_argument("--configs", metavar="FILE",
                   help="build per-slot channel configs instead of widths: the JSON `edgegan search --out` "
                        "writes (default: the checkpoint's own configs if it stores some, else every width)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], help="default: the profile's")
    p.add_argument("--calibration", metavar="DIR",
                   help="int8: a folder of real input images to calibrate on (default: the checkpoint's training "
                        "data; noise generators calibrate on N(0, 1) noise and uniform labels)")
    p.add_argument("--observer", choices=["minmax", "percentile", "entropy"],
                   help="int8: how activation ranges are chosen (default: the profile's)")
    p.add_argument("--parity-inputs", type=int, default=8, metavar="N", help="inputs for the parity check (default 8)")
    p.add_argument("--quality-images", type=int, default=500, metavar="N",
                   help="held-out pairs of the checkpoint's data set each variant's artifact is scored on (PSNR, "
                        "SSIM, L1 in the manifest's quality; default 500; 0 keeps the checkpoint's own metrics)")
    p.add_argument("--data-root", metavar="DIR", help="folder of the Fashion-MNIST idx files (for --quality-images)")
    p.add_argument("--with-runtime", action="store_true",
                   help="put the edgegan-runtime wheel into BUNDLE/wheels/ (recorded with its sha256), so that a "
                        "device installs the runtime from the bundle, offline: python3 -m pip install --user "
                        "BUNDLE/wheels/*.whl")
    p.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=run)


COLUMNS = [("name", "variant", None), ("width", "width", "{:g}"), ("mmacs", "MMACs", "{:.1f}"),
           ("kparams", "kParams", "{:.1f}"), ("kb", "size KB", "{:.0f}"), ("precision", "precision", None),
           ("psnr", "parity dB", "{:.1f}"), ("max_abs", "max-abs", "{:.1e}"), ("measured", "parity measured as", None),
           ("quality", "PSNR (held-out)", "{:.2f}"), ("quality_how", "held-out measured as", None),
           ("kept", "int8 layers kept float", None)]


def parity_measured_as(variant):
    """What the parity figure is: the precision and runtime it was measured in (a TensorRT fp16 variant is
    measured as fp32 ONNX under ONNX Runtime: its engine is built on the device), or why it is missing."""
    parity = variant.get("parity") or {}
    if parity.get("psnr_db") is None:
        return "not measured: %s" % (parity.get("why") or "the artifact cannot run here").split(";")[0]
    return "%s, %s" % (parity.get("measured_precision") or variant.get("precision"),
                       (parity.get("backend") or "?").split(" (")[0])


def quality_measured_as(variant):
    """``fp32, onnxruntime`` for a held-out score of the artifact itself; ``checkpoint (fp32)`` otherwise."""
    quality = variant.get("quality") or {}
    if not quality:
        return None
    if quality.get("measured_precision"):
        return "%s, %s" % (quality["measured_precision"], quality["backend"].split(" (")[0])
    return "checkpoint (PyTorch fp32)"


def run(args):
    from ..targets.build import build_bundle

    if args.quality_images < 0:
        raise EdgeganError("--quality-images must be 0 (keep the checkpoint's metrics) or more")
    if args.parity_inputs < 1:
        raise EdgeganError("--parity-inputs must be at least 1 (default 8)")
    if args.out is not None and not args.out.strip():
        raise EdgeganError("--out is empty; name the bundle directory (default: ./edgegan-TARGET)")
    out, manifest = build_bundle(args.target, checkpoint=args.checkpoint, out=args.out, widths=args.widths,
                                 precision=args.precision, force=args.force, n_parity_inputs=args.parity_inputs,
                                 progress=not args.json, calibration=args.calibration, observer=args.observer,
                                 configs=args.configs, quality_images=args.quality_images, data_root=args.data_root,
                                 with_runtime=args.with_runtime)
    if args.json:
        emit_json({"bundle": out, "manifest": manifest})
        return 0
    rows = [{"name": v["name"], "width": v["width"], "mmacs": v["macs"] / 1e6, "kparams": v["params"] / 1e3,
             "kb": v["size_bytes"] / 1024.0, "precision": v["precision"], "psnr": v["parity"]["psnr_db"],
             "max_abs": v["parity"]["max_abs"], "measured": parity_measured_as(v),
             "quality": v.get("quality", {}).get("psnr"), "quality_how": quality_measured_as(v),
             "kept": len(v["int8"]["kept_float"]) if "int8" in v else None}
            for v in manifest["variants"]]
    columns = COLUMNS if any(r["kept"] is not None for r in rows) else COLUMNS[:-1]
    if all(r["quality"] is None for r in rows) and any("fd_fmnist" in v.get("quality", {})
                                                       for v in manifest["variants"]):
        for r, v in zip(rows, manifest["variants"]):  # a noise → image model: its FD-FMNIST per width
            r["quality"] = v.get("quality", {}).get("fd_fmnist")
        columns = [("quality", "FD-FMNIST", "{:.2f}") if c[0] == "quality" else c for c in columns]
    print(format_table(rows, columns))
    measured_on = sorted(set((v.get("quality") or {}).get("measured_on", "") for v in manifest["variants"]) - {""})
    if measured_on:
        print("held-out quality: %s" % "; ".join(
            m.split(" on ", 1)[-1] if m.startswith("this artifact") else m for m in measured_on[:2]))
    print("\nwrote %s (target %s, %d variants)" % (out, manifest["target"], len(rows)))
    log = manifest.get("build_log")
    if log:
        print("converter output (%d lines: warnings, library logs, progress) is in %s"
              % (log["lines"], os.path.join(out, log["file"])))
    wheel = manifest.get("runtime_wheel")
    if wheel:
        print("the runtime for the device: %s/%s (%s); on the device: python3 -m pip install --user %s/%s"
              % (out, wheel["file"], wheel["source"], out, wheel["file"]))
    steps = manifest.get("device_steps")
    if steps and steps.get("built_at_build_time") != "yes":
        print("TensorRT %s engines are built on the device (not here: %s): copy the bundle there and run\n"
              "  python3 %s/%s      (records the engines in the manifest for the runtime)\n"
              "or the same builds as trtexec lines: sh %s/%s"
              % ("/".join(steps.get("tensorrt_versions") or [steps["tensorrt_version"]]),
                 steps.get("built_at_build_time", "no").split(": ", 1)[-1].split("; run ")[0], out, steps["builder"],
                 out, steps["script"]))
    elif steps:
        print("TensorRT engines built here (this host is the target) and recorded in %s/manifest.json" % out)
    return 0
