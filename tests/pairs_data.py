"""A tiny synthetic paired data set (edges-like maps → smoothed images) for training-recipe tests."""

import torch
from torch.utils.data import Dataset


class Pairs(Dataset):
    """Sparse binary 'edge' maps → a smoothed version of them, in [-1, 1], with ``describe()``."""

    def __init__(self, n, size=16, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = (torch.rand(n, 1, size, size, generator=g) < 0.2).float() * 2 - 1
        self.y = torch.tanh(torch.nn.functional.avg_pool2d(self.x, 3, 1, 1) * 2)
        self.size = size

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def describe(self):
        return {"name": "synthetic", "size": self.size, "in_channels": 1, "out_channels": 1,
                "input": {"range": [-1.0, 1.0], "content": "edges"},
                "output": {"range": [-1.0, 1.0], "content": "image"}}
