"""Post-training BatchNorm recalibration, per width (SlimGAN / slimmable networks).

During training the running statistics of each width's BatchNorm are exponential moving
averages over past weights. With the weights fixed, ``recalibrate_bn`` resets the statistics
that the given widths use and re-estimates them as exact cumulative averages
(``momentum=None``) over ``batches`` — each width on its own BatchNorms, so widths that are not
recalibrated keep their statistics untouched.

Works with ``nn.BatchNorm2d`` used directly, ``SwitchableBatchNorm2d`` and the conditional
BatchNorms of ``edgegan.nn.cond_norm`` (anything with ``select(channels)`` returning the
BatchNorm that serves an input of that many channels).
"""

import torch
import torch.nn as nn

from ..nn import at_width


def _call(model, batch):
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    if isinstance(batch, dict):
        return model(**batch)
    return model(batch)


def _to(batch, device):
    if device is None:
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch.to(device) if isinstance(batch, torch.Tensor) else batch


@torch.no_grad()
def batchnorms_used(model, batch, forward=None):
    """The ``nn.BatchNorm2d`` modules whose statistics ``model`` uses on ``batch`` at its current width.

    Runs one forward pass in eval mode (no statistics change).
    """
    forward = forward or _call
    used = []
    seen = set()

    def add(bn):
        if id(bn) not in seen:
            seen.add(id(bn))
            used.append(bn)

    owned = set()
    for m in model.modules():
        if hasattr(m, "select") and hasattr(m, "num_features_list"):
            owned.update(id(b) for b in m.modules() if isinstance(b, nn.BatchNorm2d))
    hooks = []
    for m in model.modules():
        if hasattr(m, "select") and hasattr(m, "num_features_list"):
            hooks.append(m.register_forward_pre_hook(lambda mod, args: add(mod.select(args[0].shape[1]))))
        elif isinstance(m, nn.BatchNorm2d) and id(m) not in owned:
            hooks.append(m.register_forward_pre_hook(lambda mod, args: add(mod)))
    was_training = model.training
    model.eval()
    try:
        forward(model, batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return used


@torch.no_grad()
def recalibrate_bn(model, batches, widths=None, forward=None, device=None):
    """Re-estimate the BatchNorm running statistics of each width in ``widths`` over ``batches``.

    Args:
        model: a slimmable model (``set_width``-able).
        batches: an iterable of model inputs — a tensor (``model(x)``), a tuple (``model(*batch)``,
            e.g. ``(z, y)``) or a dict; it is materialised once and replayed for every width.
        widths: width multipliers or ``SubnetConfig``s (default: ``model.widths``).
        forward: ``forward(model, batch)`` to call instead of the default.
        device: move each batch there first.

    Returns ``{width: number of BatchNorms recalibrated}``. Statistics a BatchNorm shares between
    several of the given widths are averaged over all of their passes.
    """
    forward = forward or _call
    widths = list(model.widths if widths is None else widths)
    batches = [_to(b, device) for b in batches]
    if not batches:
        raise ValueError("recalibrate_bn needs at least one batch")
    per_width = []
    for w in widths:
        with at_width(model, w):
            per_width.append(batchnorms_used(model, batches[0], forward))
    norms, seen = [], set()
    for used in per_width:
        for bn in used:
            if id(bn) not in seen:
                seen.add(id(bn))
                norms.append(bn)
    momenta = [bn.momentum for bn in norms]
    was_training = model.training
    try:
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        # only the selected BatchNorms may change: snapshot every other one and restore it afterwards
        others = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in seen]
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in others]
        for w in widths:
            with at_width(model, w):
                for batch in batches:
                    forward(model, batch)
        for m, state in zip(others, saved):
            m.load_state_dict(state)
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        model.train(was_training)
    return {getattr(w, "name", w): len(used) for w, used in zip(widths, per_width)}
