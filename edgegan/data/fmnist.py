"""Fashion-MNIST shoes as edges → photo pairs (the packaged default model's data).

The shoe classes of Fashion-MNIST (5 sandal, 7 sneaker, 9 ankle boot; 18,000 train / 3,000 test),
padded from 28² to 32² and resized to ``size``. The target is the photo, the input its Canny edge map
from ``edgegan.runtime.edges.edges_from_image`` — the same function the device runtime applies to
camera frames. The idx files come from Debian's ``dataset-fashion-mnist`` package or ``--data-root``.
"""

import gzip
import os

import numpy as np
from torch.utils.data import Dataset

from ..errors import DatasetError
from ..runtime.edges import DEFAULT_EDGES, edges_from_image
from .images import fit_square, side_spec, to_tensor

FMNIST_DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SHOE_LABELS = (5, 7, 9)  # sandal, sneaker, ankle boot
IDX_DTYPES = {0x08: np.uint8}


def read_idx(path):
    """Parse an idx file (MNIST format, optionally gzipped) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError("cannot read %s (%s); re-install the data set or pass another --data-root" % (path, e))
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DatasetError("%s is not an idx file of unsigned bytes" % path)
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DatasetError("%s is truncated: header says %s, holds %d bytes" % (path, dims, len(raw) - offset))
    return np.frombuffer(raw, dtype=IDX_DTYPES[raw[2]], offset=offset).reshape(dims)


def fmnist_paths(root=None, split="train"):
    """The (images, labels) idx paths of a split, or a ``DatasetError`` saying how to get them."""
    root = root or FMNIST_DEBIAN_ROOT
    paths = []
    for name in FMNIST_FILES[split]:
        candidates = [os.path.join(root, name), os.path.join(root, name[:-3])]
        found = [p for p in candidates if os.path.isfile(p)]
        if not found:
            raise DatasetError(
                "Fashion-MNIST file %s not found in %s. On Debian/Ubuntu: sudo apt-get install "
                "dataset-fashion-mnist; or pass --data-root DIR holding the four idx files "
                "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                "t10k-labels-idx1-ubyte.gz)" % (name, root))
        paths.append(found[0])
    return paths


class FashionMnistShoes(Dataset):
    """Fashion-MNIST shoes as edges → photo pairs (grey, 1 channel, ``size``²).

    The photos are padded to 32² (the framing is the same at every ``size``) and resized; edges
    are computed once, at construction, on the resized photo. ``limit`` keeps the first N shoes.
    """

    name = "fmnist-shoes"
    paired = True

    def __init__(self, split="train", size=32, root=None, edges=None, limit=None):
        if split not in FMNIST_FILES:
            raise ValueError("split must be one of %s, got %r" % (sorted(FMNIST_FILES), split))
        self.split, self.size = split, int(size)
        self.edges_params = dict(DEFAULT_EDGES, **(edges or {}))
        images_path, labels_path = fmnist_paths(root, split)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or len(images) != len(labels):
            raise DatasetError("%s and %s do not match: %s images, %s labels"
                               % (images_path, labels_path, images.shape, labels.shape))
        shoes = images[np.isin(labels, SHOE_LABELS)]
        if limit is not None:
            shoes = shoes[:int(limit)]
        if not len(shoes):
            raise DatasetError("%s holds no shoe images (labels %s)" % (labels_path, SHOE_LABELS))
        self.photos = np.stack([fit_square(im, self.size, pad_to=32) for im in shoes])
        self.edge_maps = np.stack([edges_from_image(p, **self.edges_params) for p in self.photos])

    def __len__(self):
        return len(self.photos)

    def __getitem__(self, index):
        return to_tensor(self.edge_maps[index]), to_tensor(self.photos[index])

    def describe(self):
        return {"name": self.name, "size": self.size, "in_channels": 1, "out_channels": 1,
                "input": side_spec(1, "edges", "grey"), "output": side_spec(1, "image", "grey"),
                "edges": dict(self.edges_params)}
