"""The model of the `example` leaf: the file to change.

The runner calls `predict(lab, train, inputs)` with `train = (x, y)`, the
labelled training split, and `inputs = {"val": x_val, "holdout": x_holdout}`,
the other splits without their labels. It returns one prediction per input
row for each split; the harness scores them against labels it alone holds.
"""

import numpy as np

ALPHA = 1.0


def predict(lab, train, inputs):
    """Ridge regression on standardised features, fitted in closed form."""
    x, y = (np.asarray(a, dtype=float) for a in train)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-12
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + ALPHA * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    lab.report(train_rmse=float(np.sqrt(np.mean((z @ weights + y.mean() - y) ** 2))))
    return {
        split: ((np.asarray(rows, dtype=float) - mean) / scale) @ weights + y.mean()
        for split, rows in inputs.items()
    }
