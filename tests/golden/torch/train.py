"""Training code of the `example` leaf: the file to change.

The runner calls `train(lab, data)` in a sandboxed worker with the training
split `(x, y)` of the frozen prepare.py (numpy arrays: points (n, 2), labels
(n,)); it trains for a fixed wall-clock budget and saves the model into
`lab.artifact_dir()` with `torch.save`. Then `infer(lab, inputs)` runs in a
fresh worker, once for `val` and once for `holdout`, with the points only: it
loads the weights and returns logits of shape (n, classes). The frozen
evaluate.py scores them against labels this code never sees. `train` must
return before `lab.deadline()`: inference has a budget of its own, so a
faster step buys more steps.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 64
LEARNING_RATE = 3e-3
BATCH = 256
SMOKE_STEPS = 20
REPORT_EVERY = 100
RESERVE_S = 2.0  # stop this long before the deadline: saving the model and returning
MODEL = "model.pt"  # in lab.artifact_dir()


def pick_device(lab):
    """The device the runner chose (`lab.device()`), or cpu if torch sees no GPU."""
    wanted = lab.device()
    if wanted == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(wanted)


def build(hidden, classes):
    return nn.Sequential(
        nn.Linear(2, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def train(lab, data):
    torch.manual_seed(lab.seed())
    device = pick_device(lab)
    x, y = (torch.from_numpy(np.asarray(a)).to(device) for a in data)
    classes = int(y.max()) + 1
    model = build(HIDDEN, classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    step = 0
    while lab.time_left() > RESERVE_S and not (lab.smoke() and step >= SMOKE_STEPS):
        batch = torch.randint(0, x.shape[0], (BATCH,), device=device)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % REPORT_EVERY == 0:
            lab.report(step=step, train_loss=loss.item())
    if step:
        lab.report(step=step, train_loss=loss.item())
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hidden": HIDDEN, "classes": classes}, os.path.join(lab.artifact_dir(), MODEL))


def infer(lab, inputs):
    """Logits (n, classes), float32, for points (n, 2)."""
    device = pick_device(lab)
    saved = torch.load(os.path.join(lab.artifact_dir(), MODEL), map_location="cpu", weights_only=True)
    model = build(saved["hidden"], saved["classes"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.asarray(inputs, dtype=np.float32)).to(device))
    return logits.float().cpu().numpy()
