"""Everything around TensorRT, tested without TensorRT (it cannot be installed on these machines).

Covered for real: the trtexec command lines per version, the builder's configuration per version
(``config_plan``, data), calibration-cache headers, manifest updates, the bundle written by
``edgegan build --target jetson-xavier-nx --precision int8`` (Q/DQ ONNX + calibration cache, parity
under onnxruntime), ``build_engines.py`` as Python 3.6 that fails clearly without tensorrt, and the
runtime backend's API / CUDA-binding / engine-lookup / GPU decisions on plain data. The GPU query runs
against the real libcudart where one is installed (no driver here: the no-GPU line). Not covered (no
GPU, no TensorRT): parsing, building, deserializing and running an engine. No fake ``tensorrt`` module;
where a TensorRT call's failure value (``None`` / ``False``) is the point, a minimal object answering
that value stands in for the builder config or the engine, and a ctypes-shaped object for libcudart.
"""

import ctypes
import importlib
import json
import os
import shutil
import subprocess
import sys
import types

import cv2
import numpy as np
import onnx
import pytest
import torch

from edgegan.errors import BundleError, EdgeganError, TargetError
from edgegan.runtime import Runtime, load_bundle
from edgegan.runtime.backends import available_backends, get_backend
from edgegan.runtime.backends import tensorrt as trt_backend
from edgegan.targets import trt_builder
from edgegan.targets.build import build_bundle
from edgegan.targets.profiles import load_profile
from edgegan.targets.registry import get_compiler
from edgegan.targets.tensorrt import engine_plan, host_is_target, trtexec_command, write_build_script
from edgegan.targets.trt_checks import graph_issues

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_no_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here; this tests its absence")


# --------------------------------------------------------------------------------------- trtexec lines


def _trt(version, **kw):
    return dict({"version": version, "workspace_mib": 1024, "gpu_fallback": True}, **kw)


