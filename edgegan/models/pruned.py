"""A pruned generator rebuilt from its layer structure (PPCD checkpoints).

``physically_prune`` returns a plain generator whose residual blocks carry arbitrary channel counts
(and the transition 1×1 convs that were not folded); no width-parameterised class rebuilds it. ``module_spec(model)``
describes its module tree as plain values (layer types and their constructor arguments, nested
containers), and ``PrunedGenerator(spec)`` rebuilds exactly that tree, with the same state-dict
keys, running its top-level children in order. A checkpoint stores it as::

    "generator": {"arch": {"name": "pruned_generator", "kwargs": {"spec": spec}}, "state_dict": ...}
"""

import torch.nn as nn

__all__ = ["PrunableBlock", "PrunedGenerator", "module_spec"]


class PrunableBlock(nn.Module):
    """A residual block ``x + transition(body(x))``; ``body`` holds ``ChannelMask``s until pruned.

    ``edgegan.train.prune`` keeps its transition 1×1 conv inside ``body`` (before the last norm), so
    ``transition`` is an identity there; checkpoints of earlier versions carry a conv in it.
    """

    def __init__(self, body, transition=None):
        super().__init__()
        self.body = nn.Sequential(*body)
        self.transition = transition if transition is not None else nn.Identity()

    def forward(self, x):
        return x + self.transition(self.body(x))


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else v


def _leaf_spec(m):
    t = type(m).__name__
    if isinstance(m, nn.ConvTranspose2d):
        return {"type": t, "in_channels": m.in_channels, "out_channels": m.out_channels,
                "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding),
                "output_padding": _pair(m.output_padding), "dilation": _pair(m.dilation), "groups": m.groups,
                "bias": m.bias is not None}
    if isinstance(m, nn.Conv2d):
        return {"type": t, "in_channels": m.in_channels, "out_channels": m.out_channels,
                "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride), "padding": _pair(m.padding),
                "dilation": _pair(m.dilation), "groups": m.groups, "bias": m.bias is not None,
                "padding_mode": m.padding_mode}
    if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return {"type": t, "num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                "affine": m.affine, "track_running_stats": m.track_running_stats}
    if isinstance(m, (nn.ReflectionPad2d, nn.ZeroPad2d, nn.ReplicationPad2d)):
        return {"type": t, "padding": _pair(m.padding)}
    if isinstance(m, nn.Upsample):
        return {"type": t, "scale_factor": m.scale_factor, "mode": m.mode}
    if isinstance(m, (nn.ReLU, nn.Tanh, nn.Identity, nn.Sigmoid)):
        return {"type": t}
    if isinstance(m, nn.LeakyReLU):
        return {"type": t, "negative_slope": m.negative_slope}
    raise ValueError("cannot describe a %s layer in a pruned-generator spec" % t)


def module_spec(module):
    """The module tree of ``module`` as plain values (see the module docstring)."""
    if isinstance(module, PrunableBlock):
        return {"type": "PrunableBlock", "body": module_spec(module.body),
                "transition": module_spec(module.transition)}
    if isinstance(module, nn.Sequential):
        return {"type": "Sequential", "children": [module_spec(c) for c in module]}
    if list(module.children()) and not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        raise ValueError("cannot describe a %s container in a pruned-generator spec" % type(module).__name__)
    return _leaf_spec(module)


def _build(spec):
    t = spec["type"]
    kw = {k: v for k, v in spec.items() if k != "type"}
    if t == "PrunableBlock":
        return PrunableBlock(list(_build(spec["body"])), _build(spec["transition"]))
    if t == "Sequential":
        return nn.Sequential(*[_build(c) for c in spec["children"]])
    for key in ("kernel_size", "stride", "padding", "output_padding", "dilation"):
        if isinstance(kw.get(key), list):
            kw[key] = tuple(kw[key])
    cls = {"Conv2d": nn.Conv2d, "ConvTranspose2d": nn.ConvTranspose2d, "BatchNorm2d": nn.BatchNorm2d,
           "InstanceNorm2d": nn.InstanceNorm2d, "ReflectionPad2d": nn.ReflectionPad2d, "ZeroPad2d": nn.ZeroPad2d,
           "ReplicationPad2d": nn.ReplicationPad2d, "Upsample": nn.Upsample, "ReLU": nn.ReLU, "Tanh": nn.Tanh,
           "Identity": nn.Identity, "Sigmoid": nn.Sigmoid, "LeakyReLU": nn.LeakyReLU}.get(t)
    if cls is None:
        raise ValueError("unknown layer type %r in a pruned-generator spec" % t)
    return cls(**kw)


class PrunedGenerator(nn.Module):
    """Top-level children (``spec["modules"]``: ``[[name, layer spec], ...]``) run in order."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.hparams = {"in_channels": int(spec["in_channels"]), "out_channels": int(spec["out_channels"])}
        self.widths = (1.0,)
        for name, child in spec["modules"]:
            self.add_module(name, _build(child))

    @classmethod
    def from_module(cls, model):
        """A ``PrunedGenerator`` with ``model``'s structure and weights (``model``: ``physically_prune``'s
        result, or any generator whose top-level children run in sequence)."""
        spec = {"in_channels": int(model.hparams["in_channels"]), "out_channels": int(model.hparams["out_channels"]),
                "modules": [[name, module_spec(child)] for name, child in model.named_children()]}
        if hasattr(model, "pruned_channels"):
            spec["pruned_channels"] = {k: list(v) for k, v in model.pruned_channels.items()}
        new = cls(spec)
        new.load_state_dict(model.state_dict())
        return new.train(model.training)

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x

    def arch(self):
        return {"name": "pruned_generator", "kwargs": {"spec": self.spec}}
