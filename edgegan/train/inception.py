"""The Inception-v3 that FID is defined with, for a local pytorch-fid weights file — no torchvision needed.

pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` holds the weights of TensorFlow's 2015 Inception-v3
(1008 classes, no auxiliary head) in torchvision's module naming (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean``, …, ``fc.weight``). ``FIDInceptionV3`` builds that graph with the same
names and shapes, including the FID network's differences from torchvision's: the average pools of the
Mixed_5*, 6b–6e and 7b blocks leave the padding out of the mean, and Mixed_7c pools with a max.

``pool_features(images)`` maps images in [-1, 1] (grey or RGB, any size) to the 2048-d features FID uses:
resized to 299² bilinearly, through Mixed_7c, averaged over space.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

FID_CLASSES = 1008
FEATURES = 2048


class ConvBN(nn.Module):
    """conv (no bias) → BatchNorm (eps 1e-3) → ReLU, named ``conv`` / ``bn`` as in the weights file."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _pool(kind, x):
    if kind == "avg":  # TensorFlow's average pool: padded zeros are not counted
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.max_pool2d(x, 3, stride=2)  # "reduce": the grid-reduction blocks' pool branch


class Mixed(nn.Module):
    """An Inception block: parallel branches of ``ConvBN`` layers, concatenated.

    ``convs``: ``(name, cin, cout, kernel, stride, padding)`` per layer; ``branches``: per branch, its stages in
    order, a stage being a layer name or a tuple of names run side by side and concatenated; ``pool``: the
    pooling branch (``avg``, ``max`` or ``reduce``) and the layer after it (or None), always concatenated last.
    """

    def __init__(self, convs, branches, pool, pool_conv=None):
        super().__init__()
        for name, cin, cout, kernel, stride, padding in convs:
            self.add_module(name, ConvBN(cin, cout, kernel, stride, padding))
        self.branches, self.pool, self.pool_conv = branches, pool, pool_conv

    def forward(self, x):
        outputs = []
        for branch in self.branches:
            y = x
            for stage in branch:
                if isinstance(stage, tuple):
                    y = torch.cat([getattr(self, name)(y) for name in stage], 1)
                else:
                    y = getattr(self, stage)(y)
            outputs.append(y)
        pooled = _pool(self.pool, x)
        outputs.append(getattr(self, self.pool_conv)(pooled) if self.pool_conv else pooled)
        return torch.cat(outputs, 1)


def block_a(cin, pool_features):  # 35×35 (Mixed_5b–5d)
    return Mixed([("branch1x1", cin, 64, 1, 1, 0),
                  ("branch5x5_1", cin, 48, 1, 1, 0), ("branch5x5_2", 48, 64, 5, 1, 2),
                  ("branch3x3dbl_1", cin, 64, 1, 1, 0), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                  ("branch3x3dbl_3", 96, 96, 3, 1, 1), ("branch_pool", cin, pool_features, 1, 1, 0)],
                 [["branch1x1"], ["branch5x5_1", "branch5x5_2"],
                  ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]], "avg", "branch_pool")


def block_b(cin):  # 35×35 → 17×17 (Mixed_6a)
    return Mixed([("branch3x3", cin, 384, 3, 2, 0),
                  ("branch3x3dbl_1", cin, 64, 1, 1, 0), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                  ("branch3x3dbl_3", 96, 96, 3, 2, 0)],
                 [["branch3x3"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]], "reduce")


def block_c(cin, c7):  # 17×17 with factorised 7×7 convs (Mixed_6b–6e)
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    return Mixed([("branch1x1", cin, 192, 1, 1, 0),
                  ("branch7x7_1", cin, c7, 1, 1, 0), ("branch7x7_2", c7, c7, row[0], 1, row[1]),
                  ("branch7x7_3", c7, 192, col[0], 1, col[1]),
                  ("branch7x7dbl_1", cin, c7, 1, 1, 0), ("branch7x7dbl_2", c7, c7, col[0], 1, col[1]),
                  ("branch7x7dbl_3", c7, c7, row[0], 1, row[1]), ("branch7x7dbl_4", c7, c7, col[0], 1, col[1]),
                  ("branch7x7dbl_5", c7, 192, row[0], 1, row[1]), ("branch_pool", cin, 192, 1, 1, 0)],
                 [["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"],
                  ["branch7x7dbl_%d" % i for i in range(1, 6)]], "avg", "branch_pool")


def block_d(cin):  # 17×17 → 8×8 (Mixed_7a)
    return Mixed([("branch3x3_1", cin, 192, 1, 1, 0), ("branch3x3_2", 192, 320, 3, 2, 0),
                  ("branch7x7x3_1", cin, 192, 1, 1, 0), ("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
                  ("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)), ("branch7x7x3_4", 192, 192, 3, 2, 0)],
                 [["branch3x3_1", "branch3x3_2"], ["branch7x7x3_%d" % i for i in range(1, 5)]], "reduce")


def block_e(cin, pool):  # 8×8 with split 1×3 / 3×1 convs (Mixed_7b: avg pool, Mixed_7c: max pool)
    return Mixed([("branch1x1", cin, 320, 1, 1, 0),
                  ("branch3x3_1", cin, 384, 1, 1, 0), ("branch3x3_2a", 384, 384, (1, 3), 1, (0, 1)),
                  ("branch3x3_2b", 384, 384, (3, 1), 1, (1, 0)),
                  ("branch3x3dbl_1", cin, 448, 1, 1, 0), ("branch3x3dbl_2", 448, 384, 3, 1, 1),
                  ("branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1)), ("branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0)),
                  ("branch_pool", cin, 192, 1, 1, 0)],
                 [["branch1x1"], ["branch3x3_1", ("branch3x3_2a", "branch3x3_2b")],
                  ["branch3x3dbl_1", "branch3x3dbl_2", ("branch3x3dbl_3a", "branch3x3dbl_3b")]], pool, "branch_pool")


class FIDInceptionV3(nn.Module):
    """Inception-v3 as FID uses it; ``state_dict`` keys match pytorch-fid's weights file."""

    STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "reduce", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "reduce")
    MIXED = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
             "Mixed_7a", "Mixed_7b", "Mixed_7c")

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = block_a(192, 32)
        self.Mixed_5c = block_a(256, 64)
        self.Mixed_5d = block_a(288, 64)
        self.Mixed_6a = block_b(288)
        self.Mixed_6b = block_c(768, 128)
        self.Mixed_6c = block_c(768, 160)
        self.Mixed_6d = block_c(768, 160)
        self.Mixed_6e = block_c(768, 192)
        self.Mixed_7a = block_d(768)
        self.Mixed_7b = block_e(1280, "avg")
        self.Mixed_7c = block_e(2048, "max")
        self.fc = nn.Linear(FEATURES, FID_CLASSES)  # in the weights file; FID does not use it

    def forward(self, x):
        """Pool features (N×2048) of N×3×H×W images in [-1, 1]."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        for name in self.STEM + self.MIXED:
            x = _pool("reduce", x) if name == "reduce" else getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
