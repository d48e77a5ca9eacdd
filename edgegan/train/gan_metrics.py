"""Noise → image metrics without downloads: FD-FMNIST, an Inception-Score analogue, mIC; FID proper on request.

* ``fd_fmnist(real_feats, fake_feats)``: Fréchet distance between Gaussians fitted to features
  of the project's Fashion-MNIST classifier (``edgegan/assets/fmnist_classifier.pt``, see
  ``edgegan.train.classifier``) — FID's formula on an in-domain feature extractor. Not
  comparable with published FIDs; comparable between runs of this project.
* ``is_fmnist(probs)``: ``exp(E_x KL(p(y|x) ‖ p(y)))`` with the classifier's class
  probabilities (1 … 10 for Fashion-MNIST's 10 classes).
* ``mic(features_by_width)``: SlimGAN's consistency metric, the mean over ordered pairs of
  widths ``i ≠ j`` of ``E_z ‖Φ(G_i(z)) − Φ(G_j(z))‖²`` (same z for every width; lower is better).
* ``fid_inception(weights_path, real, fake)``: FID with Inception-v3 (``edgegan.train.inception``, the
  FID variant of the network, no torchvision needed) and a local pytorch-fid weights file
  (``pt_inception-2015-12-05-6726825d.pth``); ``fid_widths`` scores a paired generator's held-out
  outputs per width. Images are rounded to 8-bit levels first, as FID of saved images sees them.
  Nothing is downloaded.

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


def load_fid_inception(weights_path):
    """``edgegan.train.inception.FIDInceptionV3`` with the weights of a local pytorch-fid file (eval mode)."""
    from .inception import FIDInceptionV3

    if not weights_path or not os.path.isfile(weights_path):
        raise EdgeganError("no Inception weights at %s; pass the path of %s" % (weights_path, FID_WEIGHTS_HINT))
    state = read_weights_only(weights_path, "pass %s" % FID_WEIGHTS_HINT, "Inception-v3 weights")
    if not isinstance(state, dict):
        raise EdgeganError("%s holds a %s, not a state_dict; pass %s" % (weights_path, type(state).__name__,
                                                                         FID_WEIGHTS_HINT))
    net = FIDInceptionV3()
    for key, value in net.state_dict().items():  # files saved by old PyTorch versions lack these counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise EdgeganError("%s does not fit pytorch-fid's Inception-v3 (%s); pass %s"
                           % (weights_path, str(e).splitlines()[0], FID_WEIGHTS_HINT))
    return net.eval()


def as_saved_images(images):
    """Images in [-1, 1] rounded to 8-bit levels, as FID sees them when computed from saved PNG / JPEG files."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round() / 127.5 - 1.0


@torch.no_grad()
def inception_pool_features(net, images, batch_size=50, device="cpu"):
    """2048-d pool features of images in [-1, 1] (grey is repeated to RGB, resized to 299² bilinearly)."""
    net = net.to(device)
    out = []
    for i in range(0, len(images), batch_size):
        x = as_saved_images(images[i:i + batch_size].to(device))
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        out.append(net(x).cpu())
    return torch.cat(out)


def fid_from_features(real, fake):
    """The Fréchet distance of two feature sets (N×D each), without a D×D matrix square root.

    ``Tr((Σ1 Σ2)^½)`` is the sum of the square roots of the eigenvalues of ``Σ1 Σ2``. With fewer samples than
    dimensions (200 held-out images, 2048 Inception features) these are the squared singular values of
    ``A1ᵀ A2 / √((n1−1)(n2−1))`` (A: the centred features, samples as rows), an n1×n2 matrix; otherwise
    those of ``Σ1^½ Σ2 Σ1^½`` (symmetric eigen-decompositions). Same value as ``frechet_distance`` (pytorch-fid's
    ``sqrtm``), in a fraction of a second instead of minutes.
    """
    f1, f2 = _np64(real), _np64(fake)
    if f1.ndim != 2 or f2.ndim != 2 or len(f1) < 2 or len(f2) < 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError("need two N×D feature arrays with N >= 2 and the same D, got %s and %s"
                         % (f1.shape, f2.shape))
    a, b = f1 - f1.mean(axis=0), f2 - f2.mean(axis=0)
    diff = f1.mean(axis=0) - f2.mean(axis=0)
    k1, k2 = len(f1) - 1, len(f2) - 1
    trace1, trace2 = float((a * a).sum()) / k1, float((b * b).sum()) / k2
    if min(len(f1), len(f2)) <= f1.shape[1]:
        cross = float(np.linalg.svd(a.dot(b.T) / np.sqrt(k1 * k2), compute_uv=False).sum())
    else:
        values, vectors = np.linalg.eigh(a.T.dot(a) / k1)
        root = (vectors * np.sqrt(np.clip(values, 0, None))).dot(vectors.T)
        middle = root.dot(b.T.dot(b) / k2).dot(root)
        cross = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    return max(float(diff.dot(diff)) + trace1 + trace2 - 2.0 * cross, 0.0)


def fid_inception(weights_path, real_images, fake_images, batch_size=50, device="cpu"):
    """FID between two image sets (N×C×H×W in [-1, 1]) with Inception-v3 and a local pytorch-fid weights file."""
    net = load_fid_inception(weights_path)
    real = inception_pool_features(net, real_images, batch_size, device)
    fake = inception_pool_features(net, fake_images, batch_size, device)
    return fid_from_features(real, fake)


@torch.no_grad()
def fid_widths(generator, data, widths, weights_path, device="cpu", batch_size=50, limit=None, net=None):
    """``{width: FID}`` of a paired generator's outputs against the held-out targets of ``data`` (``(input,
    target)`` pairs), streamed batch by batch: each width's outputs and the targets go through Inception once.
    The generator runs in eval mode and is put back as it was."""
    from torch.utils.data import DataLoader, Subset

    from ..nn import at_width

    if limit is not None and limit < len(data):
        data = Subset(data, range(int(limit)))
    if len(data) < 2:
        raise EdgeganError("FID needs at least 2 held-out images, the held-out set has %d" % len(data))
    net = (net or load_fid_inception(weights_path)).to(device)
    was_training = generator.training
    generator.eval()
    real, fake = [], {w: [] for w in widths}
    try:
        for inputs, targets in DataLoader(data, batch_size=batch_size, shuffle=False):
            real.append(inception_pool_features(net, targets, batch_size, device))
            for w in widths:
                with at_width(generator, w):
                    outputs = generator(inputs.to(device)).float().clamp(-1, 1)
                fake[w].append(inception_pool_features(net, outputs, batch_size, device))
    finally:
        generator.train(was_training)
    real = torch.cat(real)
    return {w: fid_from_features(real, torch.cat(f)) for w, f in fake.items()}
