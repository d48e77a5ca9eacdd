"""A small Fashion-MNIST classifier: the feature extractor of the download-free GAN metrics.

FID needs Inception-v3 weights (a download); this project trains its own classifier on
Fashion-MNIST (all 10 classes, 32² grey in [-1, 1], the 28² images padded to 32² as in
``edgegan.data``) and ships it as ``edgegan/assets/fmnist_classifier.pt``.
``edgegan.train.gan_metrics`` uses its penultimate features for a Fréchet distance
("FD-FMNIST") and mIC, and its class probabilities for an Inception-Score analogue.

Train (≈ 2–3 min on 2 CPU cores)::

    python -m edgegan.train.classifier --epochs 2 --out edgegan/assets/fmnist_classifier.pt

The asset is a dict of plain values and tensors (``torch.load(weights_only=True)``)::

    {"format": "edgegan-classifier/1", "arch": {"name": "fmnist_cnn", "kwargs": {...}},
     "state_dict": {...}, "data": {"size": 32, "pad_to": 32, "range": [-1.0, 1.0], ...},
     "metrics": {"test_accuracy": ...}, "train": {...}}
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import read_weights_only, save_atomic
from ..errors import CheckpointError
from ..data import fit_square, fmnist_paths, read_idx

CLASSIFIER_FORMAT = "edgegan-classifier/1"
ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
DEFAULT_CLASSIFIER = os.path.join(ASSETS, "fmnist_classifier.pt")
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class FmnistCNN(nn.Module):
    """3 × (conv 3×3 + BN + ReLU + max-pool 2) → global average pool → ``feature_dim`` → 10 logits.

    ``features(x)`` is the penultimate (post-ReLU) representation used by the metrics.
    """

    def __init__(self, in_channels=1, width=32, feature_dim=128, n_classes=10):
        super().__init__()
        self.hparams = dict(in_channels=in_channels, width=width, feature_dim=feature_dim, n_classes=n_classes)
        c1, c2, c3 = width, width * 2, width * 4
        layers = []
        for cin, cout in ((in_channels, c1), (c1, c2), (c2, c3)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                       nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.ReLU(True))
        self.out = nn.Linear(feature_dim, n_classes)

    def features(self, x):
        return self.fc(self.body(x).mean(dim=(2, 3)))

    def forward(self, x):
        return self.out(self.features(x))

    def arch(self):
        return {"name": "fmnist_cnn", "kwargs": dict(self.hparams)}


def load_fmnist(split="train", root=None, size=32, limit=None):
    """``(images N×1×size×size float in [-1, 1], labels N int64)`` of a Fashion-MNIST split (all classes)."""
    images_path, labels_path = fmnist_paths(root, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if limit is not None:
        images, labels = images[:int(limit)], labels[:int(limit)]
    photos = np.stack([fit_square(im, size, pad_to=32) for im in images]).astype(np.float32)
    x = torch.from_numpy(photos / 127.5 - 1.0)[:, None]
    return x, torch.from_numpy(labels.astype(np.int64))


def load_classifier(path=None):
    """The shipped (or a given) classifier, in eval mode, and its asset dict."""
    path = path or DEFAULT_CLASSIFIER
    if not os.path.isfile(path):
        raise CheckpointError("no Fashion-MNIST classifier at %s; reinstall edgegan or train one with "
                              "`python -m edgegan.train.classifier --out %s`" % (path, path))
    asset = read_weights_only(path, "the classifier ships with edgegan (%s) or comes from `python -m "
                                    "edgegan.train.classifier`" % DEFAULT_CLASSIFIER, "an edgegan classifier")
    if not isinstance(asset, dict) or asset.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError("%s is not an edgegan classifier (expected format %r)" % (path, CLASSIFIER_FORMAT))
    model = FmnistCNN(**asset["arch"]["kwargs"])
    model.load_state_dict(asset["state_dict"])
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), asset


@torch.no_grad()
def accuracy(model, images, labels, batch_size=500):
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        correct += (model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum().item()
    return correct / max(1, len(images))


def train_classifier(epochs=2, batch_size=128, lr=3e-3, width=32, feature_dim=128, seed=0, root=None,
                     train_limit=None, progress=True):
    """Train ``FmnistCNN`` on Fashion-MNIST train (all classes); returns the asset dict (test accuracy in it)."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    x_train, y_train = load_fmnist("train", root, limit=train_limit)
    x_test, y_test = load_fmnist("test", root)
    model = FmnistCNN(width=width, feature_dim=feature_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = x_train[idx]
            # light augmentation: horizontal flips (Fashion-MNIST is roughly mirror-symmetric per class)
            flip = torch.rand(len(xb), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        if progress:
            print("epoch %d: loss %.4f, %.0f s" % (epoch + 1, total / steps_per_epoch, time.perf_counter() - start),
                  file=sys.stderr)
    seconds = time.perf_counter() - start
    acc = accuracy(model, x_test, y_test)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {
        "format": CLASSIFIER_FORMAT,
        "arch": model.arch(),
        "state_dict": state,
        "classes": list(FMNIST_CLASSES),
        "data": {"name": "fmnist", "size": 32, "pad_to": 32, "range": [-1.0, 1.0], "channels": 1},
        "metrics": {"test_accuracy": acc, "test_images": len(x_test)},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "seconds": round(seconds, 1),
                  "train_images": len(x_train), "threads": torch.get_num_threads(), "torch": str(torch.__version__)},
    }


def main(argv=None):
    p = argparse.ArgumentParser(description="Train the Fashion-MNIST classifier behind FD-FMNIST / IS / mIC.")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--data-root")
    p.add_argument("--out", default=DEFAULT_CLASSIFIER)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    asset = train_classifier(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width=args.width,
                             seed=args.seed, root=args.data_root)
    save_atomic(args.out, asset)
    print("test accuracy %.4f (%d images); %.0f s; wrote %s (%d bytes)" % (
        asset["metrics"]["test_accuracy"], asset["metrics"]["test_images"], asset["train"]["seconds"], args.out,
        os.path.getsize(args.out)))


if __name__ == "__main__":
    main()
