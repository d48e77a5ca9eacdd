"""Resumable training state, shared by the training recipes.

A resumable checkpoint is an ordinary ``edgegan.checkpoint`` dict with one more key::

    "resume": {"step": int,                       # steps already taken
               "opt_g": {...}, "opt_d": {...},    # optimizer state_dicts
               "rng": {"torch": ByteTensor, "numpy": {...}, "python": [...], "cuda": [ByteTensor...]},
               "history": [...]}

Everything in it is tensors, numbers, strings and lists, so the file still loads with
``torch.load(weights_only=True)``. ``generator.state_dict`` / ``discriminator.state_dict`` carry the
model weights as usual.
"""

import random

import numpy as np
import torch

from ..errors import CheckpointError


def rng_state():
    """The torch / numpy / python (and CUDA, when there is one) RNG states, as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state):
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), int(n["pos"]), int(n["has_gauss"]),
                         float(n["cached"])))
    p = state["python"]
    random.setstate((int(p["version"]), tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cpu_state_dict(module):
    """A detached, contiguous CPU copy of ``module``'s state_dict (leaves the module where it is; weights of a
    channels-last model are stored in the default layout)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


def resume_state(step, opt_g, opt_d, history=()):
    """The ``"resume"`` entry of a checkpoint after ``step`` steps."""
    return {"step": int(step), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng_state(),
            "history": list(history)}


def load_resume(path):
    """``(checkpoint dict, resume dict)`` of a resumable checkpoint; ``CheckpointError`` if it is not one."""
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    resume = ckpt.get("resume")
    if not isinstance(resume, dict) or "step" not in resume or "opt_g" not in resume:
        raise CheckpointError("%s has no training state to resume from (it was written without optimizer / "
                              "step / RNG state); resume from a checkpoint written by this version's training "
                              "recipes" % path)
    if "discriminator" not in ckpt:
        raise CheckpointError("%s has no discriminator weights; it cannot be resumed" % path)
    return ckpt, resume


def restore(ckpt, resume, generator, discriminator, opt_g, opt_d, check_arch=True):
    """Load weights, optimizer and RNG states from a resumable checkpoint; returns the step reached."""
    if check_arch:
        for name, module in (("generator", generator), ("discriminator", discriminator)):
            saved = ckpt[name].get("arch")
            if saved is not None and hasattr(module, "arch") and saved != module.arch():
                raise CheckpointError("cannot resume: the checkpoint's %s (%s) differs from the one these "
                                      "arguments build (%s); pass the same model arguments as the original run"
                                      % (name, saved, module.arch()))
    generator.load_state_dict(ckpt["generator"]["state_dict"])
    discriminator.load_state_dict(ckpt["discriminator"]["state_dict"])
    opt_g.load_state_dict(resume["opt_g"])
    opt_d.load_state_dict(resume["opt_d"])
    set_rng_state(resume["rng"])
    return int(resume["step"])


def skip(batches, n):
    """Advance a batch iterator by ``n`` batches (resuming at the same data position)."""
    for _ in range(n):
        next(batches)
    return batches
