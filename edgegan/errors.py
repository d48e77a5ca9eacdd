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
