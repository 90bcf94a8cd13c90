"""Frozen data of the `example` leaf: do not edit (leaf.lock holds its sha256).

Sealed as well (leaf.yaml `sealed.leaf`): the code under judgement cannot read
this file, so it cannot compute the function it is asked to learn, nor the
targets it is scored on.

The task: learn a smooth function on [-1, 1] from noisy samples. `data(lab)`
runs in the frozen data worker and returns the noisy training samples, and for
`val` and `holdout` the inputs with the noiseless targets. The harness hands
`train` the training samples and `infer` the inputs only, and computes the
mean squared error itself (leaf.yaml `metric.kind: mse`).
"""

import numpy as np

N_TRAIN = 256
N_HOLDOUT = 1001
NOISE = 0.1
DATA_SEED = 1234
SMOKE_ITEMS = 128  # points of each split in a smoke run
GRID = np.linspace(-1.0, 1.0, 1001)


def target(x):
    return np.sin(3.0 * x) + 0.5 * x**2


def data(lab):
    """`{"train": (x, y), "val": (x, y), "holdout": (x, y)}`, float64 arrays, the same on every run.

    val is a fixed grid over [-1, 1]; holdout as many points drawn uniformly.
    """
    rng = np.random.default_rng(DATA_SEED)
    x = rng.uniform(-1.0, 1.0, N_TRAIN)
    y = target(x) + rng.normal(0.0, NOISE, N_TRAIN)
    holdout = np.sort(rng.uniform(-1.0, 1.0, N_HOLDOUT))
    splits = {"train": (x, y), "val": (GRID.copy(), target(GRID)), "holdout": (holdout, target(holdout))}
    return smoke_slice(splits, SMOKE_ITEMS) if lab.smoke() else splits


def smoke_slice(splits, items):
    """The smoke tier checks that the code runs, not how fast the machine is: in a
    smoke run (`lab.smoke()`) every split keeps `items` rows, drawn the same way each time."""
    out = {}
    for split, (x, y) in splits.items():
        rows = np.sort(np.random.default_rng(DATA_SEED + 7).permutation(len(y))[:items])
        out[split] = (x[rows], y[rows])
    return out
