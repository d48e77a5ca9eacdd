"""Image quality of image pairs: PSNR, SSIM and L1 per image, averaged over a set.

Images in [-1, 1] have a data range of 2.0; uint8 images one of 255. Metrics are computed per
image and averaged over the set (PSNR per image, then the mean in dB, as image-to-image papers
report it). Used by training (``edgegan.train.metrics``, per width) and by ``edgegan build`` (each
compiled artifact on held-out pairs).
"""

import numpy as np
import torch
from skimage.metrics import structural_similarity

#: PSNR of identical images is infinite; per-image MSE is floored so that one exact match cannot make the mean infinite.
MIN_MSE_FRACTION = 1e-10


def _as_batch(images):
    """N×C×H×W (or C×H×W) float64 array from a tensor or array."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().double().numpy()
    images = np.asarray(images, dtype=np.float64)
    return images[None] if images.ndim == 3 else images


def _data_range(a, data_range):
    if data_range is not None:
        return float(data_range)
    return 255.0 if np.asarray(a).dtype == np.uint8 else 2.0


def psnr_per_image(a, b, data_range=None):
    """PSNR in dB of each image pair (N×C×H×W); ``data_range`` 2.0 for [-1, 1], 255 for uint8 (default by dtype)."""
    rng = _data_range(a, data_range)
    x, y = _as_batch(a), _as_batch(b)
    mse = ((x - y) ** 2).reshape(len(x), -1).mean(axis=1)
    mse = np.maximum(mse, MIN_MSE_FRACTION * rng ** 2)
    return 10.0 * np.log10(rng ** 2 / mse)


def ssim_per_image(a, b, data_range=None):
    """SSIM (``skimage.metrics.structural_similarity``, 7×7 window, channels averaged) of each pair."""
    rng = _data_range(a, data_range)
    x, y = _as_batch(a), _as_batch(b)
    win = min(7, min(x.shape[-2:]) // 2 * 2 - 1)
    return np.array([structural_similarity(xi, yi, data_range=rng, channel_axis=0, win_size=win)
                     for xi, yi in zip(x, y)])


def l1_per_image(a, b):
    """Mean absolute error of each pair, in the images' own scale ([-1, 1] for model outputs)."""
    x, y = _as_batch(a), _as_batch(b)
    return np.abs(x - y).reshape(len(x), -1).mean(axis=1)


def psnr(a, b, data_range=None):
    return float(psnr_per_image(a, b, data_range).mean())


def ssim(a, b, data_range=None):
    return float(ssim_per_image(a, b, data_range).mean())


def l1(a, b):
    return float(l1_per_image(a, b).mean())
