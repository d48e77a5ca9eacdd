"""pix2pix's training augmentation: resize to 286/256 of the crop size, random crop, random horizontal flip.

The same crop and flip are applied to every image of a sample (A and B of a pair). The randomness comes
from the ``seed`` the sample is drawn with (``edgegan.train.batches``: the seed, the epoch and the
position in it), not from a global RNG: a sample's augmentation is the same with any number of loader
workers and after resuming. Held-out data is never augmented.
"""

import cv2
import numpy as np

LOAD_RATIO = 286.0 / 256.0  # pix2pix: --load_size 286 --crop_size 256


def load_size(size):
    """The side images are resized to before the random crop (286 for 256, 143 for 128, …)."""
    return int(round(size * LOAD_RATIO))


def jitter_flip(images, size, seed):
    """Resize every image to ``load_size(size)``² (bicubic, as pix2pix), crop the same random ``size``² window
    from each and flip all of them horizontally with probability 1/2. ``seed``: an int or a sequence of ints."""
    rng = np.random.default_rng(seed)
    load = load_size(size)
    x, y = (int(v) for v in rng.integers(0, load - size + 1, size=2))
    flip = bool(rng.random() < 0.5)
    out = []
    for image in images:
        resized = image if image.shape[:2] == (load, load) else cv2.resize(image, (load, load),
                                                                           interpolation=cv2.INTER_CUBIC)
        crop = resized[y:y + size, x:x + size]
        out.append(np.ascontiguousarray(crop[:, ::-1] if flip else crop))
    return out


def split_key(key):
    """A data set index: ``i`` (no augmentation) or ``(i, seed)`` (augment with that seed)."""
    if isinstance(key, tuple):
        return int(key[0]), key[1]
    return int(key), None
