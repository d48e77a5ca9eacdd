"""CycleGAN unpaired folders: ``DIR/trainA``, ``DIR/trainB``, ``DIR/testA``, ``DIR/testB`` of single images
(the layout of the public horse2zebra, monet2photo… sets). Domain A and B images are not paired.

``UnpairedFolder`` has ``paired = False`` and yields **inputs only** (one tensor per sample, from the
input domain: A for ``AtoB``, B for ``BtoA``); recipes that train on it take their targets from somewhere
else (a teacher generator's outputs). ``other_domain()`` reads the target domain's images of the same split
(for a discriminator's real samples). Recipes that need pairs call ``require_paired`` and refuse it.
"""

import os

from torch.utils.data import Dataset

from ..errors import DatasetError
from .aligned import DIRECTIONS
from .augment import jitter_flip, split_key
from .images import IMAGE_EXTENSIONS, fit_square, image_files, is_grey_file, read_image, side_spec, to_tensor

#: Training recipes (``edgegan train NAME``) that take an unpaired folder; paired recipes name them in their error.
UNPAIRED_RECIPES = ()


def is_unpaired_folder(root):
    """A CycleGAN layout (``trainA/`` or ``trainB/``) without a pix2pix ``train/`` folder."""
    has = lambda name: os.path.isdir(os.path.join(root, name))  # noqa: E731
    return os.path.isdir(root) and not has("train") and (has("trainA") or has("trainB"))


def unpaired_held_out_split(root):
    """The evaluation split of an unpaired folder: ``test`` (testA/testB) if present, else ``val``."""
    for split in ("test", "val"):
        if os.path.isdir(os.path.join(root, split + "A")) or os.path.isdir(os.path.join(root, split + "B")):
            return split
    raise DatasetError("%s has neither testA/testB nor valA/valB; held-out metrics need one of them" % root)


def _domains(direction):
    return ("A", "B") if direction == "AtoB" else ("B", "A")


class UnpairedFolder(Dataset):
    """The input domain of a CycleGAN unpaired folder; ``dataset[i]`` is one C×H×W tensor in [-1, 1].

    Args:
        root: the data set directory, holding ``trainA/``, ``trainB/``, ``testA/``, ``testB/``.
        split: ``train``, ``test`` or ``val`` (the folder read is ``split + "A"`` or ``split + "B"``).
        direction: ``AtoB`` (inputs from A) or ``BtoA`` (inputs from B).
        size: images are resized to ``size``².
        grey: read grey or RGB; ``None`` decides from the first image of each domain.
        limit: keep the first N images (sorted by name).
        augment: pix2pix / CycleGAN jitter and flip for samples drawn with a seed (``dataset[(i, seed)]``).
    """

    paired = False

    def __init__(self, root, split="train", direction="AtoB", size=256, grey=None, limit=None, augment=False):
        if direction not in DIRECTIONS:
            raise DatasetError("direction must be one of %s, got %r" % (DIRECTIONS, direction))
        src, dst = _domains(direction)
        self.root, self.split, self.direction, self.size = root, split, direction, int(size)
        self.augment = bool(augment)
        self.files = self._files(src, limit)
        self.grey = is_grey_file(self.files[0]) if grey is None else bool(grey)
        self.channels = 1 if self.grey else 3
        target = self._files(dst, 1, required=False)
        self.out_channels = (1 if is_grey_file(target[0]) else 3) if target else self.channels
        self.name = os.path.basename(os.path.normpath(root))

    def _files(self, domain, limit, required=True):
        folder = os.path.join(self.root, self.split + domain)
        if not os.path.isdir(folder):
            if not required:
                return []
            present = sorted(d for d in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, d))) \
                if os.path.isdir(self.root) else []
            raise DatasetError("%s has no %s%s/ folder (it has: %s); an unpaired (CycleGAN) data set holds "
                               "trainA/, trainB/, testA/ and testB/ folders of images"
                               % (self.root, self.split, domain, ", ".join(present) or "none"))
        files = image_files(folder)
        if not files and required:
            raise DatasetError("%s holds no images (%s)" % (folder, ", ".join(IMAGE_EXTENSIONS)))
        return files[:int(limit)] if limit is not None else files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, key):
        index, seed = split_key(key)
        path = self.files[index]
        image = read_image(path, self.grey)
        if self.augment and seed is not None:
            return to_tensor(jitter_flip([image], self.size, seed)[0])
        return to_tensor(fit_square(image, self.size))

    def other_domain(self, augment=None):
        """The target domain's images of the same split (inputs only, like this one)."""
        flipped = "BtoA" if self.direction == "AtoB" else "AtoB"
        return UnpairedFolder(self.root, self.split, flipped, self.size,
                              augment=self.augment if augment is None else augment)

    def describe(self):
        src, dst = _domains(self.direction)
        colour = lambda c: "grey" if c == 1 else "rgb"  # noqa: E731
        return {"name": "unpaired:" + self.name, "size": self.size,
                "in_channels": self.channels, "out_channels": self.out_channels,
                "input": side_spec(self.channels, src, colour(self.channels)),
                "output": side_spec(self.out_channels, dst, colour(self.out_channels)),
                "edges": None, "direction": self.direction}


def require_paired(dataset, recipe, data=None):
    """A ``DatasetError`` when a paired recipe is handed an unpaired data set (``dataset.paired`` is False)."""
    if getattr(dataset, "paired", True):
        return
    takers = ", ".join("`edgegan train %s`" % r for r in UNPAIRED_RECIPES) or "no recipe of this version"
    raise DatasetError("--data %s is an unpaired (CycleGAN) folder (trainA/, trainB/, …): `%s` needs input/target "
                       "pairs, a pix2pix aligned folder (train/ and val/ or test/ of A|B images, e.g. `edgegan data "
                       "get edges2shoes`). Unpaired folders are taken by: %s"
                       % (data or getattr(dataset, "root", "?"), recipe, takers))
