"""The two distributions: edgegan-runtime (a device: Python >= 3.6, numpy, a backend) and edgegan (the
toolkit). Their wheels are built, their metadata and files checked, and the runtime wheel that
``edgegan build --with-runtime`` puts into a bundle is installed into a fresh virtual environment without
torch, where ``edgegan bench``, ``run`` and ``demo --headless`` run the bundle.

The virtual environment needs the backend and OpenCV wheels from an index (CI has PyPI); the versions of
this environment are installed, so pip's cache or a local mirror serves them.
"""

import ast
import email.parser
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from edgegan import __version__
from edgegan.cli import COMMANDS, DEVICE_COMMANDS, command_module
from edgegan.errors import TargetError
from edgegan.targets import runtime_wheel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME_DEPS = ("numpy", "onnxruntime", "opencv-python-headless")  # what the device venv gets besides the wheel


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw)


def _metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        info = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")][0]
        return email.parser.Parser().parsestr(zf.read(info).decode("utf-8"))


def _wheel_text(wheel, suffix):
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(suffix)]
        return zf.read(names[0]).decode("utf-8") if names else None


def _record_paths(wheel):
    """The files a wheel installs, from its RECORD (its own .dist-info left out)."""
    text = _wheel_text(wheel, ".dist-info/RECORD")
    return set(line.split(",")[0] for line in text.splitlines() if line and ".dist-info/" not in line.split(",")[0])


# -- the wheels ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def device_bundle(tmp_path_factory):
    """A cpu bundle of the packaged model (two widths) built with ``--with-runtime``."""
    from edgegan.targets.build import build_bundle

    out = str(tmp_path_factory.mktemp("packaging") / "bundle")
    build_bundle("cpu", out=out, widths=[0.25, 0.5], progress=False, n_parity_inputs=2, with_runtime=True)
    return out


@pytest.fixture(scope="session")
def runtime_whl(device_bundle):
    wheels = os.listdir(os.path.join(device_bundle, "wheels"))
    assert wheels == [runtime_wheel.wheel_name()]
    return os.path.join(device_bundle, "wheels", wheels[0])


@pytest.fixture(scope="session")
def full_whl(tmp_path_factory):
    pytest.importorskip("hatchling", reason="the full wheel builds with hatchling (the dev extra installs it)")
    out = str(tmp_path_factory.mktemp("full-wheel"))
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                 "--disable-pip-version-check", "--wheel-dir", out, REPO], timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    built = os.listdir(out)
    assert built == ["edgegan-%s-py3-none-any.whl" % __version__]
    return os.path.join(out, built[0])


def test_bundle_records_the_runtime_wheel(device_bundle, runtime_whl):
    from edgegan.runtime import load_bundle
    from edgegan.runtime.bundle import sha256_file

    manifest = load_bundle(device_bundle).manifest   # verifies every file, the wheel included
    entry = manifest["runtime_wheel"]
    rel = "wheels/" + os.path.basename(runtime_whl)
    assert entry["file"] == rel and entry["version"] == __version__ and entry["distribution"] == "edgegan-runtime"
    assert entry["sha256"] == manifest["files"][rel] == sha256_file(runtime_whl)
    assert "checkout" in entry["source"]


def test_readme_test_command_is_what_ci_runs():
    """CI runs the README's test command verbatim (apt-get with sudo when not root): both editable installs."""
    with open(os.path.join(REPO, "README.md")) as f:
        readme = [line for line in f.read().splitlines() if line.startswith("apt-get update")]
    with open(os.path.join(REPO, ".ci", "run")) as f:
        ci = [line for line in f.read().splitlines() if "apt-get update" in line]
    assert len(readme) == 1 and len(ci) == 1
    assert ci[0].replace("$SUDO ", "") == readme[0]
    assert "-e ./edgegan-runtime -e \".[dev]\"" in readme[0]


