"""INT8 post-training calibration: real calibration data, observers, Q/DQ ONNX, TensorRT calibration
caches, TFLite representative data, and a quality gate against fp32."""

from .data import CalibrationSet, calibration_set, noise_calibration_set
from .gate import quality_gate
from .quantize import OBSERVERS, quantizable_nodes, quantize_qdq, tensor_ranges, write_trt_cache

__all__ = ["CalibrationSet", "OBSERVERS", "calibration_set", "noise_calibration_set", "quality_gate",
           "quantizable_nodes", "quantize_qdq", "tensor_ranges", "write_trt_cache"]
