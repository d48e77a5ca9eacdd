"""Run a converter on a file, explain a mismatch, and write the edgegan checkpoint.

``import_generator(path, format, netg, options)`` reads the state_dict, converts it with the registered
converter and returns an ``Imported`` (the generator in eval mode, what was inferred, the dropped keys).
When the layout does not fit, the error names the first differing key and its shapes and — trying the
other registered layouts and options of the format on the ``meta`` device, which allocates nothing —
the ``--netG`` / ``--norm`` / ``--dropout`` that do fit.
``imported_checkpoint(imported, size, ...)`` makes the checkpoint dict (``data`` entry included) that
``edgegan.checkpoint.save_checkpoint`` writes.
"""

import hashlib
import os
import re
from collections import OrderedDict

import torch

from ..data.images import side_spec
from ..errors import CheckpointError
from ..runtime.edges import DEFAULT_EDGES
from ..subnet import cost
from .registry import FORMATS, ImportOptions, converters, get_converter
from .state import ImportMismatch, SourceState, read_state_dict, transfer

INPUT_CONTENTS = ("edges", "image")


class Imported(object):
    """An imported generator: ``model`` (eval mode, width 1.0), the ``converter`` and ``options`` used,
    ``inferred`` (from the tensor shapes), ``dropped`` (InstanceNorm statistics keys left out), ``path``."""

    def __init__(self, model, converter, options, inferred, dropped, path):
        self.model, self.converter, self.options = model, converter, options
        self.inferred, self.dropped, self.path = inferred, dropped, path


def _flags(converter, options):
    flags = "--netG %s --norm %s" % (converter.netg, options.norm)
    if options.dropout and len(converter.dropout) > 1:
        flags += " --dropout"
    return flags


def _convert(state, converter, options):
    conversion = converter(state, options)
    dropped = transfer(state, conversion.model, conversion.pairs)
    return conversion, dropped


def _fits(state, converter, options):
    try:
        with torch.device("meta"):
            _convert(state, converter, options)
    except (ImportMismatch, ValueError, RuntimeError):
        return False
    return True


def fitting_layouts(state, format, skip=None):
    """The ``--netG … --norm … [--dropout]`` flags of every registered layout of ``format`` that ``state`` fits."""
    found = []
    for conv in converters(format):
        for norm in conv.norms:
            for dropout in conv.dropout:
                options = ImportOptions(norm, dropout)
                flags = _flags(conv, options)
                if flags != skip and _fits(state, conv, options):
                    found.append(flags)
    return found


def _resolve_options(converter, options):
    if options.norm not in converter.norms:
        raise CheckpointError("%s takes --norm %s, not %s" % (converter.name, " or ".join(converter.norms),
                                                             options.norm))
    if options.dropout not in converter.dropout:  # a layout whose blocks always (or never) hold a Dropout layer
        options = options.replace(dropout=converter.dropout[0])
    return options


def import_generator(path, format, netg, options):
    """Convert the generator state_dict at ``path`` (``format`` / ``netg`` layout) into an edgegan generator."""
    converter = get_converter(format, netg)
    options = _resolve_options(converter, options)
    state = SourceState(read_state_dict(path))
    try:
        conversion, dropped = _convert(state, converter, options)
    except ImportMismatch as e:
        fits = fitting_layouts(state, format, skip=_flags(converter, options))
        others = [(f, fitting_layouts(state, f)) for f in FORMATS if f != format] if not fits else []
        if fits:
            hint = "; it fits --format %s %s" % (format, " or ".join(fits))
        elif any(found for _, found in others):
            hint = "; it fits " + " or ".join("--format %s %s" % (f, flags) for f, found in others for flags in found)
        else:
            hint = "; no layout edgegan imports fits it (%s)" % ", ".join(
                "%s: %s" % (f, ", ".join(c.netg for c in converters(f))) for f in FORMATS)
        raise e.in_context("%s is not a %s generator with %s: " % (path, format, _flags(converter, options)), hint)
    return Imported(conversion.model.eval(), converter, options, conversion.inferred, dropped, path)


