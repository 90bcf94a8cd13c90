"""Frozen data of the `example` leaf: do not edit (leaf.lock holds its sha256).

A synthetic regression table, the same on every run: 2000 rows of 8
numeric features and a target with linear effects, a non-linearity, an
interaction and noise. The runner calls `data(lab)`, keeps the labels of
"val" and "holdout" to itself, and scores what `predict` in model.py returns.
"""

import numpy as np

ROWS = 2000
FEATURES = 8
NOISE = 0.5
DATA_SEED = 7
SMOKE_ROWS = 200  # rows of each split in a smoke run


def table():
    """`(x, y)`: features of shape (ROWS, FEATURES) and the target of shape (ROWS,)."""
    rng = np.random.default_rng(DATA_SEED)
    x = rng.normal(size=(ROWS, FEATURES))
    weights = np.linspace(1.0, 0.1, FEATURES)
    y = x @ weights + 0.8 * np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3] ** 2
    return x, y + NOISE * rng.normal(size=ROWS)


def data(lab):
    """`{"train": (x, y), "val": (x, y), "holdout": (x, y)}`: 60%, 20%, 20% of the rows."""
    x, y = table()
    order = np.random.default_rng(DATA_SEED + 1).permutation(ROWS)
    cut_val, cut_holdout = int(0.6 * ROWS), int(0.8 * ROWS)
    parts = {"train": order[:cut_val], "val": order[cut_val:cut_holdout], "holdout": order[cut_holdout:]}
    splits = {split: (x[rows], y[rows]) for split, rows in parts.items()}
    return smoke_slice(splits, SMOKE_ROWS) if lab.smoke() else splits


def smoke_slice(splits, items):
    """The smoke tier checks that the code runs, not how fast the machine is: in a
    smoke run (`lab.smoke()`) every split keeps `items` rows, drawn the same way each time."""
    out = {}
    for split, (x, y) in splits.items():
        rows = np.sort(np.random.default_rng(DATA_SEED + 7).permutation(len(y))[:items])
        out[split] = (x[rows], y[rows])
    return out
