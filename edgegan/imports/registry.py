"""The converter registry: one function per (format, network layout), looked up by name.

A converter is registered with ``@converter(format, netg, ...)`` and called as
``function(state, options) -> Conversion``; see the package docstring for the contract.
"""

from collections import OrderedDict

from ..errors import CheckpointError

#: the training code each format name stands for
FORMATS = OrderedDict([
    ("pix2pix", "junyanz/pytorch-CycleGAN-and-pix2pix (pix2pix and CycleGAN generators)"),
    ("gan-compression", "mit-han-lab/gan-compression (full teachers, mobile and compressed students)"),
])

#: the --norm names of those repositories → edgegan's norm names
NORMS = OrderedDict([("batch", "bn"), ("instance", "in")])


class ImportOptions(object):
    """What the user says about the source network.

    ``norm``: ``batch`` or ``instance`` (the source repository's ``--norm``); ``dropout``: whether its blocks
    hold Dropout layers (pix2pix's default ``use_dropout``; they shift the layer indices, not the outputs
    in eval mode); ``input_nc`` / ``output_nc``: image channels, ``None`` to infer them from the weights.
    """

    def __init__(self, norm, dropout=False, input_nc=None, output_nc=None):
        if norm not in NORMS:
            raise CheckpointError("--norm must be one of %s, got %r" % (", ".join(NORMS), norm))
        self.norm, self.dropout = norm, bool(dropout)
        self.input_nc, self.output_nc = input_nc, output_nc

    @property
    def edgegan_norm(self):
        return NORMS[self.norm]

    def replace(self, **changes):
        values = dict(norm=self.norm, dropout=self.dropout, input_nc=self.input_nc, output_nc=self.output_nc)
        values.update(changes)
        return ImportOptions(**values)

    def to_dict(self):
        return {"norm": self.norm, "dropout": self.dropout, "input_nc": self.input_nc, "output_nc": self.output_nc}


class Conversion(object):
    """A converter's result.

    ``model``: the edgegan generator (one width, 1.0) the source maps onto, built on the current default
    device. ``pairs``: ``[(source prefix, model module name)]`` for every parameterised layer (conv or norm),
    which ``state.transfer`` checks and copies. ``inferred``: what was read from the tensor shapes
    (an ordered dict of plain values, printed and stored in the checkpoint).
    """

    def __init__(self, model, pairs, inferred):
        self.model, self.pairs, self.inferred = model, list(pairs), OrderedDict(inferred)


class Converter(object):
    """A registered converter: ``function(state, options) -> Conversion`` for ``format`` / ``netg``.

    ``norms``: the ``--norm`` values the layout takes; ``dropout``: the ``--dropout`` values it takes
    (``(True,)`` when its blocks always hold a Dropout layer); ``default_norm``: its repository's default.
    """

    def __init__(self, format, netg, function, description, norms, dropout, default_norm):
        self.format, self.netg, self.function = format, netg, function
        self.description, self.default_norm = description, default_norm
        self.norms, self.dropout = tuple(norms), tuple(dropout)

    @property
    def name(self):
        return "%s %s" % (self.format, self.netg)

    def __call__(self, state, options):
        return self.function(state, options)


_REGISTRY = OrderedDict()


def converter(format, netg, description="", norms=("batch", "instance"), dropout=(False, True),
              default_norm="batch"):
    """Register ``function(state, options) -> Conversion`` as the converter of ``format`` / ``netg``."""
    if format not in FORMATS:
        raise ValueError("unknown format %r; add it to FORMATS first" % format)

    def register(function):
        key = (format, netg)
        if key in _REGISTRY:
            raise ValueError("a converter for %s %s is already registered" % key)
        _REGISTRY[key] = Converter(format, netg, function, description or (function.__doc__ or "").strip(),
                                   norms, dropout, default_norm)
        return function

    return register


def converters(format=None):
    """The registered converters (of one ``format``), in registration order."""
    return [c for (f, _), c in _REGISTRY.items() if format is None or f == format]


def get_converter(format, netg):
    if format not in FORMATS:
        raise CheckpointError("unknown --format %r; known: %s" % (format, ", ".join(FORMATS)))
    try:
        return _REGISTRY[(format, netg)]
    except KeyError:
        raise CheckpointError("--format %s has no --netG %r; it takes %s" % (
            format, netg, ", ".join(c.netg for c in converters(format))))