def test_readme_jetson_section_installs_from_the_bundles_wheel():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    nano = readme[readme.index("## The edges2shoes demo (and running it on a Jetson Nano)"):]
    nano = nano[:nano.index("\n## ", 10)]
    assert "edgegan build --target jetson-nano --with-runtime" in nano
    assert 'python3 -m pip install --user -U "pip<22"' in nano          # Ubuntu 18.04's pip 9: no manylinux2014
    assert "python3 -m pip install --user ~/edgegan-jetson-nano/wheels/*.whl" in nano
    assert "rsync" not in nano and "JetPack 4.6 ships TensorRT 8.0.1" in nano and "ship TensorRT 8.2.1" in nano


def test_runtime_wheel_metadata(runtime_whl):
    assert os.path.basename(runtime_whl).endswith("-py3-none-any.whl")
    wheel = email.parser.Parser().parsestr(_wheel_text(runtime_whl, ".dist-info/WHEEL"))
    assert wheel["Tag"] == "py3-none-any" and wheel["Root-Is-Purelib"] == "true"
    meta = _metadata(runtime_whl)
    assert meta["Name"] == "edgegan-runtime" and meta["Version"] == __version__
    assert meta["Requires-Python"] == ">=3.6"
    requires = meta.get_all("Requires-Dist")
    unconditional = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("=")[0].strip() for r in unconditional] == ["numpy"], requires
    names = set(r.split(";")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requires)
    assert not names & {"torch", "onnx", "onnxsim", "coremltools", "scikit-image", "edgegan"}, names
    assert {"onnxruntime", "tflite", "opencv", "demo", "profile"} <= set(meta.get_all("Provides-Extra"))
    assert "edgegan = edgegan.cli:main" in _wheel_text(runtime_whl, ".dist-info/entry_points.txt")


def test_full_wheel_depends_on_the_runtime_and_pins_no_exact_version(full_whl):
    from packaging.requirements import Requirement

    meta = _metadata(full_whl)
    assert meta["Name"] == "edgegan" and meta["Version"] == __version__
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    base = dict((r.name, r) for r in requires if r.marker is None)
    assert str(base["edgegan-runtime"].specifier) == "==" + __version__  # the same version, built together
    exact = [str(r) for r in requires if r.name != "edgegan-runtime" and any(s.operator == "==" for s in r.specifier)]
    assert not exact, exact
    assert base["torch"].specifier.contains("2.13.0")          # constraints.txt's pin lies in the range
    assert _wheel_text(full_whl, ".dist-info/entry_points.txt") is None  # the one console script is the runtime's


