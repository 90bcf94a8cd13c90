"""Training code of the `example` leaf: the file to change.

The runner calls `train(lab)` and hands the model it returns to the frozen
`evaluate(lab, model)` in evaluate.py. Training runs for a fixed wall-clock
budget: the loop stops when `lab.time_left()` falls under a reserve kept for
the evaluation, so a faster step buys more steps.
"""

import torch
import torch.nn.functional as F
from torch import nn

from prepare import CLASSES, splits

HIDDEN = 64
LEARNING_RATE = 3e-3
BATCH = 256
SMOKE_STEPS = 20
REPORT_EVERY = 100


def pick_device(lab):
    """The device the runner chose (`lab.device()`), or cpu if torch sees no GPU."""
    wanted = lab.device()
    if wanted == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(wanted)


def train(lab):
    torch.manual_seed(lab.seed())
    device = pick_device(lab)
    x, y = (t.to(device) for t in splits()["train"])
    model = nn.Sequential(
        nn.Linear(2, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, CLASSES),
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    # Evaluation runs inside the same budget, after train() returns.
    reserve = max(2.0, 0.1 * lab.time_left())
    step = 0
    while lab.time_left() > reserve and not (lab.smoke() and step >= SMOKE_STEPS):
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
    return model
