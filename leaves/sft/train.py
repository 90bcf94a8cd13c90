"""Mutable training code of the sft leaf: supervised fine-tuning on arithmetic.

`train(lab, data)` starts from the base (`base.load`: the pretrain leader's
checkpoint, or the fallback), fine-tunes it on problems from `data` (the
training pool: prompts from prepare.data, none of them scored) with the loss
on the answer bytes only, until the wall clock says stop, and saves the model
with `base.save` into `lab.artifact_dir()`. Everything here is yours to change
but the contract with the frozen side: the frozen `evaluate.infer` loads that
checkpoint into base.py's GPT (weights only, strictly) and decodes greedily, so
the model must stay that GPT (any weights; the size the base gave it), and the
rl leaf starts from the same file.

The learning-rate schedule runs on the clock (`lab.deadline()`): warm-up by
steps, hold, then linear decay over the last `cooldown_frac` of the time, so
the same code fits the smoke and the full budget.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F

import base
import prepare

CONFIG = {
    "batch_size": 64,
    "lr": 1e-3,
    "warmup_steps": 20,
    "cooldown_frac": 0.3,
    "weight_decay": 0.0,
    "betas": (0.9, 0.98),
    "grad_clip": 1.0,
    "threads": 1,  # tiny matrices: one thread is fastest, and the machine is shared
}
REPORT_EVERY_S = 5.0
SAVE_SECONDS = 1.0  # base.save after the last step


def batch(rng, pool, n, device):
    """Inputs, targets and a mask that is 1 on the answer bytes (and its newline) only."""
    prompts = [pool[i] for i in rng.integers(0, len(pool), size=n)]
    texts = [p + prepare.answer(p) + "\n" for p in prompts]
    width = max(len(t) for t in texts)
    rows = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width - 1))
    for i, (p, t) in enumerate(zip(prompts, texts)):
        rows[i, : len(t)] = torch.tensor(prepare.encode(t))
        mask[i, len(p) - 1 : len(t) - 1] = 1.0  # position j predicts byte j + 1
    return rows[:, :-1].to(device), rows[:, 1:].to(device), mask.to(device)


def lr_at(step, frac, cfg):
    warm = min(1.0, (step + 1) / cfg["warmup_steps"])
    decay = min(1.0, (1.0 - frac) / cfg["cooldown_frac"]) if cfg["cooldown_frac"] > 0 else 1.0
    return cfg["lr"] * warm * max(0.0, decay)


def train(lab, data):
    cfg = dict(CONFIG)
    torch.set_num_threads(cfg["threads"])
    device = lab.device()
    rng = np.random.default_rng(lab.seed())
    start = base.load(lab)
    model = start["model"].to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=cfg["betas"], weight_decay=cfg["weight_decay"])
    began = time.time()
    step, last_report, loss_sum, loss_n, step_s = 0, began, 0.0, 0, 1.0
    while True:
        now = time.time()
        stop_at = lab.deadline() - (1.0 + 3.0 * step_s + SAVE_SECONDS)
        if now >= stop_at:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, (now - began) / max(1e-6, stop_at - began), cfg)
        x, y, mask = batch(rng, data, cfg["batch_size"], device)
        logits = model(x).float()
        nll = F.cross_entropy(logits.reshape(-1, prepare.VOCAB), y.reshape(-1), reduction="none")
        loss = (nll * mask.reshape(-1)).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        step += 1
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        step_s = 0.9 * step_s + 0.1 * (time.time() - now) if step > 1 else time.time() - now
        if now - last_report >= REPORT_EVERY_S:
            lab.report(step=step, answer_loss=loss_sum / loss_n)
            last_report, loss_sum, loss_n = now, 0.0, 0
    lab.log(f"sft: {step} steps in {time.time() - began:.1f}s")
    lab.report(step=step)
    base.save(lab, model, start["config"], start["context"], base=start["base"])
