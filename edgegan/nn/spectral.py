"""Spectral normalisation of the *active slice* of an elastic layer's weight (slimmable discriminators).

``torch.nn.utils.spectral_norm`` divides the whole weight by its largest singular value. A layer
that runs only its first ``o`` output and ``i`` input channels needs σ of the slice
``W[:o, :i]`` instead, which differs from σ(W) and from one slice to the next. Here every layer
keeps one power-iteration pair ``(u, v)`` per slice shape it will run at (buffers
``sn_u_{o}x{i}`` / ``sn_v_{o}x{i}``, declared up front so that ``state_dict`` is fixed), and, as
torch does, takes one power-iteration step per forward in training mode and none in eval mode;
σ = uᵀ W v with ``u`` / ``v`` detached, so the gradient flows through ``W`` only.

* ``SNElasticConv2d``: an ``ElasticConv2d`` (a channel slot for ``set_width``) with sliced SN;
* ``SNElasticLinear``: reads its first ``x.shape[-1]`` input features (the output stays fixed);
* ``SNElasticEmbedding``: a class table whose rows are cut to the first ``n_features`` columns.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .elastic import ElasticConv2d
from .slots import width_to_channels


class SlicedSpectralNorm(object):
    """Mixin: ``_sn_register(shapes)`` declares the slice shapes ``(o, i)``; ``_sn_normalise(w)`` → ``w / σ(w)``.

    ``w`` is the active slice ``W[:o, :i, ...]``; it is viewed as an ``o × (i·k…)`` matrix as torch does.
    """

    sn_eps = 1e-12
    sn_init_iterations = 15  # like torch.nn.utils.parametrizations.spectral_norm

    def _sn_register(self, shapes):
        self.sn_shapes = []
        weight = self.weight.detach()
        for o, i in sorted(set((int(o), int(i)) for o, i in shapes)):
            mat = weight[:o, :i].reshape(o, -1)
            gen = torch.Generator().manual_seed(1000 * o + i)  # deterministic whatever the global RNG
            u = F.normalize(torch.randn(o, generator=gen).to(mat), dim=0, eps=self.sn_eps)
            v = F.normalize(torch.randn(mat.shape[1], generator=gen).to(mat), dim=0, eps=self.sn_eps)
            for _ in range(self.sn_init_iterations):
                v = F.normalize(torch.mv(mat.t(), u), dim=0, eps=self.sn_eps)
                u = F.normalize(torch.mv(mat, v), dim=0, eps=self.sn_eps)
            self.register_buffer(self._sn_name("u", o, i), u)
            self.register_buffer(self._sn_name("v", o, i), v)
            self.sn_shapes.append((o, i))

    @staticmethod
    def _sn_name(kind, o, i):
        return "sn_%s_%dx%d" % (kind, o, i)

    def _sn_vectors(self, o, i):
        try:
            return getattr(self, self._sn_name("u", o, i)), getattr(self, self._sn_name("v", o, i))
        except AttributeError:
            raise ValueError("%s has no spectral-norm state for the %d×%d slice; it runs at %s only (the widths "
                             "it was built for)" % (type(self).__name__, o, i, self.sn_shapes)) from None

    def sigma(self, weight_slice):
        """σ of ``weight_slice`` (an active slice of ``self.weight``), one power step first when training."""
        o, i = weight_slice.shape[0], weight_slice.shape[1]
        u, v = self._sn_vectors(o, i)
        mat = weight_slice.reshape(o, -1)
        if self.training:
            with torch.no_grad():
                v.copy_(F.normalize(torch.mv(mat.t(), u), dim=0, eps=self.sn_eps))
                u.copy_(F.normalize(torch.mv(mat, v), dim=0, eps=self.sn_eps))
            u, v = u.clone(memory_format=torch.contiguous_format), v.clone(memory_format=torch.contiguous_format)
        return torch.dot(u, torch.mv(mat, v))

    def _sn_normalise(self, weight_slice):
        return weight_slice / self.sigma(weight_slice)


class SNElasticConv2d(SlicedSpectralNorm, ElasticConv2d):
    """``ElasticConv2d`` with spectral normalisation of its active slice.

    ``widths``: the multipliers it will run at; ``in_max`` the input channel count at full width of
    the layer feeding it (``None``: the input is fixed, e.g. the image).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, widths=(1.0,),
                 fixed_in=False, fixed_out=False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         fixed_out=fixed_out)
        shapes = [(out_channels if fixed_out else width_to_channels(w, out_channels),
                   in_channels if fixed_in else width_to_channels(w, in_channels)) for w in widths]
        self._sn_register(shapes)

    def _sliced(self, in_channels):
        weight, bias, out = super()._sliced(in_channels)
        return self._sn_normalise(weight), bias, out


class SNElasticLinear(SlicedSpectralNorm, nn.Linear):
    """``nn.Linear`` that reads the first ``x.shape[-1]`` input features, spectrally normalised per slice."""

    def __init__(self, in_features, out_features, bias=True, widths=(1.0,)):
        super().__init__(in_features, out_features, bias=bias)
        self._sn_register([(out_features, width_to_channels(w, in_features)) for w in widths])

    def forward(self, x):
        n = x.shape[-1]
        if n > self.in_features:
            raise ValueError("SNElasticLinear got %d input features, holds %d" % (n, self.in_features))
        return F.linear(x, self._sn_normalise(self.weight[:, :n]), self.bias)


class SNElasticEmbedding(SlicedSpectralNorm, nn.Embedding):
    """Class table ``n_classes × features``; ``forward(y, n_features)`` reads the first ``n_features`` columns
    of the spectrally normalised slice (σ of the ``n_classes × n_features`` matrix, as torch's SN on
    ``nn.Embedding`` with ``dim=0``)."""

    def __init__(self, num_embeddings, embedding_dim, widths=(1.0,)):
        super().__init__(num_embeddings, embedding_dim)
        self._sn_register([(num_embeddings, width_to_channels(w, embedding_dim)) for w in widths])

    def forward(self, y, n_features=None):
        n = self.embedding_dim if n_features is None else int(n_features)
        if n > self.embedding_dim:
            raise ValueError("SNElasticEmbedding asked for %d features, holds %d" % (n, self.embedding_dim))
        return F.embedding(y, self._sn_normalise(self.weight[:, :n]))


__all__ = ["SNElasticConv2d", "SNElasticEmbedding", "SNElasticLinear", "SlicedSpectralNorm"]
