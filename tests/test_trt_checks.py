"""What each TensorRT version can take: profile validation and checks of real exported ONNX graphs.

No TensorRT here: the checks are plain functions over ONNX protos, run on graphs exported from the
project's generators (reflect padding, InstanceNorm, Q/DQ from onnxruntime's quantizer).
"""

import os

import numpy as np
import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
import pytest
import torch
from onnx import TensorProto, helper

from edgegan.calibrate import CalibrationSet, quantize_qdq
from edgegan.errors import TargetError
from edgegan.models import ResnetGenerator
from edgegan.subnet import extract
from edgegan.targets import onnx as onnx_compiler
from edgegan.targets.profiles import load_profile
from edgegan.targets.rewrites import decompose_reflection_padding
from edgegan.targets.tensorrt import TensorRTCompiler
from edgegan.targets.trt_checks import check_graph, check_precision, graph_issues, max_opset, parse_version

SHAPE = (1, 1, 32, 32)


def _generator(norm="bn", padding="reflect", seed=0):
    torch.manual_seed(seed)
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm=norm, padding=padding)
    g.train()
    for _ in range(2):
        g(torch.randn(4, *SHAPE[1:]))
    return extract(g.eval(), 1.0, input_shape=SHAPE)


def _export(module, opset):
    return onnx_compiler.simplify(onnx_compiler.export(module, SHAPE, opset))


def _checks(issues):
    return sorted(i["check"] for i in issues)


@pytest.fixture(scope="module")
def reflect13():
    return _export(_generator(), 13)


@pytest.fixture(scope="module")
def instancenorm13():
    sub = _generator(norm="in")
    decompose_reflection_padding(sub)
    return _export(sub, 13)


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    """(fp32 path, onnxruntime int8 Q/DQ path, uint8 Q/DQ path) of a decomposed-padding generator."""
    tmp = tmp_path_factory.mktemp("qdq")
    sub = _generator(seed=1)
    decompose_reflection_padding(sub)
    fp32 = str(tmp / "fp32.onnx")
    onnx_compiler.compile_onnx(sub, SHAPE, fp32, 17)
    rng = np.random.default_rng(0)
    batch = [np.where(rng.random(SHAPE) < 0.2, -1.0, 1.0).astype(np.float32) for _ in range(6)]
    cal = CalibrationSet(batch[:4], batch[4:], "synthetic edge maps")
    s8 = quantize_qdq(fp32, str(tmp / "s8.onnx"), cal, "input", "minmax", activation="int8",
                      per_tensor_ops=TensorRTCompiler.per_tensor_weight_ops)
    u8 = quantize_qdq(fp32, str(tmp / "u8.onnx"), cal, "input", "minmax", activation="uint8")
    return fp32, s8, u8


def test_versions_and_opset_limits():
    assert parse_version("8.2") == (8, 2, 0) and parse_version("10.3.0.26") == (10, 3, 0)
    # onnx-tensorrt docs/operators.md per release: 8.0 and 8.2 "up to Opset 13", 8.4–8.6 "up to Opset 17"
    assert [max_opset(v) for v in ("8.0", "8.2", "8.4", "8.5", "8.6", "9.2", "10.3")] == [13, 13, 17, 17, 17, 19, 20]
    with pytest.raises(TargetError, match="must look like"):
        parse_version("eight")
    with pytest.raises(TargetError, match="older than 8.0"):
        max_opset("7.1")


def test_reflect_pad_refused_by_8_0_taken_from_8_2_and_fixed_by_decomposition(reflect13):
    assert "Pad:reflect" in onnx_compiler.op_names(reflect13)
    issues = graph_issues(reflect13, "8.0", "fp16")  # the 8.0 parser: constant zero padding only
    assert _checks(issues) == ["reflect-pad"]
    assert 'padding = "decompose"' in issues[0]["fix"] and "8.0" in issues[0]["message"]
    for version in ("8.2", "8.5", "10.3"):  # 8.2 imports reflect Pad (ISliceLayer kREFLECT): decomposing is optional
        assert graph_issues(reflect13, version, "fp16") == []
    sub = _generator()
    decompose_reflection_padding(sub)
    decomposed = _export(sub, 13)
    assert "Pad:reflect" not in onnx_compiler.op_names(decomposed)
    assert graph_issues(decomposed, "8.0", "fp16") == []


