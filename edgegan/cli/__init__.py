"""The ``edgegan`` command. Thin: parse, call the library, print.

Each sub-command lives in its own module exposing ``register(subparsers)``; its handler
is stored as the parser default ``func``. Handlers import heavy libraries lazily so that
``edgegan bench`` and ``edgegan run`` work on a device without torch.
"""

import argparse
import importlib
import sys

from .. import __version__
from ..errors import EdgeganError

COMMANDS = ["build", "bench", "run", "train", "targets", "demo", "profile", "search", "eval", "data"]

EPILOG = """examples:
  edgegan build --target jetson-nano            # packaged default model → ./edgegan-jetson-nano/
  edgegan bench edgegan-jetson-nano             # FPS and latency per variant
  edgegan run edgegan-cpu --input edges/ --output out/
  edgegan train slimmable --data fmnist-shoes --steps 2000 --out runs/shoes.pt
  edgegan data get edges2shoes                  # the public pix2pix / CycleGAN data sets → ./datasets/
  edgegan targets                               # the device profiles
  edgegan demo edges2shoes --bundle edgegan-cpu --source 0     # the webcam demo
  edgegan profile edgegan-cpu --emulate-threads 1,2            # FPS/power per width and mode, plots
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="edgegan", description="Train width-switchable generators, compile them per device, run them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="edgegan " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module("edgegan.cli." + name).register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except EdgeganError as e:
        print("edgegan %s: error: %s" % (args.command, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgegan %s: interrupted" % args.command, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
