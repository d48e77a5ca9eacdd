"""Mixed precision for the training recipes: ``--amp none|bf16|fp16``.

* ``bf16``: ``torch.autocast`` with bfloat16 on CUDA (GPUs that support it) or on the CPU (fast on CPUs
  with AVX512-BF16 / AMX; elsewhere slower than fp32). No loss scaling: bfloat16 has fp32's range.
* ``fp16``: ``torch.autocast`` with float16 on CUDA and a ``GradScaler`` (one for both optimizers: each
  is stepped through it, the scale updated once per step). CUDA only.
* ``none``: plain fp32; every call below is then a no-op around the usual ``backward`` / ``step``.

Losses are computed in fp32 from the autocast outputs (``.float()``); the scaler's state is part of a
resumable checkpoint.
"""

import contextlib

import torch

from ..errors import EdgeganError

AMP_MODES = ("none", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision(object):
    """Autocast context, loss scaling and optimizer steps for one ``--amp`` mode on one device."""

    def __init__(self, amp, device):
        amp = amp or "none"
        device = torch.device(device)
        if amp not in AMP_MODES:
            raise EdgeganError("--amp must be one of %s, got %r" % (", ".join(AMP_MODES), amp))
        if amp == "fp16" and device.type != "cuda":
            raise EdgeganError("--amp fp16 needs --device cuda (float16 autocast with loss scaling is a GPU "
                               "mode); on the CPU use --amp bf16 or none")
        if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise EdgeganError("--amp bf16: this GPU does not support bfloat16; use --amp fp16")
        self.amp, self.device = amp, device
        self.dtype = DTYPES.get(amp)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None

    @property
    def enabled(self):
        return self.dtype is not None

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer):
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self):
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def channels_last(module_or_tensor, enabled):
    """``x.to(memory_format=torch.channels_last)`` when ``enabled`` (4-D tensors and modules)."""
    if not enabled:
        return module_or_tensor
    if isinstance(module_or_tensor, torch.Tensor):
        return module_or_tensor.contiguous(memory_format=torch.channels_last) if module_or_tensor.dim() == 4 \
            else module_or_tensor
    return module_or_tensor.to(memory_format=torch.channels_last)
