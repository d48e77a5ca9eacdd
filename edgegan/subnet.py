"""Sub-networks: choose a configuration, cut it out as a plain module, count its cost.

``SubnetConfig`` names a sub-network either by a width multiplier (every slot at
``round(width × max)``) or by per-slot channel counts (once-for-all search, pruning).
``extract(model, config)`` returns a module with no elastic code — each elastic layer hands back
its static counterpart and BatchNorm is folded into the preceding conv — computing the same
function as the elastic model at that configuration. ``cost(module, input_shape)`` counts MACs
(with ``torch.utils.flop_counter``) and parameters.

MAC conventions (``cost(..., convention=...)``; every result names its own in ``macs_convention``):

* ``edgegan`` (default): multiply-accumulates of convolutions and matrix products as
  ``torch.utils.flop_counter`` counts them; a transposed conv counts N·Cin·Hin·Win·Cout·k², the
  multiplies it performs (each input pixel meets the kernel once).
* ``gan-compression``: as GAN Compression's profiler (``torchprofile.profile_macs``) counts them, the
  figures its papers and README publish: a transposed conv counts N·Cout·Hout·Wout·Cin·k² — at *output*
  resolution, 4× the multiplies for stride 2 — the other convs alike; norms, activations, padding and
  additions are free in both. The pix2pix ResNet-9 (ngf 64, 3 → 3 channels) at 256²: 49.55 G (edgegan),
  56.80 G (gan-compression, the published "56.8G").
"""

import copy

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from .nn.config import SubnetConfig
from .nn.width import set_width

__all__ = ["MACS_CONVENTIONS", "SubnetConfig", "cost", "count_params", "default_input_shape", "extract"]

#: the ways ``cost`` counts MACs (see the module docstring)
MACS_CONVENTIONS = ("edgegan", "gan-compression")


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


def _conv_flops_at_output(x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed, *args, out_shape=None,
                          **kwargs):
    """FLOPs (2 × MACs) of a convolution as GAN Compression's profiler counts them: output elements × the
    weight's first dimension (a transposed conv's input channels) × kernel elements for a transposed conv,
    ``torch.utils.flop_counter``'s count for the others."""
    if not transposed:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)
    macs = 1
    for d in list(out_shape) + [w_shape[0]] + list(w_shape[2:]):
        macs *= int(d)
    return 2 * macs


def _flop_mapping(convention):
    if convention not in MACS_CONVENTIONS:
        raise ValueError("unknown MAC convention %r; known: %s" % (convention, ", ".join(MACS_CONVENTIONS)))
    if convention == "edgegan":
        return {}
    aten = torch.ops.aten
    convs = [aten.convolution, aten._convolution, aten.cudnn_convolution, aten._slow_conv2d_forward,
             aten.convolution_overrideable]
    return {op: _conv_flops_at_output for op in convs}


@torch.no_grad()
def cost(module, input_shape=None, config=None, example_inputs=None, convention="edgegan"):
    """``{"macs": ..., "params": ..., "macs_convention": convention}`` of ``module`` (or of its sub-network at
    ``config``) for one input of ``input_shape`` (or one call on ``example_inputs``).

    MACs are half of the FLOPs that ``torch.utils.flop_counter`` counts for convolutions and
    matrix products; ``convention`` (see the module docstring): ``edgegan`` counts a transposed conv's
    N·Cin·Hin·Win·Cout·k² multiplies, ``gan-compression`` N·Cout·Hout·Wout·Cin·k², as GAN Compression
    publishes them.
    """
    mapping = _flop_mapping(convention)
    if config is not None:
        module = extract(module, config, input_shape=input_shape, example_inputs=example_inputs)
    was_training = module.training
    module.eval()
    inputs = _example_inputs(module, input_shape, example_inputs, next(module.parameters()).device)
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        module(*inputs)
    module.train(was_training)
    return {"macs": int(counter.get_total_flops() // 2), "params": count_params(module), "macs_convention": convention}
