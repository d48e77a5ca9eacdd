"""The ``edgegan`` command. Thin: parse, call the library, print.

Each sub-command lives in its own module exposing ``register(subparsers)``; its handler
is stored as the parser default ``func``. Handlers import heavy libraries lazily so that
``edgegan bench`` and ``edgegan run`` work on a device without torch.
"""

import argparse
import errno
import importlib
import signal
import sys
import warnings

from .. import __version__
from ..errors import EdgeganError, EdgeganWarning
from ._common import OneLineParser

COMMANDS = ["build", "bench", "run", "train", "targets", "demo", "profile", "search", "eval"]

EPILOG = """examples:
  edgegan build --target jetson-nano            # packaged default model → ./edgegan-jetson-nano/
  edgegan bench edgegan-jetson-nano             # FPS and latency per variant
  edgegan run edgegan-cpu --input edges/ --output out/
  edgegan train slimmable --data fmnist-shoes --steps 2000 --out runs/shoes.pt
  edgegan targets                               # the device profiles
  edgegan demo edges2shoes --bundle edgegan-cpu --source 0     # the webcam demo
  edgegan profile edgegan-cpu --emulate-threads 1,2            # FPS/power per width and mode, plots
"""


def build_parser():
    parser = OneLineParser(
        prog="edgegan", description="Train width-switchable generators, compile them per device, run them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="edgegan " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module("edgegan.cli." + name).register(sub)
    return parser


#: errors of the file system a user can fix (a read-only, full or missing place): one line, exit 2
USER_OS_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR,
                  errno.ENAMETOOLONG, errno.ENOENT, errno.EEXIST, errno.ELOOP, errno.EXDEV, errno.EBUSY)


def os_error_message(e):
    """One line for an ``OSError`` of the file system: the path(s) and what the system said."""
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    return "%s%s; check the path, its permissions (or immutable attribute) and free space" % (
        "%s: " % paths if paths else "", e.strerror or e)


def _show_warning(prog):
    """``warnings.showwarning`` that prints an ``EdgeganWarning`` as one line; others as Python does."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, EdgeganWarning):
            print("%s: warning: %s" % (prog, message), file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


class _sigterm_as_interrupt(object):
    """While a command runs, SIGTERM (``kill``, a service stop) unwinds like Ctrl-C, so that temporary outputs
    are removed and nothing half-written is left; the previous handler comes back afterwards."""

    def __enter__(self):
        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            pass
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prog = "edgegan %s" % args.command
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        warnings.simplefilter("once", EdgeganWarning)
        warnings.showwarning = _show_warning(prog)
        try:
            return args.func(args) or 0
        except EdgeganError as e:
            print("%s: error: %s" % (prog, e), file=sys.stderr)
            return 2
        except OSError as e:
            if e.errno not in USER_OS_ERRORS:
                raise
            print("%s: error: %s" % (prog, os_error_message(e)), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("%s: interrupted" % prog, file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
