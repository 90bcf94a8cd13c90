"""Frozen data of the `example` leaf: do not edit (leaf.lock holds its sha256).

Three interleaved spirals in the plane, one class each, generated from a fixed
seed so that every run sees the same points. `splits()` returns CPU tensors;
the training code moves them to its device.
"""

import numpy as np
import torch

CLASSES = 3
TRAIN_PER_CLASS = 1000
VAL_PER_CLASS = 300
DATA_SEED = 20240601


def spirals(per_class, seed):
    """`(x, y)`: float32 points of shape (n, 2) and int64 labels of shape (n,)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(CLASSES):
        radius = rng.uniform(0.05, 1.0, per_class)
        angle = k * 2.0 * np.pi / CLASSES + 4.0 * radius + rng.normal(0.0, 0.2, per_class)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ys.append(np.full(per_class, k))
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def splits():
    """`{"train": (x, y), "val": (x, y)}`, the same on every run."""
    return {"train": spirals(TRAIN_PER_CLASS, DATA_SEED), "val": spirals(VAL_PER_CLASS, DATA_SEED + 1)}
