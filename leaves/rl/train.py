"""Mutable training code of the rl leaf: GRPO on arithmetic, rewarded by the frozen verifier.

`train(lab, data)` starts from the base (`base.load`: the sft leader's
checkpoint, or the fallback) and runs group-relative policy optimisation until
the wall clock says stop: each step samples `group` completions for each of
`prompts` prompts from `data` (the training pool of prepare.data, none of them
scored), scores each with the frozen verifier (`prepare.reward`: 1 for the
exact answer and its newline, else 0), turns rewards into advantages relative
to the group (reward minus the group's mean, over its standard deviation), and
raises the log-probability of the completions that beat their group. A group
whose samples all earned the same reward teaches nothing and is skipped. An
optional KL penalty (`kl`) holds the policy near the base.

At the end it saves the policy with `base.save` into `lab.artifact_dir()`: the
frozen `evaluate.infer` loads that checkpoint into base.py's GPT (weights only,
strictly) and decodes greedily, so the policy must stay that GPT. Everything
else here is yours to change, the sampling included; the verifier and the
prompts it is scored on are frozen (and the scored prompts sealed).
"""

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

import base
import prepare

CONFIG = {
    "prompts": 16,  # prompts per step
    "group": 8,  # samples per prompt
    "temperature": 1.0,  # the policy itself: the gradient below is of its log-probability
    # Plain SGD: the step follows the size of the policy gradient. In short trials
    # AdamW (which moves every weight by about lr per step, noise included) lowered
    # the sft leader's accuracy at every learning rate that changed it at all.
    "lr": 2e-3,
    "grad_clip": 1.0,
    "kl": 0.0,  # weight of the KL penalty to the base (0: no reference model)
    "threads": 1,
}
REPORT_EVERY_S = 5.0
SAVE_SECONDS = 1.0  # base.save after the last step


@torch.no_grad()
def sample(model, prompts, context, temperature, device):
    """One completion per prompt (prompts may repeat), sampled at `temperature`."""
    out = [None] * len(prompts)
    by_length = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    for idx in by_length.values():
        x = torch.tensor([prepare.encode(prompts[i]) for i in idx], dtype=torch.long, device=device)
        start = x.shape[1]
        for _ in range(prepare.MAX_NEW):
            logits = model(x[:, -context:])[:, -1].float() / temperature
            x = torch.cat([x, torch.multinomial(F.softmax(logits, -1), 1)], dim=1)
        for i, row in zip(idx, x[:, start:].tolist()):
            text = bytes(row).decode("latin-1")
            out[i] = text[: text.index("\n") + 1] if "\n" in text else text
    return out


def completion_logprobs(model, prompts, completions, device):
    """Sum of the log-probabilities of each completion's bytes, and their count."""
    texts = [p + c for p, c in zip(prompts, completions)]
    width = max(len(t) for t in texts)
    rows = torch.zeros((len(texts), width), dtype=torch.long)
    mask = torch.zeros((len(texts), width - 1))
    for i, (p, t) in enumerate(zip(prompts, texts)):
        rows[i, : len(t)] = torch.tensor(prepare.encode(t))
        mask[i, len(p) - 1 : len(t) - 1] = 1.0
    rows, mask = rows.to(device), mask.to(device)
    logp = F.log_softmax(model(rows[:, :-1]).float(), -1).gather(-1, rows[:, 1:, None])[..., 0]
    return (logp * mask).sum(1), mask.sum(1).clamp(min=1.0)


def advantages(rewards, group):
    """Reward minus its group's mean, over the group's standard deviation (0 for a uniform group)."""
    r = rewards.view(-1, group)
    std = r.std(1, keepdim=True)
    return ((r - r.mean(1, keepdim=True)) / (std + 1e-6) * (std > 0)).view(-1)


def train(lab, data):
    cfg = dict(CONFIG)
    torch.set_num_threads(cfg["threads"])
    device = lab.device()
    torch.manual_seed(lab.seed())
    rng = np.random.default_rng(lab.seed())
    start = base.load(lab)
    model, context = start["model"].to(device), start["context"]
    reference = copy.deepcopy(model).eval() if cfg["kl"] > 0 else None
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    began = time.time()
    step, last_report, reward_sum, reward_n, step_s = 0, began, 0.0, 0, 2.0
    while time.time() < lab.deadline() - (1.0 + 3.0 * step_s + SAVE_SECONDS):
        t0 = time.time()
        drawn = [data[i] for i in rng.integers(0, len(data), size=cfg["prompts"])]
        prompts = [p for p in drawn for _ in range(cfg["group"])]
        model.eval()
        completions = sample(model, prompts, context, cfg["temperature"], device)
        model.train()
        rewards = torch.tensor([prepare.reward(p, c) for p, c in zip(prompts, completions)], device=device)
        adv = advantages(rewards, cfg["group"])
        if adv.abs().sum() > 0:
            logp, n = completion_logprobs(model, prompts, completions, device)
            loss = -(adv * logp / n).mean()
            if reference is not None:
                with torch.no_grad():
                    ref, _ = completion_logprobs(reference, prompts, completions, device)
                loss = loss + cfg["kl"] * ((logp - ref) / n).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
        step += 1
        reward_sum, reward_n = reward_sum + rewards.mean().item(), reward_n + 1
        step_s = 0.9 * step_s + 0.1 * (time.time() - t0) if step > 1 else time.time() - t0
        if time.time() - last_report >= REPORT_EVERY_S:
            lab.report(step=step, train_reward=reward_sum / reward_n)
            last_report, reward_sum, reward_n = time.time(), 0.0, 0
    lab.log(f"rl: {step} GRPO steps in {time.time() - began:.1f}s")
    lab.report(step=step)
    base.save(lab, model, start["config"], context, base=start["base"])
