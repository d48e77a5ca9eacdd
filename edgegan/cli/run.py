"""``edgegan run``: images, folders of images or videos through a bundle; or, for a noise → image
bundle (a SlimGAN generator), a grid of generated images.

Torch-free: runs on the device with numpy, OpenCV and the bundle's backend.
"""

import argparse
import os
import sys
import time

from ..errors import EdgeganError, warn
from ._common import check_output_path, emit_json

EPILOG = """examples:
  edgegan run edgegan-cpu --input edges.png --output shoe.png
  edgegan run edgegan-cpu --input edges/ --output shoes/ --variant w0.5
  edgegan run edgegan-cpu --input photos/ --output shoes/ --edges --side-by-side
  edgegan run edgegan-jetson-nano --input clip.mp4 --output clip-shoes.mp4 --edges --force

A noise → image bundle (`edgegan train slimgan`, then `edgegan build`) takes no --input: it writes a
grid of --n images generated from the noise of --seed (the same noise on every variant and device):
  edgegan run slimgan-cpu --label 3 --seed 0 --n 16 --out grid.png    # 16 images of class 3
  edgegan run slimgan-cpu --n 20 --out grid.png                       # every class in turn, a column each
  edgegan run slimgan-cpu --variant all --out grid.png                # grid-w0.25.png ... grid-w1.png

An image goes to an image file or a folder, a folder to a folder (same file names), a video to a
video (.mp4, mp4v) or a folder of frames. Inputs are resized to the model's size. The output is
written to a temporary path and renamed into place when every frame is done.
"""

NOISE_DEFAULT_N = 16


