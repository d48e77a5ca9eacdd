"""Noise → image bundles (SlimGAN generators): their inputs, sampled; their images, tiled.

A noise bundle's manifest lists its inputs in graph order (``manifest["inputs"]`` when there are
several, else ``manifest["input"]``)::

    {"name": "noise", "shape": [1, nz], "layout": "NC", "dtype": "float32", "content": "noise",
     "distribution": "standard_normal"}
    {"name": "label", "shape": [1], "layout": "N", "dtype": "int64", "content": "label",
     "n_classes": 10, "range": [0, 9]}            # class-conditional generators only

``sample_feeds`` draws model inputs from that distribution: the noise of image ``i`` is the
``i``-th draw of ``numpy.random.RandomState(seed)``, so the first images are the same whatever
``n``, on every variant and every backend. Torch-free, Python 3.6-compatible.
"""

import math

import numpy as np

from ..errors import InputError

NOISE, LABEL = "noise", "label"
STANDARD_NORMAL = "standard_normal"


def input_specs(manifest):
    """Every input spec of a manifest, in graph order."""
    return list(manifest.get("inputs") or [manifest["input"]])


def takes_noise(specs):
    """Whether a model with these input specs generates from noise (rather than translating an image)."""
    return any(s.get("content") == NOISE for s in specs)


def label_spec(specs):
    """The class-label input spec, or ``None`` (unconditional, or an image model)."""
    return next((s for s in specs if s.get("content") == LABEL), None)


def n_classes(specs):
    """Number of classes of a class-conditional generator; 0 otherwise."""
    spec = label_spec(specs)
    return int(spec["n_classes"]) if spec else 0


def check_labels(labels, classes, what="label"):
    """``labels`` (an int or a sequence) as a list of ints in ``[0, classes)``; ``InputError`` otherwise.

    ``None`` passes through (the caller picks labels)."""
    if labels is None:
        return None
    if not classes:
        raise InputError("this generator is unconditional: it takes no class label%s"
                         % ("" if what == "label" else " (leave out %s)" % what))
    values = [labels] if np.ndim(labels) == 0 else list(labels)
    if not values:
        raise InputError("%s: no label given" % what)
    out = []
    for value in values:
        try:
            integral = not isinstance(value, (bool, np.bool_)) and float(value).is_integer()
        except (TypeError, ValueError):
            integral = False
        if not integral:
            raise InputError("%s %r is not a class index; give an integer in [0, %d)" % (what, value, classes))
        value = int(value)
        if not 0 <= value < classes:
            raise InputError("%s %d is outside [0, %d): this generator has %d classes"
                             % (what, value, classes, classes))
        out.append(value)
    return out


def sample_feeds(specs, n=1, seed=0, labels=None):
    """``n`` batch-1 model inputs for a noise generator: a list of tuples, one array per spec, in spec order.

    Noise: standard normal, image ``i`` from the ``i``-th draw of ``RandomState(seed)``. Labels: ``labels``
    (an int for every image, or a sequence cycled over the images; checked against ``n_classes``), by
    default ``i % n_classes`` so that ``n >= n_classes`` images cover every class."""
    if n < 1:
        raise InputError("the number of images must be at least 1, got %d" % n)
    classes = n_classes(specs)
    chosen = check_labels(labels, classes)
    rng = np.random.RandomState(seed)
    feeds = []
    for i in range(n):
        feed = []
        for spec in specs:
            shape = tuple(spec["shape"])
            if spec.get("content") == LABEL:
                value = chosen[i % len(chosen)] if chosen else i % classes
                feed.append(np.full(shape, value, dtype=spec.get("dtype", "int64")))
            elif spec.get("content") == NOISE:
                if spec.get("distribution", STANDARD_NORMAL) != STANDARD_NORMAL:
                    raise InputError("noise input %s has distribution %r; edgegan samples %s only"
                                     % (spec["name"], spec["distribution"], STANDARD_NORMAL))
                feed.append(rng.standard_normal(shape).astype(spec.get("dtype", "float32")))
            else:
                raise InputError("input %s (content %r) is not a noise or label input" % (spec.get("name"),
                                                                                         spec.get("content")))
        feeds.append(tuple(feed))
    return feeds


def sample_model_input(specs, seed=0):
    """One fixed random input for timing: for a noise model a ``sample_feeds`` tuple (an array when its only
    input is the noise), for an image model an array uniform in the input's range."""
    if takes_noise(specs):
        feed = sample_feeds(specs, 1, seed)[0]
        return feed[0] if len(feed) == 1 else feed
    spec = specs[0]
    low, high = spec["range"]
    return np.random.RandomState(seed).uniform(low, high, spec["shape"]).astype(spec["dtype"])


def image_grid(images, cols=None, pad=2, fill=0):
    """uint8 images of one size (H×W grey or H×W×3 BGR) tiled row by row, ``cols`` per row (default: a
    near-square grid), ``pad`` pixels of ``fill`` between them."""
    from .imageio import check_image, to_channels

    images = [check_image(im) for im in images]
    if not images:
        raise InputError("no images to tile")
    channels = 3 if any(im.ndim == 3 for im in images) else 1
    images = [to_channels(im, channels) for im in images]
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise InputError("the images to tile differ in size")
    cols = int(cols or int(math.ceil(math.sqrt(len(images)))))
    cols = max(1, min(cols, len(images)))
    rows = int(math.ceil(len(images) / float(cols)))
    shape = (rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad) + ((3,) if channels == 3 else ())
    grid = np.full(shape, fill, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = im
    return grid