def test_wheels_share_no_file_and_ship_the_whole_tree(runtime_whl, full_whl):
    runtime, full = _record_paths(runtime_whl), _record_paths(full_whl)
    assert not runtime & full, sorted(runtime & full)
    tree = set()
    for directory, dirs, files in os.walk(os.path.join(REPO, "edgegan")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        tree.update(os.path.relpath(os.path.join(directory, f), REPO).replace(os.sep, "/") for f in files
                    if not f.endswith(".pyc"))
    assert runtime | full == tree, (sorted(tree - runtime - full), sorted((runtime | full) - tree))
    for command in COMMANDS:
        module = command_module(command).replace(".", "/") + ".py"
        assert module in (runtime if command in DEVICE_COMMANDS else full), module


def _imports(path, module):
    """``(line, absolute module name, imported name or None)`` of every edgegan import in a module file."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "edgegan":
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "edgegan":
                for alias in node.names:
                    yield node.lineno, name, alias.name


def test_runtime_wheel_imports_only_its_own_modules(runtime_whl):
    """Every edgegan import of a module the runtime wheel ships names a module the wheel ships."""
    shipped = set()
    for rel in _record_paths(runtime_whl):
        if rel.endswith(".py"):
            name = rel[:-3].replace("/", ".")
            shipped.add(name[:-len(".__init__")] if name.endswith(".__init__") else name)
    in_tree = set()
    for directory, _, files in os.walk(os.path.join(REPO, "edgegan")):
        for f in files:
            if f.endswith(".py"):
                name = os.path.relpath(os.path.join(directory, f[:-3]), REPO).replace(os.sep, ".")
                in_tree.add(name[:-len(".__init__")] if name.endswith(".__init__") else name)
    wrong = []
    for module in sorted(shipped):
        rel = module.replace(".", "/")
        path = os.path.join(REPO, rel, "__init__.py") if os.path.isdir(os.path.join(REPO, rel)) else \
            os.path.join(REPO, rel + ".py")
        for line, name, attr in _imports(path, module):
            targets = [name] + (["%s.%s" % (name, attr)] if attr and "%s.%s" % (name, attr) in in_tree else [])
            wrong += ["%s:%d imports %s" % (module, line, t) for t in targets if t not in shipped]
    assert not wrong, wrong


def test_runtime_wheel_is_python36_compatible(runtime_whl, tmp_path):
    if shutil.which("vermin") is None:
        pytest.skip("vermin is not installed (the dev extra installs it)")
    with zipfile.ZipFile(runtime_whl) as zf:
        zf.extractall(str(tmp_path))
    files = sorted(str(p) for p in tmp_path.rglob("*.py"))
    assert len(files) > 20
    proc = _run(["vermin", "-t=3.6-", "--no-tips", "--violations"] + files, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the runtime wheel in a fresh environment without torch ---------------------------------------

@pytest.fixture(scope="session")
def device_venv(tmp_path_factory, runtime_whl):
    """A virtual environment with the runtime's dependencies (this environment's versions) and the bundle's
    runtime wheel, installed the way a device installs it: from the wheel file, nothing else from an index."""
    from importlib import metadata

    import pip as pip_module

    venv = str(tmp_path_factory.mktemp("device") / "venv")
    python = os.path.join(venv, "bin", "python")
    outer = tuple(int(p) for p in pip_module.__version__.split(".")[:2]) >= (22, 3)  # pip --python: no pip in the venv
    proc = _run([sys.executable, "-m", "venv"] + (["--without-pip"] if outer else []) + [venv], timeout=300)
    assert proc.returncode == 0, proc.stderr
    pip = ([sys.executable, "-m", "pip", "--python", python] if outer else [python, "-m", "pip"]) + \
        ["--disable-pip-version-check"]
    pins = []
    for name in RUNTIME_DEPS:
        try:
            pins.append("%s==%s" % (name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            pytest.skip("%s is not installed here, so its version for the device environment is unknown" % name)
    proc = _run(pip + ["install", "--quiet", "--no-compile", "--no-deps"] + pins, timeout=900)
    if proc.returncode != 0:
        pytest.skip("the device environment needs %s from an index: %s" % (", ".join(pins), proc.stderr[-500:]))
    proc = _run(pip + ["install", "--quiet", "--no-compile", "--no-index", runtime_whl], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # numpy satisfies the wheel's one requirement
    return venv


def _venv_run(venv, *args, **kw):
    env = dict((k, v) for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))
    env["PYTHONNOUSERSITE"] = "1"
    return _run(list(args), env=env, timeout=300, cwd=venv, **kw)   # not the checkout: python -c imports from cwd


def test_device_venv_has_no_torch(device_venv):
    python = os.path.join(device_venv, "bin", "python")
    for module in ("torch", "onnx", "edgegan.cli.build", "edgegan.targets"):
        proc = _venv_run(device_venv, python, "-c", "import " + module)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, (module, proc.stderr)
    proc = _venv_run(device_venv, python, "-c", "import edgegan, numpy, onnxruntime; print(edgegan.__file__)")
    assert proc.returncode == 0 and proc.stdout.startswith(device_venv), proc.stdout + proc.stderr


def test_device_help_lists_device_commands_and_names_the_full_package(device_venv):
    edgegan = os.path.join(device_venv, "bin", "edgegan")
    proc = _venv_run(device_venv, edgegan, "--help")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.split("positional arguments:")[1].split("\n\n")[0].splitlines()
              if line.startswith("    ") and line.split()]
    assert listed == DEVICE_COMMANDS
    missing = [c for c in COMMANDS if c not in DEVICE_COMMANDS]
    assert "not installed here: %s" % ", ".join(missing) in proc.stdout and "pip install -c constraints.txt -e ." in proc.stdout
    proc = _venv_run(device_venv, edgegan, "build", "--target", "cpu")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "full edgegan package" in proc.stderr, proc.stderr
    proc = _venv_run(device_venv, os.path.join(device_venv, "bin", "python"), "-m", "edgegan", "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == "edgegan " + __version__


def _write_clip(path, frames=8):
    """A short mp4 of growing circles."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for i in range(frames):
        frame = np.zeros((64, 64, 3), np.uint8)
        cv2.circle(frame, (32, 32), 6 + 2 * i, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    return path


def test_device_bench_run_and_headless_demo(device_venv, device_bundle, tmp_path):
    import cv2
    import numpy as np

    edgegan = os.path.join(device_venv, "bin", "edgegan")
    proc = _venv_run(device_venv, edgegan, "bench", device_bundle, "--warmup", "2", "--warmup-s", "0", "--runs", "5",
                     "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backend"] == "onnxruntime" and sorted(report["environment"]["versions"]) == ["numpy", "onnxruntime"]
    assert sorted(r["variant"] for r in report["results"]) == ["w0.25", "w0.5"]
    assert all(r["fps"] > 0 and r["runs"] == 5 for r in report["results"])

    photo = str(tmp_path / "shoe.png")
    rng = np.random.RandomState(0)
    cv2.imwrite(photo, (rng.rand(48, 40, 3) * 255).astype(np.uint8))
    out = str(tmp_path / "out.png")
    proc = _venv_run(device_venv, edgegan, "run", device_bundle, "--input", photo, "--edges", "--output", out)
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape[:2] == (32, 32)

    clip = _write_clip(str(tmp_path / "clip.mp4"))
    stats = str(tmp_path / "stats.json")
    proc = _venv_run(device_venv, edgegan, "demo", "edges2shoes", "--bundle", device_bundle, "--source", clip,
                     "--headless", "--out", str(tmp_path / "demo.mp4"), "--stats", stats, "--frames", "6",
                     "--switch-every", "3", "--power-source", "none")
    assert proc.returncode == 0, proc.stderr
    with open(stats) as f:
        recorded = json.load(f)
    assert recorded["frames"] == 6 and sorted(recorded["variants"]) == ["w0.25", "w0.5"]
    assert os.path.getsize(str(tmp_path / "demo.mp4")) > 0


# -- the wheel from an installed distribution -------------------------------------------------------

def _installed_runtime(device_venv):
    from importlib import metadata

    site = [os.path.join(device_venv, "lib", d, "site-packages") for d in os.listdir(os.path.join(device_venv, "lib"))]
    dists = [d for d in metadata.distributions(path=site) if d.metadata["Name"] == "edgegan-runtime"]
    assert len(dists) == 1
    return dists[0]


def test_repack_of_the_installed_distribution_is_the_same_wheel(device_venv, runtime_whl, tmp_path):
    repacked = runtime_wheel.repack_installed(_installed_runtime(device_venv), str(tmp_path))
    assert os.path.basename(repacked) == os.path.basename(runtime_whl)
    with zipfile.ZipFile(runtime_whl) as a, zipfile.ZipFile(repacked) as b:
        original = dict((n, a.read(n)) for n in a.namelist() if not n.endswith("/RECORD"))
        packed = dict((n, b.read(n)) for n in b.namelist() if not n.endswith("/RECORD"))
    assert packed == original
    assert _record_paths(repacked) == _record_paths(runtime_whl)
    proc = _run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--quiet",
                 "--disable-pip-version-check", "--target", str(tmp_path / "t"), repacked])
    assert proc.returncode == 0, proc.stderr   # pip checks the RECORD it reads


