"""``edgegan data get``: download a public data set's archive, check it, extract it safely, put it in place.

Layout under ``root`` (default ``datasets/``)::

    root/NAME.tar.gz            the archive (kept unless delete_archive), and
    root/NAME.tar.gz.sha256     its sha256 in ``sha256sum`` format (``sha256sum -c`` checks it)
    root/NAME/                  the data set: train/ val/ (pix2pix) or trainA/ trainB/ testA/ testB/ (CycleGAN)

Nothing half-written is left: the archive arrives as ``NAME.tar.gz.part`` (kept for resuming when a
download breaks off) and is renamed when whole; extraction goes to a hidden temporary folder that is
renamed to ``root/NAME`` when the archive is fully extracted and its layout checked, and deleted on any
failure. An existing ``root/NAME`` is replaced only with ``force``.
"""

import os
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request

from ..errors import DatasetError, DownloadError
from .catalogue import PAIRED, lookup
from .download import Interrupted, download, sha256_file
from .extract import extract
from .images import image_files

DEFAULT_ROOT = "datasets"
PAIRED_SPLITS = ("train", "val", "test")
UNPAIRED_SPLITS = ("trainA", "trainB", "testA", "testB", "valA", "valB")


def normalise_url(url):
    """``--url``: an http(s)/file URL, or a local path (made a ``file://`` URL)."""
    if "://" in url:
        scheme = urllib.parse.urlparse(url).scheme
        if scheme not in ("http", "https", "file"):
            raise DownloadError("--url %s: only http://, https:// and file:// URLs (or a local path) are supported"
                                % url)
        return url
    path = os.path.abspath(os.path.expanduser(url))
    if not os.path.isfile(path):
        raise DownloadError("--url %s: no such file (give an http(s):// or file:// URL, or a local archive path)"
                            % url)
    return "file://" + urllib.request.pathname2url(path)


def write_sha256(archive, digest):
    """``archive.sha256`` in ``sha256sum`` format, written atomically."""
    path = archive + ".sha256"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%s  %s\n" % (digest, os.path.basename(archive)))
    os.replace(tmp, path)
    return path


def read_sha256(archive):
    try:
        with open(archive + ".sha256") as f:
            return f.read().split()[0].lower()
    except (OSError, IndexError):
        return None


def split_counts(folder):
    """Images per split folder of an extracted data set (``{"train": 49825, "val": 200}``)."""
    counts = {}
    for split in sorted(os.listdir(folder)):
        path = os.path.join(folder, split)
        if os.path.isdir(path) and split in PAIRED_SPLITS + UNPAIRED_SPLITS:
            counts[split] = len(image_files(path))
    return counts


def check_layout(folder, kind, name):
    """The extracted folder holds the layout its kind promises; a ``DatasetError`` naming what it holds."""
    counts = split_counts(folder)
    if kind == PAIRED:
        ok = counts.get("train", 0) > 0
        want = "train/ (and val/ or test/) of A|B side-by-side images (the pix2pix aligned layout)"
    else:
        ok = counts.get("trainA", 0) > 0 and counts.get("trainB", 0) > 0
        want = "trainA/ and trainB/ (and testA/, testB/) of images (the CycleGAN unpaired layout)"
    if not ok:
        present = sorted(os.listdir(folder))[:12]
        raise DatasetError("the %s archive does not hold %s; it holds: %s" % (name, want, ", ".join(present) or
                                                                              "nothing"))
    return counts


def _locate(tmp, folder):
    """The data set folder inside a fresh extraction: ``folder``, else the single top-level folder, else ``tmp``."""
    if os.path.isdir(os.path.join(tmp, folder)):
        return os.path.join(tmp, folder)
    entries = [e for e in os.listdir(tmp) if not e.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(tmp, entries[0])):
        return os.path.join(tmp, entries[0])
    return tmp


