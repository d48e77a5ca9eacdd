"""Data sets: paired edges → image data for training, evaluation and INT8 calibration.

Every data set yields ``(input, target)`` pairs of float tensors, C×H×W, in [-1, 1]
(``x / 127.5 − 1``: mean 0.5, std 0.5 on the 0..1 scale), and describes itself with
``describe()`` — the ``data`` entry of a checkpoint, which tells ``build`` and the runtime how to
prepare inputs and read outputs.

* ``fmnist-shoes`` (``edgegan.data.fmnist``): Fashion-MNIST shoes with Canny edges.
* aligned folders (``edgegan.data.aligned``): the pix2pix layout, as the public edges2shoes set ships.

This package sits below ``edgegan.train``, ``edgegan.calibrate`` and ``edgegan.targets``, which all read it.
"""

import os

from ..errors import DatasetError
from .aligned import DIRECTIONS, AlignedFolder, held_out_split
from .fmnist import FMNIST_DEBIAN_ROOT, FMNIST_FILES, SHOE_LABELS, FashionMnistShoes, fmnist_paths, read_idx
from .images import IMAGE_EXTENSIONS, fit_square, image_files, to_tensor, to_uint8

__all__ = ["DIRECTIONS", "FMNIST_DEBIAN_ROOT", "FMNIST_FILES", "IMAGE_EXTENSIONS", "SHOE_LABELS", "AlignedFolder",
           "FashionMnistShoes", "fit_square", "fmnist_paths", "held_out_split", "image_files", "load_pair",
           "read_idx", "to_tensor", "to_uint8"]


def load_pair(data, size=32, root=None, direction="AtoB", train_limit=None, test_limit=None, channels=None):
    """``(train set, held-out set)`` for ``--data``: ``fmnist-shoes`` or an aligned folder's path.

    ``channels``: read an aligned folder as grey (1) or colour (3) whatever its images look like (the
    channels of a generator it must fit); ``None`` decides from the first image.
    """
    if data == FashionMnistShoes.name:
        return (FashionMnistShoes("train", size=size, root=root, limit=train_limit),
                FashionMnistShoes("test", size=size, root=root, limit=test_limit))
    if not os.path.isdir(data):
        raise DatasetError("--data %s: not %s and not a directory" % (data, FashionMnistShoes.name))
    grey = None if channels is None else int(channels) == 1
    train = AlignedFolder(data, "train", direction=direction, size=size, grey=grey, limit=train_limit)
    test = AlignedFolder(data, held_out_split(data), direction=direction, size=size, grey=train.grey,
                         limit=test_limit)
    return train, test
