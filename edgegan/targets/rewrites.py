"""Function-preserving rewrites applied to a static sub-network before export.

``decompose_reflection_padding`` replaces ``nn.ReflectionPad2d`` with the same padding built from
Slice and Concat, which every TensorRT version parses (TensorRT 8.2 handles ONNX reflect ``Pad``
poorly). The output is bit-identical.
"""

import torch
import torch.nn as nn


class SliceReflectionPad2d(nn.Module):
    """Reflection padding written as single-row/column slices and concatenation."""

    def __init__(self, padding):
        super().__init__()
        self.padding = tuple(padding)  # (left, right, top, bottom), as nn.ReflectionPad2d stores it

    @staticmethod
    def _pad(x, before, after, dim):
        n = x.shape[dim]
        if before >= n or after >= n:
            raise ValueError("reflection padding %d/%d needs at least %d pixels, got %d" % (before, after, max(before, after) + 1, n))
        parts = [x.narrow(dim, i, 1) for i in range(before, 0, -1)]
        parts.append(x)
        parts += [x.narrow(dim, n - 1 - i, 1) for i in range(1, after + 1)]
        return torch.cat(parts, dim=dim)

    def forward(self, x):
        left, right, top, bottom = self.padding
        return self._pad(self._pad(x, left, right, 3), top, bottom, 2)


def decompose_reflection_padding(module):
    """Replace every ``nn.ReflectionPad2d`` in ``module`` (in place); returns how many were replaced."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.ReflectionPad2d):
            setattr(module, name, SliceReflectionPad2d(child.padding))
            count += 1
        else:
            count += decompose_reflection_padding(child)
    return count


REWRITES = {"keep": None, "decompose": decompose_reflection_padding}


def apply_padding_policy(module, policy):
    rewrite = REWRITES[policy]
    return rewrite(module) if rewrite else 0
