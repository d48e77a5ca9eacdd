"""Generators and discriminators, and the registry that rebuilds them from a checkpoint's ``arch``."""

from ..errors import CheckpointError
from .patchgan import SharedTrunkPatchGAN
from .resnet_generator import DEFAULT_WIDTHS, ResnetGenerator

MODELS = {
    "resnet_generator": ResnetGenerator,
    "shared_trunk_patchgan": SharedTrunkPatchGAN,
}


def build_model(arch):
    """Rebuild a model from ``{"name": ..., "kwargs": {...}}`` (what ``model.arch()`` returns)."""
    try:
        cls = MODELS[arch["name"]]
    except (KeyError, TypeError):
        raise CheckpointError("unknown architecture %r; known: %s" % (
            arch.get("name") if isinstance(arch, dict) else arch, sorted(MODELS)))
    return cls(**arch.get("kwargs", {}))


__all__ = ["DEFAULT_WIDTHS", "MODELS", "ResnetGenerator", "SharedTrunkPatchGAN", "build_model"]
