"""The build log: what third-party converters print goes to a file in the bundle, not to the terminal.

Converters talk a lot on stdout and stderr — FutureWarnings, TensorFlow / absl logs, torchao extension load
failures, coremltools progress bars, "Failed to load _MLModelProxy" off macOS — much of it from C++ writing
straight to file descriptors 1 and 2. ``capture_output`` points both descriptors, ``sys.stdout`` /
``sys.stderr`` and Python's warnings at a log file while a build runs, and hands back a stream on the real
terminal for edgegan's own progress bar. ``EdgeganWarning``s still reach the terminal.
"""

import contextlib
import ctypes
import os
import sys
import warnings

from ..errors import EdgeganWarning

BUILD_LOG = "build.log"


def _flush_c_stdio():
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def capture_output(log_path, enabled=True):
    """Within the block, file descriptors 1 and 2 write to ``log_path``; yields a text stream on the original
    stderr (for progress bars). With ``enabled=False`` (or when the descriptors cannot be duplicated) nothing
    is redirected and ``sys.stderr`` is yielded."""
    if not enabled:
        yield sys.stderr
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    try:
        saved = (os.dup(1), os.dup(2))
    except OSError:
        yield sys.stderr
        return
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    default_show = warnings.showwarning
    streams = sys.stdout, sys.stderr
    with open(log_path, "ab") as log, open(log_path, "a", buffering=1) as text:
        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, EdgeganWarning):  # edgegan's own warnings stay on the terminal
                print("edgegan build: warning: %s" % message, file=terminal)
            else:
                text.write(warnings.formatwarning(message, category, filename, lineno, line))

        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = text  # Python-level output too, even where sys.stdout is not on descriptor 1
        warnings.showwarning = show
        try:
            yield terminal
        finally:
            warnings.showwarning = default_show
            sys.stdout, sys.stderr = streams
            text.flush()
            _flush_c_stdio()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            terminal.close()


def log_lines(path):
    """Number of non-empty lines in a build log (0 when there is none)."""
    if not os.path.isfile(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
