"""Bundles: writing all or nothing, loading, and detecting damage."""

import json
import os

import pytest

from edgegan.errors import BundleError, EdgeganError
from edgegan.runtime import BundleWriter, load_bundle
from edgegan.runtime import bundle as bundle_module
from edgegan.runtime.bundle import FORMAT, sha256_file

SPEC = {"name": "x", "shape": [1, 1, 4, 4], "layout": "NCHW", "dtype": "float32", "range": [-1.0, 1.0]}


def _manifest(names):
    return {"target": "cpu", "backend": "onnxruntime", "input": dict(SPEC), "output": dict(SPEC),
            "variants": [{"name": n, "width": 1.0, "file": n + ".bin", "sha256": None} for n in names]}


def _write(out_dir, names=("a",), force=False, content=b"artifact"):
    with BundleWriter(out_dir, force=force) as writer:
        for n in names:
            with open(os.path.join(writer.path, n + ".bin"), "wb") as f:
                f.write(content)
        return writer.commit(_manifest(names))


def _siblings(path):
    return sorted(os.listdir(os.path.dirname(path)))


def test_round_trip(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    assert bundle.variant_names == ["w0.25", "w0.5", "w1"]
    assert bundle.manifest["format"] == FORMAT
    assert bundle.manifest["edgegan_version"]
    assert bundle.manifest["created"].endswith("Z")
    assert list(bundle.manifest["files"]) == ["README.txt"]
    for v in bundle.variants:
        assert v["sha256"] == sha256_file(bundle.artifact_path(v))
    assert _siblings(tiny_bundle) == ["tiny"]  # no staging directory left behind
    assert load_bundle(os.path.join(tiny_bundle, "manifest.json")).variant_names == bundle.variant_names


def test_variant_lookup(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    assert bundle.variant("w0.5") is bundle.variant(0.5) is bundle.variant("0.5")
    assert bundle.variant(None)["name"] == "w1"
    assert bundle.artifact_path("w0.25").endswith("w0.25.onnx")
    with pytest.raises(EdgeganError, match="w0.25, w0.5, w1"):
        bundle.variant("w0.75")


def test_flipped_byte_in_variant_file(tiny_bundle_copy):
    path = os.path.join(tiny_bundle_copy, "w0.5.onnx")
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"w0\.5\.onnx \(variant w0\.5\) does not match its sha256"):
        load_bundle(tiny_bundle_copy)
    assert load_bundle(tiny_bundle_copy, verify=False).variant_names == ["w0.25", "w0.5", "w1"]


def test_modified_extra_file(tiny_bundle_copy):
    with open(os.path.join(tiny_bundle_copy, "README.txt"), "a") as f:
        f.write("edited\n")
    with pytest.raises(BundleError, match="README.txt does not match"):
        load_bundle(tiny_bundle_copy)


def test_missing_file(tiny_bundle_copy):
    os.remove(os.path.join(tiny_bundle_copy, "w0.25.onnx"))
    with pytest.raises(BundleError, match=r"incomplete: w0\.25\.onnx .* is missing; copy the whole directory"):
        load_bundle(tiny_bundle_copy)


def _edit_manifest(bundle_dir, edit):
    path = os.path.join(bundle_dir, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    edit(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


def test_bad_format(tiny_bundle_copy):
    _edit_manifest(tiny_bundle_copy, lambda m: m.update(format="edgegan-bundle/9"))
    with pytest.raises(BundleError, match="format is 'edgegan-bundle/9'.*re-run `edgegan build`"):
        load_bundle(tiny_bundle_copy)


def test_missing_keys(tiny_bundle_copy):
    _edit_manifest(tiny_bundle_copy, lambda m: (m.pop("variants"), m["input"].pop("layout")))
    with pytest.raises(BundleError, match="lacks variants"):
        load_bundle(tiny_bundle_copy)


def test_path_outside_bundle(tiny_bundle_copy):
    _edit_manifest(tiny_bundle_copy, lambda m: m["variants"][0].update(file="../w0.25.onnx"))
    with pytest.raises(BundleError, match="not a plain path inside the bundle"):
        load_bundle(tiny_bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no bundle at"):
        load_bundle(str(tmp_path / "nowhere"))
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(str(tmp_path))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(str(tmp_path))


def test_commit_completes_the_manifest(tmp_path):
    manifest = _manifest(["a"])
    with BundleWriter(str(tmp_path / "b")) as writer:
        for name in ("a.bin", "extra.txt"):
            open(os.path.join(writer.path, name), "wb").close()
        bundle = writer.commit(manifest)
    assert manifest is bundle.manifest
    assert manifest["variants"][0]["sha256"] == sha256_file(os.path.join(bundle.path, "a.bin"))
    assert manifest["files"] == {"extra.txt": manifest["variants"][0]["sha256"]}  # both empty files


def test_writer_refuses_existing(tmp_path):
    out = str(tmp_path / "b")
    _write(out, content=b"first")
    with pytest.raises(BundleError, match="exists; pass --force"):
        _write(out, content=b"second")
    assert open(os.path.join(out, "a.bin"), "rb").read() == b"first"
    assert _siblings(out) == ["b"]


def test_writer_force_swaps(tmp_path):
    out = str(tmp_path / "b")
    _write(out, names=("a", "old"))
    bundle = _write(out, names=("a",), force=True, content=b"second")
    assert sorted(os.listdir(out)) == ["a.bin", "manifest.json"]
    assert load_bundle(out).variant_names == ["a"] == bundle.variant_names
    assert _siblings(out) == ["b"]


def test_exception_leaves_nothing(tmp_path):
    out = str(tmp_path / "b")
    with pytest.raises(RuntimeError):
        with BundleWriter(out) as writer:
            open(os.path.join(writer.path, "a.bin"), "wb").close()
            raise RuntimeError("export failed")
    assert os.listdir(str(tmp_path)) == []


def test_failing_commit_keeps_old_bundle(tmp_path):
    out = str(tmp_path / "b")
    _write(out, content=b"first")
    with pytest.raises(BundleError, match="variant a: its file a.bin was not written"):
        with BundleWriter(out, force=True) as writer:
            writer.commit(_manifest(["a"]))
    assert open(os.path.join(out, "a.bin"), "rb").read() == b"first"
    assert _siblings(out) == ["b"]


def test_failed_swap_restores_old(tmp_path, monkeypatch):
    out = str(tmp_path / "b")
    _write(out, content=b"first")
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".b.tmp-"):
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr(bundle_module.os, "rename", rename)
    with pytest.raises(EdgeganError, match="disk full.*the old one is restored"):
        _write(out, force=True, content=b"second")
    assert open(os.path.join(out, "a.bin"), "rb").read() == b"first"
    assert _siblings(out) == ["b"]
