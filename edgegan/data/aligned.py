"""pix2pix aligned folders: ``DIR/train``, ``DIR/val`` and/or ``DIR/test`` of A|B side-by-side images
(the layout of the public edges2shoes, facades, maps… sets); ``direction`` picks which half is the input."""

import os

from torch.utils.data import Dataset

from ..errors import DatasetError
from .augment import jitter_flip, split_key
from .images import IMAGE_EXTENSIONS, fit_square, image_files, is_grey_file, read_image, side_spec, to_tensor

DIRECTIONS = ("AtoB", "BtoA")


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
        augment: pix2pix's jitter and flip (``edgegan.data.augment``) for samples drawn with a seed —
            ``dataset[(i, seed)]``, as the training batches are; ``dataset[i]`` is never augmented.
    """

    paired = True

    def __init__(self, root, split="train", direction="AtoB", size=32, grey=None, limit=None, augment=False):
        if direction not in DIRECTIONS:
            raise DatasetError("direction must be one of %s, got %r" % (DIRECTIONS, direction))
        if not os.path.isdir(root):
            raise DatasetError("%s is not a directory; --data takes fmnist-shoes or a pix2pix aligned folder "
                               "with train/ and val/ or test/ sub-folders" % root)
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            present = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
            raise DatasetError("%s has no %s/ sub-folder (it has: %s); a pix2pix aligned data set holds "
                               "train/ and val/ or test/ folders of A|B side-by-side images (a CycleGAN unpaired "
                               "one: trainA/, trainB/, testA/, testB/; `edgegan data get NAME` fetches either)"
                               % (root, split, ", ".join(present) or "none"))
        self.files = image_files(folder)
        if not self.files:
            raise DatasetError("%s holds no images (%s)" % (folder, ", ".join(IMAGE_EXTENSIONS)))
        if limit is not None:
            self.files = self.files[:int(limit)]
        self.root, self.split, self.direction, self.size = root, split, direction, int(size)
        self.augment = bool(augment)
        self.grey = is_grey_file(self.files[0]) if grey is None else bool(grey)
        self.channels = 1 if self.grey else 3

    def __len__(self):
        return len(self.files)

    def __getitem__(self, key):
        index, seed = split_key(key)
        path = self.files[index]
        image = read_image(path, self.grey)
        width = image.shape[1]
        if width % 2:
            raise DatasetError("%s is %d pixels wide; an aligned A|B image has an even width (two halves)"
                               % (path, width))
        a, b = image[:, :width // 2], image[:, width // 2:]
        if self.direction == "BtoA":
            a, b = b, a
        if self.augment and seed is not None:
            a, b = jitter_flip([a, b], self.size, seed)
            return to_tensor(a), to_tensor(b)
        return to_tensor(fit_square(a, self.size)), to_tensor(fit_square(b, self.size))

    def describe(self):
        colour = "grey" if self.grey else "rgb"
        src, dst = ("A", "B") if self.direction == "AtoB" else ("B", "A")
        return {"name": "aligned:" + os.path.basename(os.path.normpath(self.root)), "size": self.size,
                "in_channels": self.channels, "out_channels": self.channels,
                "input": side_spec(self.channels, src, colour), "output": side_spec(self.channels, dst, colour),
                "edges": None, "direction": self.direction}


def held_out_split(root):
    """The evaluation split of an aligned folder: ``test/`` if present, else ``val/``."""
    for split in ("test", "val"):
        if os.path.isdir(os.path.join(root, split)):
            return split
    raise DatasetError("%s has neither test/ nor val/; held-out metrics need one of them" % root)
