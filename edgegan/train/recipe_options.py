"""What the two SlimGAN recipes (paired ``slimmable``, noise → image ``slimgan``) share: the checks of
their common options and the per-width discriminator schedule of the D ablations."""

import contextlib

from ..errors import EdgeganError
from ..nn import at_width
from .losses import DISTILL_MODES


def validate_shared(config, positive):
    """Distillation mode, discriminator ablations (``d_share``, ``same_d``, ``slimmable_d``) and the
    options in ``positive`` that must be at least 1; a clear ``EdgeganError`` naming the flag."""
    if config.distill not in DISTILL_MODES:
        raise EdgeganError("--distill must be one of %s, got %r" % (", ".join(DISTILL_MODES), config.distill))
    if config.same_d and config.slimmable_d:
        raise EdgeganError("--same-d and --slimmable-d are different discriminator ablations; pick one")
    if config.d_share < 0:
        raise EdgeganError("--d-share must be 0 or more, got %r" % config.d_share)
    for name in positive:
        if getattr(config, name) < 1:
            raise EdgeganError("--%s must be at least 1, got %r" % (name.replace("_", "-"), getattr(config, name)))


def d_schedule(d_net, widths):
    """``[(head, context)]`` per generator width: which discriminator head scores it, and a context manager
    that sets a slimmable discriminator to that width (a no-op for the shared-trunk one)."""
    if getattr(d_net, "slimmable", False):
        return [(0, lambda w=w: at_width(d_net, w)) for w in widths]
    # head i scores width i (head 0 scores all under "same D")
    return [(min(i, len(d_net.heads) - 1), contextlib.nullcontext) for i in range(len(widths))]
