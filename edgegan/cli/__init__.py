"""The ``edgegan`` command. Thin: parse, call the library, print.

Each sub-command lives in its own module exposing ``register(subparsers)``; its handler
is stored as the parser default ``func``. Handlers import heavy libraries lazily so that
``edgegan bench`` and ``edgegan run`` work on a device without torch.

Two distributions ship these modules: ``edgegan-runtime`` (what a device installs, Python >= 3.6,
numpy and a backend) carries this dispatcher and the ``DEVICE_COMMANDS``; the full ``edgegan``
(the development toolkit: torch, ONNX, compilers) adds every other command of ``COMMANDS``. A
command whose module is not installed is listed under "not installed here" by ``--help`` and refused
with one line naming the package that adds it.
"""

import argparse
import errno
import importlib
import importlib.util
import signal
import sys
import warnings

from .. import __version__
from ..errors import EdgeganError, EdgeganWarning, install_hint
from ._common import OneLineParser

COMMANDS = ["build", "bench", "run", "train", "targets", "demo", "profile", "search", "eval", "import", "data"]
# a command whose word is a Python keyword lives in a module with a trailing underscore
MODULES = {"import": "import_"}
# The commands edgegan-runtime ships (edgegan-runtime/pyproject.toml lists their modules); every other
# command of COMMANDS comes with the full toolkit.
DEVICE_COMMANDS = ["bench", "run", "demo", "profile"]
FULL_PACKAGE = "edgegan"
FULL_INSTALL = "the development toolkit (Python >= 3.9, with torch): " + install_hint()

EPILOG = """examples:
  edgegan build --target jetson-nano            # packaged default model → ./edgegan-jetson-nano/
  edgegan bench edgegan-jetson-nano             # FPS and latency per variant
  edgegan run edgegan-cpu --input edges/ --output out/
  edgegan train slimmable --data fmnist-shoes --steps 2000 --out runs/shoes.pt
  edgegan data get edges2shoes                  # the public pix2pix / CycleGAN data sets → ./datasets/
  edgegan targets                               # the device profiles
  edgegan demo edges2shoes --bundle edgegan-cpu --source 0     # the webcam demo
  edgegan profile edgegan-cpu --emulate-threads 1,2            # FPS/power per width and mode, plots
  edgegan import latest_net_G.pth --format pix2pix --netG resnet_9blocks --size 256 --out g.pt  # your generator
"""


def command_module(command):
    """The module name of sub-command ``command``."""
    return "edgegan.cli." + MODULES.get(command, command)


def installed(command):
    """Whether the module of sub-command ``command`` is installed here."""
    return importlib.util.find_spec(command_module(command)) is not None


def missing_commands():
    """The commands of ``COMMANDS`` whose modules are not installed (a device with edgegan-runtime only)."""
    return [name for name in COMMANDS if not installed(name)]


def not_installed_message(command):
    return ("`edgegan %s` is part of the full edgegan package, which is not installed here (this is "
            "edgegan-runtime: %s); install %s" % (command, ", ".join(DEVICE_COMMANDS), FULL_INSTALL))


def _epilog(missing):
    if not missing:
        return EPILOG
    lines = [line for line in EPILOG.splitlines()
             if not (line.startswith("  edgegan ") and line.split()[1] in missing)]
    return "\n".join(lines) + ("\n\nnot installed here: %s. They come with the full %s package; install %s.\n"
                               % (", ".join(missing), FULL_PACKAGE, FULL_INSTALL))


def build_parser():
    missing = missing_commands()
    parser = OneLineParser(
        prog="edgegan", description="Train width-switchable generators, compile them per device, run them.",
        epilog=_epilog(missing), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="edgegan " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name not in missing:
            importlib.import_module(command_module(name)).register(sub)
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


def _command_word(argv):
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_word(argv)
    if command in COMMANDS and not installed(command):
        print("edgegan %s: error: %s" % (command, not_installed_message(command)), file=sys.stderr)
        return 2
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
