"""Importing generators trained with other code: a foreign state_dict → an edgegan checkpoint.

``edgegan import CKPT --format F --netG NAME ...`` reads a generator's weights as its own code saved them
(``latest_net_G.pth``), maps them onto the edgegan generator that computes the same function, and writes a
one-width (1.0) edgegan checkpoint that ``edgegan build`` compiles and the training recipes take as a
teacher (``--teacher``) or a starting point (``--init``).

**One converter per layout, looked up by name.** A layout is one published network with its state_dict
key layout, named by its *format* (the code that trained it: ``pix2pix``, ``gan-compression``; see
``FORMATS``) and that code's own ``--netG`` name. Each is one function registered with ``@converter``::

    from edgegan.imports.registry import Conversion, converter
    from edgegan.imports.state import parameterised_layers

    @converter("pix2pix", "resnet_9blocks", "pix2pix / CycleGAN ResNet, 9 blocks")
    def pix2pix_resnet_9blocks(state, options):
        ngf = state.shape("model.1.weight", 4, "stem conv weight")[0]     # infer from the shapes
        model = ResnetGenerator(..., ngf=ngf, norm=options.edgegan_norm, widths=[1.0])
        sources = ["model.1", "model.2", "model.4", ...]                  # source layers, in forward order
        return Conversion(model, zip(sources, parameterised_layers(model)), {"ngf": ngf, ...})

* ``state`` (``SourceState``): the tensors, ``module.`` prefix stripped; ``state.shape(key, rank, what)``
  raises ``ImportMismatch`` naming the key when it is absent; ``state.indices(prefix)`` lists the
  ``nn.Sequential`` indices under a prefix; ``state.check_channels`` checks ``--input-nc``-style values.
* ``options`` (``ImportOptions``): ``norm`` (``batch`` / ``instance``; ``options.edgegan_norm`` is ``bn`` /
  ``in``), ``dropout``, ``input_nc``, ``output_nc`` (``None``: infer).
* The converter infers the hyperparameters from tensor shapes, builds the edgegan generator with one width
  (1.0) on the current default device (the hint search runs it under ``torch.device("meta")``: build, do
  not fill), and returns ``Conversion(model, pairs, inferred)``: ``pairs`` maps each source layer prefix to
  the module name of the model's conv or norm (``parameterised_layers(model)`` lists them in module order).
  It never copies tensors itself: ``state.transfer`` does, checking every key and shape of each pair in
  order (a layer's kind comes from the model's module: conv weight/bias, BatchNorm affine + running
  statistics, InstanceNorm nothing), dropping the ``running_mean`` / ``running_var`` / ``num_batches_tracked``
  that old PyTorch saved for InstanceNorm layers, and refusing source tensors no pair uses. The first
  difference is an ``ImportMismatch`` (key, expected and found shapes), which ``import_generator`` extends
  with the ``--netG`` / ``--norm`` / ``--dropout`` that would fit.
* ``@converter(..., norms=, dropout=, default_norm=)`` declares which ``--norm`` values the layout takes,
  whether its blocks hold Dropout layers (``(False, True)``: the user says; ``(True,)``: always) and its
  repository's default norm.
* A module of converters registers on import: add it to the imports at the end of this file.

Layouts: ``edgegan.imports.resnet`` (pix2pix ``resnet_9blocks`` / ``resnet_6blocks``; GAN Compression
``resnet_9blocks``, ``mobile_resnet_9blocks``, ``sub_mobile_resnet_9blocks``,
``legacy_sub_mobile_resnet_9blocks``).

The imported checkpoint's ``data`` entry (``imported_data``) records ``size``, ``in_channels`` /
``out_channels``, the [-1, 1] range (mean 0.5, std 0.5, RGB order, as pix2pix normalises), the input
``content`` (``edges``: edge maps, dark lines on white, for the edges2* sets — photos are turned into edges
with the recorded Canny parameters ``edges`` by ``edgegan run --edges``, the demo and INT8 calibration;
``image``: photos or label maps as they are) and ``edges``; ``import`` records the source file, its
sha256, the format, netG, options, what was inferred and the MACs in both counting conventions.
"""

from .convert import (INPUT_CONTENTS, Imported, default_input_content, edge_settings, fitting_layouts,
                      import_generator, imported_checkpoint, imported_data)
from .registry import FORMATS, NORMS, Conversion, Converter, ImportOptions, converter, converters, get_converter
from .state import ImportMismatch, SourceState, parameterised_layers, read_state_dict, transfer
from . import resnet  # noqa: F401,E402  (registers its converters)

__all__ = ["FORMATS", "INPUT_CONTENTS", "NORMS", "Conversion", "Converter", "ImportMismatch", "ImportOptions",
           "Imported", "SourceState", "converter", "converters", "default_input_content", "edge_settings",
           "fitting_layouts", "get_converter", "import_generator", "imported_checkpoint", "imported_data",
           "parameterised_layers", "read_state_dict", "transfer"]