def test_repack_refuses_a_modified_install(device_venv, tmp_path):
    from importlib import metadata

    dist = _installed_runtime(device_venv)
    site = str(dist.locate_file(""))
    copy = str(tmp_path / "site")
    shutil.copytree(site, copy, ignore=lambda d, names: [n for n in names if n not in ("edgegan",) and
                                                         not n.startswith("edgegan_runtime") and d == site])
    with open(os.path.join(copy, "edgegan", "errors.py"), "a") as f:
        f.write("# changed\n")
    changed = [d for d in metadata.distributions(path=[copy]) if d.metadata["Name"] == "edgegan-runtime"][0]
    with pytest.raises(TargetError, match="modified since it was installed.*edgegan/errors.py"):
        runtime_wheel.repack_installed(changed, str(tmp_path))


def test_with_runtime_without_checkout_or_installed_distribution_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(runtime_wheel, "source_tree", lambda: None)
    monkeypatch.setattr(runtime_wheel, "installed_distribution", lambda: None)
    with pytest.raises(TargetError, match="neither a checkout of edgegan here .* nor an installed edgegan-runtime"):
        runtime_wheel.runtime_wheel(str(tmp_path))


# -- opt-in: a real Python 3.6 --------------------------------------------------------------------

@pytest.mark.skipif(not os.environ.get("EDGEGAN_TEST_PYTHON36"),
                    reason="set EDGEGAN_TEST_PYTHON36 to a python3.6 executable to install the wheel there")
