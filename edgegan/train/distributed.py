"""Data-parallel training with ``torchrun``: the same command on one CPU or N GPUs.

Unlaunched (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) everything here is a no-op:
``setup`` returns a single-process ``DistInfo`` and ``wrap`` returns the module itself. Launched by
``torchrun --nproc_per_node N``, ``setup`` initialises the default process group (``nccl`` on CUDA,
``gloo`` on CPU), each process takes GPU ``LOCAL_RANK`` when the device is CUDA, ``wrap`` puts a
module in ``DistributedDataParallel``, and only rank 0 (``info.is_main``) writes checkpoints, logs and
progress.

``--batch-size`` is per process: N processes train on N × batch-size images a step. Each rank draws
its own noise (torch seeded from seed, rank and step) and batches; a resumed multi-process run
continues from rank 0's saved weights, optimizers and data position, but its random draws are not
bit-identical to an uninterrupted multi-process run (single-process resumes are).
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def launched():
    """Whether this process was started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process():
    """Whether this process writes and reports: always unlaunched, rank 0 under ``torchrun``."""
    return not launched() or int(os.environ.get("RANK", "0")) == 0


def setup(device):
    """Initialise the process group when launched by ``torchrun``; returns a ``DistInfo``.

    ``device`` is the requested ``torch.device``; on CUDA each process gets ``cuda:LOCAL_RANK``.
    """
    device = torch.device(device)
    if not launched():
        return DistInfo(device=device)
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def wrap(module, info, find_unused_parameters=False):
    """``module`` in ``DistributedDataParallel`` when distributed, else ``module`` itself.

    Buffers (BatchNorm running statistics) are not broadcast on every forward: a GAN step calls
    the discriminator several times before one backward, and an in-place buffer broadcast between
    those calls breaks autograd. Each rank keeps its own statistics; rank 0's are saved.
    """
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    import inspect

    ids = [info.device.index] if info.device.type == "cuda" else None
    # newer torch deprecates broadcast_buffers for forward_sync_buffers (which still syncs at init: fine,
    # every rank builds the same initial buffers)
    no_sync = ({"forward_sync_buffers": False}
               if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
               else {"broadcast_buffers": False})
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters, **no_sync)


def unwrap(module):
    return module.module if hasattr(module, "module") and hasattr(module, "reducer") else module


def barrier(info):
    if info.enabled and dist.is_initialized():
        dist.barrier()


def cleanup(info=None):
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
