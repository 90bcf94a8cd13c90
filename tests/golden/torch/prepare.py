"""Frozen data of the `example` leaf: do not edit (leaf.lock holds its sha256).

Sealed as well (leaf.yaml `sealed.leaf`): the code under judgement cannot read
this file, so it cannot regenerate the labels of `val` and `holdout` from
their seeds.

Three interleaved spirals in the plane, one class each, generated from fixed
seeds so that every run sees the same points. `data(lab)` runs in the frozen
data worker; the harness hands `train` the training split with its labels and
`infer` the points of `val` and `holdout` only.
"""

import numpy as np

CLASSES = 3
TRAIN_PER_CLASS = 1000
VAL_PER_CLASS = 300
HOLDOUT_PER_CLASS = 300
DATA_SEED = 20240601
SMOKE_ITEMS = 256  # points of each split in a smoke run


def spirals(per_class, seed):
    """`(x, y)`: float32 points of shape (n, 2) and int64 labels of shape (n,)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(CLASSES):
        radius = rng.uniform(0.05, 1.0, per_class)
        angle = k * 2.0 * np.pi / CLASSES + 4.0 * radius + rng.normal(0.0, 0.2, per_class)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ys.append(np.full(per_class, k))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def data(lab):
    """`{"train": (x, y), "val": (x, y), "holdout": (x, y)}`, numpy arrays, the same on every run."""
    splits = {
        "train": spirals(TRAIN_PER_CLASS, DATA_SEED),
        "val": spirals(VAL_PER_CLASS, DATA_SEED + 1),
        "holdout": spirals(HOLDOUT_PER_CLASS, DATA_SEED + 2),
    }
    return smoke_slice(splits, SMOKE_ITEMS) if lab.smoke() else splits


def smoke_slice(splits, items):
    """The smoke tier checks that the code runs, not how fast the machine is: in a
    smoke run (`lab.smoke()`) every split keeps `items` rows, drawn the same way each time."""
    out = {}
    for split, (x, y) in splits.items():
        rows = np.sort(np.random.default_rng(DATA_SEED + 7).permutation(len(y))[:items])
        out[split] = (x[rows], y[rows])
    return out