def test_instancenorm_in_fp16_only_where_its_statistics_stay_fp32(instancenorm13):
    """8.2–8.5 run InstanceNorm as the InstanceNormalization_TRT plugin, statistics in fp32: fp16 and int8
    engines are fine there. 8.0 and the native layer of 8.6+ are refused with advice."""
    assert "InstanceNormalization" in onnx_compiler.op_names(instancenorm13)
    for version in ("8.2", "8.4", "8.5"):
        for precision in ("fp16", "int8"):
            assert graph_issues(instancenorm13, version, precision) == [], (version, precision)
    for version in ("8.0", "8.6", "10.3"):
        for precision in ("fp16", "int8"):
            issues = graph_issues(instancenorm13, version, precision)
            assert _checks(issues) == ["instancenorm-fp16"]
            assert 'norm="bn"' in issues[0]["fix"] and "fp32" in issues[0]["fix"]
        assert graph_issues(instancenorm13, version, "fp32") == []


def test_opset_above_the_parser_refused():
    sub = _generator()
    decompose_reflection_padding(sub)
    model = _export(sub, 17)
    issues = graph_issues(model, "8.2", "fp16")
    assert _checks(issues) == ["opset"] and "opset = 13" in issues[0]["fix"]
    assert graph_issues(model, "8.4", "fp16") == [] and graph_issues(model, "8.5", "fp16") == []


def _tiny_graph(op, domain="", dims=(1, 4)):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(dims))
    node = helper.make_node(op, ["input"], ["output"], domain=domain)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=opsets)


@pytest.mark.parametrize("op,first", [
    # the first release whose parser (onnx-tensorrt builtin_op_importers.cpp / onnxOpImporters.cpp) imports op
    ("Reciprocal", "8.0"), ("Shrink", "8.4"), ("Mod", "8.5"), ("OneHot", "8.5"), ("NonZero", "8.5"),
    ("IsInf", "8.6"), ("Hardmax", "9.2"),
])
def test_operators_imported_from_their_release_on(op, first):
    releases = ["8.0", "8.2", "8.4", "8.5", "8.6", "9.2", "10.3"]
    for version in releases:
        issues = graph_issues(_tiny_graph(op), version, "fp32")
        if releases.index(version) < releases.index(first):
            assert _checks(issues) == ["operators"] and op in issues[0]["message"], version
        else:
            assert issues == [], version


def test_unsupported_ops_foreign_domains_and_dynamic_shapes():
    assert _checks(graph_issues(_tiny_graph("Unique"), "10.3", "fp32")) == ["operators"]
    assert _checks(graph_issues(_tiny_graph("FastGelu", "com.microsoft"), "8.5", "fp32")) == ["domain"]
    assert set(_checks(graph_issues(_tiny_graph("Relu", dims=("batch", 4)), "8.5", "fp32"))) == {"dynamic-shape"}


def test_qdq_forms_tensorrt_refuses_and_the_one_it_takes(qdq):
    fp32, s8, u8 = qdq
    assert "qdq" in _checks(graph_issues(onnx.load(u8), "8.5", "int8"))  # asymmetric uint8: CPU flavour
    # onnxruntime's defaults: int32 bias DQ, int8 weights read directly by a DQ
    rng = np.random.default_rng(0)
    cal = CalibrationSet([np.where(rng.random(SHAPE) < 0.2, -1.0, 1.0).astype(np.float32) for _ in range(4)],
                         [np.ones(SHAPE, np.float32)], "synthetic")
    default = os.path.join(os.path.dirname(s8), "ort-default.onnx")
    quantize_static(fp32, default, cal.reader("input"), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True})
    model = onnx.load(default)
    assert _checks(graph_issues(model, "8.5", "int8")) == ["qdq-bias", "qdq-deconv-axis", "qdq-weight"]
    assert _checks(graph_issues(model, "10.3", "int8")) == ["qdq-bias"]
    # quantize_qdq's int8 (TensorRT) form passes every version's check
    assert graph_issues(onnx.load(s8), "8.5", "int8") == [] and graph_issues(onnx.load(s8), "10.3", "int8") == []


