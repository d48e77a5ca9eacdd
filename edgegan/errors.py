"""Errors that carry a message meant for the user (the CLI prints them without a traceback).

Torch-free and Python 3.6-compatible: the runtime uses it on the device.
"""


class EdgeganError(Exception):
    """A user-facing error: says what is wrong and how to fix it."""


class BundleError(EdgeganError):
    """A bundle is missing, malformed, or fails its checksum."""


class CheckpointError(EdgeganError):
    """A checkpoint is missing, corrupt, or not an edgegan checkpoint."""


class DatasetError(EdgeganError):
    """A dataset is missing or malformed."""


class DownloadError(EdgeganError):
    """A download failed: no network, an HTTP error, a dropped connection, a checksum mismatch."""


class TargetError(EdgeganError):
    """An unknown target, an invalid profile, or a graph the target cannot take."""


class InputError(EdgeganError):
    """An input (image, array, video) does not fit the model."""


class EdgeganWarning(UserWarning):
    """Something the user should know (weak calibration, an input that does not look like the model's, an
    unstable measurement): the CLI prints it as one ``warning:`` line on stderr, once."""


def warn(message):
    """Issue ``message`` as an ``EdgeganWarning`` (shown once per message by the CLI)."""
    import warnings

    warnings.warn(message, EdgeganWarning, stacklevel=2)


def install_hint(extra=None, packages=None):
    """How to install edgegan (``extra``: one of its optional extras, e.g. ``"tflite"``), as one command that
    works from a source checkout — edgegan is installed from its repository, with the project's constraints
    file keeping torch at the tested version. ``packages``: what the extra brings, for the reader (e.g.
    ``"coremltools"``). The one place to change when the install instructions change."""
    line = "pip install -c constraints.txt -e %s (in the edgegan checkout)" % ('".[%s]"' % extra if extra else ".")
    return line + (" for %s" % packages if packages else "")
