"""Safe extraction of tar(.gz) and zip archives.

Every member is checked before it is written: an absolute path, a ``..`` component, a symbolic or hard
link, a device, FIFO or socket is refused (``UnsafeArchiveError``) — data sets need none of them. Zip
archives are checked whole before anything is written; tar streams member by member, into a folder the
caller deletes on failure. ``tarfile``'s ``"data"`` filter is applied on top where Python has it.
A truncated or corrupt archive raises ``DatasetError`` with one line.
"""

import gzip
import os
import stat
import string
import sys
import tarfile
import zipfile
import zlib

from ..errors import DatasetError

DRIVE_LETTERS = tuple("%s:" % c for c in string.ascii_uppercase)
FILTER_ERRORS = getattr(tarfile, "FilterError", ())  # Python with tarfile extraction filters


class UnsafeArchiveError(DatasetError):
    """An archive member would land outside the extraction folder, or is a link or a device."""


def archive_format(path):
    """``"zip"`` or ``"tar"`` by content (not by name); ``DatasetError`` for anything else."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError("%s is not a readable archive (%s); the download may be truncated: delete it and run "
                           "again, or pass --force" % (path, e))
    raise DatasetError("%s is neither a zip nor a tar archive (a truncated download, or an HTML error page?); "
                       "delete it and run again, or pass --force" % path)


def check_member_name(name, archive):
    """Refuse absolute names, drive letters and ``..`` components."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or unified[:2].upper() in DRIVE_LETTERS:
        raise UnsafeArchiveError("%s: member %r has an absolute path; refusing to extract this archive"
                                 % (archive, name))
    if ".." in unified.split("/"):
        raise UnsafeArchiveError("%s: member %r climbs out of the extraction folder (..); refusing to extract "
                                 "this archive" % (archive, name))


def _refuse_kind(archive, name, kind):
    raise UnsafeArchiveError("%s: member %r is a %s; a data set archive holds only files and folders, refusing to "
                             "extract it" % (archive, name, kind))


def check_tar_member(member, archive):
    check_member_name(member.name, archive)
    if member.issym():
        _refuse_kind(archive, member.name, "symbolic link (to %r)" % member.linkname)
    if member.islnk():
        _refuse_kind(archive, member.name, "hard link (to %r)" % member.linkname)
    if member.ischr() or member.isblk():
        _refuse_kind(archive, member.name, "device")
    if member.isfifo():
        _refuse_kind(archive, member.name, "FIFO")
    if not (member.isfile() or member.isdir()):
        _refuse_kind(archive, member.name, "special member (type %r)" % member.type)


def check_zip_member(info, archive):
    check_member_name(info.filename, archive)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        _refuse_kind(archive, info.filename, "symbolic link")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        _refuse_kind(archive, info.filename, "device")
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        _refuse_kind(archive, info.filename, "FIFO or socket")


def _corrupt(archive, error):
    return DatasetError("%s is truncated or corrupt (%s: %s); delete it and run again, or pass --force to download "
                        "it anew" % (archive, error.__class__.__name__, error))


def extract(archive, dest, progress=True):
    """Extract ``archive`` into the existing folder ``dest``; returns the number of members written.

    On ``UnsafeArchiveError`` / ``DatasetError`` ``dest`` may hold part of the archive: extract into a
    temporary folder and delete it on failure (``edgegan.data.get`` does).
    """
    kind = archive_format(archive)
    return (_extract_zip if kind == "zip" else _extract_tar)(archive, dest, progress)


def _extract_zip(archive, dest, progress):
    from tqdm import tqdm

    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:  # all checked before anything is written
                check_zip_member(info, archive)
            for info in tqdm(members, desc="extracting", unit="file", disable=not progress, file=sys.stderr,
                             dynamic_ncols=True):
                zf.extract(info, dest)
            return len(members)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise _corrupt(archive, e)


def _extract_tar(archive, dest, progress):
    from tqdm import tqdm

    data_filter = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    count = 0
    size = os.path.getsize(archive)
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tf, \
                tqdm(total=size, desc="extracting", unit="B", unit_scale=True, unit_divisor=1024,
                     disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
            for member in tf:  # streamed: each member checked before it is written
                check_tar_member(member, archive)
                tf.extract(member, dest, **data_filter)
                count += 1
                bar.update(raw.tell() - bar.n)
    except FILTER_ERRORS as e:
        raise UnsafeArchiveError("%s: %s; refusing to extract this archive" % (archive, e))
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise _corrupt(archive, e)
    if not count:
        raise DatasetError("%s holds no files; delete it and run again, or pass --force" % archive)
    return count
