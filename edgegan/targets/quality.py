"""Held-out quality of compiled artifacts: each variant's PSNR / SSIM / L1 measured through the artifact itself.

``edgegan build`` runs every variant's artifact — fp32, fp16 or INT8, through the compiler's ``predict``
— on held-out pairs of the checkpoint's data set and scores its outputs against the real targets, so an
INT8 variant reports what INT8 does to quality rather than the fp32 checkpoint's numbers. Where that cannot
be done (the data set is not on this machine, the artifact cannot run here — Core ML off macOS —, a noise →
image generator scored by FD-FMNIST), the checkpoint's own metrics are kept and ``measured_on`` says so.
"""

import os

import numpy as np

from ..data import FashionMnistShoes, load_pair
from ..data.metrics import l1_per_image, psnr_per_image, ssim_per_image
from ..errors import DatasetError

#: held-out pairs scored per variant by default (the periodic evaluation of `edgegan train` uses as many)
DEFAULT_IMAGES = 500


class HeldOut(object):
    """Held-out ``inputs`` (a list of [1, C, H, W] float32 arrays) and their real ``targets`` ([N, C, H, W]),
    with a ``description`` of where they come from."""

    def __init__(self, inputs, targets, description):
        self.inputs = inputs
        self.targets = targets
        self.description = description


def held_out_pairs(ckpt, n=DEFAULT_IMAGES, root=None):
    """``(HeldOut, None)`` for a paired checkpoint whose data set can be reloaded here (``fmnist-shoes`` or the
    aligned folder it was trained on), else ``(None, why not)``."""
    data = ckpt.get("data") or {}
    name = (ckpt.get("train") or {}).get("data") or data.get("name")
    if not n or n < 1:
        return None, "held-out scoring turned off (--quality-images 0)"
    if not name:
        return None, "the checkpoint does not record its data set"
    if name != FashionMnistShoes.name and not os.path.isdir(str(name)):
        return None, "its data set %r is not on this machine" % name
    direction = (ckpt.get("train") or {}).get("direction", "AtoB")
    try:
        _, test = load_pair(name, size=int(data["size"]), root=root, direction=direction, test_limit=int(n))
    except (DatasetError, OSError, ValueError) as e:
        return None, "its data set %r cannot be read here (%s)" % (name, str(e).split(";")[0])
    count = min(int(n), len(test))
    if count < 1:
        return None, "its data set %r has no held-out pairs" % name
    pairs = [test[i] for i in range(count)]
    inputs = [np.ascontiguousarray(x.numpy()[None], dtype=np.float32) for x, _ in pairs]
    targets = np.stack([y.numpy() for _, y in pairs]).astype(np.float32)
    split = "test split" if name == FashionMnistShoes.name else "held-out split"
    return HeldOut(inputs, targets, "%d held-out pairs of %s (%s)" % (count, name, split)), None


def artifact_quality(compiler, path, held_out, profile, precision, output_range):
    """``{"psnr", "ssim", "l1", "n_images", "measured_on", "backend", "measured_precision"}`` of the artifact
    at ``path`` on ``held_out``, or ``None`` when the artifact cannot run here."""
    got = compiler.predict(path, held_out.inputs, profile, precision)
    if got is None:
        return None
    outputs, how = got
    low, high = output_range
    outputs = np.clip(np.asarray(outputs, np.float64), low, high)
    span = float(high - low)
    targets = held_out.targets.astype(np.float64)
    return {"psnr": float(psnr_per_image(outputs, targets, span).mean()),
            "ssim": float(ssim_per_image(outputs, targets, span).mean()),
            "l1": float(l1_per_image(outputs, targets).mean()),
            "n_images": len(held_out.inputs),
            "measured_on": "this artifact (%s, %s) on %s" % (how["backend"], how["measured_precision"],
                                                             held_out.description),
            "backend": how["backend"], "measured_precision": how["measured_precision"]}


def checkpoint_quality(metrics, why):
    """The checkpoint's own metrics for a variant, marked as not measured on its artifact (``why``)."""
    quality = dict(metrics)
    quality["measured_on"] = "the PyTorch fp32 checkpoint (its training run's evaluation), not this artifact: %s" % why
    return quality