def default_input_content(path):
    """``edges`` when the path names an edges→photo set (``edges2shoes``, ``edges2handbags``, sketches), else
    ``image``; with the reason, for the user."""
    match = re.search(r"edges2\w*|sketch\w*", os.path.abspath(path), re.IGNORECASE)
    if match:
        return "edges", "the path names %s" % match.group(0)
    return "image", "the path names no edges2* set"


def check_size(imported, size):
    """Run the generator once at ``size``²: the output must have the input's size (and be finite)."""
    c = imported.model.hparams["in_channels"]
    try:
        with torch.no_grad():
            y = imported.model(torch.zeros(1, c, size, size))
    except RuntimeError as e:
        y, error = None, str(e).splitlines()[0]
    else:
        error = None
    if y is None or tuple(y.shape[-2:]) != (size, size):
        raise CheckpointError("--size %d does not fit this %s (%s); give a size its downsampling divides "
                              "(a multiple of 4 for the ResNet generators, of 256 / 128 for unet_256 / unet_128)"
                              % (size, imported.converter.name,
                                 error or "output %d×%d" % tuple(y.shape[-2:])))
    if not torch.isfinite(y).all():
        raise CheckpointError("%s computes non-finite outputs; the weights are damaged" % imported.path)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def edge_settings(low=None, high=None, blur=None):
    """Canny parameters for an edges model: ``DEFAULT_EDGES`` with the given values."""
    edges = dict(DEFAULT_EDGES)
    for key, value in (("low", low), ("high", high), ("blur", blur)):
        if value is not None:
            edges[key] = value
    if not 0 <= edges["low"] <= edges["high"]:
        raise CheckpointError("Canny thresholds need 0 <= low <= high, got %r and %r" % (edges["low"], edges["high"]))
    if edges["blur"] and edges["blur"] > 1 and edges["blur"] % 2 == 0:
        raise CheckpointError("--edges-blur must be an odd kernel size (or 0 for none), got %r" % edges["blur"])
    return edges


def imported_data(imported, size, input_content, edges=None, name=None):
    """The checkpoint's ``data`` entry: what ``edgegan build`` and the runtime prepare inputs by."""
    if input_content not in INPUT_CONTENTS:
        raise CheckpointError("--input-content must be one of %s, got %r" % (", ".join(INPUT_CONTENTS), input_content))
    hp = imported.model.hparams
    cin, cout = int(hp["in_channels"]), int(hp["out_channels"])
    colour = {1: "grey", 3: "rgb"}
    if cin not in colour or cout not in colour:
        raise CheckpointError("edgegan runs image models with 1 or 3 channels; this generator has %d in, %d out"
                              % (cin, cout))
    return {"name": name or "import:" + os.path.basename(os.path.dirname(os.path.abspath(imported.path))),
            "size": int(size), "in_channels": cin, "out_channels": cout,
            "input": side_spec(cin, input_content, colour[cin]), "output": side_spec(cout, "image", colour[cout]),
            "edges": dict(edges or DEFAULT_EDGES) if input_content == "edges" else None}


def imported_checkpoint(imported, size, input_content, edges=None, name=None):
    """The edgegan checkpoint dict of ``imported`` at ``size``² (one width, 1.0; no training data)."""
    shape = (1, int(imported.model.hparams["in_channels"]), int(size), int(size))
    macs = OrderedDict((conv, cost(imported.model, shape, convention=conv)["macs"])
                       for conv in ("edgegan", "gan-compression"))
    model = imported.model
    return {
        "generator": {"arch": model.arch(),
                      "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}},
        "widths": [1.0],
        "data": imported_data(imported, size, input_content, edges, name),
        "import": {"format": imported.converter.format, "netG": imported.converter.netg,
                   "file": os.path.abspath(imported.path), "sha256": file_sha256(imported.path),
                   "options": imported.options.to_dict(), "inferred": dict(imported.inferred),
                   "dropped_keys": list(imported.dropped), "macs": dict(macs),
                   "params": int(sum(p.numel() for p in model.parameters()))},
        "metrics": {},
    }
