"""Per-target compilers (ONNX, TensorRT) and device profiles; ``build_bundle`` ties them together."""

from .profiles import load_profile, shipped_profiles

__all__ = ["load_profile", "shipped_profiles"]