def register(sub):
    p = sub.add_parser("run", help="run images, folders or videos through a bundle",
                       description="Run an image, a folder of images or a video through one variant of a bundle "
                                   "and write the generated images.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="a bundle directory written by `edgegan build`")
    p.add_argument("--input", metavar="PATH",
                   help="an image, a folder of images, or a video (required, except for noise → image bundles)")
    p.add_argument("--output", "--out", required=True, metavar="PATH",
                   help="an image file or a folder; for a video input, a video file (.mp4) or a folder; for a "
                        "noise → image bundle, the image file of the grid")
    p.add_argument("--variant", metavar="NAME",
                   help="variant name or width (default: the bundle's default); for a noise → image bundle, "
                        "`all` writes one grid per variant (OUT-<variant>.png)")
    noise = p.add_argument_group("noise → image bundles (SlimGAN generators)")
    noise.add_argument("--label", type=int, metavar="K",
                       help="class of every image, in [0, n_classes) (default: every class in turn)")
    noise.add_argument("--seed", type=int, metavar="N", help="seed of the noise (default 0)")
    noise.add_argument("--n", type=int, metavar="N", help="images in the grid (default %d)" % NOISE_DEFAULT_N)
    noise.add_argument("--cols", type=int, metavar="N",
                       help="images per row (default: one class per column, else a near-square grid)")
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


#: frames of an input checked for looking like an edge map (when the model takes edges and --edges is not given)
EDGE_CHECK_FRAMES = 16


def _check_edge_map(frame, name, checked, invert=True):
    """Warn (once) when a frame given to an edges → image model does not look like an edge map: a photo passed
    without ``--edges``. Returns how many frames are checked, ``EDGE_CHECK_FRAMES`` after a warning."""
    from ..runtime.edges import background_fraction, binary_fraction, looks_like_edge_map

    if looks_like_edge_map(frame, invert):
        return checked + 1
    warn("%s does not look like an edge map (%.0f%% of its pixels are near black or white and %.0f%% %s; an edge "
         "map is almost all black and white, mostly %s): this model translates edge maps. If it is a photo, add "
         "--edges to compute its edges first" % (name, 100.0 * binary_fraction(frame),
                                                 100.0 * background_fraction(frame, invert),
                                                 "white" if invert else "black", "white" if invert else "black"))
    return EDGE_CHECK_FRAMES


def _progress(source):
    try:
        from tqdm import tqdm
    except ImportError:
        return source
    return tqdm(source, total=source.count, desc="run", unit="frame", file=sys.stderr, disable=None, leave=False)


def _variant_path(path, variant):
    stem, ext = os.path.splitext(path)
    return "%s-%s%s" % (stem, variant, ext)


def generate(args, bundle):
    """``edgegan run`` on a noise → image bundle: one grid of generated images (per variant with ``--variant all``)."""
    from ..runtime import Runtime
    from ..runtime.imageio import IMAGE_EXTENSIONS, FrameWriter
    from ..runtime.noise import check_labels, image_grid, n_classes, sample_feeds

    specs = bundle.inputs
    classes = n_classes(specs)
    if args.input is not None:
        raise EdgeganError("%s generates images from noise%s; it takes no --input (use --label, --seed, --n)"
                           % (bundle.path, " and a class label" if classes else ""))
    if args.edges or args.side_by_side:
        raise EdgeganError("--edges and --side-by-side apply to image → image bundles; %s generates from noise"
                           % bundle.path)
    labels = check_labels(args.label, classes, "--label")
    n = NOISE_DEFAULT_N if args.n is None else args.n
    if n < 1 or (args.cols is not None and args.cols < 1):
        raise EdgeganError("--n and --cols must be at least 1")
    if os.path.splitext(args.output)[1].lower() not in IMAGE_EXTENSIONS:
        raise EdgeganError("--output %s: the grid is an image file; give a name ending in %s"
                           % (args.output, ", ".join(IMAGE_EXTENSIONS[:3])))
    cols = args.cols or (classes if classes and labels is None else None)
    if args.variant == "all":
        names = bundle.variant_names
        paths = [_variant_path(args.output, name) for name in names]
    else:
        names, paths = [bundle.variant(args.variant)["name"]], [args.output]
    for path in paths:
        check_output_path(path, args.force)
    seed = args.seed or 0
    feeds = sample_feeds(specs, n, seed=seed, labels=labels)
    rows = []
    with Runtime(bundle, backend=args.backend, threads=args.threads) as rt:
        for name, path in zip(names, paths):
            rt.set_variant(name)
            start = time.perf_counter()
            images = [rt.postprocess(rt(feed)) for feed in feeds]
            seconds = time.perf_counter() - start
            with FrameWriter(path, "image", force=args.force) as writer:
                writer.write(os.path.basename(path), image_grid(images, cols))
            rows.append({"variant": name, "output": path, "seconds": seconds,
                         "model_fps": n / seconds if seconds > 0 else None})
    summary = {"bundle": bundle.path, "n": n, "seed": seed, "n_classes": classes,
               "labels": labels[0] if labels else ("every class in turn" if classes else None), "grids": rows}
    if args.json:
        emit_json(summary)
    else:
        what = ("class %d" % labels[0]) if labels else ("every class in turn" if classes else "unconditional")
        for row in rows:
            print("wrote %s: %d images (%s, seed %d) with %s in %.2f s" % (
                row["output"], n, what, seed, row["variant"], row["seconds"]))
    return 0


def run(args):
    from ..runtime import Runtime, load_bundle
    from ..runtime.edges import edges_from_image
    from ..runtime.imageio import FrameSource, FrameWriter, output_kind, resize, side_by_side, spec_geometry

    bundle = load_bundle(args.bundle)
    if bundle.takes_noise:
        return generate(args, bundle)
    given = [flag for flag, value in (("--label", args.label), ("--seed", args.seed), ("--n", args.n),
                                      ("--cols", args.cols)) if value is not None]
    if given:
        raise EdgeganError("%s %s to noise → image bundles; %s translates %s images (give --input)"
                           % (", ".join(given), "apply" if len(given) > 1 else "applies", bundle.path,
                              bundle.input.get("content", "input")))
    if args.input is None:
        raise EdgeganError("--input is required: %s translates %s images" % (bundle.path,
                                                                            bundle.input.get("content", "input")))
    if os.path.abspath(args.output) == os.path.abspath(args.input):
        raise EdgeganError("--output is the same path as --input; choose another output")
    check_output_path(args.output, args.force)
    source = FrameSource(args.input)
    kind = output_kind(source.kind, args.output)
    with Runtime(bundle, backend=args.backend, threads=args.threads, variant=args.variant) as rt:
        edges = edge_parameters(rt.bundle) if args.edges else None
        _, height, width = spec_geometry(rt.bundle.input)
        model_s = 0.0
        start = time.perf_counter()
        with FrameWriter(args.output, kind, force=args.force, fps=source.fps) as writer:
            checked = 0
            for name, frame in _progress(source):
                if not edges and checked < EDGE_CHECK_FRAMES and rt.bundle.input.get("content") == "edges":
                    checked = _check_edge_map(frame, name, checked,
                                              (rt.bundle.input.get("edges") or {}).get("invert", True))
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