XAVIER = {"name": "Xavier", "compute_capability": "7.2"}
RTX = {"name": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6"}
ORIN = {"name": "Orin", "compute_capability": "8.7"}


def test_trtexec_lines_follow_the_tensorrt_version():
    assert trtexec_command("w1.onnx", "w1.fp16.engine", "fp16", _trt("8.2")) == \
        "trtexec --onnx=w1.onnx --saveEngine=w1.fp16.engine --fp16 --workspace=1024 --buildOnly"
    assert trtexec_command("w1.onnx", "w1.fp16.engine", "fp16", _trt("8.5"), timing_cache="t.cache") == \
        ("trtexec --onnx=w1.onnx --saveEngine=w1.fp16.engine --fp16 --memPoolSize=workspace:1024 "
         "--timingCacheFile=t.cache --buildOnly")
    assert trtexec_command("w1.onnx", "w1.fp32.engine", "fp32", _trt("10.3")) == \
        "trtexec --onnx=w1.onnx --saveEngine=w1.fp32.engine --memPoolSize=workspace:1024 --skipInference"


def test_trtexec_int8_and_dla_lines():
    qdq = trtexec_command("w1.onnx", "w1.int8.engine", "int8", _trt("8.5"), int8="qdq")
    assert "--int8 --fp16" in qdq and "--calib" not in qdq
    dla = trtexec_command("w1.fp32.onnx", "w1.int8.dla0.engine", "int8", _trt("8.5"), int8="calibration_cache",
                          calibration_cache="w1.calib.local", dla_core=0)
    assert "--int8 --fp16 --calib=w1.calib.local" in dla and "--useDLACore=0 --allowGPUFallback" in dla
    no_fallback = trtexec_command("w1.onnx", "e", "fp16", _trt("8.5", gpu_fallback=False), dla_core=1)
    assert "--useDLACore=1" in no_fallback and "--allowGPUFallback" not in no_fallback
    with pytest.raises(TargetError, match="DLA runs fp16 or int8 only"):
        trtexec_command("w1.onnx", "e", "fp32", _trt("8.5"), dla_core=0)
    with pytest.raises(TargetError, match="int8 engines need a mode"):
        trtexec_command("w1.onnx", "e", "int8", _trt("8.5"))


def test_nano_plan_serves_tensorrt_8_0_and_8_2_and_names_no_shapes(tmp_path):
    """JetPack 4.6 (TensorRT 8.0.1) and 4.6.1+ (8.2.1): flags both take (--workspace, --buildOnly), and no
    --shapes, which trtexec refuses for a static model ("Static model does not take explicit shapes")."""
    nano = load_profile("jetson-nano")
    step, = engine_plan([{"name": "w1", "file": "w1.onnx"}], "fp16", nano)
    assert step["trtexec"] == ("trtexec --onnx=w1.onnx --saveEngine=w1.fp16.engine --fp16 --workspace=1024 "
                               "--timingCacheFile=tensorrt.timing.cache --buildOnly")
    for version in ("8.0.1.6", "8.2.1.8"):
        assert dict(trt_builder.config_plan(version, "fp16", 1024))["workspace"][0] == "max_workspace_size"
    script = open(os.path.join(str(tmp_path), write_build_script(str(tmp_path), [step], nano))).read()
    assert "TensorRT 8.0/8.2" in script and "hapes" not in script


def test_dla_int8_plan_builds_from_fp32_onnx_and_stamped_cache(tmp_path):
    profile = load_profile("jetson-agx-xavier")
    profile["tensorrt"]["dla"] = True
    variants = [{"name": "w1", "file": "w1.onnx",
                 "tensorrt": {"fp32_onnx": "w1.fp32.onnx", "calibration_cache": "w1.calib"}}]
    step, = engine_plan(variants, "int8", profile)
    assert (step["onnx"], step["engine"], step["int8"], step["dla_core"]) == \
        ("w1.fp32.onnx", "w1.int8.dla0.engine", "calibration_cache", 0)
    assert "--calib=w1.calib.local" in step["trtexec"] and "--memPoolSize=workspace:2048" in step["trtexec"]
    script = open(os.path.join(str(tmp_path), write_build_script(str(tmp_path), [step], profile))).read()
    assert script.index("build_engines.py --stamp-cache w1.calib w1.calib.local") < script.index(step["trtexec"])
    with pytest.raises(TargetError, match="needs the fp32 ONNX"):
        engine_plan([{"name": "w1", "file": "w1.onnx"}], "int8", profile)


# ---------------------------------------------------------------------------------- builder, as data


def test_builder_config_plan_per_version():
    plan = trt_builder.config_plan("8.2.1.8", "fp16", 1024)
    assert plan == [("network_flags", "explicit_batch"), ("workspace", ("max_workspace_size", 1 << 30)),
                    ("flag", "FP16")]
    assert dict(trt_builder.config_plan("8.5.2", "fp32", 512))["workspace"] == ("set_memory_pool_limit", 512 << 20)
    assert dict(trt_builder.config_plan("10.3.0", "fp16", 64))["network_flags"] == "none"
    qdq = trt_builder.config_plan("8.5.2", "int8", 64, int8_mode="qdq")
    assert ("flag", "INT8") in qdq and ("flag", "FP16") in qdq and "calibrator" not in dict(qdq)
    dla = trt_builder.config_plan("8.5.2", "int8", 64, "calibration_cache", dla_core=1, calibration_cache="c")
    assert dict(dla)["calibrator"] == ("c", False) and dict(dla)["dla_core"] == 1 and ("flag", "GPU_FALLBACK") in dla


@pytest.mark.parametrize("args,message", [
    (("7.2.1", "fp16", 64), "too old"),
    (("8.5", "int4", 64), "unknown precision"),
    (("8.5", "int8", 64), "int8 needs a mode"),
    (("8.5", "int8", 64, "calibration_cache"), "needs a calibration cache or calibration data"),
    (("8.5", "int8", 64, "qdq", 0), "DLA takes implicit INT8 only"),
    (("8.5", "fp32", 64, None, 0), "DLA runs fp16 or int8 only"),
])
def test_builder_config_plan_refusals(args, message):
    with pytest.raises(trt_builder.BuildError, match=message):
        trt_builder.config_plan(*args)


def test_calibration_cache_header_per_version():
    assert trt_builder.cache_version_number("8.2.1.8") == 8201
    assert trt_builder.cache_version_number("8.5") == 8500
    assert trt_builder.cache_version_number("10.3.0.26") == 100300
    text = "TRT-8500-EntropyCalibration2\ninput: 3c010204\n"
    assert trt_builder.restamp_cache(text, "8.5.2.2") == "TRT-8502-EntropyCalibration2\ninput: 3c010204\n"
    with pytest.raises(trt_builder.BuildError, match="not a TensorRT calibration cache"):
        trt_builder.restamp_cache("{}", "8.5")


def test_parser_errors_and_manifest_update_are_readable():
    text = trt_builder.format_parser_errors([(3, "pad", "Pad", "unsupported mode"), (-1, None, None, "bad graph")])
    assert text == "  node 3 (pad Pad): unsupported mode\n  graph: bad graph"
    manifest = {"backend": "onnxruntime", "variants": [{"name": "w1", "file": "w1.onnx"},
                                                       {"name": "w0.5", "file": "w0.5.onnx"}], "files": {}}
    step = {"engine": "w1.fp16.engine", "precision": "fp16", "onnx": "w1.onnx"}
    record = trt_builder.engine_record(step, "ab" * 32, "8.5.2.2", XAVIER, 12.34)
    trt_builder.update_manifest(manifest, {"w1": record}, {"tensorrt.timing.cache": "cd" * 32})
    assert manifest["backend"] == "tensorrt" and manifest["backend_before_engines"] == "onnxruntime"
    assert manifest["variants"][0]["engine"]["tensorrt_version"] == "8.5.2.2" and "engine" not in manifest["variants"][1]
    assert manifest["files"] == {"w1.fp16.engine": "ab" * 32, "tensorrt.timing.cache": "cd" * 32}
    assert manifest["engines"][0]["variant"] == "w1" and manifest["engines"][0]["seconds"] == 12.3
    assert manifest["engines"][0]["gpu"] == {"name": "Xavier", "compute_capability": "7.2"}


# -------------------------------------------------------------------------------- the INT8 bundle


@pytest.fixture(scope="module")
def tiny_checkpoint_and_images(tiny_checkpoint, tmp_path_factory):
    images = tmp_path_factory.mktemp("trt") / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        cv2.imwrite(str(images / ("%02d.png" % i)), np.where(rng.random((SIZE, SIZE)) < 0.15, 0, 255).astype(np.uint8))
    return tiny_checkpoint, str(images)


@pytest.fixture(scope="module")
def int8_bundle(tiny_checkpoint_and_images, tmp_path_factory):
    checkpoint, images = tiny_checkpoint_and_images
    out = str(tmp_path_factory.mktemp("bundles") / "nx-int8")
    _, manifest = build_bundle("jetson-xavier-nx", checkpoint=checkpoint, out=out, widths=[0.25, 1.0],
                               precision="int8", calibration=images, progress=False)
    return out, manifest


def test_xavier_nx_int8_bundle_is_qdq_plus_calibration_cache(int8_bundle):
    out, manifest = int8_bundle
    assert manifest["backend"] == "onnxruntime"  # no TensorRT here: engines come on the device
    assert "not importable" in manifest["device_steps"]["built_at_build_time"]
    gate = load_profile("jetson-xavier-nx")["calibrate"]["min_psnr_db"]
    for v, step in zip(manifest["variants"], manifest["device_steps"]["engines"]):
        assert v["precision"] == "int8" and v["parity"]["measured_precision"] == "int8"
        assert v["parity"]["psnr_db"] >= gate and v["int8"]["psnr_db"] >= gate
        model = onnx.load(os.path.join(out, v["file"]))
        assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in model.graph.node}
        assert graph_issues(model, "8.5", "int8") == []
        producer = dict((o, n) for n in model.graph.node for o in n.output)
        inits = dict((i.name, onnx.numpy_helper.to_array(i)) for i in model.graph.initializer)
        quantized = [n for n in model.graph.node if n.op_type == "ConvTranspose" and n.input[1] in producer]
        assert quantized and all(inits[producer[n.input[1]].input[1]].size == 1 for n in quantized)  # per tensor
        info = v["tensorrt"]
        assert info["int8_mode"] == "qdq"
        with open(os.path.join(out, info["calibration_cache"])) as f:
            lines = f.read().splitlines()
        assert lines[0] == "TRT-8500-EntropyCalibration2" and len(lines) - 1 == info["calibration_cache_tensors"] > 0
        name, scale = lines[1].split(": ")
        assert len(scale) == 8 and int(scale, 16) > 0
        fp32 = onnx.load(os.path.join(out, info["fp32_onnx"]))
        assert "QuantizeLinear" not in {n.op_type for n in fp32.graph.node}
        assert step["onnx"] == v["file"] and step["int8"] == "qdq" and step["engine"] == v["name"] + ".int8.engine"
        assert "--int8 --fp16 --memPoolSize=workspace:1024" in step["trtexec"]
    for rel in ("build_engines.py", "build_engines.sh", "w1.calib", "w1.fp32.onnx"):
        assert rel in manifest["files"]
    with open(os.path.join(out, "build_engines.py")) as f, open(trt_builder.__file__.replace(".pyc", ".py")) as g:
        assert f.read() == g.read()
    bundle = load_bundle(out)  # sha256 of every file checked
    with Runtime(bundle) as rt:
        x = np.zeros(bundle.input["shape"], np.float32)
        assert rt.run(x).shape == tuple(bundle.output["shape"])


