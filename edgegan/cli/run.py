"""``edgegan run``: images, folders of images or videos through a bundle.

Torch-free: runs on the device with numpy, OpenCV and the bundle's backend.
"""

import argparse
import os
import sys
import time

from ..errors import EdgeganError
from ._common import check_output_path, emit_json

EPILOG = """examples:
  edgegan run edgegan-cpu --input edges.png --output shoe.png
  edgegan run edgegan-cpu --input edges/ --output shoes/ --variant w0.5
  edgegan run edgegan-cpu --input photos/ --output shoes/ --edges --side-by-side
  edgegan run edgegan-jetson-nano --input clip.mp4 --output clip-shoes.mp4 --edges --force

An image goes to an image file or a folder, a folder to a folder (same file names), a video to a
video (.mp4, mp4v) or a folder of frames. Inputs are resized to the model's size. The output is
written to a temporary path and renamed into place when every frame is done.
"""


def register(sub):
    p = sub.add_parser("run", help="run images, folders or videos through a bundle",
                       description="Run an image, a folder of images or a video through one variant of a bundle "
                                   "and write the generated images.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="a bundle directory written by `edgegan build`")
    p.add_argument("--input", required=True, metavar="PATH", help="an image, a folder of images, or a video")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="an image file or a folder; for a video input, a video file (.mp4) or a folder")
    p.add_argument("--variant", metavar="NAME", help="variant name or width (default: the bundle's default)")
    p.add_argument("--edges", action="store_true",
                   help="inputs are photos: compute edge maps first, with the bundle's edge parameters")
    p.add_argument("--side-by-side", action="store_true", help="write the model's input image next to its output")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: the backend's)")
    p.add_argument("--backend", metavar="NAME", help="inference backend (default: the bundle's)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def edge_parameters(bundle):
    """The manifest's ``input.edges`` (Canny parameters), or an ``EdgeganError`` if it has none."""
    edges = bundle.input.get("edges")
    if not edges:
        raise EdgeganError("%s records no edge parameters (manifest input.edges), so --edges cannot match "
                           "training; pass edge maps as --input without --edges" % bundle.path)
    if edges.get("method", "canny") != "canny":
        raise EdgeganError("%s uses edge method %r; edgegan run computes only canny edges"
                           % (bundle.path, edges["method"]))
    return edges


def _progress(source):
    try:
        from tqdm import tqdm
    except ImportError:
        return source
    return tqdm(source, total=source.count, desc="run", unit="frame", file=sys.stderr, disable=None, leave=False)


def run(args):
    from ..runtime import Runtime
    from ..runtime.edges import edges_from_image
    from ..runtime.imageio import FrameSource, FrameWriter, output_kind, resize, side_by_side, spec_geometry

    if os.path.abspath(args.output) == os.path.abspath(args.input):
        raise EdgeganError("--output is the same path as --input; choose another output")
    check_output_path(args.output, args.force)
    source = FrameSource(args.input)
    kind = output_kind(source.kind, args.output)
    with Runtime(args.bundle, backend=args.backend, threads=args.threads, variant=args.variant) as rt:
        edges = edge_parameters(rt.bundle) if args.edges else None
        _, height, width = spec_geometry(rt.bundle.input)
        model_s = 0.0
        start = time.perf_counter()
        with FrameWriter(args.output, kind, force=args.force, fps=source.fps) as writer:
            for name, frame in _progress(source):
                shown = resize(frame, height, width)
                if edges:
                    shown = edges_from_image(shown, edges["low"], edges["high"], edges.get("blur", 0),
                                             edges.get("invert", True))
                x = rt.preprocess(shown)
                t0 = time.perf_counter()
                y = rt(x)
                model_s += time.perf_counter() - t0
                out = rt.postprocess(y)
                writer.write(name, side_by_side(shown, out) if args.side_by_side else out)
        seconds = time.perf_counter() - start
        summary = {"bundle": rt.bundle.path, "variant": rt.variant, "input": args.input, "input_kind": source.kind,
                   "output": args.output, "output_kind": kind, "frames": writer.frames, "seconds": seconds,
                   "fps": writer.frames / seconds, "model_fps": writer.frames / model_s if model_s > 0 else None}
    if args.json:
        emit_json(summary)
    else:
        print("wrote %d frame%s to %s with %s in %.2f s: %.1f frames/s end to end, %.1f frames/s in the model"
              % (summary["frames"], "" if summary["frames"] == 1 else "s", args.output, summary["variant"],
                 seconds, summary["fps"], summary["model_fps"] or 0.0))
    return 0
