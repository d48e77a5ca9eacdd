"""A foreign generator checkpoint's tensors, and copying them into an edgegan generator with every key checked.

``read_state_dict(path)`` loads a state_dict with ``torch.load(weights_only=True)`` (a ``module.`` prefix,
as ``DataParallel`` saves it, is stripped) and says in one line what is wrong with anything else.
``SourceState`` wraps it for the converters (shape look-ups that fail with the key's name).
``transfer(state, model, pairs)`` copies the tensors of each source layer into the paired layer of the
model, checking each expected key and shape in order; a layer's kind (conv, BatchNorm, InstanceNorm)
comes from the model's module, so a converter only names the source prefixes.
"""

import os
import re
from collections import OrderedDict

import torch
import torch.nn as nn

from ..checkpoint import FORMAT as CHECKPOINT_FORMAT
from ..errors import CheckpointError
from ..nn import ElasticInstanceNorm2d, SwitchableBatchNorm2d

#: what old PyTorch (< 0.4) saved for InstanceNorm layers, which hold no statistics since
INSTANCE_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
BATCH_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class ImportMismatch(CheckpointError):
    """The checkpoint does not have the layout asked for: ``key`` (with the ``expected`` and ``found`` shapes,
    ``None`` for absent) is the first that differs."""

    def __init__(self, key, expected, found, what="", context=None, nearby=None):
        self.key, self.expected, self.found, self.what = key, expected, found, what
        self.nearby = list(nearby or [])
        super(ImportMismatch, self).__init__(context or self.describe())

    def in_context(self, before, after=""):
        """The same mismatch with a message ``before + describe() + after``."""
        return ImportMismatch(self.key, self.expected, self.found, self.what, before + self.describe() + after,
                              self.nearby)

    def describe(self):
        def shape(s):
            return "[%s]" % ", ".join(str(d) for d in s)

        what = " (%s)" % self.what if self.what else ""
        if self.found is None:
            parent = self.key.rsplit(".", 1)[0]
            there = ("it has %s there" % ", ".join("%s %s" % (k, shape(v)) for k, v in self.nearby[:2])
                     + (", ..." if len(self.nearby) > 2 else "")) if self.nearby else "nothing under %s" % parent
            return "%s%s: expected a tensor of shape %s, the checkpoint has no such key (%s)" % (
                self.key, what, shape(self.expected), there)
        if self.expected is None:
            return "%s %s%s: the checkpoint holds this tensor, which the layout does not have" % (
                self.key, shape(self.found), " (in a %s)" % self.what if self.what else "")
        return "%s%s: expected shape %s, the checkpoint has %s" % (self.key, what, shape(self.expected),
                                                                   shape(self.found))


def _first_line(error):
    text = str(error).strip()
    return "%s: %s" % (type(error).__name__, text.splitlines()[0]) if text else type(error).__name__


