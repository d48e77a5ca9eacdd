"""A validation split carved from a training split with a fixed seed.

A search picks sub-networks by their quality on held-out pairs; reporting that same quality would
flatter the winner (it was chosen because it scored well there). ``validation_split`` sets aside
``n`` training pairs, drawn by a seeded permutation, to choose on, so that the test split stays for
the report. The first ``n`` of the permutation are the validation pairs whatever ``n`` is: a search
with ``n`` ≤ the ``n`` a supernet held out while training scores only pairs the supernet never saw.
"""

import torch
from torch.utils.data import Subset

#: default seed of the permutation (``edgegan train supernet`` and ``edgegan search`` agree on it)
VALIDATION_SEED = 0


class DataSubset(Subset):
    """A ``Subset`` that keeps its data set's ``describe()`` and ``paired`` flag."""

    def describe(self):
        return self.dataset.describe()

    @property
    def paired(self):
        return getattr(self.dataset, "paired", True)


def validation_split(dataset, n, seed=VALIDATION_SEED):
    """``(validation, rest)``: ``n`` pairs of ``dataset`` drawn by a permutation seeded with ``seed``, and the
    others (in their original order). ``n`` must leave at least one pair for training."""
    total = len(dataset)
    n = int(n)
    if not 0 < n < total:
        raise ValueError("a validation split of %d pairs needs a data set of more than %d (it has %d)" % (n, n, total))
    order = torch.randperm(total, generator=torch.Generator().manual_seed(int(seed))).tolist()
    held = order[:n]
    chosen = set(held)
    return DataSubset(dataset, held), DataSubset(dataset, [i for i in range(total) if i not in chosen])


__all__ = ["DataSubset", "VALIDATION_SEED", "validation_split"]
