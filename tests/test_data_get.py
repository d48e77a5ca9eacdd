"""``edgegan data get``: downloads from a local HTTP server (Range, dropped connections, errors), safe extraction,
the extracted layouts read by the training data loaders."""

import hashlib
import http.server
import io
import json
import os
import socket
import tarfile
import threading
import zipfile

import cv2
import numpy as np
import pytest

from edgegan.cli import main
from edgegan.data import UnpairedFolder, load_pair
from edgegan.data.download import Interrupted
from edgegan.data.extract import UnsafeArchiveError
from edgegan.data.get import get_dataset
from edgegan.errors import DatasetError, DownloadError


# --- archives in the real layouts ------------------------------------------------------------------

def _jpeg(h, w, seed):
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _add(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def pix2pix_archive(name="edges2shoes", train=6, val=2, extra=()):
    """``NAME.tar.gz`` as the pix2pix sets ship: NAME/train/K_AB.jpg, NAME/val/K_AB.jpg (A|B, 16×32)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for split, n in (("train", train), ("val", val)):
            dirinfo = tarfile.TarInfo("%s/%s" % (name, split))
            dirinfo.type = tarfile.DIRTYPE
            tf.addfile(dirinfo)
            for k in range(1, n + 1):
                _add(tf, "%s/%s/%d_AB.jpg" % (name, split, k), _jpeg(16, 32, k + (100 if split == "val" else 0)))
        for member in extra:
            tf.addfile(*member)
    return buf.getvalue()


def cyclegan_archive(name="horse2zebra", n=3, extra=()):
    """``NAME.zip`` as the CycleGAN sets ship: NAME/trainA, trainB, testA, testB of single images."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder in ("trainA", "trainB", "testA", "testB"):
            for k in range(n):
                zf.writestr("%s/%s/n%04d.jpg" % (name, folder, k), _jpeg(16, 16, k + len(folder)))
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


# --- a local HTTP server with Range support --------------------------------------------------------

class Server(object):
    """Serves ``files`` on 127.0.0.1; honours ``Range`` (206 / 416) unless the path is in ``no_range``;
    ``drop[path] = n`` makes the next answer for ``path`` stop after n body bytes and close the connection."""

    def __init__(self):
        self.files, self.no_range, self.drop, self.requests = {}, set(), {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range"), self.headers.get("If-Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                etag = '"%s"' % hashlib.md5(data).hexdigest()
                start, status = 0, 200
                wanted = self.headers.get("Range")
                if wanted and self.path not in server.no_range and self.headers.get("If-Range", etag) == etag:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % len(data))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                if status == 206:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                self.end_headers()
                cut = server.drop.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _quiet(line):
    pass


def _get(name, root, url, **kw):
    return get_dataset(name, root=str(root), url=url, progress=False, timeout=10, say=_quiet, **kw)


def _leftovers(root, keep=()):
    """Entries of ``root`` besides ``keep``: temporary extraction folders, parts, data set folders."""
    return sorted(set(os.listdir(str(root))) - set(keep))


# --- tests -------------------------------------------------------------------------------------------

def test_fetch_extract_and_train_loader_reads_it(server, tmp_path):
    archive = pix2pix_archive()
    server.files["/pix2pix/edges2shoes.tar.gz"] = archive
    result = _get("edges2shoes", tmp_path, server.url("/pix2pix/edges2shoes.tar.gz"))
    digest = hashlib.sha256(archive).hexdigest()
    assert result["sha256"] == digest and result["size"] == len(archive)
    assert result["splits"] == {"train": 6, "val": 2} and result["resumed_from"] == 0
    with open(str(tmp_path / "edges2shoes.tar.gz.sha256")) as f:
        assert f.read() == "%s  edges2shoes.tar.gz\n" % digest  # sha256sum -c format
    assert _leftovers(tmp_path) == ["edges2shoes", "edges2shoes.tar.gz", "edges2shoes.tar.gz.sha256"]

    train, test = load_pair(result["path"], size=16, augment=True)
    assert (len(train), len(test), train.paired, train.channels) == (6, 2, True, 3)
    from edgegan.train.slimmable import endless_batches

    inputs, targets = next(endless_batches(train, 4, seed=0))
    assert inputs.shape == targets.shape == (4, 3, 16, 16)
    assert float(inputs.min()) >= -1.0 and float(inputs.max()) <= 1.0

    # the same data set again: a clear message without --force; --force downloads and replaces it
    with pytest.raises(DatasetError, match="already exists.*--force"):
        _get("edges2shoes", tmp_path, server.url("/pix2pix/edges2shoes.tar.gz"))
    os.remove(os.path.join(result["path"], "train", "1_AB.jpg"))
    again = _get("edges2shoes", tmp_path, server.url("/pix2pix/edges2shoes.tar.gz"), force=True)
    assert again["splits"]["train"] == 6
    assert _leftovers(tmp_path) == ["edges2shoes", "edges2shoes.tar.gz", "edges2shoes.tar.gz.sha256"]


def test_dropped_connection_is_resumed_by_a_second_call(server, tmp_path):
    archive = pix2pix_archive(train=12)
    path = "/edges2shoes.tar.gz"
    server.files[path] = archive
    cut = len(archive) // 2
    server.drop[path] = cut
    with pytest.raises(Interrupted, match="run the same command again to resume"):
        _get("edges2shoes", tmp_path, server.url(path), retries=0)
    part = tmp_path / "edges2shoes.tar.gz.part"
    assert part.read_bytes() == archive[:cut]  # what arrived is kept, nothing else is
    assert not (tmp_path / "edges2shoes").exists() and not (tmp_path / "edges2shoes.tar.gz").exists()

    result = _get("edges2shoes", tmp_path, server.url(path))
    assert server.requests[-1][1] == "bytes=%d-" % cut  # the second call asked for the rest only
    assert server.requests[-1][2]  # with If-Range: the server's validator of the first answer
    assert result["resumed_from"] == cut and result["sha256"] == hashlib.sha256(archive).hexdigest()
    assert result["splits"]["train"] == 12
    assert _leftovers(tmp_path) == ["edges2shoes", "edges2shoes.tar.gz", "edges2shoes.tar.gz.sha256"]


def test_retries_resume_within_one_call_and_servers_without_range_restart(server, tmp_path):
    archive = pix2pix_archive(name="facades")
    server.files["/facades.tar.gz"] = archive
    server.drop["/facades.tar.gz"] = 1000
    result = _get("facades", tmp_path / "a", server.url("/facades.tar.gz"), retries=1)
    assert result["resumed_from"] == 1000 and [r[1] for r in server.requests] == [None, "bytes=1000-"]

    server.files["/plain/facades.tar.gz"] = archive  # a server that ignores Range answers 200: start again
    server.no_range.add("/plain/facades.tar.gz")
    server.drop["/plain/facades.tar.gz"] = 1000
    result = _get("facades", tmp_path / "b", server.url("/plain/facades.tar.gz"), retries=1)
    assert result["resumed_from"] == 0 and result["sha256"] == hashlib.sha256(archive).hexdigest()

    # a part that is already whole (stopped before the rename): 416, then used as it is
    root = tmp_path / "c"
    root.mkdir()
    (root / "facades.tar.gz.part").write_bytes(archive)
    (root / "facades.tar.gz.part.json").write_text(json.dumps({"url": server.url("/facades.tar.gz")}))
    result = _get("facades", root, server.url("/facades.tar.gz"))
    assert server.requests[-1][1] == "bytes=%d-" % len(archive) and result["splits"]["train"] == 6


def test_unpaired_zip_through_the_cli_and_paired_recipes_refuse_it(server, tmp_path, capsys):
    server.files["/cyclegan/horse2zebra.zip"] = cyclegan_archive()
    root = tmp_path / "datasets"
    assert main(["data", "get", "horse2zebra", "--root", str(root), "--url",
                 server.url("/cyclegan/horse2zebra.zip"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "unpaired" and report["splits"] == {"testA": 3, "testB": 3, "trainA": 3, "trainB": 3}
    folder = report["path"]

    train, test = load_pair(folder, size=16, direction="BtoA", augment=True)
    assert isinstance(train, UnpairedFolder) and train.paired is False and test.split == "test"
    assert train[0].shape == (3, 16, 16) and train[(0, (1, 2))].shape == (3, 16, 16)  # inputs only
    assert train.files[0].endswith(os.path.join("trainB", "n0000.jpg"))
    assert len(train.other_domain()) == 3 and train.other_domain().direction == "AtoB"

    out = str(tmp_path / "g.pt")
    code = main(["train", "slimmable", "--data", folder, "--size", "16", "--steps", "1", "--out", out])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unpaired (CycleGAN) folder" in err and "`edgegan train slimmable` needs input/target pairs" in err
    assert "Unpaired folders are taken by" in err and not os.path.exists(out)


@pytest.mark.parametrize("member", ["absolute", "dotdot", "symlink", "hardlink", "device"])
def test_hostile_tar_is_refused_with_nothing_extracted(tmp_path, member):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    kinds = {
        "absolute": (str(outside / "evil.txt"), tarfile.REGTYPE, ""),
        "dotdot": ("edges2shoes/../../outside/evil.txt", tarfile.REGTYPE, ""),
        "symlink": ("edges2shoes/train/link", tarfile.SYMTYPE, str(outside)),
        "hardlink": ("edges2shoes/train/hard", tarfile.LNKTYPE, "../../outside/evil.txt"),
        "device": ("edges2shoes/train/null", tarfile.CHRTYPE, ""),
    }
    name, kind, target = kinds[member]
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    data = b"pwned" if kind == tarfile.REGTYPE else b""
    info.size = len(data)
    archive = tmp_path / "hostile.tar.gz"
    archive.write_bytes(pix2pix_archive(extra=[(info, io.BytesIO(data))]))
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        _get("edges2shoes", root, "file://" + str(archive))
    assert os.listdir(str(outside)) == []  # nothing escaped
    assert _leftovers(root) == ["edges2shoes.tar.gz", "edges2shoes.tar.gz.sha256"]  # nothing extracted stays


@pytest.mark.parametrize("member", ["dotdot", "absolute", "symlink"])
def test_hostile_zip_is_refused_before_anything_is_written(tmp_path, member):
    outside = tmp_path / "outside"
    outside.mkdir()
    name = {"dotdot": "horse2zebra/../../outside/evil.txt", "absolute": "/" + str(outside / "evil.txt").lstrip("/"),
            "symlink": "horse2zebra/trainA/link"}[member]
    info = zipfile.ZipInfo(name)
    if member == "symlink":
        info.external_attr = (0o120777 << 16)  # S_IFLNK
    archive = tmp_path / "hostile.zip"
    archive.write_bytes(cyclegan_archive(extra=[(info, str(outside) if member == "symlink" else "pwned")]))
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError):
        _get("horse2zebra", root, str(archive))  # a plain local path works as --url too
    assert os.listdir(str(outside)) == []
    assert _leftovers(root) == ["horse2zebra.zip", "horse2zebra.zip.sha256"]


def test_http_errors_refused_connection_and_truncated_archives(server, tmp_path, capsys):
    with pytest.raises(DownloadError, match=r"HTTP 404 \(Not Found\)"):
        _get("maps", tmp_path, server.url("/missing/maps.tar.gz"))
    assert _leftovers(tmp_path) == []

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    code = main(["data", "get", "maps", "--root", str(tmp_path), "--url", "http://127.0.0.1:%d/maps.tar.gz" % port])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "connection refused by 127.0.0.1" in err
    assert "--url" in err

    archive = pix2pix_archive(name="maps", train=20)
    server.files["/maps.tar.gz"] = archive[:len(archive) // 2]  # the server itself has half a file
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        _get("maps", tmp_path, server.url("/maps.tar.gz"))
    assert _leftovers(tmp_path) == ["maps.tar.gz", "maps.tar.gz.sha256"]

    zipped = cyclegan_archive(name="apple2orange")
    server.files["/apple2orange.zip"] = zipped[:len(zipped) - 30]
    with pytest.raises(DatasetError, match="neither a zip nor a tar archive"):
        _get("apple2orange", tmp_path, server.url("/apple2orange.zip"))


def test_checksum_mismatch_removes_the_archive_and_unknown_names_are_listed(server, tmp_path):
    server.files["/facades.tar.gz"] = pix2pix_archive(name="facades")
    with pytest.raises(DownloadError, match="differs from the expected"):
        _get("facades", tmp_path, server.url("/facades.tar.gz"), sha256="0" * 64)
    assert _leftovers(tmp_path) == []
    with pytest.raises(DatasetError, match="unknown data set 'edges2sneakers'.*edges2shoes"):
        _get("edges2sneakers", tmp_path, server.url("/x.tar.gz"))
    with pytest.raises(DatasetError, match="licence"):
        get_dataset("cityscapes", root=str(tmp_path), progress=False, say=_quiet)


def test_wrong_layout_is_a_clear_error(server, tmp_path):
    server.files["/edges2shoes.zip"] = cyclegan_archive(name="edges2shoes")  # unpaired layout, paired name
    with pytest.raises(DatasetError, match="does not hold train/"):
        _get("edges2shoes", tmp_path, server.url("/edges2shoes.zip"))
    assert not (tmp_path / "edges2shoes").exists()
