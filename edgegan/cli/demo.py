"""``edgegan demo``: live demos on top of a bundle. ``edgegan demo edges2shoes``: the webcam demo.

Torch-free and Python 3.6-compatible: runs on the device with numpy, OpenCV and the bundle's
backend. ``main(argv)`` is a stand-alone entry point (``demos/edges2shoes_webcam.py``) that does not
import the other sub-commands.
"""

import argparse
import sys

from ..errors import EdgeganError
from ._common import emit_json, format_table

DEMOS = ("edges2shoes",)

EPILOG = """examples:
  edgegan demo edges2shoes --bundle edgegan-cpu                     # camera 0, in a window
  edgegan demo edges2shoes --bundle edgegan-cpu --source canvas     # draw with the mouse
  edgegan demo edges2shoes --bundle edgegan-cpu --source clip.mp4 --loop --variant w0.5
  edgegan demo edges2shoes --bundle shoes-nano --source csi --auto  # Jetson CSI camera, power-mode policy
  edgegan demo edges2shoes --bundle shoes-nano --source 'gst:nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=1280, height=720, framerate=30/1 ! nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1'
  edgegan demo edges2shoes --bundle edgegan-cpu --source clip.mp4 --headless \\
      --out result.mp4 --stats stats.json --frames 300 --switch-every 100

sources: a camera index (0) or /dev/videoN; a video file (--loop to repeat it); 'gst:PIPELINE' (an
OpenCV built with GStreamer, as JetPack's is); 'csi' or 'csi:N' (the Jetson CSI camera N through
nvarguscamerasrc); 'canvas' (a drawing canvas: mouse strokes, c clear, z undo).

pipeline: centre crop -> resize to the model's input -> Canny with the bundle's parameters (dark edges
on white, as in training; --low/--high or [ ] { } change the thresholds) -> the generator at the current
variant -> input | edges | output, with FPS (rolling), latency, variant, MACs, power mode and watts.
Reading + edges, the model and composition + output run side by side in three threads (--serial: one);
a camera's frames are dropped, not queued, when the model is behind (the newest frame is taken).

keys (in the window): + / - wider / narrower variant, a auto (power-mode policy), [ ] Canny low -/+ 10,
{ } Canny high -/+ 10, c / z canvas clear / undo, space pause, s screenshot, h help, q or Esc quit.

headless (--headless): no window; --out writes the composed frames (mp4v), --stats the per-frame stats and
FPS per variant (JSON); --keys FRAME:KEY,... or --switch-every N drive the keys. When a video ends or a
camera disappears, the output is closed and kept with the frames so far; a lost camera exits with 2.
Outputs are written to a temporary file and renamed into place; existing files need --force.
"""

COLUMNS = [("variant", "variant", None), ("frames", "frames", "{:d}"), ("fps", "FPS", "{:.1f}"),
           ("model_fps", "model FPS", "{:.1f}"), ("frame_median_ms", "frame ms (median)", "{:.2f}"),
           ("infer_median_ms", "model ms (median)", "{:.2f}"), ("infer_p90_ms", "model ms (p90)", "{:.2f}")]


def add_edges2shoes_arguments(p):
    """The options of the edges2shoes demo, on parser ``p``."""
    p.add_argument("--bundle", metavar="DIR",
                   help="a bundle directory written by `edgegan build` (default: ./edgegan-cpu or "
                        "./edgegan-jetson-nano when present)")
    p.add_argument("--source", default="0", metavar="SRC",
                   help="camera index, /dev/videoN, video file, 'gst:PIPELINE', 'csi[:N]' or 'canvas' (default 0)")
    p.add_argument("--loop", action="store_true", help="start a video source over when it ends")
    p.add_argument("--variant", metavar="NAME", help="first variant, by name or width (default: the bundle's)")
    p.add_argument("--auto", action="store_true",
                   help="start in auto mode: the bundle's power-mode policy picks the variant")
    p.add_argument("--power-source", metavar="SPEC",
                   help="power source for auto mode and the overlay: auto, jetson, linux, psutil, file:PATH, "
                        "manual:MODE, none (default: auto-detect)")
    p.add_argument("--power-interval", type=float, default=2.0, metavar="S",
                   help="seconds between power readings (default 2)")
    p.add_argument("--low", type=int, metavar="N", help="Canny low threshold (default: the bundle's)")
    p.add_argument("--high", type=int, metavar="N", help="Canny high threshold (default: the bundle's)")
    p.add_argument("--blur", type=int, metavar="K", help="Gaussian blur kernel before Canny (default: the bundle's)")
    p.add_argument("--panel", type=int, default=256, metavar="PX", help="side of each displayed panel (default 256)")
    p.add_argument("--capture-width", type=int, metavar="PX", help="camera capture width to request")
    p.add_argument("--capture-height", type=int, metavar="PX", help="camera capture height to request")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: the backend's)")
    p.add_argument("--backend", metavar="NAME", help="inference backend (default: the bundle's)")
    p.add_argument("--providers", metavar="LIST",
                   help="onnxruntime execution providers, comma-separated: cuda, tensorrt, cpu (default cpu)")
    p.add_argument("--headless", action="store_true", help="no window: write --out / --stats instead")
    p.add_argument("--out", metavar="VIDEO", help="write the composed frames to this video (.mp4, mp4v)")
    p.add_argument("--stats", metavar="JSON",
                   help="write per-frame stats, FPS per variant and per-stage times to this JSON file (rewritten "
                        "every --stats-every seconds during the run, and at its end whatever ended it)")
    p.add_argument("--stats-every", type=float, default=10.0, metavar="S",
                   help="seconds between rewrites of --stats during the run (default 10; 0: only at the end)")
    p.add_argument("--serial", action="store_true",
                   help="one thread does each frame's steps in turn (default: reading + edges, the model and "
                        "composition + output overlap in three threads)")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--switch-every", type=int, metavar="N", help="cycle through the variants every N frames")
    p.add_argument("--keys", metavar="SCRIPT",
                   help="keys pressed before given frames, e.g. '30:-,60:a,90:s' (names: space, esc, plus, minus)")
    p.add_argument("--frame-records", type=int, default=10000, metavar="N",
                   help="per-frame records kept for --stats (default 10000; the aggregates cover every frame)")
    p.add_argument("--screenshot-dir", default=".", metavar="DIR", help="where s saves screenshots (default .)")
    p.add_argument("--help-overlay", action="store_true", help="start with the key help shown")
    p.add_argument("--force", action="store_true", help="replace existing --out / --stats files")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (without per-frame records)")


