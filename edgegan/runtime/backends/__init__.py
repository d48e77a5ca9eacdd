"""Inference backends, looked up by name.

A backend named ``X`` lives in ``edgegan/runtime/backends/X.py`` and registers a ``Backend``
subclass with ``@register_backend``; ``get_backend("X")`` imports that module on first use and
checks that the backend's library is installed. Backend modules import their library lazily,
inside methods, so listing or importing them never needs it.

A backend instance runs one artifact::

    backend = get_backend("onnxruntime")(path, threads=2, layout="NCHW")
    y = backend.run(x)          # numpy in, numpy out, input checked against the artifact
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
    """

    name = None
    library = None
    package = None

    input_name = None
    output_name = None
    input_shape = ()
    input_dtype = np.dtype(np.float32)
    layout = None

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

    def run(self, x):
        """Run the artifact on ``x`` (checked first); returns a numpy array on the host."""
        return self._run(self.check_input(x))

    def _run(self, x):
        raise NotImplementedError

    def sync(self):
        """Wait for queued device work; backends whose ``run`` returns host arrays have nothing to wait for."""

    def close(self):
        """Release the artifact's resources."""
