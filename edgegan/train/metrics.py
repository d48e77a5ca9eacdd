"""Image quality on held-out pairs: PSNR, SSIM and L1, per generator width.

The per-image metrics live in ``edgegan.data.metrics`` (``edgegan build`` measures artifacts with
them too) and are re-exported here.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..data.metrics import MIN_MSE_FRACTION, l1, l1_per_image, psnr, psnr_per_image, ssim, ssim_per_image
from ..nn import at_width
from ..subnet import SubnetConfig

__all__ = ["MIN_MSE_FRACTION", "evaluate_widths", "l1", "l1_per_image", "psnr", "psnr_per_image", "ssim",
           "ssim_per_image", "width_key"]


def width_key(width):
    """The metrics key of a width (``w0.25``, ``w1``): the sub-network's name."""
    return SubnetConfig(width=width).name


@torch.no_grad()
def evaluate_widths(generator, data, widths, device="cpu", batch_size=100, limit=None, progress=False):
    """``{"w0.25": {"psnr": …, "ssim": …, "l1": …}, …}`` of ``generator`` on ``(input, target)`` pairs.

    ``data`` is a Dataset or a DataLoader; ``limit`` evaluates the first N pairs of a Dataset.
    The generator runs in eval mode (BatchNorm running statistics) and is put back in the mode
    and width it had. ``progress``: a bar over the batches on stderr (``None``: only on a terminal).
    """
    import sys

    from tqdm import tqdm

    if isinstance(data, Dataset):
        if limit is not None and limit < len(data):
            data = Subset(data, range(int(limit)))
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    was_training = generator.training
    generator.eval()
    scores = {width_key(w): {"psnr": [], "ssim": [], "l1": []} for w in widths}
    try:
        for inputs, targets in tqdm(data, desc="held-out eval (%d widths)" % len(widths), unit="batch",
                                    file=sys.stderr, disable=None if progress is None else not progress,
                                    leave=False, total=len(data)):
            inputs = inputs.to(device)
            for w in widths:
                with at_width(generator, w):
                    outputs = generator(inputs).clamp(-1, 1).cpu()
                s = scores[width_key(w)]
                s["psnr"].append(psnr_per_image(outputs, targets, 2.0))
                s["ssim"].append(ssim_per_image(outputs, targets, 2.0))
                s["l1"].append(l1_per_image(outputs, targets))
    finally:
        generator.train(was_training)
    return {key: {name: float(np.concatenate(values).mean()) for name, values in s.items()}
            for key, s in scores.items()}
