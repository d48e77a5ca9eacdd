"""Generators and discriminators, and the registry that rebuilds them from a checkpoint's ``arch``."""

from ..errors import CheckpointError
from .mobile_resnet import MobileResnetGenerator
from .dcgan import DCGANGenerator
from .noise_discriminator import SharedTrunkProjectionD, SlimmableProjectionD
from .noise_resnet import NoiseResnetGenerator
from .patchgan import SharedTrunkPatchGAN, SlimmablePatchGAN
from .pruned import PrunedGenerator
from .resnet_generator import DEFAULT_WIDTHS, ResnetGenerator
from .unet_generator import UnetGenerator

MODELS = {
    "dcgan_generator": DCGANGenerator,
    "noise_resnet_generator": NoiseResnetGenerator,
    "resnet_generator": ResnetGenerator,
    "unet_generator": UnetGenerator,
    "mobile_resnet_generator": MobileResnetGenerator,
    "pruned_generator": PrunedGenerator,
    "shared_trunk_patchgan": SharedTrunkPatchGAN,
    "shared_trunk_projection_d": SharedTrunkProjectionD,
    "slimmable_patchgan": SlimmablePatchGAN,
    "slimmable_projection_d": SlimmableProjectionD,
}


def build_model(arch):
    """Rebuild a model from ``{"name": ..., "kwargs": {...}}`` (what ``model.arch()`` returns)."""
    try:
        cls = MODELS[arch["name"]]
    except (KeyError, TypeError):
        raise CheckpointError("unknown architecture %r; known: %s" % (
            arch.get("name") if isinstance(arch, dict) else arch, sorted(MODELS)))
    return cls(**arch.get("kwargs", {}))


__all__ = ["DCGANGenerator", "DEFAULT_WIDTHS", "MODELS", "MobileResnetGenerator", "NoiseResnetGenerator",
           "PrunedGenerator", "ResnetGenerator", "SharedTrunkPatchGAN", "SharedTrunkProjectionD",
           "SlimmablePatchGAN", "SlimmableProjectionD", "UnetGenerator", "build_model"]
