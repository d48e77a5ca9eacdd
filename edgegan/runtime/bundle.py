"""Bundles: a directory holding ``manifest.json`` and one artifact per variant.

``BundleWriter`` stages a bundle next to its destination and renames it into place on
``commit`` (all or nothing); ``load_bundle`` reads one back and checks every file against the
sha256 recorded in the manifest. Torch-free, Python 3.6-compatible.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time

from .. import __version__
from ..errors import BundleError, EdgeganError

FORMAT = "edgegan-bundle/1"
MANIFEST = "manifest.json"
LAYOUTS = ("NCHW", "NHWC")
REQUIRED_KEYS = ("format", "target", "backend", "input", "output", "variants")
REQUIRED_TENSOR_KEYS = ("shape", "layout", "dtype", "range")
# the inputs of noise → image generators: a noise vector, a class label (``edgegan.runtime.noise``)
VECTOR_INPUTS = {"noise": ("NC", 2, ("float32", "float16")), "label": ("N", 1, ("int64", "int32"))}
REQUIRED_VARIANT_KEYS = ("name", "file", "sha256")
REBUILD = "re-run `edgegan build`"
#: how a variant's ``macs`` were counted when it does not say (``edgegan.subnet.cost``'s default convention;
#: bundles built before variants named their ``macs_convention`` used it)
DEFAULT_MACS_CONVENTION = "edgegan"


def macs_convention(variant):
    """The MAC counting convention of a manifest variant's ``macs`` (see ``edgegan.subnet``)."""
    return variant.get("macs_convention") or DEFAULT_MACS_CONVENTION


def sha256_file(path, chunk_size=1 << 20):
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_writable(path, what="output"):
    """Refuse, before any work, an output ``path`` that cannot be written: its nearest existing folder is
    a file, or creating a file there fails (read-only, immutable, full). Probes with a hidden temporary
    file, removed at once — a test that also holds for root, whom permission bits do not stop."""
    parent = os.path.dirname(os.path.abspath(path))
    existing = parent
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise EdgeganError("cannot write %s %s: %s is a file, not a folder; choose another path"
                           % (what, path, existing))
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgegan-probe-", dir=existing)
    except OSError as e:
        raise EdgeganError("cannot write %s %s: the folder %s is not writable (%s); choose another path or fix "
                           "its permissions" % (what, path, existing, e.strerror or e))
    os.close(fd)
    os.remove(probe)


def move_into_place(src, dst, force=False):
    """Rename ``src`` (file or directory) to ``dst``.

    If ``dst`` exists, refuse unless ``force``; with ``force`` a file replaces a file atomically
    and anything else is swapped: the old one renamed aside, the new one renamed in, the old one
    deleted (restored if the second rename fails). A swap that cannot start (the old one cannot be
    moved: immutable, on another mount) leaves ``dst`` as it was and nothing aside.
    """
    if not os.path.lexists(dst):
        _rename(src, dst)
        return
    if not force:
        raise EdgeganError("%s already exists; pass --force to replace it" % dst)
    if os.path.isfile(src) and os.path.isfile(dst) and not os.path.islink(dst):
        _rename(src, dst, replace=True)
        return
    parent, base = os.path.split(os.path.abspath(dst))
    try:
        aside = tempfile.mkdtemp(prefix=".%s.old-" % base, dir=parent)
    except OSError as e:
        raise EdgeganError("cannot replace %s: its folder is not writable (%s)" % (dst, e.strerror or e))
    old = os.path.join(aside, base)
    try:
        os.rename(dst, old)
    except OSError as e:
        os.rmdir(aside)
        raise EdgeganError("cannot replace %s: it cannot be moved aside (%s); it is unchanged. Remove it yourself "
                           "(check its immutable attribute: lsattr -d) or choose another path" % (dst, e.strerror or e))
    try:
        os.rename(src, dst)
    except BaseException as e:
        os.rename(old, dst)
        os.rmdir(aside)
        if isinstance(e, OSError):
            raise EdgeganError("cannot move the new %s into place (%s); the old one is restored"
                               % (dst, e.strerror or e))
        raise
    shutil.rmtree(aside)


def _rename(src, dst, replace=False):
    try:
        (os.replace if replace else os.rename)(src, dst)
    except OSError as e:
        raise EdgeganError("cannot write %s (%s)" % (dst, e.strerror or e))


