"""The on-device runtime: load a bundle, run its variants, switch between them.

Torch-free (numpy plus one inference backend) and Python 3.6-compatible, for JetPack 4.6::

    from edgegan.runtime import Runtime
    with Runtime("edgegan-cpu") as rt:
        rt.set_variant("w0.5")          # a dict lookup: every variant is loaded up front
        out = rt.infer_image(edges)     # uint8 in, uint8 out

A noise → image bundle (a SlimGAN generator, ``rt.takes_noise``) has no input image::

    with Runtime("slimgan-cpu") as rt:
        images = rt.generate(16, seed=0, labels=3)          # uint8 images
        out = rt((noise, label))                            # or run the model on its own inputs
"""

from ..errors import InputError
from .backends import get_backend
from .bundle import Bundle, BundleWriter, load_bundle
from .imageio import image_to_tensor, tensor_to_image
from .noise import n_classes, sample_feeds

__all__ = ["Bundle", "BundleWriter", "Runtime", "load_bundle"]


class Runtime(object):
    """Every variant of a bundle loaded in one backend, one of them current.

    ``bundle_or_path``: a ``Bundle`` or a bundle directory (loaded with ``verify``).
    ``backend``: a backend name (default: the manifest's ``backend``). ``threads``: intra-op
    threads. ``providers``: onnxruntime execution providers. ``variant``: the first current
    variant (default: the manifest's ``default_variant``).
    """

    def __init__(self, bundle_or_path, backend=None, threads=None, variant=None, verify=True, providers=None):
        self.bundle = bundle_or_path if isinstance(bundle_or_path, Bundle) else load_bundle(bundle_or_path, verify)
        self.backend_name = backend or self.bundle.manifest["backend"]
        self.threads = threads
        backend_cls = get_backend(self.backend_name)
        options = {"threads": threads, "layout": self.bundle.input["layout"]}
        if providers:
            options["providers"] = providers
        self._backends = {}
        self._name = None
        self._backend = None
        try:
            for v in self.bundle.variants:
                if getattr(backend_cls, "takes_precision", False):  # compiles per precision (OpenVINO: bf16)
                    options["precision"] = v.get("precision")
                self._backends[v["name"]] = backend_cls(self.bundle.artifact_path(v), **options)
            self.set_variant(variant)
        except BaseException:
            self.close()
            raise

    def __repr__(self):
        return "Runtime(%r, backend=%r, variant=%r)" % (self.bundle.path, self.backend_name, self._name)

    @property
    def manifest(self):
        return self.bundle.manifest

    @property
    def variant(self):
        """Name of the current variant."""
        return self._name

    @property
    def variant_info(self):
        """Manifest entry of the current variant."""
        return self.bundle.variant(self._name)

    @property
    def variants(self):
        """Names of all variants, in manifest order."""
        return self.bundle.variant_names

    @property
    def backend(self):
        """The backend instance running the current variant."""
        return self._backend

    def set_variant(self, name_or_width=None):
        """Make a variant current (a name, a width, or ``None`` for the default); no session is created."""
        name = self.bundle.variant(name_or_width)["name"]
        self._backend = self._backends[name]
        self._name = name
        return name

    @property
    def inputs(self):
        """Every input spec of the bundle, in graph order (``edgegan.runtime.noise`` for noise and labels)."""
        return self.bundle.inputs

    @property
    def takes_noise(self):
        """Whether the bundle generates images from noise (and a class label) rather than from an image."""
        return self.bundle.takes_noise

    @property
    def n_classes(self):
        """Classes of a class-conditional generator (labels in ``[0, n_classes)``); 0 otherwise."""
        return n_classes(self.inputs)

    def run(self, x):
        """Run the current variant on a model-ready array (shape and dtype of the manifest input), or on a
        tuple (input order) or dict (by name) of arrays for a bundle with several inputs (noise, label)."""
        return self._backend.run(x)

    __call__ = run

    def generate(self, n=1, seed=0, labels=None):
        """``n`` uint8 images from a noise bundle with the current variant: noise of ``seed``
        (``edgegan.runtime.noise.sample_feeds``), class ``labels`` (an int, a sequence, or by default every
        class in turn)."""
        self._require_noise()
        return [self.postprocess(self.run(feed)) for feed in sample_feeds(self.inputs, n, seed, labels)]

    def _require_noise(self):
        if not self.takes_noise:
            raise InputError("%s translates %s images; it does not generate from noise (give it an input image)"
                             % (self.bundle.path, self.bundle.input.get("content", "input")))

    def _require_image_input(self):
        if self.takes_noise:
            raise InputError("%s generates images from noise%s; it takes no input image (use generate(), or "
                             "`edgegan run BUNDLE --n 16 --out grid.png`)"
                             % (self.bundle.path, " and a class label" if self.n_classes else ""))

    def sync(self):
        """Wait for the current variant's queued device work (for timing)."""
        self._backend.sync()

    def preprocess(self, image):
        """A uint8 image (H×W grey or H×W×3 BGR, any size) → a model input per the manifest."""
        self._require_image_input()
        return image_to_tensor(image, self.bundle.input)

    def postprocess(self, array):
        """A model output → a uint8 image (H×W grey or H×W×3 BGR) per the manifest."""
        return tensor_to_image(array, self.bundle.output)

    def infer_image(self, image):
        """``postprocess(run(preprocess(image)))``."""
        return self.postprocess(self.run(self.preprocess(image)))

    def close(self):
        """Release every variant's backend."""
        for backend in self._backends.values():
            backend.close()
        self._backends = {}
        self._backend = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False
