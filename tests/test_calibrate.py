"""INT8 calibration: data sets, Q/DQ quantization, the quality gate, TensorRT calibration caches."""

import os
import struct

import cv2
import numpy as np
import onnx
import pytest
import torch

from edgegan.calibrate import CalibrationSet, calibration_set, quality_gate, quantizable_nodes, quantize_qdq
from edgegan.calibrate.quantize import tensor_ranges, trt_version_number, write_trt_cache
from edgegan.errors import DatasetError, TargetError
from edgegan.models import ResnetGenerator
from edgegan.nn import set_width
from edgegan.subnet import extract
from edgegan.targets.onnx import INPUT_NAME, compile_onnx, quantize_with_gate

SHAPE = (1, 1, 32, 32)


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory):
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    g.train()
    for _ in range(5):
        g(torch.randn(8, 1, 32, 32) * 3)
    set_width(g, 1.0)
    sub = extract(g.eval(), 1.0, input_shape=SHAPE)
    with torch.no_grad():  # a large output scale so INT8 error is visible
        sub.head[1].weight *= 40.0
    path = str(tmp_path_factory.mktemp("q") / "fp32.onnx")
    compile_onnx(sub, SHAPE, path, 17)
    return sub, path


@pytest.fixture(scope="module")
def calib():
    rng = np.random.default_rng(0)
    def batch(n):
        return [np.where(rng.random(SHAPE) < 0.2, -1.0, 1.0).astype(np.float32) for _ in range(n)]
    return CalibrationSet(batch(16), batch(4), "synthetic edge maps")


def test_qdq_model_quantizes_every_conv_unless_excluded(fp32_model, calib, tmp_path):
    _, path = fp32_model
    convs = quantizable_nodes(path)
    out = quantize_qdq(path, str(tmp_path / "q.onnx"), calib, INPUT_NAME, "minmax", exclude=[convs[0]],
                       cache_path=str(tmp_path / "c.json"))
    model = onnx.load(out)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.name in convs:  # weights and input arrive through Q/DQ unless the conv is kept in float
            quantized = [producers.get(i) == "DequantizeLinear" for i in node.input[:2]]
            assert quantized == [node.name != convs[0]] * 2, node.name
    assert tensor_ranges(str(tmp_path / "c.json"))["input"] == (-1.0, 1.0)


def test_gate_keeps_sensitive_layers_in_float_until_threshold(fp32_model, calib, tmp_path):
    sub, path = fp32_model
    profile = {"calibrate": {"observer": "minmax", "activation": "int8", "min_psnr_db": 0.0}}
    os.makedirs(str(tmp_path / "a"))
    all_int8 = quantize_with_gate(sub, path, str(tmp_path / "a"), calib, profile)
    assert all_int8["kept_float"] == [] and len(all_int8["rounds"]) == 1
    target = all_int8["psnr_db"] + 3.0
    profile["calibrate"]["min_psnr_db"] = target
    os.makedirs(str(tmp_path / "b"))
    report = quantize_with_gate(sub, path, str(tmp_path / "b"), calib, profile)
    assert report["psnr_db"] >= target and report["kept_float"]
    assert report["rounds"][0]["kept_float"] == [] and report["rounds"][0]["psnr_db"] < target
    convs = quantizable_nodes(path)
    assert report["rounds"][1]["kept_float"] == [convs[0], convs[-1]]


def test_gate_refuses_when_no_choice_reaches_the_threshold():
    layers = ["a", "b", "c", "d"]
    with pytest.raises(TargetError, match="does not reach the gate's 50.0 dB"):
        quality_gate(lambda kept: ",".join(kept), lambda path: 10.0 + 2 * path.count(","), layers, 50.0)


def test_gate_orders_layers_by_measured_sensitivity():
    # PSNR is set by which layers are in INT8: "c" costs the most, then "b"
    cost = {"a": 1.0, "b": 8.0, "c": 20.0, "d": 1.0, "e": 1.0, "f": 1.0}
    layers = list(cost)

    def evaluate(kept_csv):
        kept = set(kept_csv.split(",")) - {""}
        return 60.0 - sum(cost[l] for l in layers if l not in kept)

    report = quality_gate(lambda kept: ",".join(kept), evaluate, layers, 49.0)
    assert report["kept_float"] == ["a", "f", "c"]
    assert report["sensitivity"]["c"] < report["sensitivity"]["b"] < report["sensitivity"]["a"]


def test_trt_calibration_cache_format(tmp_path):
    path = write_trt_cache(str(tmp_path / "calib.cache"), {"input": (-1.0, 1.0), "conv_out": (-0.5, 2.54)}, "8.5.2")
    lines = open(path).read().splitlines()
    assert lines[0] == "TRT-8502-EntropyCalibration2" and trt_version_number("10.3") == 100300 and trt_version_number("8.2.1") == 8201
    scales = {k: struct.unpack(">f", bytes.fromhex(v.strip()))[0] for k, v in (l.split(":") for l in lines[1:])}
    assert scales["input"] == pytest.approx(1 / 127.0) and scales["conv_out"] == pytest.approx(2.54 / 127.0)


def test_calibration_set_from_a_folder_of_photos(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        img = np.full((60, 80, 3), 255, np.uint8)
        cv2.circle(img, (int(rng.integers(20, 60)), 30), 15, (40, 40, 40), -1)
        cv2.imwrite(str(tmp_path / ("%02d.png" % i)), img)
    data = {"size": 32, "edges": {"low": 100, "high": 200, "blur": 0, "invert": True}}
    spec = {"shape": [1, 1, 32, 32], "layout": "NCHW", "dtype": "float32", "range": [-1.0, 1.0], "content": "edges"}
    cs = calibration_set(data, spec, source=str(tmp_path), n=6, n_held_out=2)
    assert len(cs.inputs) + len(cs.held_out) == 8 and cs.inputs[0].shape == SHAPE
    x = cs.inputs[0]
    assert set(np.unique(x)) <= {-1.0, 1.0} and (x == 1.0).mean() > 0.5  # dark edges on white
    (rep,) = next(cs.representative_dataset("NHWC")())
    assert rep.shape == (1, 32, 32, 1)
    with pytest.raises(DatasetError, match="no calibration folder"):
        calibration_set(data, spec, source=str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="cannot reload by name"):
        calibration_set({"name": "aligned:foo", "size": 32}, spec)
