"""Training code of the `example` leaf: the file to change.

The runner calls `train(lab)` and hands what it returns to the frozen
`evaluate(lab, trained)` in evaluate.py: a function from an array of inputs
to an array of predictions.
"""

import numpy as np

from evaluate import training_data

DEGREE = 3


def features(x):
    return np.vander(np.asarray(x, dtype=float), DEGREE + 1)


def train(lab):
    x, y = training_data()
    coef, *_ = np.linalg.lstsq(features(x), y, rcond=None)
    lab.report(train_mse=float(np.mean((features(x) @ coef - y) ** 2)))

    def predict(inputs):
        return features(inputs) @ coef

    return predict
