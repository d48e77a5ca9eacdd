"""Function-preserving lowerings of layers some converters cannot take.

litert-torch fails to legalise ``nn.ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)``
(its lowering produces an input-dilated convolution the TFLite passes refuse). The layer is the
sum of four stride-1 convolutions, one per output phase (even/odd row × even/odd column)::

    y[2m,   2n]   = w[1,1]·x[m,n]
    y[2m,   2n+1] = w[1,2]·x[m,n] + w[1,0]·x[m,n+1]
    y[2m+1, 2n]   = w[2,1]·x[m,n] + w[0,1]·x[m+1,n]
    y[2m+1, 2n+1] = w[2,2]·x[m,n] + w[2,0]·x[m,n+1] + w[0,2]·x[m+1,n] + w[0,0]·x[m+1,n+1]

(``x`` is zero beyond its last row and column.) ``PhaseConvTranspose2d`` computes them as one
2×2 stride-1 convolution with 4·out channels (zero-pad one row and column at the bottom/right;
the nine original weights, each used once, the other taps zero) followed by depth-to-space. Every
output element is the same sum of the same products as in the transposed convolution, so the
result equals it up to float summation order (tested: < 1e-6 in fp32, ~1e-15 in fp64). In NHWC
the pad is TFLite's SAME padding for a 2×2 kernel and the channel order is ``DEPTH_TO_SPACE``'s.
It costs 16/9 of the transposed convolution's multiply-adds (the zero taps).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

# output phase (row parity a, column parity b) → for tap offset d in {0, 1}: kernel index, or None
_TAP = {0: (1, None), 1: (2, 0)}


def is_lowerable(layer):
    """``True`` for the transposed convolution ``PhaseConvTranspose2d`` replaces."""
    return (isinstance(layer, nn.ConvTranspose2d) and tuple(layer.kernel_size) == (3, 3)
            and tuple(layer.stride) == (2, 2) and tuple(layer.padding) == (1, 1)
            and tuple(layer.output_padding) == (1, 1) and tuple(layer.dilation) == (1, 1)
            and layer.groups == 1 and layer.padding_mode == "zeros")


class PhaseConvTranspose2d(nn.Module):
    """``ConvTranspose2d(k=3, s=2, p=1, output_padding=1)`` as a 2×2 conv to 4·out channels + depth-to-space.

    Channel ``(2a + b)·out + o`` of the conv holds output channel ``o`` at phase ``(a, b)``,
    the order of TFLite's ``DEPTH_TO_SPACE`` on NHWC tensors.
    """

    def __init__(self, layer):
        super().__init__()
        if not is_lowerable(layer):
            raise ValueError("PhaseConvTranspose2d replaces ConvTranspose2d(k=3, stride=2, padding=1, "
                             "output_padding=1, groups=1), got %r" % (layer,))
        w = layer.weight.detach()  # (in, out, 3, 3)
        cin, cout = w.shape[0], w.shape[1]
        kernel = w.new_zeros(4 * cout, cin, 2, 2)
        for a in (0, 1):
            for b in (0, 1):
                phase = 2 * a + b
                for dr in (0, 1):
                    kh = _TAP[a][dr]
                    for dc in (0, 1):
                        kw = _TAP[b][dc]
                        if kh is not None and kw is not None:
                            kernel[phase * cout:(phase + 1) * cout, :, dr, dc] = w[:, :, kh, kw].t()
        self.out_channels = cout
        self.conv = nn.Conv2d(cin, 4 * cout, 2, bias=layer.bias is not None)
        self.conv.weight.data.copy_(kernel)
        if layer.bias is not None:
            self.conv.bias.data.copy_(layer.bias.detach().repeat(4))
        self.conv.to(dtype=w.dtype, device=w.device)

    def forward(self, x):
        z = self.conv(F.pad(x, (0, 1, 0, 1)))
        n, _, h, w = z.shape
        c = self.out_channels
        # z[n, (2a+b)·c + o, m, k] → y[n, o, 2m+a, 2k+b]
        return z.reshape(n, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, 2 * h, 2 * w)


def lower_transposed_convs(module):
    """Replace every lowerable ``nn.ConvTranspose2d`` in ``module`` (in place); returns how many."""
    count = 0
    for name, child in list(module.named_children()):
        if is_lowerable(child):
            setattr(module, name, PhaseConvTranspose2d(child))
            count += 1
        else:
            count += lower_transposed_convs(child)
    return count


def remaining_transposed_convs(module):
    """Names of ``nn.ConvTranspose2d`` layers left in ``module`` (ones this module cannot lower)."""
    return [name for name, m in module.named_modules() if isinstance(m, nn.ConvTranspose2d)]


@torch.no_grad()
def max_lowering_error(layer, x):
    """Max-abs difference between ``layer`` and its lowering on ``x`` (a test and a sanity check)."""
    return float((layer(x) - PhaseConvTranspose2d(layer)(x)).abs().max())
