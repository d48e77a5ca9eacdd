"""Elastic layers: convs and norms that run a switchable number of channels."""

from .elastic import ElasticConv2d, ElasticConvTranspose2d
from .norm import ElasticInstanceNorm2d, SwitchableBatchNorm2d
from .spectral import SNElasticConv2d, SNElasticEmbedding, SNElasticLinear
from .config import SubnetConfig
from .width import Slot, apply_channels, at_width, channel_slots, current_config, set_width

__all__ = [
    "ElasticConv2d", "ElasticConvTranspose2d", "ElasticInstanceNorm2d", "SwitchableBatchNorm2d",
    "SNElasticConv2d", "SNElasticEmbedding", "SNElasticLinear",
    "Slot", "SubnetConfig", "apply_channels", "at_width", "channel_slots", "current_config", "set_width",
]
