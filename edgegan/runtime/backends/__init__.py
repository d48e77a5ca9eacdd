"""Inference backends, looked up by name.

A backend named ``X`` lives in ``edgegan/runtime/backends/X.py`` and registers a ``Backend``
subclass with ``@register_backend``; ``get_backend("X")`` imports that module on first use and
checks that the backend's library is installed. Backend modules import their library lazily,
inside methods, so listing or importing them never needs it.

A backend instance runs one artifact::

    backend = get_backend("onnxruntime")(path, threads=2, layout="NCHW")
    y = backend.run(x)          # numpy in, numpy out, input checked against the artifact

An artifact with several inputs (a class-conditional generator: ``noise`` and ``label``) lists them
in ``inputs``; ``run`` then takes a tuple of arrays in that order or a dict by input name.
"""

import importlib
import pkgutil

import numpy as np

from ...errors import EdgeganError, InputError

_REGISTRY = {}


def register_backend(cls):
    """Class decorator: make ``cls`` available as ``get_backend(cls.name)``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_backends():
    """Names of the backend modules shipped in this package (their libraries may be missing)."""
    return sorted(set(_REGISTRY) | set(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def get_backend(name):
    """The backend class called ``name``; ``EdgeganError`` if unknown or if its library is missing."""
    if name not in _REGISTRY:
        if name not in available_backends():
            raise EdgeganError("unknown backend %r; available: %s" % (name, ", ".join(available_backends())))
        importlib.import_module("%s.%s" % (__name__, name))
    cls = _REGISTRY[name]
    cls.import_library()
    return cls


def _dims(shape):
    """``[1,1,32,32]``; ``?`` for a dynamic axis."""
    return "[%s]" % ",".join("?" if d is None else str(d) for d in shape)


class Backend(object):
    """Base class: runs one artifact on numpy arrays.

    Subclasses set ``name``, ``library`` (the module to import) and ``package`` (what to
    ``pip install``), and in their constructor ``input_name``, ``output_name``, ``input_shape``
    (ints, ``None`` for a dynamic axis), ``input_dtype`` and ``layout``; they implement ``_run``.
    A backend whose artifact takes several inputs also sets ``inputs`` (``[{"name", "shape",
    "dtype"}]`` in the artifact's order; ``input_*`` describe the first) and implements
    ``_run_inputs`` (a list of checked arrays in that order).
    """

    name = None
    library = None
    package = None

    input_name = None
    output_name = None
    input_shape = ()
    input_dtype = np.dtype(np.float32)
    layout = None
    inputs = None

    @classmethod
    def import_library(cls):
        """Import and return the backend's library, or raise an ``EdgeganError`` saying what to install."""
        try:
            return importlib.import_module(cls.library)
        except ImportError as e:
            raise EdgeganError("the %s backend needs the %s module (%s): pip install %s"
                               % (cls.name, cls.library, e, cls.package))

    @classmethod
    def library_version(cls):
        """The library's ``__version__``, or ``None`` when it is not installed."""
        try:
            return getattr(cls.import_library(), "__version__", None)
        except EdgeganError:
            return None

    def describe_input(self):
        """``[1,1,32,32] (NCHW float32)``: what ``run`` expects."""
        kind = "%s %s" % (self.layout, self.input_dtype.name) if self.layout else self.input_dtype.name
        return "%s (%s)" % (_dims(self.input_shape), kind)

    def check_input(self, x):
        """``x`` as a contiguous array of the artifact's dtype; ``InputError`` if its shape does not fit."""
        x = np.asarray(x)
        if x.dtype != self.input_dtype:
            if x.dtype.kind != "f":
                raise InputError("expected input of shape %s, got a %s array of shape %s; convert uint8 images "
                                 "with Runtime.preprocess" % (self.describe_input(), x.dtype.name, _dims(x.shape)))
            x = x.astype(self.input_dtype)
        shape = self.input_shape
        if len(x.shape) != len(shape) or any(d is not None and d != s for d, s in zip(shape, x.shape)):
            raise InputError("expected input of shape %s, got shape %s" % (self.describe_input(), _dims(x.shape)))
        return np.ascontiguousarray(x)

    @property
    def n_inputs(self):
        return len(self.inputs) if self.inputs else 1

    def input_specs(self):
        """``[{"name", "shape", "dtype"}]``: every input of the artifact, in order."""
        if self.inputs:
            return list(self.inputs)
        return [{"name": self.input_name, "shape": tuple(self.input_shape), "dtype": np.dtype(self.input_dtype)}]

    def describe_inputs(self):
        """``noise [1,128] float32, label [1] int64``."""
        return ", ".join("%s %s %s" % (s["name"], _dims(s["shape"]), np.dtype(s["dtype"]).name)
                         for s in self.input_specs())

    def _check_one(self, x, spec):
        x = np.asarray(x)
        dtype = np.dtype(spec["dtype"])
        what = "input %s" % spec["name"]
        if dtype.kind in "iu":
            if x.dtype.kind not in "iu":
                raise InputError("%s takes integers (%s, e.g. class labels), got a %s array"
                                 % (what, dtype.name, x.dtype.name))
            if x.size and (x.min() < np.iinfo(dtype).min or x.max() > np.iinfo(dtype).max):
                raise InputError("%s: values outside the range of %s" % (what, dtype.name))
            x = x.astype(dtype)
        elif x.dtype != dtype:
            if x.dtype.kind != "f":
                raise InputError("%s takes %s, got a %s array" % (what, dtype.name, x.dtype.name))
            x = x.astype(dtype)
        shape = spec["shape"]
        if len(x.shape) != len(shape) or any(d is not None and d != s for d, s in zip(shape, x.shape)):
            raise InputError("%s: expected shape %s, got shape %s" % (what, _dims(shape), _dims(x.shape)))
        return np.ascontiguousarray(x)

    def check_inputs(self, feeds):
        """Every input as a checked contiguous array, in the artifact's order, from a tuple/list (in that
        order), a dict (by input name) or, for a one-input artifact, an array."""
        specs = self.input_specs()
        if isinstance(feeds, dict):
            names = [s["name"] for s in specs]
            missing = [n for n in names if n not in feeds]
            unknown = sorted(str(k) for k in feeds if k not in names)
            if missing or unknown:
                raise InputError("the artifact takes %s; %s" % (self.describe_inputs(), "; ".join(
                    (["missing: %s" % ", ".join(missing)] if missing else []) +
                    (["unknown: %s" % ", ".join(unknown)] if unknown else []))))
            feeds = [feeds[n] for n in names]
        elif isinstance(feeds, (tuple, list)) and (len(specs) > 1 or isinstance(feeds, tuple)):
            if len(feeds) != len(specs):
                raise InputError("the artifact takes %d input%s (%s), got %d" % (
                    len(specs), "" if len(specs) == 1 else "s", self.describe_inputs(), len(feeds)))
        elif len(specs) > 1:
            raise InputError("the artifact takes %d inputs (%s): pass a tuple in that order or a dict by name"
                             % (len(specs), self.describe_inputs()))
        else:
            feeds = [feeds]
        return [self._check_one(x, s) for x, s in zip(feeds, specs)]

    def run(self, x):
        """Run the artifact on ``x`` (checked first); returns a numpy array on the host.

        ``x``: an array for a one-input artifact; a tuple (the artifact's input order) or a dict (by
        input name) for any artifact, e.g. ``(noise, label)`` for a class-conditional generator."""
        if self.n_inputs == 1 and not isinstance(x, (tuple, dict)):
            return self._run(self.check_input(x))
        arrays = self.check_inputs(x)
        if self.n_inputs == 1:
            return self._run(arrays[0])
        return self._run_inputs(arrays)

    def _run(self, x):
        raise NotImplementedError

    def _run_inputs(self, arrays):
        raise InputError("the %s backend runs one-input artifacts only" % self.name)

    def sync(self):
        """Wait for queued device work; backends whose ``run`` returns host arrays have nothing to wait for."""

    def close(self):
        """Release the artifact's resources."""
