"""Generator checkpoints: everything ``edgegan build`` needs, loadable with ``weights_only=True``.

A checkpoint is a dict of plain Python values and tensors::

    {"format": "edgegan-checkpoint/1",
     "generator": {"arch": {"name": ..., "kwargs": {...}}, "state_dict": {...}},
     "discriminator": {...} (optional),
     "widths": [0.25, 0.5, 0.75, 1.0],
     "data": {"name": "fmnist-shoes", "size": 32, "in_channels": 1, "out_channels": 1,
              "input": {"range": [-1.0, 1.0], "mean": [0.5], "std": [0.5], "content": "edges"},
              "output": {"range": [-1.0, 1.0], "mean": [0.5], "std": [0.5], "content": "image"},
              "edges": {"method": "canny", "low": 100, "high": 200, "invert": true}},
     "train": {...recipe arguments, steps, seconds...},
     "metrics": {"w0.25": {"psnr": ..., "ssim": ...}, ...}}
"""

import os
import pickle
import re
import warnings
import zipfile

import torch

from .errors import CheckpointError
from .models import build_model

FORMAT = "edgegan-checkpoint/1"
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEFAULT_CHECKPOINT = os.path.join(ASSETS, "fmnist_shoes_32.pt")


def default_checkpoint():
    """Path of the packaged default model (slimmable edges→shoes, Fashion-MNIST shoes, 32²)."""
    if not os.path.isfile(DEFAULT_CHECKPOINT):
        raise CheckpointError("the packaged default model is missing (%s); reinstall edgegan or pass --checkpoint"
                              % DEFAULT_CHECKPOINT)
    return DEFAULT_CHECKPOINT


def save_atomic(path, obj):
    """``torch.save`` to a temporary file next to ``path``, then rename: never a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_checkpoint(path, ckpt):
    """Write ``ckpt`` atomically in the edgegan checkpoint format."""
    ckpt = dict(ckpt)
    ckpt["format"] = FORMAT
    return save_atomic(path, ckpt)


#: where valid checkpoints come from, for error messages
ORIGIN = "edgegan checkpoints come from `edgegan train` (or `edgegan import` for published weights)"


def _looks_like_torch_file(path):
    """Whether ``path`` starts as ``torch.save`` writes files: a zip archive, or a pickle (protocol 2+)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return True  # let torch's own error speak
    return head.startswith(b"PK") or head[:1] == b"\x80"


def _unreadable(path, e, origin=ORIGIN, what="an edgegan checkpoint"):
    """A ``CheckpointError`` for a file ``torch.load(weights_only=True)`` refused: what the file is not and where
    valid files come from — never torch's advice to load it with ``weights_only=False`` (which would run
    code from an untrusted file)."""
    text = str(e)
    if not _looks_like_torch_file(path):
        return CheckpointError("%s is not %s: it is neither a torch archive nor a pickle (an HTML error page or "
                               "another kind of file?); %s" % (path, what, origin))
    if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        holds = "holds a Python object of type %s besides tensors and plain values" % found.group(1) if found else \
            "is a pickle that does not hold only tensors and plain values"
        return CheckpointError("%s is not %s: it %s, and edgegan does not run code from such files; %s"
                               % (path, what, holds, origin))
    if isinstance(e, zipfile.BadZipFile) or (isinstance(e, RuntimeError) and "zip" in text.lower()):
        return CheckpointError("%s is not a complete torch archive (truncated or corrupted in transit?), so not %s "
                               "edgegan can read; re-copy it. %s" % (path, what, origin))
    return CheckpointError("%s is not %s: torch cannot read it (%s); %s" % (path, what, type(e).__name__, origin))


def read_weights_only(path, origin=ORIGIN, what="an edgegan checkpoint"):
    """``torch.load(path, weights_only=True)`` on the CPU, every failure a one-line ``CheckpointError`` saying
    what the file is not and where valid ones come from (``origin``)."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise CheckpointError("%s is empty (0 bytes): not %s; %s" % (path, what, origin))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols of files it then refuses
            return torch.load(path, map_location="cpu", weights_only=True)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # a corrupt file makes the unpickler fail in many ways (KeyError, struct.error, ...)
        raise _unreadable(path, e, origin, what)


def load_checkpoint(path):
    """Read and validate a checkpoint with ``torch.load(weights_only=True)``."""
    if path is None:
        path = default_checkpoint()
    if not os.path.exists(path):
        raise CheckpointError("no checkpoint at %s: pass the path of a file written by `edgegan train`, "
                              "or leave out --checkpoint to use the packaged default model" % path)
    if os.path.isdir(path):
        raise CheckpointError("%s is a directory; --checkpoint takes a .pt file written by `edgegan train`" % path)
    ckpt = read_weights_only(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("%s is not an edgegan checkpoint (expected format %r); %s" % (path, FORMAT, ORIGIN))
    for key in ("generator", "widths", "data"):
        if key not in ckpt:
            raise CheckpointError("%s lacks %r; it was not written by `edgegan train`" % (path, key))
    return ckpt


def load_generator(path=None):
    """``(generator in eval mode, checkpoint dict)`` from a checkpoint (the packaged default if ``None``)."""
    ckpt = load_checkpoint(path)
    gen = build_model(ckpt["generator"]["arch"])
    try:
        gen.load_state_dict(ckpt["generator"]["state_dict"])
    except RuntimeError as e:
        raise CheckpointError("%s: weights do not fit the architecture it names (%s)"
                              % (path, str(e).splitlines()[0]))
    return gen.eval(), ckpt