def register(sub):
    p = sub.add_parser("demo", help="live demos (edges2shoes webcam demo)",
                       description="Live demos on top of a bundle.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    demos = p.add_subparsers(dest="demo", metavar="DEMO")
    e = demos.add_parser("edges2shoes", help="camera / video / canvas -> edges -> generator, side by side",
                         description="The edges2shoes demo: frames from a camera, a video, a GStreamer pipeline or "
                                     "a drawing canvas -> Canny edges -> the generator at the current variant, shown "
                                     "side by side with FPS, latency, variant, MACs and power mode.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_edges2shoes_arguments(e)
    e.set_defaults(func=run)
    p.set_defaults(func=lambda args: _no_demo(p))


def _no_demo(parser):
    parser.print_help()
    return 2


def _rows(summary):
    rows = []
    for name, v in summary["variants"].items():
        rows.append({"variant": name, "frames": v["frames"], "fps": v["fps"], "model_fps": v["model_fps"],
                     "frame_median_ms": (v["frame_ms"] or {}).get("median"),
                     "infer_median_ms": (v["infer_ms"] or {}).get("median"),
                     "infer_p90_ms": (v["infer_ms"] or {}).get("p90")})
    return rows


ENDINGS = {"frames": "after --frames", "duration": "after --duration", "source-ended": "the source ended",
           "source-lost": "the source was lost", "source-failed": "the source failed", "quit": "quit", "interrupted": "interrupted"}


def run(args):
    from ..demo.app import run_edges2shoes
    from ..demo.sources import SourceLost

    summary = run_edges2shoes(args)
    if args.json:
        emit_json(dict((k, v) for k, v in summary.items() if k not in ("per_frame", "per_frame_fields")))
    else:
        print(format_table(_rows(summary), COLUMNS))
        print("%d frames in %.2f s (%.1f FPS end to end) from %s; ended: %s"
              % (summary["frames"], summary["wall_s"], summary["fps"] or 0.0, summary["source"]["description"],
                 ENDINGS.get(summary["end_reason"], summary["end_reason"])))
        if summary["switches"]:
            print("%d variant switch%s" % (len(summary["switches"]), "" if len(summary["switches"]) == 1 else "es"))
        written = [p for p in (summary["out"], args.stats) if p]
        if written and summary["frames"]:
            print("wrote " + " and ".join(written))
        for path in summary["screenshots"]:
            print("screenshot " + path)
    if summary["end_reason"] == "source-ended" and args.frames and summary["frames"] < args.frames:
        sys.stderr.write("note: %s ended after %d frames, before --frames %d (pass --loop to repeat a video)\n"
                         % (summary["source"]["description"], summary["frames"], args.frames))
    if summary["end_reason"] in ("source-lost", "source-failed"):
        kept = " (%d frames kept in %s)" % (summary["frames"], summary["out"]) if summary["out"] and summary["frames"] \
            else ""
        raise SourceLost("%s%s" % (summary["error"], kept))
    if summary["end_reason"] == "interrupted":
        raise KeyboardInterrupt
    return 0


def main(argv=None, prog="edges2shoes_webcam.py"):
    """Stand-alone entry point of the edges2shoes demo (no other sub-command is imported)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="The edges2shoes demo (same as `edgegan demo edges2shoes`).", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_edges2shoes_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except EdgeganError as e:
        sys.stderr.write("%s: error: %s\n" % (prog, e))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % prog)
        return 130