def read_state_dict(path):
    """The generator state_dict stored at ``path`` (an ``OrderedDict`` of tensors, ``module.`` stripped).

    Accepts a plain state_dict (what pix2pix / CycleGAN / GAN Compression save as ``latest_net_G.pth``)
    or a dict holding one under ``"state_dict"``; everything else is a ``CheckpointError`` saying what to do.
    """
    if not os.path.exists(path):
        raise CheckpointError("no file at %s; pass the generator's weights (e.g. checkpoints/NAME/latest_net_G.pth)"
                              % path)
    if os.path.isdir(path):
        raise CheckpointError("%s is a directory; pass the generator's weight file inside it (latest_net_G.pth)"
                              % path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for files that are not its own
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if refused:
            raise CheckpointError(
                "%s holds pickled Python objects (%s: a whole model, not a state_dict), which "
                "torch.load(weights_only=True) refuses to run; in the code that trained it, save the weights with "
                "torch.save(netG.state_dict(), 'latest_net_G.pth') (netG.module.state_dict() under DataParallel) "
                "and import that file" % (path, refused.group(1)))
        raise CheckpointError("%s is not a PyTorch checkpoint (%s); pass the generator's .pth file as its training "
                              "code saved it" % (path, _first_line(e)))
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError("%s holds a %s, not a state_dict; pass the generator's weights (latest_net_G.pth)"
                              % (path, "empty dict" if isinstance(obj, dict) else type(obj).__name__))
    if obj.get("format") == CHECKPOINT_FORMAT:
        raise CheckpointError("%s is already an edgegan checkpoint; use it directly (edgegan build --checkpoint)"
                              % path)
    not_tensors = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise CheckpointError("%s is not a state_dict: %r holds a %s, not a tensor; pass the generator's weights "
                              "(latest_net_G.pth), not a training checkpoint of another kind"
                              % (path, not_tensors[0], type(obj[not_tensors[0]]).__name__))
    state = OrderedDict((str(k), v) for k, v in obj.items())
    if all(k.startswith("module.") for k in state):
        state = OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state


class SourceState(object):
    """The source tensors with look-ups for the converters; a missing key raises ``ImportMismatch``."""

    def __init__(self, tensors):
        self.tensors = OrderedDict(tensors)

    def __contains__(self, key):
        return key in self.tensors

    def missing(self, key, expected, what=""):
        """The ``ImportMismatch`` for an absent ``key``, listing what the source holds under its parent."""
        parts, nearby = key.split(".")[:-1], []
        while parts and not nearby:  # the closest enclosing module the source holds tensors under
            parent = ".".join(parts) + "."
            nearby = [(k, list(v.shape)) for k, v in self.tensors.items() if k.startswith(parent)]
            parts = parts[:-1] if len(parts) > 2 else []
        return ImportMismatch(key, expected, None, what, nearby=nearby)

    def keys(self):
        return list(self.tensors)

    def shape(self, key, expected_rank=None, what=""):
        """The shape of ``key`` as a list; ``ImportMismatch`` if it is absent (or not ``expected_rank``-d)."""
        if key not in self.tensors:
            raise self.missing(key, ["?"] * (expected_rank or 1), what)
        shape = list(self.tensors[key].shape)
        if expected_rank is not None and len(shape) != expected_rank:
            raise ImportMismatch(key, ["?"] * expected_rank, shape, what)
        return shape

    def indices(self, prefix):
        """The sorted integers N of keys ``prefix + "N." + ...`` (the layers of an ``nn.Sequential``)."""
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        return sorted(set(int(m.group(1)) for m in (pattern.match(k) for k in self.tensors) if m))

    def check_channels(self, key, dim, given, what):
        """The size of ``key`` along ``dim``, checked against a ``given`` value (``None``: inferred)."""
        shape = self.shape(key)
        if given is not None and int(given) != shape[dim]:
            expected = list(shape)
            expected[dim] = int(given)
            raise ImportMismatch(key, expected, shape, what)
        return shape[dim]


def _expected_tensors(module):
    """``[(suffix, target tensor, optional)]`` the source holds for ``module``, in state_dict order."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        out = [("weight", module.weight, False)]
        if module.bias is not None:
            out.append(("bias", module.bias, False))
        return out
    if isinstance(module, SwitchableBatchNorm2d):
        if len(module.bn) != 1:
            raise ValueError("imports fill generators of one width; this BatchNorm holds %d" % len(module.bn))
        module = module.bn[0]
    if isinstance(module, nn.BatchNorm2d):
        return [(name, getattr(module, name), name == "num_batches_tracked") for name in BATCH_NORM_TENSORS]
    if isinstance(module, (ElasticInstanceNorm2d, nn.InstanceNorm2d)):
        if getattr(module, "weight", None) is not None:
            return [("weight", module.weight, False), ("bias", module.bias, False)]
        return []
    raise ValueError("no import rule for a %s layer" % type(module).__name__)


def _kind(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return ("transposed " if isinstance(module, nn.ConvTranspose2d) else "") + (
            "depthwise conv" if module.groups > 1 else "conv")
    if isinstance(module, (SwitchableBatchNorm2d, nn.BatchNorm2d)):
        return "BatchNorm"
    return "InstanceNorm"


def transfer(state, model, pairs):
    """Copy the source tensors into ``model`` following ``pairs`` ``[(source prefix, model module name)]``.

    Every tensor the model's layer needs must be in the source with the same shape, and every source tensor
    must be used, except the running statistics old PyTorch saved for InstanceNorm layers (dropped; returned).
    A model on the ``meta`` device is only checked. Raises ``ImportMismatch`` at the first difference.
    """
    modules = dict(model.named_modules())
    used, dropped = set(), []
    with torch.no_grad():
        for prefix, name in pairs:
            module = modules[name]
            for suffix, target, optional in _expected_tensors(module):
                key = "%s.%s" % (prefix, suffix)
                if key not in state:
                    if optional:
                        continue
                    raise state.missing(key, list(target.shape), "%s %s" % (_kind(module), suffix))
                source = state.tensors[key]
                if list(source.shape) != list(target.shape):
                    raise ImportMismatch(key, list(target.shape), list(source.shape),
                                         "%s %s" % (_kind(module), suffix))
                if not target.is_meta:
                    target.copy_(source)
                used.add(key)
            if isinstance(module, (ElasticInstanceNorm2d, nn.InstanceNorm2d)):
                for suffix in INSTANCE_NORM_STATS:
                    key = "%s.%s" % (prefix, suffix)
                    if key in state:
                        dropped.append(key)
                        used.add(key)
            extra = [k for k in state.keys() if k.startswith(prefix + ".") and k not in used]
            if extra:  # e.g. a conv bias the layout's norm rules out: report it where it sits
                raise ImportMismatch(extra[0], None, list(state.tensors[extra[0]].shape), _kind(module))
    extra = [k for k in state.keys() if k not in used]
    if extra:
        raise ImportMismatch(extra[0], None, list(state.tensors[extra[0]].shape))
    return dropped


def parameterised_layers(model):
    """The names of ``model``'s convs and norms in module (construction) order — the order converters list
    their source layers in."""
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.InstanceNorm2d, SwitchableBatchNorm2d,
             ElasticInstanceNorm2d)
    names = []
    inside_switchable = ()
    for name, module in model.named_modules():
        if inside_switchable and name.startswith(inside_switchable):
            continue
        if isinstance(module, kinds):
            names.append(name)
            if isinstance(module, SwitchableBatchNorm2d):
                inside_switchable = name + "."
    return names
