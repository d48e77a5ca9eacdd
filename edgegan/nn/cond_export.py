"""``extract`` / ``cost`` for models whose forward takes several inputs (noise and a class label).

``edgegan.subnet.extract`` traces the model with one zero tensor of ``input_shape``; a
class-conditional generator needs ``(z, y)``. ``extract_with_inputs`` does the same work —
deep copy, switch width, record each elastic layer's input channel count with a forward pass,
replace every layer by its ``to_static``, fold BatchNorm — but runs the forward pass on
``example_inputs`` (a tuple; default: the model's own ``example_inputs()``).
"""

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..subnet import SubnetConfig, _fold_batchnorm, _replace_module, count_params
from .width import set_width


def _inputs(model, example_inputs):
    if example_inputs is None:
        if not hasattr(model, "example_inputs"):
            raise ValueError("%s has no example_inputs(); pass example_inputs" % type(model).__name__)
        example_inputs = model.example_inputs()
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    return tuple(example_inputs)


@torch.no_grad()
def extract_with_inputs(model, config, example_inputs=None, fold_bn=True):
    """A plain module computing ``model`` at ``config``; the tracing pass is ``model(*example_inputs)``."""
    config = SubnetConfig.coerce(config)
    sub = copy.deepcopy(model).eval()
    set_width(sub, config)
    device = next(sub.parameters()).device
    inputs = tuple(t.to(device) for t in _inputs(sub, example_inputs))
    in_channels = {}
    hooks = []
    for name, m in sub.named_modules():
        if hasattr(m, "to_static"):
            hooks.append(m.register_forward_pre_hook(
                lambda mod, args, name=name: in_channels.__setitem__(name, args[0].shape[1])))
    try:
        sub(*inputs)
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


@torch.no_grad()
def cost_with_inputs(module, example_inputs=None, config=None):
    """``{"macs", "params"}`` like ``edgegan.subnet.cost``, for a forward on ``example_inputs``."""
    inputs = _inputs(module, example_inputs)
    if config is not None:
        module = extract_with_inputs(module, config, inputs)
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        module(*(t.to(device) for t in inputs))
    module.train(was_training)
    return {"macs": int(counter.get_total_flops() // 2), "params": count_params(module)}
