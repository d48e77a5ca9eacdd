"""Noise → image metrics without downloads: FD-FMNIST, an Inception-Score analogue, mIC; FID proper on request.

* ``fd_fmnist(real_feats, fake_feats)``: Fréchet distance between Gaussians fitted to features
  of the project's Fashion-MNIST classifier (``edgegan/assets/fmnist_classifier.pt``, see
  ``edgegan.train.classifier``) — FID's formula on an in-domain feature extractor. Not
  comparable with published FIDs; comparable between runs of this project.
* ``is_fmnist(probs)``: ``exp(E_x KL(p(y|x) ‖ p(y)))`` with the classifier's class
  probabilities (1 … 10 for Fashion-MNIST's 10 classes).
* ``mic(features_by_width)``: SlimGAN's consistency metric, the mean over ordered pairs of
  widths ``i ≠ j`` of ``E_z ‖Φ(G_i(z)) − Φ(G_j(z))‖²`` (same z for every width; lower is better).
* ``fid_inception(weights_path, real, fake)``: FID with Inception-v3 and a local pytorch-fid
  weights file (``pt_inception-2015-12-05-6726825d.pth``); needs torchvision for the
  architecture. Nothing is downloaded.

Images are N×C×H×W tensors in [-1, 1] (C = 1 for Fashion-MNIST).
"""

import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import read_weights_only
from ..errors import EdgeganError


def _np64(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def gaussian_stats(features):
    """``(mean, covariance)`` of N×D features."""
    f = _np64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError("need an N×D feature array with N >= 2, got shape %s" % (f.shape,))
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """``‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`` (as pytorch-fid computes it)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("feature statistics differ in shape: %s vs %s" % (mu1.shape, mu2.shape))
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular products (few samples, dead features) are handled below
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    value = float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def fd_fmnist(real_feats, fake_feats):
    """Fréchet distance between two sets of classifier features (N×D each)."""
    return frechet_distance(*gaussian_stats(real_feats), *gaussian_stats(fake_feats))


def is_fmnist(probs, splits=1):
    """Inception-Score analogue ``exp(E KL(p(y|x) ‖ p(y)))`` of N×K class probabilities (mean over ``splits``)."""
    p = _np64(probs)
    if p.ndim != 2:
        raise ValueError("need N×K class probabilities, got shape %s" % (p.shape,))
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores))


def mic(features_by_width):
    """SlimGAN's mIC: mean over ordered pairs of widths of the mean squared L2 distance of features.

    ``features_by_width``: a dict (width → N×D) or a list of N×D arrays, row k of each from the
    same noise (and label). Zero when all widths give the same features; lower is better.
    """
    feats = list(features_by_width.values()) if isinstance(features_by_width, dict) else list(features_by_width)
    feats = [_np64(f) for f in feats]
    n = len(feats)
    if n < 2:
        raise ValueError("mIC needs features of at least two widths")
    if any(f.shape != feats[0].shape for f in feats):
        raise ValueError("every width needs features of the same shape (same z), got %s" % [f.shape for f in feats])
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += float(((feats[i] - feats[j]) ** 2).sum(axis=1).mean())
    return total / (n * (n - 1))


@torch.no_grad()
def classifier_outputs(images, classifier=None, batch_size=256):
    """``(features N×D, probabilities N×K)`` of images (N×1×32×32 in [-1, 1]) under the Fashion-MNIST classifier."""
    if classifier is None:
        from .classifier import load_classifier

        classifier, _ = load_classifier()
    classifier.eval()
    device = next(classifier.parameters()).device
    feats, probs = [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device).float()
        if x.shape[-2:] != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        f = classifier.features(x)
        feats.append(f.cpu())
        probs.append(F.softmax(classifier.out(f), dim=1).cpu())
    return torch.cat(feats), torch.cat(probs)


# --- FID proper (Inception-v3, user-supplied pytorch-fid weights) -------------------------------

FID_WEIGHTS_HINT = ("pytorch-fid's pt_inception-2015-12-05-6726825d.pth (from "
                    "https://github.com/mseitzer/pytorch-fid/releases)")


def _fid_inception(weights_path):
    """torchvision's Inception-v3 with pytorch-fid's patched blocks and the given weights (eval)."""
    try:
        from torchvision.models import inception as tv
    except ImportError:
        raise EdgeganError("FID with Inception-v3 needs torchvision (its Inception-v3 architecture): "
                           "pip install torchvision matching your torch; or use FD-FMNIST (no extra "
                           "dependencies)")

    class FIDInceptionA(tv.InceptionA):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
            return torch.cat([b1, b5, b3, bp], 1)

    class FIDInceptionC(tv.InceptionC):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                          self.branch7x7dbl_5):
                bd = layer(bd)
            bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
            return torch.cat([b1, b7, bd, bp], 1)

    class FIDInceptionE(tv.InceptionE):
        def __init__(self, in_channels, pool):
            super().__init__(in_channels)
            self.pool = pool

        def forward(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
            if self.pool == "avg":
                pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
            else:
                pooled = F.max_pool2d(x, 3, stride=1, padding=1)
            return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)

    net = tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, "avg")
    net.Mixed_7c = FIDInceptionE(2048, "max")
    if not os.path.isfile(weights_path):
        raise EdgeganError("no Inception weights at %s; pass the path of %s" % (weights_path, FID_WEIGHTS_HINT))
    state = read_weights_only(weights_path, "pass %s" % FID_WEIGHTS_HINT, "Inception-v3 weights")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise EdgeganError("%s does not fit pytorch-fid's Inception-v3 (%s); pass %s"
                           % (weights_path, str(e).splitlines()[0], FID_WEIGHTS_HINT))
    return net.eval()


@torch.no_grad()
def inception_pool_features(net, images, batch_size=50, device="cpu"):
    """2048-d pool3 features of images in [-1, 1] (grey is repeated to RGB, resized to 299² bilinearly)."""
    net = net.to(device)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device).float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
            x = getattr(net, name)(x)
        x = F.max_pool2d(x, 3, stride=2)
        x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(net, name)(x)
        out.append(F.adaptive_avg_pool2d(x, 1).flatten(1).cpu())
    return torch.cat(out)


def fid_inception(weights_path, real_images, fake_images, batch_size=50, device="cpu"):
    """FID between two image sets (N×C×H×W in [-1, 1]) with Inception-v3 and a local pytorch-fid weights file."""
    net = _fid_inception(weights_path)
    real = inception_pool_features(net, real_images, batch_size, device)
    fake = inception_pool_features(net, fake_images, batch_size, device)
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
