"""Compilers, looked up by the name a profile gives in ``compiler = "..."``.

A compiler named ``X`` lives in ``edgegan/targets/X.py`` and registers a ``Compiler`` subclass
with ``@register_compiler``; ``get_compiler("X")`` imports that module on first use. A compiler
turns one static sub-network into one artifact, measures that artifact against PyTorch, and may
add target-specific steps to the bundle (e.g. the engine builds a TensorRT device runs).
"""

import importlib

from ..errors import TargetError

_REGISTRY = {}
BUILTIN = ("onnx", "openvino", "tensorrt", "torch_tensorrt", "torchscript", "tflite", "coreml")  # shipped compiler modules


def register_compiler(cls):
    """Class decorator: make ``cls`` available as ``get_compiler(cls.name)``."""
    _REGISTRY[cls.name] = cls
    return cls


def get_compiler(name):
    """An instance of the compiler called ``name``; ``TargetError`` if there is none."""
    if name not in _REGISTRY:
        try:
            importlib.import_module("%s.%s" % (__package__, name))
        except ImportError:
            pass
    if name not in _REGISTRY:
        for builtin in BUILTIN:
            importlib.import_module("%s.%s" % (__package__, builtin))
        raise TargetError("unknown compiler %r; known: %s" % (name, ", ".join(sorted(_REGISTRY))))
    return _REGISTRY[name]()


class Compiler(object):
    """Base class. Subclasses set ``name``, ``extension`` and ``bundle_backend`` (the runtime backend
    that runs the written artifacts) and implement ``compile`` and ``parity``."""

    name = None
    extension = None
    bundle_backend = None

    def compile(self, module, input_shape, path, profile, precision, calibration=None):
        """Write the artifact for ``module`` (a static sub-network, eval mode) to ``path``.

        ``calibration`` (an ``edgegan.calibrate.CalibrationSet``) is given when ``precision`` is
        ``int8``. Returns a dict of extra variant fields for the manifest (may be empty), e.g. what
        the INT8 quality gate kept in higher precision.
        """
        raise NotImplementedError

    input_spec = output_spec = None
    input_specs = None  # every input spec, in graph order (``set_io``)

    #: whether this compiler builds generators whose inputs are a noise vector (and a class label):
    #: SlimGAN checkpoints. ``build`` refuses such a checkpoint for a compiler that does not, naming the
    #: targets that do. Such a compiler reads ``input_specs`` (see ``example_inputs``) in ``compile``.
    noise_inputs = False

    def set_io(self, input_spec, output_spec, inputs=None):
        """Called by ``build`` before compiling: the model's NCHW float32 input/output specs (shape, range,
        content...), for compilers that fold normalisation into the artifact (Core ML image I/O).

        ``inputs``: every input spec in graph order when the model does not take one image (a noise
        generator: ``noise`` float32 [1, nz], then ``label`` int64 [1] when class-conditional);
        ``input_spec`` is then the first of them."""
        self.input_spec, self.output_spec = dict(input_spec), dict(output_spec)
        self.input_specs = [dict(s) for s in inputs] if inputs else None

    def example_inputs(self):
        """Tracing inputs for a model with ``input_specs`` (zeros of each spec's shape and dtype, as torch
        tensors), or ``None`` for a model with one image input (traced at ``input_shape``)."""
        if not self.input_specs:
            return None
        import torch

        return tuple(torch.zeros(tuple(s["shape"]), dtype=getattr(torch, s["dtype"])) for s in self.input_specs)

    def input_names(self):
        """Graph input names for ``example_inputs`` (``None`` for one image input: ``input``)."""
        return [s["name"] for s in self.input_specs] if self.input_specs else None

    def io_spec(self, spec):
        """The manifest's ``input`` / ``output`` entry for this compiler's artifacts, given the NCHW
        float32 spec ``build`` derives from the checkpoint (default: unchanged; TFLite: NHWC)."""
        return spec

    def parity(self, path, module, inputs, data_range, profile, precision):
        """``{"psnr_db", "max_abs", "n_inputs", "backend", ...}`` of the artifact against ``module``."""
        raise NotImplementedError

    def predict(self, path, inputs, profile, precision):
        """The artifact's outputs on ``inputs`` (stacked, NCHW float32, one per input) and how they were
        computed (``{"backend", "measured_precision"}``); ``None`` where the artifact cannot run here
        (Core ML off macOS). ``build`` scores each variant's held-out quality with it."""
        return None

    def finish(self, bundle_dir, variants, profile, precision):
        """Manifest entries this target adds once every variant is compiled (default: none)."""
        return {}
