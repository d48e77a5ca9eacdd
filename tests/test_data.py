"""Training data: edge maps, Fashion-MNIST shoes, pix2pix aligned folders."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from edgegan.errors import DatasetError, InputError
from edgegan.runtime.edges import edges_from_image
from edgegan.data import (FMNIST_DEBIAN_ROOT, AlignedFolder, FashionMnistShoes, load_pair, read_idx,
                                to_tensor, to_uint8)

needs_fmnist = pytest.mark.skipif(not os.path.isfile(os.path.join(FMNIST_DEBIAN_ROOT, "t10k-images-idx3-ubyte.gz")),
                                  reason="Debian package dataset-fashion-mnist is not installed")


def _disc(size=32, radius=9):
    image = np.zeros((size, size), np.uint8)
    cv2.circle(image, (size // 2, size // 2), radius, 200, -1)
    return image


def test_edges_are_dark_on_white_for_grey_and_bgr():
    grey = _disc()
    edges = edges_from_image(grey)
    assert edges.dtype == np.uint8 and edges.shape == grey.shape
    assert set(np.unique(edges)) == {0, 255}
    assert (edges == 255).mean() > 0.8  # mostly white background, thin dark lines
    assert edges[16, 16] == 255 and edges[0, 0] == 255  # inside and outside the disc are not edges
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    np.testing.assert_array_equal(edges_from_image(bgr), edges)
    np.testing.assert_array_equal(edges_from_image(grey, invert=False), 255 - edges)


def test_edges_take_a_checkpoints_edge_parameters():
    params = {"method": "canny", "low": 50, "high": 150, "blur": 0, "invert": True}
    np.testing.assert_array_equal(edges_from_image(_disc(), **params), edges_from_image(_disc(), 50, 150, 0))


def test_edges_reject_bad_input():
    with pytest.raises(InputError, match="uint8"):
        edges_from_image(np.zeros((8, 8), np.float32))
    with pytest.raises(InputError, match="odd"):
        edges_from_image(_disc(), blur=4)
    with pytest.raises(InputError, match="unknown edge method"):
        edges_from_image(_disc(), method="sobel")


def test_edges_module_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import edgegan.runtime.edges as e; "
            "print(e.DEFAULT_EDGES['method'])")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "canny"


def test_tensor_round_trip():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 16, 16) and tensor.min() == -1 and tensor.max() == 1
    np.testing.assert_array_equal(to_uint8(tensor), image)


@pytest.fixture(scope="module")
def shoes():
    return FashionMnistShoes("train"), FashionMnistShoes("test")


@needs_fmnist
def test_fmnist_shoes_sizes_shapes_ranges(shoes):
    train, test = shoes
    assert (len(train), len(test)) == (18000, 3000)
    edges, photo = test[0]
    assert edges.shape == photo.shape == (1, 32, 32)
    assert edges.dtype == photo.dtype == torch.float32
    assert -1 <= float(photo.min()) < float(photo.max()) <= 1
    assert set(torch.unique(edges).tolist()) == {-1.0, 1.0}
    white = (train.edge_maps == 255).mean()
    assert 0.75 < white < 0.98  # dark edges on a white background
    assert (train.photos[:, :2, :] == 0).all()  # the 2-pixel black padding of 28² → 32²
    meta = test.describe()
    assert meta["size"] == 32 and meta["in_channels"] == meta["out_channels"] == 1
    assert meta["input"]["content"] == "edges" and meta["edges"]["method"] == "canny"
    assert meta["input"]["range"] == [-1.0, 1.0]


@needs_fmnist
def test_fmnist_edges_come_from_the_runtime_function(shoes):
    _, test = shoes
    np.testing.assert_array_equal(test.edge_maps[5], edges_from_image(test.photos[5]))


@needs_fmnist
def test_fmnist_resizes_and_limits():
    small = FashionMnistShoes("test", size=16, limit=10)
    assert len(small) == 10 and small[0][0].shape == (1, 16, 16)


def test_missing_fmnist_gives_install_hint(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as err:
        FashionMnistShoes("train", root=str(tmp_path))
    assert "--data-root" in str(err.value)


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "junk-idx3-ubyte"
    path.write_bytes(b"not an idx file")
    with pytest.raises(DatasetError, match="not an idx file"):
        read_idx(str(path))


def _write_aligned(folder, n, height=8, width=16, colour=True):
    """n aligned images: A = blue left half (BGR), B = a grey ramp right half."""
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, :width // 2] = (255, 0, 0)  # BGR blue
        image[:, width // 2:] = 10 * i + 50
        if not colour:
            image[:, :width // 2] = 30
        cv2.imwrite(os.path.join(folder, "%03d.png" % i), image)


def test_aligned_folder_pairs_and_direction(tmp_path):
    _write_aligned(str(tmp_path / "train"), 3)
    _write_aligned(str(tmp_path / "val"), 2)
    data = AlignedFolder(str(tmp_path), "train", size=8)
    assert len(data) == 3 and data.channels == 3
    a, b = data[1]
    assert a.shape == b.shape == (3, 8, 8)
    assert torch.allclose(a[2], torch.ones(8, 8)) and torch.allclose(a[0], -torch.ones(8, 8))  # blue, as RGB
    assert torch.allclose(b, torch.full((3, 8, 8), 60 / 127.5 - 1))
    flipped = AlignedFolder(str(tmp_path), "train", direction="BtoA", size=8)
    assert torch.equal(flipped[1][0], b) and torch.equal(flipped[1][1], a)
    train, held_out = load_pair(str(tmp_path), size=8)
    assert held_out.split == "val" and len(held_out) == 2
    assert train.describe()["input"]["content"] == "A" and train.describe()["in_channels"] == 3


def test_aligned_folder_grey_detection(tmp_path):
    _write_aligned(str(tmp_path / "train"), 2, colour=False)
    data = AlignedFolder(str(tmp_path), "train", size=4)
    assert data.channels == 1 and data[0][0].shape == (1, 4, 4)


def test_aligned_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no train/ sub-folder"):
        AlignedFolder(str(tmp_path), "train")
    os.makedirs(str(tmp_path / "train"))
    with pytest.raises(DatasetError, match="holds no images"):
        AlignedFolder(str(tmp_path), "train")
    _write_aligned(str(tmp_path / "train"), 1, width=15)
    with pytest.raises(DatasetError, match="even width"):
        AlignedFolder(str(tmp_path), "train")[0]
    with pytest.raises(DatasetError, match="neither test/ nor val/"):
        load_pair(str(tmp_path))
    with pytest.raises(DatasetError, match="not fmnist-shoes and not a directory"):
        load_pair(str(tmp_path / "nowhere"))
