"""Sub-networks: choose a configuration, cut it out as a plain module, count its cost.

``SubnetConfig`` names a sub-network either by a width multiplier (every slot at
``round(width × max)``) or by per-slot channel counts (once-for-all search, pruning).
``extract(model, config)`` returns a module with no elastic code — each elastic layer hands back
its static counterpart and BatchNorm is folded into the preceding conv — computing the same
function as the elastic model at that configuration. ``cost(module, input_shape)`` counts MACs
(with ``torch.utils.flop_counter``) and parameters.
"""

import copy
import hashlib
import json
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.flop_counter import FlopCounterMode

from .nn.width import channel_slots, set_width, width_to_channels


class SubnetConfig(object):
    """A width multiplier (``width=0.5``) or per-slot channel counts (``channels={"stem": 8, ...}``)."""

    def __init__(self, width=None, channels=None, name=None):
        if (width is None) == (channels is None):
            raise ValueError("give exactly one of width or channels")
        if width is not None and not 0.0 < float(width) <= 1.0:
            raise ValueError("width must be in (0, 1], got %r" % (width,))
        self.width = None if width is None else float(width)
        self.channels = None if channels is None else OrderedDict((str(k), int(v)) for k, v in channels.items())
        self._name = name

    @classmethod
    def coerce(cls, value):
        if isinstance(value, SubnetConfig):
            return value
        if isinstance(value, (int, float)):
            return cls(width=value)
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise TypeError("expected a width, a channel dict or a SubnetConfig, got %r" % (value,))

    @classmethod
    def from_dict(cls, d):
        if "width" in d or "channels" in d:
            return cls(width=d.get("width"), channels=d.get("channels"), name=d.get("name"))
        return cls(channels=d)

    def to_dict(self):
        d = {"name": self.name}
        if self.width is not None:
            d["width"] = self.width
        else:
            d["channels"] = dict(self.channels)
        return d

    @property
    def name(self):
        if self._name:
            return self._name
        if self.width is not None:
            return "w%g" % self.width
        digest = hashlib.sha1(json.dumps(self.channels, sort_keys=True).encode()).hexdigest()[:8]
        return "c-" + digest

    def resolve(self, model):
        """Slot → channel count for ``model``."""
        slots = channel_slots(model)
        if self.width is not None:
            return OrderedDict((k, width_to_channels(self.width, s.max_channels)) for k, s in slots.items())
        return OrderedDict(self.channels)

    def __eq__(self, other):
        return isinstance(other, SubnetConfig) and self.width == other.width and self.channels == other.channels

    def __hash__(self):
        return hash((self.width, tuple(self.channels.items()) if self.channels else None))

    def __repr__(self):
        if self.width is not None:
            return "SubnetConfig(width=%g)" % self.width
        return "SubnetConfig(channels=%s)" % dict(self.channels)


def default_input_shape(model, size=64):
    return (1, model.hparams["in_channels"], size, size)


def _replace_module(root, name, new):
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def _fold_batchnorm(module):
    """Fold every BatchNorm2d that directly follows a conv in a Sequential; drop the BN."""
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        children = list(seq)
        kept = []
        for child in children:
            prev = kept[-1] if kept else None
            if isinstance(child, nn.BatchNorm2d) and isinstance(prev, (nn.Conv2d, nn.ConvTranspose2d)):
                kept[-1] = fuse_conv_bn_eval(prev, child, transpose=isinstance(prev, nn.ConvTranspose2d))
            else:
                kept.append(child)
        if len(kept) != len(children):
            for key in list(seq._modules):
                del seq._modules[key]
            for i, child in enumerate(kept):
                seq.add_module(str(i), child)


def _example_inputs(model, input_shape, example_inputs, device):
    """The tracing inputs: ``example_inputs`` (a tensor or tuple), else zeros of ``input_shape``, else the
    model's own ``example_inputs()`` (noise → image generators: noise and a class label)."""
    if example_inputs is None and input_shape is None and hasattr(model, "example_inputs"):
        example_inputs = model.example_inputs()
    if example_inputs is None:
        shape = tuple(input_shape) if input_shape is not None else default_input_shape(model)
        example_inputs = torch.zeros(shape)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    return tuple(t.to(device) for t in example_inputs)


@torch.no_grad()
def extract(model, config, input_shape=None, fold_bn=True, example_inputs=None):
    """A plain ``nn.Module`` computing ``model`` at ``config`` (eval mode, no elastic layers).

    The tracing pass runs on zeros of ``input_shape`` or on ``example_inputs`` (a tuple, for models
    with several inputs such as noise and a class label).
    """
    config = SubnetConfig.coerce(config)
    sub = copy.deepcopy(model).eval()
    set_width(sub, config)
    in_channels = {}
    hooks = []
    for name, m in sub.named_modules():
        if hasattr(m, "to_static"):
            hooks.append(m.register_forward_pre_hook(
                lambda mod, args, name=name: in_channels.__setitem__(name, args[0].shape[1])))
    device = next(sub.parameters()).device
    try:
        sub(*_example_inputs(sub, input_shape, example_inputs, device))
    finally:
        for h in hooks:
            h.remove()
    for name, m in list(sub.named_modules()):
        if hasattr(m, "to_static"):
            if name not in in_channels:
                raise RuntimeError("layer %s was not reached by a forward pass; cannot extract it" % name)
            _replace_module(sub, name, m.to_static(in_channels[name]).to(device))
    sub.eval()
    if fold_bn:
        _fold_batchnorm(sub)
    if hasattr(sub, "_edgegan_config"):
        del sub._edgegan_config
    sub.subnet_config = config.to_dict()
    for p in sub.parameters():
        p.requires_grad_(False)
    return sub.eval()


def count_params(module):
    return int(sum(p.numel() for p in module.parameters()))


@torch.no_grad()
def cost(module, input_shape=None, config=None, example_inputs=None):
    """``{"macs": ..., "params": ...}`` of ``module`` (or of its sub-network at ``config``) for one input
    of ``input_shape`` (or one call on ``example_inputs``).

    MACs are half of the FLOPs that ``torch.utils.flop_counter`` counts for convolutions and
    matrix products (a transposed conv counts N·Cin·Hin·Win·Cout·k² multiplies).
    """
    if config is not None:
        module = extract(module, config, input_shape=input_shape, example_inputs=example_inputs)
    was_training = module.training
    module.eval()
    inputs = _example_inputs(module, input_shape, example_inputs, next(module.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter:
        module(*inputs)
    module.train(was_training)
    return {"macs": int(counter.get_total_flops() // 2), "params": count_params(module)}
