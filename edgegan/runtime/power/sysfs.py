"""Small readers for sysfs-like files: never raise on a missing or malformed file. Python 3.6-compatible."""

import errno
import os


def read_text(path):
    """Stripped text of a small file, or ``None`` when it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except (IOError, OSError):
        return None


def read_number(path, notes=None, what=None):
    """The number in a file (int or float), or ``None``.

    A missing file gives ``None`` silently; an unreadable (permission) or malformed one gives
    ``None`` and a line in ``notes``.
    """
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace").strip()
    except (IOError, OSError) as e:
        if e.errno not in (errno.ENOENT, errno.ENODEV, errno.ENXIO) and notes is not None:
            notes.append("%s unreadable (%s)" % (what or path, e.strerror or e))
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        if notes is not None:
            notes.append("%s is malformed: %r" % (what or path, text[:40]))
        return None


def is_readable(path):
    return os.access(path, os.R_OK)
