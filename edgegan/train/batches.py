"""Training batches forever, resumable at any step, with loader workers and per-sample augmentation seeds.

``EndlessBatchSampler`` yields the index lists of every training batch: a new seeded permutation of the
data set each epoch (the same permutations ``DataLoader(shuffle=True, generator=seeded)`` draws, and,
under ``torchrun``, the same shards ``DistributedSampler`` deals), from batch ``start`` on — so a resumed
run reads exactly the batches an uninterrupted one would, without loading the skipped ones. When the data
set augments (``dataset.augment``), each index comes with its own seed ``(seed, epoch, position, rank)``:
a sample's crop and flip depend on nothing else (not on worker processes, not on resuming).

``endless_batches`` wraps it in a ``DataLoader``: ``workers`` processes (persistent), pinned memory for
a CUDA device.
"""

import math

import torch
from torch.utils.data import DataLoader, Sampler


class EndlessBatchSampler(Sampler):
    """Index batches of ``n`` samples forever, from batch ``start`` on (see the module docstring).

    ``world_size`` > 1: rank ``rank``'s shard of every epoch, as ``DistributedSampler(shuffle=True,
    seed=seed, drop_last=True)``; otherwise ``RandomSampler`` with a generator seeded ``seed``.
    ``drop_last``: drop an epoch's incomplete last batch (default: when there is more than one batch).
    """

    def __init__(self, n, batch_size, seed, start=0, rank=0, world_size=1, augment=False, drop_last=None):
        if n < 1:
            raise ValueError("the training set is empty")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.start, self.rank, self.world_size = int(start), int(rank), int(world_size)
        self.augment = bool(augment)
        per_rank = self._per_rank()
        self.drop_last = per_rank > self.batch_size if drop_last is None else bool(drop_last)
        self.per_epoch = per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)
        self.per_epoch = max(1, self.per_epoch)

    def _per_rank(self):
        if self.world_size == 1:
            return self.n
        if self.n % self.world_size:  # DistributedSampler(drop_last=True) trims to a multiple of world_size
            return math.ceil((self.n - self.world_size) / self.world_size)
        return self.n // self.world_size

    def _epochs(self):
        """(epoch, that epoch's index order for this rank), epoch 0 on."""
        if self.world_size == 1:
            generator = torch.Generator().manual_seed(self.seed)
            epoch = 0
            while True:
                # the draws of DataLoader(shuffle=True, generator=...) per epoch: the iterator's base seed, the
                # permutation, and one more permutation RandomSampler draws when it runs out
                torch.empty((), dtype=torch.int64).random_(generator=generator)
                order = torch.randperm(self.n, generator=generator).tolist()
                torch.randperm(self.n, generator=generator)
                yield epoch, order
                epoch += 1
        per_rank = self._per_rank()
        epoch = 0
        while True:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
            total = per_rank * self.world_size
            yield epoch, order[:total][self.rank:total:self.world_size]
            epoch += 1

    def __iter__(self):
        first_epoch, skip = divmod(self.start, self.per_epoch)
        for epoch, order in self._epochs():
            if epoch < first_epoch:
                continue
            for b in range(skip if epoch == first_epoch else 0, self.per_epoch):
                positions = range(b * self.batch_size, min((b + 1) * self.batch_size, len(order)))
                if self.augment:
                    yield [(order[p], (self.seed, epoch, p, self.rank)) for p in positions]
                else:
                    yield [order[p] for p in positions]


def endless_batches(dataset, batch_size, seed, start=0, rank=0, world_size=1, workers=0, pin_memory=False):
    """Collated training batches forever, from batch ``start`` on (see ``EndlessBatchSampler``)."""
    sampler = EndlessBatchSampler(len(dataset), batch_size, seed, start=start, rank=rank, world_size=world_size,
                                  augment=getattr(dataset, "augment", False))
    workers = int(workers or 0)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=bool(pin_memory),
                        persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(seed))  # leaves the global RNG alone
    return iter(loader)
