"""Image arrays ↔ training tensors, and the framing every data set shares.

Tensors are C×H×W float in [-1, 1] (``x / 127.5 − 1``: mean 0.5, std 0.5 on the 0..1 scale).
"""

import os

import cv2
import numpy as np
import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def to_tensor(image_uint8):
    """H×W or H×W×C uint8 (RGB) → C×H×W float tensor in [-1, 1]."""
    array = np.asarray(image_uint8, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array / 127.5 - 1.0))


def to_uint8(tensor):
    """C×H×W (or N×C×H×W) tensor in [-1, 1] → H×W(×C) (or N×…) uint8 array, RGB or grey."""
    array = ((tensor.detach().cpu().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).numpy()
    array = np.moveaxis(array, -3, -1)
    return array[..., 0] if array.shape[-1] == 1 else array


def side_spec(channels, content, color):
    return {"range": [-1.0, 1.0], "mean": [0.5] * channels, "std": [0.5] * channels,
            "content": content, "color": color}


def fit_square(image, size, pad_to=None):
    """Pad ``image`` with black to ``pad_to``² (centred) if given, then resize to ``size``²."""
    if pad_to is not None:
        h, w = image.shape[:2]
        top, left = (pad_to - h) // 2, (pad_to - w) // 2
        image = cv2.copyMakeBorder(image, top, pad_to - h - top, left, pad_to - w - left,
                                   cv2.BORDER_CONSTANT, value=0)
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        shrink = size < max(h, w)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return image


def image_files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))


def read_image(path, grey):
    """An image file as uint8: grey (H, W) or RGB (H, W, 3); a ``DatasetError`` when OpenCV cannot decode it."""
    from ..errors import DatasetError

    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError("cannot decode %s as an image" % path)
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_grey_file(path):
    """Whether an image file holds one channel, or three equal ones."""
    from ..errors import DatasetError

    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError("cannot decode %s as an image" % path)
    if image.ndim == 2:
        return True
    colour = image[:, :, :3]
    return bool((colour == colour[:, :, :1]).all())