def _deconv_qdq(tmp_path, per_tensor_ops):
    """A conv → ConvTranspose net quantized by quantize_qdq (TensorRT's int8 form)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)).eval()
    fp32 = str(tmp_path / "deconv.onnx")
    onnx_compiler.compile_onnx(net, SHAPE, fp32, 13)   # 13: every parser here takes it
    rng = np.random.default_rng(0)
    cal = CalibrationSet([rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)], [np.ones(SHAPE, np.float32)],
                         "synthetic")
    out = str(tmp_path / ("deconv-%d.onnx" % len(per_tensor_ops)))
    return onnx.load(quantize_qdq(fp32, out, cal, "input", "minmax", activation="int8", per_tensor_ops=per_tensor_ops))


def _weight_dq(model, op_type):
    from onnx import numpy_helper

    inits = dict((i.name, numpy_helper.to_array(i)) for i in model.graph.initializer)
    producer = dict((o, n) for n in model.graph.node for o in n.output)
    node = [n for n in model.graph.node if n.op_type == op_type][0]
    dq = producer[node.input[1]]
    assert dq.op_type == "DequantizeLinear"
    return inits[dq.input[1]].size, next((a.i for a in dq.attribute if a.name == "axis"), 1)


def test_convtranspose_weights_per_output_channel_refused_before_10_and_quantized_per_tensor(tmp_path):
    """onnxruntime puts ConvTranspose weight scales on axis 1 (output channels), which TensorRT 8.x computes
    wrongly (no per-output-channel deconvolution kernels); quantize_qdq(per_tensor_ops=("ConvTranspose",)) —
    what the TensorRT compiler asks for — writes one scale, and the Conv keeps its per-channel scales."""
    default = _deconv_qdq(tmp_path, ())
    assert _weight_dq(default, "ConvTranspose") == (3, 1)                      # per output channel, axis 1
    for version in ("8.0", "8.2", "8.5", "8.6"):
        issues = graph_issues(default, version, "int8")
        assert _checks(issues) == ["qdq-deconv-axis"], version
        assert "per tensor" in issues[0]["fix"] and "axis 1" in issues[0]["message"]
    assert graph_issues(default, "10.3", "int8") == []
    fixed = _deconv_qdq(tmp_path, ("ConvTranspose",))
    assert _weight_dq(fixed, "ConvTranspose")[0] == 1 and _weight_dq(fixed, "Conv") == (4, 0)
    assert graph_issues(fixed, "8.5", "int8") == []
    assert TensorRTCompiler.per_tensor_weight_ops == ("ConvTranspose",)
    axis0 = onnx.load_from_string(default.SerializeToString())               # per input channel: 8.x takes it
    producer = dict((o, n) for n in axis0.graph.node for o in n.output)
    deconv = [n for n in axis0.graph.node if n.op_type == "ConvTranspose"][0]
    for a in producer[deconv.input[1]].attribute:
        if a.name == "axis":
            a.i = 0
    assert graph_issues(axis0, "8.5", "int8") == []


def test_check_graph_message_lists_every_problem_and_dla_refuses_qdq(reflect13, qdq):
    nano = load_profile("jetson-nano")
    with pytest.raises(TargetError) as e:
        check_graph(reflect13, dict(nano, export=dict(nano["export"], opset=13)), "fp16", "w1.onnx")
    assert "w1.onnx cannot be built by TensorRT 8.0/8.2 for jetson-nano at fp16" in str(e.value)
    assert "reflect Pad, which the ONNX parser of TensorRT 8.0 does not import" in str(e.value)
    nx = load_profile("jetson-xavier-nx")
    model = onnx.load(qdq[1])
    assert check_graph(model, nx, "int8")["max_opset"] == 17
    nx["tensorrt"]["dla"] = True
    with pytest.raises(TargetError, match="DLA takes implicit quantization only"):
        check_graph(model, nx, "int8")
    with pytest.raises(TargetError, match="DLA core 0, which runs fp16 or int8 only"):
        check_precision(nx, "fp32")


def test_compiler_refuses_instancenorm_fp16_before_export_where_it_runs_in_fp16(tmp_path):
    sub = _generator(norm="in")
    decompose_reflection_padding(sub)
    # the Nano bundle serves TensorRT 8.0 too, whose InstanceNorm runs in fp16
    with pytest.raises(TargetError, match='InstanceNorm in a fp16 engine of TensorRT 8.0 .*norm="bn"'):
        TensorRTCompiler().compile(sub, SHAPE, str(tmp_path / "w1.onnx"), load_profile("jetson-nano"), "fp16")
    assert not (tmp_path / "w1.onnx").exists()
    with pytest.raises(TargetError, match="TensorRT 10.3"):
        TensorRTCompiler().compile(sub, SHAPE, str(tmp_path / "w1.onnx"), load_profile("jetson-orin-nano"), "fp16")
    # TensorRT 8.5 (Xavier NX): the plugin keeps fp32 statistics, the fp16 build goes through
    extra = TensorRTCompiler().compile(sub, SHAPE, str(tmp_path / "nx.onnx"), load_profile("jetson-xavier-nx"), "fp16")
    assert "InstanceNormalization" in extra["tensorrt"]["checks"]["ops"]


BASE = 'name = "b"\ncompiler = "tensorrt"\n[export]\nopset = %d\n[build]\nprecisions = [%s]\n[tensorrt]\n%s\n'


@pytest.mark.parametrize("opset,precisions,trt,extra,message", [
    (17, '"fp16"', 'version = "8.2"', "", "opset 17 is above what the ONNX parser of TensorRT 8.2 takes (<= 13)"),
    (13, '"fp16"', 'version = "eight"', "", "must look like"),
    (13, '"fp16"', 'version = "7.1"', "", "older than 8.0"),
    (13, '"fp16"', 'version = "8.5"\ndla = true', "", "has no DLA (dla_cores = 0)"),
    (13, '"fp16"', 'version = "8.5"\ndla = true\ndla_cores = 2\ndla_core = 2', "", "dla_core 2 does not exist"),
    (13, '"fp32"', 'version = "8.5"\ndla = true\ndla_cores = 2', "", "needs fp16 or int8"),
    (13, '"fp16"', 'version = "8.5"\nworkspace_mib = 8', "", "at least 16"),
    (13, '"fp16"', 'version = "8.5"\ndla = "yes"', "", "dla must be true or false"),
    (13, '"fp16"', 'version = 8.5', "", "needs a `version` string"),
    (13, '"int8"', 'version = "8.5"', '[calibrate]\nactivation = "uint8"\n', "symmetric signed int8"),
    (13, '"fp16"', 'version = "8.2"\nversions = ["8.0", "8.2"]', "", "must be the oldest of versions"),
    (13, '"fp16"', 'version = "8.5"\nversions = ["8.5", "10.3"]', "", "span major versions"),
    (13, '"fp16"', 'version = "8.0"\nversions = "8.0"', "", "versions must be a list"),
    (17, '"fp16"', 'version = "8.4"\nversions = ["8.4", "8.2"]', "", "must be the oldest"),
    (17, '"fp16"', 'version = "8.2"\nversions = ["8.2", "8.4"]', "", "TensorRT 8.2 takes (<= 13)"),
    (13, '"fp16"', 'version = "8.5"\ncompute_capability = 7.2', "", "compute_capability must be a string"),
])
def test_tensorrt_profile_validation_errors(tmp_path, opset, precisions, trt, extra, message):
    path = tmp_path / "board.toml"
    path.write_text(BASE % (opset, precisions, trt) + extra)
    with pytest.raises(TargetError) as e:
        load_profile(str(path))
    assert message in str(e.value) and str(path) in str(e.value)


def test_shipped_jetson_profiles():
    nano, nx, agx, orin = (load_profile(n) for n in ("jetson-nano", "jetson-xavier-nx", "jetson-agx-xavier",
                                                     "jetson-orin-nano"))
    # JetPack 4.6 ships TensorRT 8.0.1, 4.6.1 and later 8.2.1: one Nano bundle for both
    assert nano["tensorrt"]["version"] == "8.0" and nano["tensorrt"]["versions"] == ["8.0", "8.2"]
    assert "int8" not in nano["build"]["precisions"] and nano["export"]["padding"] == "decompose"
    assert nano["export"]["opset"] <= min(max_opset("8.0"), max_opset("8.2")) and nano["tensorrt"]["dla_cores"] == 0
    assert [p["tensorrt"]["compute_capability"] for p in (nano, nx, agx, orin)] == ["5.3", "7.2", "7.2", "8.7"]
    assert [nano["power"]["modes"][m]["name"] for m in ("0", "1")] == ["MAXN", "5W"]
    for p in (nx, agx, orin):
        assert "int8" in p["build"]["precisions"] and p["calibrate"]["activation"] == "int8"
        assert p["calibrate"]["min_psnr_db"] == 30.0 and p["export"]["padding"] == "decompose"
        assert p["export"]["opset"] <= max_opset(p["tensorrt"]["version"])
        assert set(p["policy"]["modes"]) == set(p["power"]["modes"])
    assert nx["tensorrt"]["dla_cores"] == agx["tensorrt"]["dla_cores"] == 2 and orin["tensorrt"]["dla_cores"] == 0
    assert [agx["power"]["modes"][m]["name"] for m in "0123"] == ["MAXN", "MODE_10W", "MODE_15W", "MODE_30W_ALL"]
    assert parse_version(orin["tensorrt"]["version"])[0] == 10