def write_json_atomic(path, obj, force=False, indent=1):
    """``obj`` as JSON at ``path`` through a temporary file renamed into place (its folder made if
    needed; an existing ``path`` is replaced only with ``force``). Objects with ``to_dict`` or
    ``tolist`` are written as those; anything else unknown as its ``str``."""
    check_writable(path)
    if os.path.lexists(path) and not force:
        raise EdgeganError("%s already exists; pass --force to replace it" % path)
    parent, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(parent):
        os.makedirs(parent)
    fd, tmp = tempfile.mkstemp(prefix=".%s.tmp-" % base, suffix=".json", dir=parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=indent, default=_json_loose)
            f.write("\n")
        os.chmod(tmp, 0o644)
        move_into_place(tmp, path, force=force)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _json_loose(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _relative_files(root):
    """Every file under ``root`` as a ``/``-separated relative path, sorted."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(directory, name), root)
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def _local_path(root, rel):
    """``root``/``rel`` for a manifest path, refusing absolute paths and ``..``."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or ".." in parts or "\\" in rel:
        raise BundleError("manifest.json in %s names the file %r, which is not a plain path inside the bundle; %s"
                          % (root, rel, REBUILD))
    return os.path.join(root, *parts)


def _refuse_escaping_link(root, rel, path):
    """Refuse a file of the bundle that resolves, through symbolic links, to a place outside the bundle.

    Links that stay inside the bundle (``w1.onnx -> variants/w1.onnx``) are allowed; a link that leaves
    it (``w1.onnx -> /tmp/other.onnx``) is refused even when the target's checksum matches: what runs must
    be what was copied with the bundle."""
    inside = os.path.realpath(root)
    target = os.path.realpath(path)
    if os.path.lexists(path) and os.path.commonpath([inside, target]) != inside:
        raise BundleError("bundle %s: %s is a symbolic link to %s, outside the bundle; links may only point inside "
                          "the bundle directory: replace it with the file itself (copy the whole directory), or %s"
                          % (root, rel, target, REBUILD))


def _json_default(obj):
    """Let numpy scalars and arrays through ``json.dump``."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError("%r is not JSON serialisable" % (obj,))


def validate_manifest(manifest, where):
    """Check the structure of a manifest; raise ``BundleError`` naming ``where`` on the first problem."""
    if not isinstance(manifest, dict):
        raise BundleError("%s: manifest.json is not a JSON object; %s" % (where, REBUILD))
    fmt = manifest.get("format")
    if fmt != FORMAT:
        raise BundleError("%s: manifest format is %r but this edgegan (%s) reads %r; %s with this version"
                          % (where, fmt, __version__, FORMAT, REBUILD))
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError("%s: manifest.json lacks %s; %s" % (where, ", ".join(missing), REBUILD))
    _validate_inputs(manifest, where)
    _validate_image_spec(manifest["output"], "output", where)
    variants = manifest["variants"]
    if not isinstance(variants, list) or not variants:
        raise BundleError("%s: manifest.json lists no variants; %s" % (where, REBUILD))
    names = set()
    for n, variant in enumerate(variants):
        lacking = [k for k in REQUIRED_VARIANT_KEYS if not isinstance(variant, dict) or k not in variant]
        if lacking:
            raise BundleError("%s: variant #%d lacks %s; %s" % (where, n, ", ".join(lacking), REBUILD))
        if variant["name"] in names:
            raise BundleError("%s: two variants are named %r; %s" % (where, variant["name"], REBUILD))
        names.add(variant["name"])
    default = manifest.get("default_variant")
    if default is not None and default not in names:
        raise BundleError("%s: default_variant %r is not one of the variants (%s); %s"
                          % (where, default, ", ".join(sorted(names)), REBUILD))


def _is_vector_input(spec, key):
    return key != "output" and isinstance(spec, dict) and spec.get("content") in VECTOR_INPUTS \
        and spec.get("layout") not in LAYOUTS


def _validate_vector_input(spec, key, where):
    """A noise or label input (``edgegan.runtime.noise``): its layout, rank, dtype, and the label's classes."""
    layout, rank, dtypes = VECTOR_INPUTS[spec["content"]]
    lacking = [k for k in ("name", "shape", "layout", "dtype") if k not in spec]
    if lacking:
        raise BundleError("%s: manifest %s lacks %s; %s" % (where, key, ", ".join(lacking), REBUILD))
    shape = spec["shape"]
    if spec["layout"] != layout or not isinstance(shape, list) or len(shape) != rank \
            or not all(isinstance(d, int) and d > 0 for d in shape) or spec["dtype"] not in dtypes:
        raise BundleError("%s: manifest %s (%s) needs layout %s, a %d-d static shape and dtype %s; %s"
                          % (where, key, spec["content"], layout, rank, "/".join(dtypes), REBUILD))
    if spec["content"] == "label":
        classes = spec.get("n_classes")
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
            raise BundleError("%s: manifest %s (label) needs n_classes, a positive integer; %s" % (where, key, REBUILD))


def _validate_image_spec(spec, key, where):
    lacking = [k for k in REQUIRED_TENSOR_KEYS if not isinstance(spec, dict) or k not in spec]
    if lacking:
        raise BundleError("%s: manifest %s lacks %s; %s" % (where, key, ", ".join(lacking), REBUILD))
    if spec["layout"] not in LAYOUTS:
        raise BundleError("%s: manifest %s layout %r is not one of %s; %s"
                          % (where, key, spec["layout"], "/".join(LAYOUTS), REBUILD))
    if not isinstance(spec["shape"], list) or len(spec["shape"]) != 4 \
            or not isinstance(spec["range"], list) or len(spec["range"]) != 2:
        raise BundleError("%s: manifest %s needs a 4-d shape and a [low, high] range; %s" % (where, key, REBUILD))


def _validate_inputs(manifest, where):
    """``input`` and, when present, ``inputs`` (every input in graph order, ``input`` first); each an image
    spec or a noise / label spec."""
    inputs = manifest.get("inputs")
    if inputs is None:
        specs = [("input", manifest["input"])]
    else:
        if not isinstance(inputs, list) or len(inputs) < 2:
            raise BundleError("%s: manifest inputs must list two or more inputs (one input goes in \"input\"); %s"
                              % (where, REBUILD))
        if inputs[0] != manifest["input"]:
            raise BundleError("%s: manifest input is not the first of inputs; %s" % (where, REBUILD))
        names = [s.get("name") if isinstance(s, dict) else None for s in inputs]
        if None in names or len(set(names)) != len(names):
            raise BundleError("%s: manifest inputs need distinct names, got %s; %s" % (where, names, REBUILD))
        specs = [("inputs[%d]" % i, s) for i, s in enumerate(inputs)]
    for key, spec in specs:
        if _is_vector_input(spec, key):
            _validate_vector_input(spec, key, where)
        else:
            _validate_image_spec(spec, key, where)


class Bundle(object):
    """A loaded bundle: ``path``, ``manifest``, ``variants`` (the manifest's list of dicts)."""

    def __init__(self, path, manifest):
        self.path = path
        self.manifest = manifest

    def __repr__(self):
        return "Bundle(%r, target=%r, variants=%r)" % (self.path, self.manifest.get("target"), self.variant_names)

    @property
    def variants(self):
        return self.manifest["variants"]

    @property
    def variant_names(self):
        return [v["name"] for v in self.variants]

    @property
    def input(self):
        """The manifest's input spec (shape, layout, dtype, range, ...); the first input of several."""
        return self.manifest["input"]

    @property
    def inputs(self):
        """Every input spec in graph order: ``[input]``, or the manifest's ``inputs`` (noise and label)."""
        return list(self.manifest.get("inputs") or [self.manifest["input"]])

    @property
    def takes_noise(self):
        """Whether the bundle generates images from noise (a SlimGAN generator) instead of translating images."""
        return any(s.get("content") == "noise" for s in self.inputs)

    @property
    def output(self):
        """The manifest's output spec."""
        return self.manifest["output"]

    @property
    def default_variant(self):
        """The manifest's ``default_variant``, else the widest variant."""
        name = self.manifest.get("default_variant")
        if name is not None:
            return self.variant(name)
        return max(self.variants, key=lambda v: v.get("width") or 0.0)

    def variant(self, name_or_width=None):
        """The variant dict named ``name_or_width`` (``"w0.5"``), or of that width (``0.5``, ``"0.5"``).

        ``None`` gives the default variant.
        """
        if name_or_width is None:
            return self.default_variant
        if isinstance(name_or_width, dict):
            name_or_width = name_or_width["name"]
        for v in self.variants:
            if v["name"] == name_or_width:
                return v
        try:
            width = float(name_or_width)
        except (TypeError, ValueError):
            width = None
        if width is not None:
            for v in self.variants:
                if v.get("width") is not None and abs(float(v["width"]) - width) < 1e-9:
                    return v
        raise EdgeganError("no variant %r in %s; it has: %s" % (name_or_width, self.path, ", ".join(self.variant_names)))

    def artifact_path(self, variant):
        """Path of a variant's artifact (``variant``: a dict, a name or a width)."""
        return _local_path(self.path, self.variant(variant)["file"])

    def verify(self):
        """Check that every variant file and every file in ``files`` exists and matches its sha256."""
        checks = [(v["file"], v["sha256"], "variant %s" % v["name"]) for v in self.variants]
        checks += [(rel, digest, None) for rel, digest in sorted(self.manifest.get("files", {}).items())]
        for rel, digest, what in checks:
            label = rel if what is None else "%s (%s)" % (rel, what)
            path = _local_path(self.path, rel)
            _refuse_escaping_link(self.path, rel, path)
            if not os.path.isfile(path):
                raise BundleError("bundle %s is incomplete: %s is missing; copy the whole directory, or %s"
                                  % (self.path, label, REBUILD))
            if sha256_file(path) != digest:
                raise BundleError("bundle %s: %s does not match its sha256 in manifest.json (modified or truncated "
                                  "in transit); copy the whole directory again, or %s" % (self.path, label, REBUILD))


def load_bundle(path, verify=True):
    """Read the bundle at ``path`` (its directory or its manifest.json) and check it.

    With ``verify`` the sha256 of every variant file and every file listed in ``files`` is checked.
    Every problem raises ``BundleError`` saying how to fix it.
    """
    if os.path.isfile(path) and os.path.basename(path) == MANIFEST:
        path = os.path.dirname(path) or "."
    if not os.path.isdir(path):
        raise BundleError("no bundle at %s: pass the directory written by `edgegan build`" % path)
    manifest_path = os.path.join(path, MANIFEST)
    _refuse_escaping_link(path, MANIFEST, manifest_path)
    if not os.path.isfile(manifest_path):
        raise BundleError("%s has no manifest.json: it is not an edgegan bundle, or it was copied partially "
                          "(copy the whole directory)" % path)
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as e:
        raise BundleError("%s: manifest.json is not valid JSON (%s); copy the whole directory again, or %s"
                          % (path, e, REBUILD))
    validate_manifest(manifest, path)
    bundle = Bundle(path, manifest)
    if verify:
        bundle.verify()
    return bundle


class BundleWriter(object):
    """Writes a bundle all or nothing.

    ::

        with BundleWriter("edgegan-cpu", force=False) as writer:
            export(os.path.join(writer.path, "w1.onnx"))
            writer.commit(manifest)

    ``writer.path`` is a hidden staging directory next to ``out_dir``. ``commit`` fills each
    variant's ``sha256`` and the ``files`` map, writes ``manifest.json`` and renames the staging
    directory to ``out_dir``. Leaving the block without committing (or with an exception)
    deletes the staging directory. An existing ``out_dir`` is refused unless ``force``.
    """

    def __init__(self, out_dir, force=False):
        self.out_dir = out_dir
        self.force = force
        self.path = None
        self.bundle = None

    def _refuse_existing(self):
        if os.path.lexists(self.out_dir) and not self.force:
            raise BundleError("%s exists; pass --force to replace it, or choose another output directory"
                              % self.out_dir)

    def check(self):
        """Refuse now an ``out_dir`` that exists (without ``force``) or cannot be written: call it before
        long work that ends in this bundle."""
        self._refuse_existing()
        check_writable(self.out_dir, "bundle")

    def __enter__(self):
        self._refuse_existing()
        parent, base = os.path.split(os.path.abspath(self.out_dir))
        if not base:
            raise BundleError("%r is not a usable bundle directory name" % self.out_dir)
        check_writable(self.out_dir, "bundle")
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent)
            self.path = tempfile.mkdtemp(prefix=".%s.tmp-" % base, dir=parent)
            os.chmod(self.path, 0o755)
        except OSError as e:
            raise BundleError("cannot write bundle %s (%s); choose another --out" % (self.out_dir, e.strerror or e))
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.path is not None and os.path.isdir(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        self.path = None
        return False

    def commit(self, manifest):
        """Complete ``manifest`` in place, write it, and move the bundle into place; returns the ``Bundle``.

        Fills each variant's ``sha256`` and the ``files`` map, and ``format``, ``created`` and
        ``edgegan_version`` when absent.
        """
        if self.path is None:
            raise RuntimeError("BundleWriter.commit() outside its with-block, or called twice")
        manifest.setdefault("format", FORMAT)
        manifest.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        manifest.setdefault("edgegan_version", __version__)
        variant_files = set()
        for variant in manifest.get("variants", []):
            path = _local_path(self.path, variant["file"])
            if not os.path.isfile(path):
                raise BundleError("variant %s: its file %s was not written into the bundle"
                                  % (variant.get("name"), variant["file"]))
            variant["sha256"] = sha256_file(path)
            variant_files.add(variant["file"])
        manifest["files"] = dict((rel, sha256_file(_local_path(self.path, rel)))
                                 for rel in _relative_files(self.path)
                                 if rel != MANIFEST and rel not in variant_files)
        validate_manifest(manifest, self.out_dir)
        try:
            with open(os.path.join(self.path, MANIFEST), "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=2, default=_json_default)
                f.write("\n")
        except OSError as e:
            raise BundleError("cannot write %s/%s (%s)" % (self.out_dir, MANIFEST, e.strerror or e))
        self._refuse_existing()
        move_into_place(self.path, self.out_dir, force=self.force)
        self.path = None
        self.bundle = Bundle(self.out_dir, manifest)
        return self.bundle
