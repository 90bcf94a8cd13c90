"""Frozen evaluation of the `example` leaf: do not edit (leaf.lock holds its sha256).

The runner calls `train(lab)` in train.py, then `evaluate(lab, model)` here
with what it returned: a `torch.nn.Module` mapping points of shape (n, 2) to
logits of shape (n, 3). The metrics are the cross-entropy (nats) and the
accuracy on the validation split, which the training code never sees.
"""

import torch
import torch.nn.functional as F

from prepare import CLASSES, splits


def evaluate(lab, model):
    """`{"val_loss": ..., "val_accuracy": ...}` of `model` on the validation split."""
    x, y = splits()["val"]
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    model.eval()
    with torch.no_grad():
        logits = model(x.to(device)).float().cpu()
    if logits.shape != (x.shape[0], CLASSES) or not torch.isfinite(logits).all():
        raise ValueError(f"the model must give finite logits of shape ({x.shape[0]}, {CLASSES})")
    return {
        "val_loss": F.cross_entropy(logits, y).item(),
        "val_accuracy": (logits.argmax(dim=1) == y).float().mean().item(),
    }
