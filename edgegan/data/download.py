"""Resumable HTTP(S) / file downloads with the standard library (``urllib``).

``download(url, dest)`` streams ``url`` into ``dest + ".part"`` (with a progress bar) and renames it to
``dest`` once every byte has arrived. A ``.part`` left by an interrupted call is resumed with an HTTP
``Range`` request (``If-Range`` guards against the file having changed on the server): a ``206`` answer
appends, a ``200`` (a server that ignores ``Range``) or a changed file restarts from byte 0, a ``416``
means the part is already whole (or stale: restarted). Failures raise ``DownloadError`` with one line
saying what happened and what to do.
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import sys
import urllib.error
import urllib.request

from ..errors import DownloadError

CHUNK = 1 << 20
CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class Interrupted(DownloadError):
    """The connection dropped mid-body; the ``.part`` file keeps what arrived (resumable)."""


def sha256_file(path, chunk=CHUNK):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def user_agent():
    from .. import __version__

    return "edgegan/%s (python urllib)" % __version__


def describe_url_error(url, error):
    """One line for a failed connection: refused, DNS, timeout, TLS, unreachable."""
    reason = getattr(error, "reason", error)
    host = urllib.request.urlparse(url).netloc or url
    if isinstance(reason, ConnectionRefusedError):
        what = "connection refused by %s" % host
    elif isinstance(reason, socket.gaierror):
        what = "cannot resolve %s (no network or no DNS)" % host
    elif isinstance(reason, (socket.timeout, TimeoutError)):
        what = "%s did not answer in time" % host
    elif isinstance(reason, ssl.SSLError):
        what = "TLS error with %s (%s)" % (host, reason)
    elif isinstance(reason, FileNotFoundError):
        what = "no such file %s" % urllib.request.url2pathname(urllib.request.urlparse(url).path)
    else:
        what = "%s (%s)" % (host, reason)
    return what


class _PartState(object):
    """The ``.part`` file and its sidecar (URL and the server's validators: ETag / Last-Modified)."""

    def __init__(self, dest):
        self.path = dest + ".part"
        self.meta_path = dest + ".part.json"

    def size(self):
        return os.path.getsize(self.path) if os.path.isfile(self.path) else 0

    def meta(self):
        try:
            with open(self.meta_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def save_meta(self, meta):
        tmp = self.meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, self.meta_path)

    def clear(self):
        for path in (self.path, self.meta_path):
            if os.path.exists(path):
                os.remove(path)

    def resumable_for(self, url):
        """Bytes to resume from for ``url`` (0: start afresh, and drop a part of another URL)."""
        size = self.size()
        if size and self.meta().get("url") == url:
            return size
        if size or os.path.exists(self.meta_path):
            self.clear()
        return 0


def _validator(meta):
    return meta.get("etag") or meta.get("last_modified")


def _open(url, offset, meta, timeout):
    request = urllib.request.Request(url, headers={"User-Agent": user_agent()})
    if offset:
        request.add_header("Range", "bytes=%d-" % offset)
        if _validator(meta):
            request.add_header("If-Range", _validator(meta))
    return urllib.request.urlopen(request, timeout=timeout)


def _check_space(folder, needed):
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed and free < needed:
        raise DownloadError("not enough disk space in %s: %.1f MB free, the download needs %.1f MB more; free some "
                            "space or pass another --root" % (folder, free / 1e6, needed / 1e6))


def download(url, dest, progress=True, timeout=60.0, say=None, desc=None):
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``); returns ``{"bytes", "resumed_from", "url"}``.

    Raises ``Interrupted`` (the part is kept: call again to resume) or ``DownloadError``.
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    part = _PartState(dest)
    offset = part.resumable_for(url)
    meta = part.meta() if offset else {}
    try:
        response = _open(url, offset, meta, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return _range_not_satisfiable(url, dest, part, offset, e, progress, timeout, say, desc)
        raise DownloadError("HTTP %d (%s) for %s" % (e.code, e.reason, url))
    except urllib.error.URLError as e:
        raise DownloadError("cannot download %s: %s" % (url, describe_url_error(url, e)))
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError("cannot download %s: %s" % (url, describe_url_error(url, e)))
    with response:
        status = getattr(response, "status", None) or 200  # file:// answers without a status
        total = None
        if offset and status == 206:
            match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                say("%s: the server answered the resume request with another range; downloading from the start"
                    % url)
                response.close()
                part.clear()
                return download(url, dest, progress, timeout, say, desc)
            total = int(match.group(3)) if match.group(3) != "*" else None
            say("resuming %s at byte %d" % (os.path.basename(dest), offset))
        else:
            if offset:
                say("%s: the server does not resume downloads (or the file changed); downloading from the start"
                    % url)
                offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        _check_space(os.path.dirname(os.path.abspath(dest)), (total - offset) if total else 0)
        part.save_meta({"url": url, "etag": response.headers.get("ETag"),
                        "last_modified": response.headers.get("Last-Modified"), "total": total})
        received = _stream(response, part.path, offset, total, progress, desc or os.path.basename(dest))
    if total is not None and received < total:
        raise Interrupted("download of %s stopped after %d of %d bytes (the connection dropped); run the same "
                          "command again to resume from %s" % (url, received, total, part.path))
    if total is not None and received > total:
        part.clear()
        raise DownloadError("%s sent %d bytes, more than the %d it announced; removed the partial file, try again"
                            % (url, received, total))
    os.replace(part.path, dest)
    part.clear()
    return {"bytes": received, "resumed_from": offset, "url": url}


def _stream(response, path, offset, total, progress, desc):
    """Append the body to ``path`` from ``offset``; returns the file's size when the body ends or breaks off."""
    from tqdm import tqdm

    mode = "r+b" if offset else "wb"
    if offset:
        with open(path, "ab"):
            pass
    with open(path, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=desc, disable=not progress, dynamic_ncols=True, file=sys.stderr) as bar:
        f.seek(offset)
        f.truncate()
        try:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
        except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError, ssl.SSLError) as e:
            f.flush()
            os.fsync(f.fileno())
            raise Interrupted("download stopped after %d%s bytes (%s); run the same command again to resume from %s"
                              % (f.tell(), " of %d" % total if total else "", e.__class__.__name__, path))
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def _range_not_satisfiable(url, dest, part, offset, error, progress, timeout, say, desc):
    """416: the part holds the whole file (rename it) or more than the file (stale: restart)."""
    match = UNSATISFIED_RANGE.match(error.headers.get("Content-Range", "") if error.headers else "")
    if match and int(match.group(1)) == offset:
        os.replace(part.path, dest)
        part.clear()
        return {"bytes": offset, "resumed_from": offset, "url": url}
    say("%s: the partial download does not fit the file on the server; downloading from the start" % url)
    part.clear()
    return download(url, dest, progress, timeout, say, desc)
