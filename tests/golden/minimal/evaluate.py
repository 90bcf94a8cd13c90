"""Frozen evaluation of the `example` leaf: do not edit (leaf.lock holds its sha256).

The task: learn f(x) = sin(3x) + 0.5 x^2 on [-1, 1] from noisy samples. The
runner calls `train(lab)` in train.py, then `evaluate(lab, trained)` here with
what it returned: a function from an array of inputs to an array of
predictions. The metric is the mean squared error against the noiseless
function on a fixed grid the training code never sees.
"""

import numpy as np

METRIC = "val_mse"
N_TRAIN = 256
NOISE = 0.1
DATA_SEED = 1234
GRID = np.linspace(-1.0, 1.0, 1001)


def target(x):
    return np.sin(3.0 * x) + 0.5 * x**2


def training_data():
    """The noisy training samples `(x, y)`, the same on every run."""
    rng = np.random.default_rng(DATA_SEED)
    x = rng.uniform(-1.0, 1.0, N_TRAIN)
    y = target(x) + rng.normal(0.0, NOISE, N_TRAIN)
    return x, y


def evaluate(lab, trained):
    """The metrics of `trained`, a callable from inputs to predictions."""
    predictions = np.asarray(trained(GRID.copy()), dtype=float).reshape(-1)
    if predictions.shape != GRID.shape or not np.all(np.isfinite(predictions)):
        raise ValueError(f"train() must return a function giving {GRID.size} finite predictions")
    return {METRIC: float(np.mean((predictions - target(GRID)) ** 2))}
