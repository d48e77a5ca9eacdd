"""The ``edgegan-runtime`` wheel that ``edgegan build --with-runtime`` puts into a bundle.

A device installs it offline with ``python3 -m pip install --user BUNDLE/wheels/*.whl`` (Python >= 3.6,
numpy; the backend comes from the device: TensorRT with JetPack, or an onnxruntime wheel). The wheel
comes from one of two places, in this order:

1. **this checkout**: the package was imported from a source tree that holds
   ``edgegan-runtime/pyproject.toml`` next to ``edgegan/`` (a development install). The two are copied
   to a temporary directory and built there with ``pip wheel --no-deps`` (without build isolation when
   setuptools >= 61 is installed, so no index is needed), leaving the checkout untouched;
2. **the installed distribution**: ``edgegan-runtime`` installed from a wheel (the full package
   depends on it). Its files, checked against the hashes of its ``RECORD``, are packed back into a wheel
   with the same metadata.

Either way the wheel's version must be this edgegan's. Neither available → ``TargetError`` saying what
to install.
"""

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from .. import __version__
from ..errors import TargetError

DIST = "edgegan-runtime"
PROJECT_DIR = "edgegan-runtime"   # the distribution's folder in a checkout (its pyproject.toml)
WHEELS_DIR = "wheels"             # where a bundle keeps it
INSTALL_HINT = "python3 -m pip install --user %s/*.whl" % WHEELS_DIR


def wheel_name(version=__version__):
    return "edgegan_runtime-%s-py3-none-any.whl" % version


def source_tree():
    """The checkout this edgegan was imported from (it holds ``edgegan-runtime/pyproject.toml``), or ``None``."""
    import edgegan

    root = os.path.dirname(os.path.dirname(os.path.abspath(edgegan.__file__)))
    return root if os.path.isfile(os.path.join(root, PROJECT_DIR, "pyproject.toml")) else None


def _setuptools_ok():
    try:
        import setuptools
    except ImportError:
        return False
    try:
        return int(setuptools.__version__.split(".")[0]) >= 61
    except ValueError:
        return False


def build_from_source(root, out_dir):
    """Build the runtime wheel from the checkout at ``root`` into ``out_dir``; returns its path."""
    with tempfile.TemporaryDirectory(prefix="edgegan-runtime-build-") as tmp:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
        shutil.copytree(os.path.join(root, "edgegan"), os.path.join(tmp, "edgegan"), ignore=ignore)
        shutil.copytree(os.path.join(root, PROJECT_DIR), os.path.join(tmp, PROJECT_DIR), ignore=ignore)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--quiet",
               "--wheel-dir", os.path.join(tmp, "dist")]
        if _setuptools_ok():
            cmd.append("--no-build-isolation")
        cmd.append(os.path.join(tmp, PROJECT_DIR))
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
            raise TargetError("building the %s wheel from %s failed (pip wheel, exit %d): %s\ninstall setuptools>=61 "
                              "(pip install setuptools) or give pip access to an index" % (
                                  DIST, os.path.join(root, PROJECT_DIR), proc.returncode, tail))
        built = [n for n in os.listdir(os.path.join(tmp, "dist")) if n.endswith(".whl")]
        if built != [wheel_name()]:
            raise TargetError("building %s from %s gave %s, expected %s (edgegan %s): its version differs from "
                              "edgegan's" % (DIST, root, ", ".join(built) or "nothing", wheel_name(), __version__))
        target = os.path.join(out_dir, built[0])
        shutil.copyfile(os.path.join(tmp, "dist", built[0]), target)
    return target


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def installed_distribution():
    """The installed ``edgegan-runtime`` distribution (``importlib.metadata``), or ``None``."""
    from importlib import metadata

    try:
        return metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        return None


def _is_editable(dist):
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    try:
        return bool(json.loads(text).get("dir_info", {}).get("editable"))
    except ValueError:
        return False


def repack_installed(dist, out_dir):
    """Pack the installed distribution ``dist`` back into a wheel in ``out_dir``; returns its path.

    Every file is checked against its ``RECORD`` hash (a modified install is refused); installer files
    (``INSTALLER``, ``REQUESTED``, ``direct_url.json``), byte code and the generated console script are left
    out, and a new ``RECORD`` is written.
    """
    version = dist.version
    if version != __version__:
        raise TargetError("the installed %s is %s, this edgegan is %s; install %s==%s" % (
            DIST, version, __version__, DIST, __version__))
    if _is_editable(dist):
        raise TargetError("%s is installed in editable mode from a checkout that is not at hand; install it from a "
                          "wheel, or run edgegan from that checkout" % DIST)
    info_dir = "edgegan_runtime-%s.dist-info" % version
    skip = set(info_dir + "/" + n for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"))
    entries = []
    for path in dist.files or []:
        rel = str(path).replace(os.sep, "/")
        if rel.startswith("..") or rel in skip or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        with open(str(dist.locate_file(path)), "rb") as f:
            data = f.read()
        if path.hash is not None and _record_hash(data) != "%s=%s" % (path.hash.mode, path.hash.value):
            raise TargetError("the installed %s was modified since it was installed (%s differs from its RECORD); "
                              "reinstall it" % (DIST, rel))
        entries.append((rel, data))
    if not any(rel == info_dir + "/WHEEL" for rel, _ in entries):
        raise TargetError("the installed %s has no %s/WHEEL; reinstall it from a wheel" % (DIST, info_dir))
    target = os.path.join(out_dir, wheel_name(version))
    rows = []
    with zipfile.ZipFile(target + ".tmp", "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in sorted(entries, key=lambda e: (e[0].startswith(info_dir), e[0])):  # dist-info last
            zf.writestr(rel, data)
            rows.append((rel, _record_hash(data), str(len(data))))
        rows.append((info_dir + "/RECORD", "", ""))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        zf.writestr(info_dir + "/RECORD", buf.getvalue())
    os.replace(target + ".tmp", target)
    return target


def runtime_wheel(out_dir):
    """The ``edgegan-runtime`` wheel for this edgegan, written into ``out_dir``: ``(path, where it came from)``."""
    root = source_tree()
    if root is not None:
        return build_from_source(root, out_dir), "built from the checkout %s" % root
    dist = installed_distribution()
    if dist is not None:
        return repack_installed(dist, out_dir), "packed from the installed %s %s" % (DIST, dist.version)
    raise TargetError("--with-runtime needs the %s wheel, and there is neither a checkout of edgegan here (%s/pyproject.toml "
                      "next to the edgegan package) nor an installed %s distribution; pip install %s==%s, or run "
                      "edgegan from its checkout" % (DIST, PROJECT_DIR, DIST, DIST, __version__))


def add_to_bundle(bundle_dir):
    """Put the runtime wheel into ``bundle_dir/wheels/``; returns the manifest's ``runtime_wheel`` entry
    (its sha256 also goes into the bundle's ``files`` when the bundle is committed)."""
    from ..runtime.bundle import sha256_file

    wheels = os.path.join(bundle_dir, WHEELS_DIR)
    os.makedirs(wheels, exist_ok=True)
    path, origin = runtime_wheel(wheels)
    name = os.path.basename(path)
    return {"file": WHEELS_DIR + "/" + name, "distribution": DIST, "version": __version__,
            "sha256": sha256_file(path), "source": origin, "requires_python": ">=3.6",
            "install": "python3 -m pip install --user %s/%s" % (WHEELS_DIR, name)}
