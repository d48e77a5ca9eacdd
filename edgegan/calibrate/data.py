"""Calibration sets: real, model-ready inputs for INT8 post-training calibration.

Inputs come from the model's own training data (``fmnist-shoes``) or from a folder of real images
(photos become edge maps with the checkpoint's edge parameters when the model takes edges). A set is
split into calibration inputs and held-out inputs, which the quality gate uses to compare the INT8
artifact with fp32 on data the calibration never saw.
"""

import os

import numpy as np

from ..errors import DatasetError


def _item(x):
    """One model input: a float32 array, or — for a model with several inputs (noise, label) — a tuple of
    arrays (float inputs float32, integer inputs kept as they are)."""
    if isinstance(x, (tuple, list)):
        return tuple(np.ascontiguousarray(a) if np.asarray(a).dtype.kind in "iu"
                     else np.ascontiguousarray(a, dtype=np.float32) for a in x)
    return np.ascontiguousarray(x, dtype=np.float32)


class CalibrationSet(object):
    """``inputs`` (calibration) and ``held_out`` (gate) lists of float32 NCHW arrays, batch 1 — or, for a
    model with several inputs (a noise generator: noise and a class label), of tuples of arrays in the
    graph's input order.

    ``output_range``: the width of the model's output value range (2.0 for tanh images), the peak
    for PSNR.
    """

    def __init__(self, inputs, held_out, source, output_range=2.0):
        if not inputs or not held_out:
            raise DatasetError("a calibration set needs at least one calibration and one held-out input "
                               "(got %d and %d); give more images" % (len(inputs), len(held_out)))
        self.inputs = [_item(x) for x in inputs]
        self.held_out = [_item(x) for x in held_out]
        self.source = source
        self.output_range = float(output_range)

    @property
    def multi_input(self):
        """Whether the items are tuples (a model with several inputs)."""
        return isinstance(self.inputs[0], tuple)

    def __len__(self):
        return len(self.inputs)

    def representative_dataset(self, layout="NHWC"):
        """A generator function yielding ``[array]`` per calibration input (TFLite's convention)."""
        def generate():
            for x in self.inputs:
                yield [x.transpose(0, 2, 3, 1).copy() if layout == "NHWC" else x]
        return generate

    def reader(self, input_name):
        """An onnxruntime ``CalibrationDataReader`` over the calibration inputs (``input_name``: the graph
        input's name, or the list of names when the items are tuples)."""
        from onnxruntime.quantization import CalibrationDataReader

        inputs = self.inputs
        names = list(input_name) if isinstance(input_name, (list, tuple)) else [input_name]

        class _Reader(CalibrationDataReader):
            def __init__(self):
                self._it = iter(inputs)

            def get_next(self):
                x = next(self._it, None)
                if x is None:
                    return None
                return dict(zip(names, x)) if isinstance(x, tuple) else {names[0]: x}

            def rewind(self):
                self._it = iter(inputs)

        return _Reader()

    def describe(self):
        return {"source": self.source, "n_calibration": len(self.inputs), "n_held_out": len(self.held_out)}


def _from_training_data(data, n, n_held_out, seed):
    from ..data import FashionMnistShoes

    if data.get("name") != FashionMnistShoes.name:
        edges = (data.get("input") or {}).get("content") == "edges" and data.get("edges")
        raise DatasetError("INT8 calibration needs real inputs, and this checkpoint's data (%r) is data edgegan "
                           "cannot reload by name (imported generators carry none): pass --calibration DIR, a folder "
                           "of real %s" % (data.get("name"), "photos (turned into edge maps with the checkpoint's "
                                                             "Canny parameters)" if edges else "input images"))
    rng = np.random.default_rng(seed)

    def pick(split, count):
        ds = FashionMnistShoes(split, size=int(data["size"]), edges=data.get("edges"))
        idx = rng.choice(len(ds), size=min(count, len(ds)), replace=False)
        return [ds[int(i)][0].numpy()[None] for i in idx]

    return CalibrationSet(pick("train", n), pick("test", n_held_out), "fmnist-shoes (train / test splits)")


def _from_folder(folder, data, input_spec, n, n_held_out, seed):
    from ..errors import InputError
    from ..runtime.edges import edges_from_image
    from ..runtime.imageio import image_to_tensor, list_images, read_image, resize

    files = list_images(folder)
    rng = np.random.default_rng(seed)
    files = [files[i] for i in rng.permutation(len(files))]
    edges = data.get("edges") if input_spec.get("content") == "edges" else None
    arrays, skipped = [], []
    for path in files:
        if len(arrays) == n + n_held_out:
            break
        try:  # a folder of the user's photos may hold files OpenCV reads in other pixel types: skip those
            image = read_image(path)
        except InputError as e:
            skipped.append("%s (%s)" % (os.path.basename(path), e))
            continue
        if edges:
            image = edges_from_image(resize(image, int(data["size"]), int(data["size"])), **edges)
        arrays.append(image_to_tensor(image, input_spec))
    if len(arrays) < 2:
        raise DatasetError("%s holds %d usable image(s); calibration needs at least 2%s"
                           % (folder, len(arrays), "; skipped " + skipped[0] if skipped else ""))
    held = max(1, min(n_held_out, len(arrays) // 4))
    source = "folder %s%s%s" % (os.path.abspath(folder), " as edge maps" if edges else "",
                                " (skipped %d unreadable: %s)" % (len(skipped), ", ".join(skipped)) if skipped else "")
    return CalibrationSet(arrays[held:], arrays[:held], source)


def noise_calibration_set(specs, n=64, n_held_out=16, seed=0):
    """A ``CalibrationSet`` for a noise → image generator: its real input distribution, N(0, 1) noise and
    uniformly drawn class labels (``specs``: the bundle's input specs, ``edgegan.runtime.noise``); the
    held-out inputs come from another seed."""
    from ..runtime.noise import n_classes, sample_feeds

    classes = n_classes(specs)

    def draw(count, s):
        labels = np.random.RandomState(s + 7919).randint(0, classes, size=count).tolist() if classes else None
        return sample_feeds(specs, count, seed=s, labels=labels)

    source = "N(0, 1) noise" + (" + uniform labels in [0, %d)" % classes if classes else "") + \
        " (the generator's input distribution)"
    return CalibrationSet(draw(n, seed), draw(n_held_out, seed + 1), source)


def calibration_set(data, input_spec, source=None, n=64, n_held_out=16, seed=0):
    """A ``CalibrationSet`` for a checkpoint's ``data`` entry and the bundle's ``input_spec``.

    ``source``: ``None`` for the checkpoint's own training data, or a folder of images (photos are
    turned into edge maps when the model takes edges).
    """
    if source is None:
        return _from_training_data(data, n, n_held_out, seed)
    if not os.path.isdir(source):
        raise DatasetError("no calibration folder at %s; pass a directory of images" % source)
    return _from_folder(source, data, input_spec, n, n_held_out, seed)