def test_runtime_wheel_on_python36_with_old_pip(runtime_whl, tmp_path):
    """Ubuntu 18.04 / JetPack 4.6: Python 3.6, pip upgraded to the last release before 22, onnxruntime 1.10
    (the last for 3.6, opset <= 15: the Jetson Nano bundle, opset 13, run with onnxruntime)."""
    from edgegan.targets.build import build_bundle

    bundle = str(tmp_path / "nano")
    build_bundle("jetson-nano", out=bundle, widths=[0.25], progress=False, n_parity_inputs=2)
    venv = str(tmp_path / "py36")
    assert _run([os.environ["EDGEGAN_TEST_PYTHON36"], "-m", "venv", venv], timeout=300).returncode == 0
    python = os.path.join(venv, "bin", "python")
    steps = [[python, "-m", "pip", "install", "-q", "-U", "pip<22"],
             [python, "-m", "pip", "install", "-q", "numpy==1.19.5", "onnxruntime==1.10.0",
              "opencv-python-headless==4.6.0.66"],
             [python, "-m", "pip", "install", "-q", "--no-index", runtime_whl]]
    for step in steps:
        proc = _venv_run(venv, *step)
        assert proc.returncode == 0, (step, proc.stderr[-2000:])
    edgegan = os.path.join(venv, "bin", "edgegan")
    proc = _venv_run(venv, edgegan, "bench", bundle, "--backend", "onnxruntime", "--warmup", "2", "--warmup-s", "0",
                     "--runs", "5", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["environment"]["python"].startswith("3.6") and report["results"][0]["fps"] > 0
    clip = _write_clip(str(tmp_path / "clip.mp4"))
    proc = _venv_run(venv, edgegan, "run", bundle, "--backend", "onnxruntime", "--input", clip, "--edges",
                     "--output", str(tmp_path / "out.mp4"))
    assert proc.returncode == 0 and os.path.getsize(str(tmp_path / "out.mp4")) > 0, proc.stderr[-2000:]
    proc = _venv_run(venv, edgegan, "demo", "edges2shoes", "--bundle", bundle, "--backend", "onnxruntime", "--source",
                     clip, "--headless", "--stats", str(tmp_path / "stats.json"), "--frames", "4",
                     "--power-source", "none")
    assert proc.returncode == 0, proc.stderr[-2000:]