@needs_no_tensorrt
def test_build_engines_py_fails_clearly_without_tensorrt(int8_bundle):
    out, _ = int8_bundle
    r = subprocess.run([sys.executable, os.path.join(out, "build_engines.py")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the tensorrt Python package is not importable" in r.stderr and "build_engines.sh" in r.stderr
    r = subprocess.run([sys.executable, os.path.join(out, "build_engines.py"), "--variant", "w9"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == 2 and "no variant w9 in this bundle; it has w0.25, w1" in r.stderr


@needs_no_tensorrt
def test_runtime_refuses_tensorrt_clearly_and_finds_engines_only_when_built(int8_bundle):
    out, _ = int8_bundle
    assert "tensorrt" in available_backends()
    with pytest.raises(EdgeganError, match="tensorrt backend needs the tensorrt module.*python3-libnvinfer"):
        get_backend("tensorrt")
    with pytest.raises(EdgeganError, match="needs the tensorrt module"):
        Runtime(out, backend="tensorrt")


def test_builder_is_python36_and_torch_free():
    if shutil.which("vermin") is None:
        pytest.skip("vermin is not installed (pip install vermin)")
    paths = ["edgegan/targets/trt_builder.py", "edgegan/runtime/backends/tensorrt.py"]
    r = subprocess.run(["vermin", "-t=3.6-", "--no-tips", "--violations"] + paths, cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
            "import importlib.util as u\n"
            "spec = u.spec_from_file_location('build_engines', %r); m = u.module_from_spec(spec)\n"
            "spec.loader.exec_module(m)\n"
            "import edgegan.runtime.backends.tensorrt\n"
            "print(m.config_plan('8.2', 'fp16', 64)[0])" % os.path.join(REPO, "edgegan", "targets", "trt_builder.py"))
    env = dict(os.environ, PYTHONPATH=REPO)
    r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "('network_flags', 'explicit_batch')"


# ------------------------------------------------------------------------------ runtime decisions

TRT82_ENGINE = {"num_bindings", "get_binding_name", "binding_is_input", "get_binding_shape", "get_binding_dtype"}
TRT82_CONTEXT = {"execute_async_v2", "execute_v2"}
TRT10_ENGINE = {"num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape", "get_tensor_dtype"}
TRT10_CONTEXT = {"set_tensor_address", "execute_async_v3"}


def test_backend_chooses_the_tensorrt_api_by_feature():
    assert trt_backend.choose_api(TRT82_ENGINE, TRT82_CONTEXT) == "bindings"             # 8.2–8.4
    assert trt_backend.choose_api(TRT82_ENGINE | TRT10_ENGINE, TRT82_CONTEXT | TRT10_CONTEXT) == "tensors"  # 8.5/8.6
    assert trt_backend.choose_api(TRT10_ENGINE, TRT10_CONTEXT) == "tensors"              # 10.x
    with pytest.raises(EdgeganError, match="neither the tensor API"):
        trt_backend.choose_api({"num_io_tensors"}, {"execute_v2"})


def test_backend_chooses_the_cuda_binding_in_order():
    def have(*names):
        return lambda name: name in names

    assert trt_backend.choose_cuda_binding(have("cuda-python", "pycuda", "ctypes")) == "cuda-python"
    assert trt_backend.choose_cuda_binding(have("pycuda", "ctypes")) == "pycuda"
    assert trt_backend.choose_cuda_binding(have("ctypes")) == "ctypes"
    assert trt_backend.choose_cuda_binding(have("cuda-python", "ctypes"), preferred="ctypes") == "ctypes"
    with pytest.raises(EdgeganError, match="pip install cuda-python"):
        trt_backend.choose_cuda_binding(have())
    with pytest.raises(EdgeganError, match="unknown CUDA binding"):
        trt_backend.choose_cuda_binding(have("ctypes"), preferred="opencl")
    assert trt_backend.probe_cuda_binding("pycuda") == (importlib.util.find_spec("pycuda") is not None)


def test_backend_io_and_engine_lookup_on_plain_data():
    inp, out = trt_backend.split_io([("output", False, (1, 1, 32, 32), np.float32),
                                     ("input", True, (1, 1, 32, 32), np.float32)])
    assert (inp["name"], out["name"], inp["shape"]) == ("input", "output", (1, 1, 32, 32))
    with pytest.raises(BundleError, match="dynamic shape"):
        trt_backend.split_io([("input", True, (-1, 1, 32, 32), np.float32), ("output", False, (1,), np.float32)])
    with pytest.raises(BundleError, match="2 inputs and 1 outputs"):
        trt_backend.split_io([("a", True, (1,), np.float32), ("b", True, (1,), np.float32),
                              ("c", False, (1,), np.float32)])
    record = {"file": "w1.fp16.engine", "tensorrt_version": "8.5.2.2", "dla_core": None}
    manifest = {"target": "jetson-xavier-nx", "variants": [{"name": "w1", "file": "w1.onnx", "engine": record},
                                                           {"name": "w0.5", "file": "w0.5.onnx"}],
                "device_steps": {"engines": [{"variant": "w0.5", "engine": "w0.5.fp16.engine"}]}}
    assert trt_backend.resolve_engine(manifest, "w1.onnx", lambda f: False) == ("w1.fp16.engine", record)
    assert trt_backend.resolve_engine(manifest, "w0.5.onnx", lambda f: True) == ("w0.5.fp16.engine", None)
    with pytest.raises(BundleError, match="w0.5 has no TensorRT engine yet; run `python3 build_engines.py`"):
        trt_backend.resolve_engine(manifest, "w0.5.onnx", lambda f: False)
    with pytest.raises(BundleError, match="no TensorRT build steps"):
        trt_backend.resolve_engine({"target": "cpu", "variants": [{"name": "w1", "file": "w1.onnx"}]}, "w1.onnx",
                                   lambda f: True)
    assert trt_backend.engine_version_problem(record, "8.5.2.2") is None
    assert "built by TensorRT 8.5.2.2, this is TensorRT 10.3.0" in trt_backend.engine_version_problem(record, "10.3.0")


# --------------------------------------------------------------------------------- torch-tensorrt


def test_torch_tensorrt_path_refuses_clearly_without_it(tmp_path):
    compiler = get_compiler("torch_tensorrt")
    assert compiler.bundle_backend == "torch"
    module = torch.nn.Conv2d(1, 1, 3, padding=1).eval()
    if importlib.util.find_spec("torch_tensorrt") is None:
        with pytest.raises(TargetError, match="pip install torch-tensorrt"):
            compiler.compile(module, (1, 1, 8, 8), str(tmp_path / "w1.pt"), {"name": "x"}, "fp16")
    elif not torch.cuda.is_available():
        with pytest.raises(TargetError, match="sees no CUDA GPU"):
            compiler.compile(module, (1, 1, 8, 8), str(tmp_path / "w1.pt"), {"name": "x"}, "fp16")
    from edgegan.targets.torch_tensorrt import compile_settings

    assert compile_settings("fp16", (1, 1, 8, 8), 256)["enabled_precisions"] == {torch.float32, torch.float16}
    assert compile_settings("fp32", (1, 1, 8, 8), 256)["workspace_size"] == 256 << 20
    with pytest.raises(TargetError, match="INT8 goes through the ONNX Q/DQ path"):
        compile_settings("int8", (1, 1, 8, 8), 256)
    profile = tmp_path / "ttrt.toml"
    profile.write_text('name = "ttrt"\ncompiler = "torch_tensorrt"\n[export]\nopset = 17\n'
                       '[build]\nprecisions = ["fp32", "fp16"]\n')
    assert load_profile(str(profile))["compiler"] == "torch_tensorrt"


def test_build_refuses_fp32_for_a_dla_profile(tiny_checkpoint_and_images, tmp_path):
    text = open(os.path.join(REPO, "edgegan", "targets", "profiles", "jetson-xavier-nx.toml")).read()
    path = tmp_path / "nx-dla.toml"
    path.write_text(text.replace("dla = false", "dla = true"))
    with pytest.raises(TargetError, match="DLA core 0, which runs fp16 or int8 only"):
        build_bundle(str(path), checkpoint=tiny_checkpoint_and_images[0], out=str(tmp_path / "b"), precision="fp32",
                     widths=[1.0], progress=False)
    assert not os.path.exists(str(tmp_path / "b"))


def test_manifest_of_int8_bundle_is_json_serialisable(int8_bundle):
    out, manifest = int8_bundle
    with open(os.path.join(out, "manifest.json")) as f:
        stored = json.load(f)
    assert stored["device_steps"]["engines"][1]["calibration_cache"] == "w1.calib"


# ----------------------------------------------------------------------------- the GPU of an engine


def test_gpu_mismatch_is_the_same_rule_in_builder_and_backend():
    cases = [(XAVIER, XAVIER, None), (None, XAVIER, None), (RTX, XAVIER, "compute_capability"),
             ({"name": "Xavier", "compute_capability": "7.2"}, {"name": "NVIDIA Xavier", "compute_capability": "7.2"},
              "name"), ("Xavier", XAVIER, None), ("Orin", XAVIER, "name")]
    for recorded, here, kind in cases:
        for rule in (trt_builder.gpu_mismatch, trt_backend.gpu_mismatch):
            found = rule(recorded, here)
            assert (found[0] if found else None) == kind, (rule.__module__, recorded, here)
    assert trt_builder.gpu_mismatch(RTX, XAVIER)[1] == ("built for NVIDIA GeForce RTX 3090 (compute capability 8.6), "
                                                        "this GPU is Xavier (compute capability 7.2)")


def test_engine_built_on_the_host_is_not_up_to_date_on_the_board():
    """x86 and JetPack 5.1 both report TensorRT 8.5.2.2: the version alone would call the host's engine current."""
    record = {"file": "w1.fp16.engine", "sha256": "ab" * 32, "tensorrt_version": "8.5.2.2", "gpu": RTX}
    assert trt_builder.engine_staleness(record, "8.5.2.2", XAVIER, "ab" * 32) == (
        "built for NVIDIA GeForce RTX 3090 (compute capability 8.6), this GPU is Xavier (compute capability 7.2)")
    assert trt_builder.engine_staleness(dict(record, gpu=XAVIER), "8.5.2.2", XAVIER, "ab" * 32) is None
    assert "TensorRT 8.5.2.2, this is 10.3.0" in trt_builder.engine_staleness(record, "10.3.0", RTX, "ab" * 32)
    assert trt_builder.engine_staleness(dict(record, gpu=None), "8.5.2.2", XAVIER, "ab" * 32) == "its GPU is not recorded"
    assert "does not match" in trt_builder.engine_staleness(dict(record, gpu=XAVIER), "8.5.2.2", XAVIER, "cd" * 32)
    assert "missing" in trt_builder.engine_staleness(dict(record, gpu=XAVIER), "8.5.2.2", XAVIER, None)
    assert trt_builder.engine_staleness(None, "8.5.2.2", XAVIER, None) == "not built yet"


def test_backend_refuses_an_engine_of_another_compute_capability_before_deserializing():
    record = {"file": "w1.fp16.engine", "tensorrt_version": "8.5.2.2", "gpu": RTX}
    error, warning = trt_backend.engine_gpu_problem(record, XAVIER)
    assert warning is None and "built for NVIDIA GeForce RTX 3090 (compute capability 8.6)" in error
    assert "python3 build_engines.py" in error
    error, warning = trt_backend.engine_gpu_problem(dict(record, gpu={"name": "Jetson Xavier NX",
                                                                        "compute_capability": "7.2"}), XAVIER)
    assert error is None and "built on Jetson Xavier NX, this GPU is Xavier" in warning
    assert trt_backend.engine_gpu_problem(dict(record, gpu=XAVIER), XAVIER) == (None, None)
    assert trt_backend.engine_gpu_problem(None, XAVIER) == (None, None)   # a bare .engine file: nothing recorded


def _no_gpu():
    raise trt_builder.BuildError("no CUDA GPU is visible here (cudaGetDeviceCount: no CUDA-capable device is "
                                 "detected). " + trt_builder.NO_GPU_HINT)


def test_edgegan_build_builds_engines_only_where_the_host_is_the_target():
    nano, nx = load_profile("jetson-nano"), load_profile("jetson-xavier-nx")
    trt85, trt821 = types.SimpleNamespace(__version__="8.5.2.2"), types.SimpleNamespace(__version__="8.2.1.8")
    assert host_is_target(nx, None, lambda: XAVIER) == ("tensorrt is not importable here", None)
    assert host_is_target(nx, types.SimpleNamespace(__version__="10.3.0"), lambda: XAVIER)[0] == \
        "TensorRT 10.3.0 here, the profile targets 8.5"
    # an x86 box with TensorRT 8.5.2.2 and a desktop GPU is not a Xavier NX
    assert host_is_target(nx, trt85, lambda: RTX)[0] == (
        "this host's GPU is NVIDIA GeForce RTX 3090 (compute capability 8.6), the profile's device has compute "
        "capability 7.2")
    assert host_is_target(nx, trt85, _no_gpu) == (
        "no CUDA GPU is visible here (cudaGetDeviceCount: no CUDA-capable device is detected)", None)
    assert host_is_target(nx, trt85, lambda: XAVIER) == (None, XAVIER)
    nano_gpu = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"}
    assert host_is_target(nano, trt821, lambda: nano_gpu) == (None, nano_gpu)            # JetPack 4.6.1+
    assert host_is_target(nano, types.SimpleNamespace(__version__="8.0.1.6"), lambda: nano_gpu) == (None, nano_gpu)
    custom = dict(nx, tensorrt=dict(nx["tensorrt"], compute_capability=None))
    assert "names no [tensorrt] compute_capability" in host_is_target(custom, trt85, lambda: XAVIER)[0]


class _Cudart(object):
    """The libcudart calls ``CudaRuntime.gpu`` makes, answering like a driver with ``devices`` GPUs (ctypes
    pointers in, status codes out)."""

    def __init__(self, devices=(), status=0):
        self.devices, self.status = list(devices), status

    def cudaGetErrorString(self, status):
        return {100: b"no CUDA-capable device is detected", 35: b"CUDA driver version is insufficient for CUDA "
                b"runtime version"}.get(status, b"unknown error")

    def cudaGetDeviceCount(self, count):
        count._obj.value = len(self.devices)
        return self.status

    def cudaDeviceGetAttribute(self, value, attr, index):
        value._obj.value = int(self.devices[index][1].split(".")[{75: 0, 76: 1}[attr]])
        return 0

    def cudaGetDeviceProperties(self, props, index):
        name = self.devices[index][0].encode()
        ctypes.memmove(props, name + b"\0", len(name) + 1)
        return 0


def test_gpu_info_reads_name_and_compute_capability_through_ctypes():
    cuda = trt_builder.CudaRuntime(lib=_Cudart([("Xavier", "7.2")]))
    assert cuda.gpu() == XAVIER
    with pytest.raises(trt_builder.BuildError) as e:
        trt_builder.CudaRuntime(lib=_Cudart(status=100)).gpu()
    assert str(e.value) == ("no CUDA GPU is visible here (cudaGetDeviceCount: no CUDA-capable device is detected). "
                            + trt_builder.NO_GPU_HINT)
    with pytest.raises(trt_builder.BuildError, match=r"cudaGetDeviceCount: 0 CUDA device\(s\)"):
        trt_builder.CudaRuntime(lib=_Cudart()).gpu()


def test_gpu_info_on_this_host_is_one_line():
    """With a real libcudart (the CUDA toolkit without a GPU or driver) the answer is one line; without one,
    the line says what is missing. Never a traceback from TensorRT."""
    try:
        gpu = trt_builder.gpu_info()
    except trt_builder.BuildError as e:
        message = str(e)
        assert "\n" not in message
        assert message.startswith("no CUDA GPU is visible here (cudaGetDeviceCount: ") or \
            message.startswith("telling which GPU this is needs libcudart.so")
    else:
        assert set(gpu) == {"name", "compute_capability"}


# ------------------------------------------------- TensorRT calls that answer None / False


class _Config(object):
    """Stands in for an IBuilderConfig whose timing-cache calls answer ``cache`` and ``accepted``; like the
    pybind binding, it refuses None where a cache is expected."""

    def __init__(self, cache, accepted=True):
        self.cache, self.accepted, self.attached = cache, accepted, None

    def create_timing_cache(self, data):
        self.data = data
        return self.cache

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache is None:
            raise TypeError("set_timing_cache(): incompatible function arguments")
        self.attached = cache
        return self.accepted


def test_timing_cache_failures_are_one_clear_error(tmp_path):
    path = str(tmp_path / "tensorrt.timing.cache")
    config = _Config("cache")
    assert trt_builder.load_timing_cache(config, path, "8.5.2.2") == "cache" and config.data == b""
    with open(path, "wb") as f:
        f.write(b"written by TensorRT 8.2")
    with pytest.raises(trt_builder.BuildError, match="could not read the timing cache .* delete .* and build again"):
        trt_builder.load_timing_cache(_Config(None), path, "8.5.2.2")
    with pytest.raises(trt_builder.BuildError, match="refused the timing cache .*another GPU"):
        trt_builder.load_timing_cache(_Config("cache", accepted=False), path, "8.5.2.2")


def test_execution_context_failure_is_not_reported_as_a_missing_api():
    engine = types.SimpleNamespace(create_execution_context=lambda: None)
    with pytest.raises(BundleError, match="could not create an execution context for w1.fp16.engine") as e:
        trt_backend.checked_context(engine, "w1.fp16.engine", "8.2.1.8")
    assert "neither" not in str(e.value)
    context = object()
    assert trt_backend.checked_context(types.SimpleNamespace(create_execution_context=lambda: context), "e",
                                       "8.2") is context