def _place(src, final):
    """Rename ``src`` to ``final``, replacing an existing ``final`` (moved aside first, deleted after)."""
    aside = None
    if os.path.exists(final):
        aside = tempfile.mkdtemp(prefix="." + os.path.basename(final) + ".old-", dir=os.path.dirname(final))
        os.rmdir(aside)
        os.replace(final, aside)
    try:
        os.replace(src, final)
    except OSError:
        if aside:
            os.replace(aside, final)
        raise
    if aside:
        shutil.rmtree(aside, ignore_errors=True)


def fetch_archive(entry, archive, urls, progress=True, timeout=60.0, retries=2, say=None):
    """Download ``archive`` from the first of ``urls`` that answers (resuming a ``.part``; ``retries`` more
    attempts, each resuming, when the connection drops mid-body). Returns the download record."""
    say = say or (lambda line: print(line, file=sys.stderr))
    failures = []
    for url in urls:
        for attempt in range(retries + 1):
            try:
                return download(url, archive, progress=progress, timeout=timeout, say=say, desc=entry.name)
            except Interrupted as e:
                if attempt == retries:
                    raise
                say("%s; retrying (%d of %d)" % (e, attempt + 1, retries))
            except DownloadError as e:
                failures.append(str(e))
                break
    raise DownloadError("could not download %s: %s. Check the network, or pass --url with a mirror or a local "
                        "copy (file:///path/%s)" % (entry.name, "; ".join(failures), entry.archive_name))


def get_dataset(name, root=DEFAULT_ROOT, url=None, force=False, sha256=None, delete_archive=False, progress=True,
                timeout=60.0, retries=2, say=None):
    """Download (or reuse), verify and extract the data set ``name`` into ``root/name``; returns a report dict."""
    say = say or (lambda line: print(line, file=sys.stderr))
    entry = lookup(name)
    urls = (normalise_url(url),) if url else entry.urls
    if not urls:
        raise DatasetError("%s cannot be downloaded by edgegan: %s" % (name, entry.note))
    expected = (sha256 or entry.sha256 or "").lower() or None
    if expected and (len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected)):
        raise DatasetError("--sha256 must be 64 hexadecimal digits, got %r" % sha256)
    root = os.path.abspath(root)
    final = os.path.join(root, name)
    if os.path.exists(final) and not force:
        raise DatasetError("%s already exists; train on it with --data %s, or pass --force to download and "
                           "extract it again" % (final, final))
    os.makedirs(root, exist_ok=True)
    archive = os.path.join(root, entry.archive_name)

    record = None
    if os.path.isfile(archive) and not force:
        say("using %s (downloaded before; --force downloads it again)" % archive)
    else:
        if force and os.path.isfile(archive):
            os.remove(archive)
        record = fetch_archive(entry, archive, urls, progress=progress, timeout=timeout, retries=retries, say=say)
    size = os.path.getsize(archive)
    digest = sha256_file(archive)
    recorded = read_sha256(archive)
    if record is None and recorded and recorded != digest:
        raise DatasetError("%s changed since it was downloaded (sha256 %s, recorded %s); delete it or pass --force"
                           % (archive, digest, recorded))
    if expected and digest != expected:
        os.remove(archive)
        raise DownloadError("%s: sha256 %s differs from the expected %s (a corrupt download, or a mirror serving "
                            "another file); removed it" % (archive, digest, expected))
    if entry.size and size != entry.size and not url:
        os.remove(archive)
        raise DownloadError("%s is %d bytes, expected %d; removed it, run again" % (archive, size, entry.size))
    write_sha256(archive, digest)
    say("%s: %d bytes, sha256 %s%s" % (os.path.basename(archive), size, digest,
                                       " (matches the expected value)" if expected else ""))

    tmp = tempfile.mkdtemp(prefix="." + name + ".extract-", dir=root)
    try:
        members = extract(archive, tmp, progress=progress)
        src = _locate(tmp, entry.folder)
        counts = check_layout(src, entry.kind, name)
        _place(src, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if delete_archive:
        os.remove(archive)
    return {"name": name, "kind": entry.kind, "path": final, "archive": None if delete_archive else archive,
            "size": size, "sha256": digest, "sha256_checked": bool(expected), "members": members,
            "splits": counts, "url": record["url"] if record else None,
            "resumed_from": record["resumed_from"] if record else None, "direction": entry.direction}
