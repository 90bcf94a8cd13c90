"""Frozen scoring of the `example` leaf: do not edit (leaf.lock holds its sha256).

The harness calls `score(lab, inputs, outputs, targets)` in a frozen worker
that never imports train.py, once per split: `outputs` are the logits that
`infer` returned, parsed from the file the harness wrote (an array of shape
(n, 3)), `targets` the labels (numbers arrive as float64). It returns each
point's cross-entropy (nats) and whether its argmax is right; the run's
metrics are the means.
"""

import numpy as np

CLASSES = 3


def score(lab, inputs, outputs, targets):
    """`{"val_loss": [...], "val_accuracy": [...]}`: one float per point each."""
    logits = np.asarray(outputs, dtype=np.float64)
    labels = np.asarray(targets).astype(np.int64)
    if logits.shape != (labels.shape[0], CLASSES) or not np.all(np.isfinite(logits)):
        raise ValueError(f"infer must return finite logits of shape ({labels.shape[0]}, {CLASSES}), "
                         f"not {logits.shape}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(labels.shape[0])
    return {
        "val_loss": (-log_probs[rows, labels]).tolist(),
        "val_accuracy": (logits.argmax(axis=1) == labels).astype(np.float64).tolist(),
    }
