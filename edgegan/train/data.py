"""Paired edges → image data sets for training: Fashion-MNIST shoes and pix2pix aligned folders.

Every data set yields ``(input, target)`` pairs of float tensors, C×H×W, in [-1, 1]
(``x / 127.5 − 1``: mean 0.5, std 0.5 on the 0..1 scale), and describes itself with
``describe()`` — the ``data`` entry of a checkpoint, which tells ``build`` and the runtime how to
prepare inputs and read outputs.

* ``fmnist-shoes``: the shoe classes of Fashion-MNIST (5 sandal, 7 sneaker, 9 ankle boot;
  18,000 train / 3,000 test), padded from 28² to 32² and resized to ``size``. The target is the
  photo, the input its Canny edge map from ``edgegan.runtime.edges.edges_from_image`` — the same
  function the device runtime applies to camera frames.
* aligned folders (pix2pix layout, as in the public edges2shoes set): ``DIR/train``,
  ``DIR/val`` and/or ``DIR/test`` holding images with A and B side by side; ``direction``
  picks which half is the input.
"""

import gzip
import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError
from ..runtime.edges import DEFAULT_EDGES, edges_from_image

FMNIST_DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SHOE_LABELS = (5, 7, 9)  # sandal, sneaker, ankle boot
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
DIRECTIONS = ("AtoB", "BtoA")
IDX_DTYPES = {0x08: np.uint8}


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


def _side(channels, content, color):
    return {"range": [-1.0, 1.0], "mean": [0.5] * channels, "std": [0.5] * channels,
            "content": content, "color": color}


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


class FashionMnistShoes(Dataset):
    """Fashion-MNIST shoes as edges → photo pairs (grey, 1 channel, ``size``²).

    The photos are padded to 32² (the framing is the same at every ``size``) and resized; edges
    are computed once, at construction, on the resized photo. ``limit`` keeps the first N shoes.
    """

    name = "fmnist-shoes"

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
                "input": _side(1, "edges", "grey"), "output": _side(1, "image", "grey"),
                "edges": dict(self.edges_params)}


def _image_files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))


class AlignedFolder(Dataset):
    """pix2pix aligned pairs: each image holds A (left half) and B (right half) side by side.

    Args:
        root: the data set directory, holding ``train/``, ``val/`` and/or ``test/``.
        split: the sub-folder to read.
        direction: ``AtoB`` (A is the input, as in edges2shoes) or ``BtoA``.
        size: both halves are resized to ``size``².
        grey: read grey (1 channel) or colour (3 channels, RGB); ``None`` decides from the
            first image (grey if it is single-channel or its channels are equal).
        limit: keep the first N images (sorted by name).
    """

    def __init__(self, root, split="train", direction="AtoB", size=32, grey=None, limit=None):
        if direction not in DIRECTIONS:
            raise DatasetError("direction must be one of %s, got %r" % (DIRECTIONS, direction))
        if not os.path.isdir(root):
            raise DatasetError("%s is not a directory; --data takes fmnist-shoes or a pix2pix aligned folder "
                               "with train/ and val/ or test/ sub-folders" % root)
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            present = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
            raise DatasetError("%s has no %s/ sub-folder (it has: %s); a pix2pix aligned data set holds "
                               "train/ and val/ or test/ folders of A|B side-by-side images"
                               % (root, split, ", ".join(present) or "none"))
        self.files = _image_files(folder)
        if not self.files:
            raise DatasetError("%s holds no images (%s)" % (folder, ", ".join(IMAGE_EXTENSIONS)))
        if limit is not None:
            self.files = self.files[:int(limit)]
        self.root, self.split, self.direction, self.size = root, split, direction, int(size)
        self.grey = self._is_grey(self.files[0]) if grey is None else bool(grey)
        self.channels = 1 if self.grey else 3

    def _is_grey(self, path):
        image = self._read(path, cv2.IMREAD_UNCHANGED)
        if image.ndim == 2:
            return True
        colour = image[:, :, :3]
        return bool((colour == colour[:, :, :1]).all())

    @staticmethod
    def _read(path, flags):
        image = cv2.imread(path, flags)
        if image is None:
            raise DatasetError("cannot decode %s as an image" % path)
        return image

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        path = self.files[index]
        if self.grey:
            image = self._read(path, cv2.IMREAD_GRAYSCALE)
        else:
            image = cv2.cvtColor(self._read(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        width = image.shape[1]
        if width % 2:
            raise DatasetError("%s is %d pixels wide; an aligned A|B image has an even width (two halves)"
                               % (path, width))
        a, b = image[:, :width // 2], image[:, width // 2:]
        if self.direction == "BtoA":
            a, b = b, a
        return to_tensor(fit_square(a, self.size)), to_tensor(fit_square(b, self.size))

    def describe(self):
        colour = "grey" if self.grey else "rgb"
        src, dst = ("A", "B") if self.direction == "AtoB" else ("B", "A")
        return {"name": "aligned:" + os.path.basename(os.path.normpath(self.root)), "size": self.size,
                "in_channels": self.channels, "out_channels": self.channels,
                "input": _side(self.channels, src, colour), "output": _side(self.channels, dst, colour),
                "edges": None, "direction": self.direction}


def held_out_split(root):
    """The evaluation split of an aligned folder: ``test/`` if present, else ``val/``."""
    for split in ("test", "val"):
        if os.path.isdir(os.path.join(root, split)):
            return split
    raise DatasetError("%s has neither test/ nor val/; held-out metrics need one of them" % root)


def load_pair(data, size=32, root=None, direction="AtoB", train_limit=None, test_limit=None):
    """``(train set, held-out set)`` for ``--data``: ``fmnist-shoes`` or an aligned folder's path."""
    if data == FashionMnistShoes.name:
        return (FashionMnistShoes("train", size=size, root=root, limit=train_limit),
                FashionMnistShoes("test", size=size, root=root, limit=test_limit))
    if not os.path.isdir(data):
        raise DatasetError("--data %s: not %s and not a directory" % (data, FashionMnistShoes.name))
    train = AlignedFolder(data, "train", direction=direction, size=size, limit=train_limit)
    test = AlignedFolder(data, held_out_split(data), direction=direction, size=size, grey=train.grey,
                         limit=test_limit)
    return train, test
