"""Mutable training code of the rl leaf: GRPO on arithmetic, rewarded by the frozen verifier.

`train(lab, data)` starts from the base (`base.load`: the sft leader's
checkpoint, or the fallback) and runs group-relative policy optimisation until
the wall clock says stop: each step samples `group` completions for each of
`prompts` prompts from `data` (the training pool of prepare.data, none of them
scored), scores each with the frozen verifier (`prepare.reward`: 1 for the
exact answer and its newline, else 0), turns rewards into advantages relative
to the group (reward minus the group's mean, over its standard deviation), and
raises the log-probability of the completions that beat their group. A group
whose samples all earned the same reward teaches nothing and is left out. An
optional KL penalty (`kl`) holds the policy near the base. Sampling reuses each
prefix's keys and values (`forward_cached`) and stops at the newline, so a step
costs mostly its backward pass. `max_steps: 0` scores the base itself: the start.

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
    "prompts": 64,  # prompts per step
    "group": 8,  # samples per prompt
    # Sampling temperature. The metric decodes greedily: samples near the greedy
    # answer put the gradient where the greedy answer is decided (DATA.md: at
    # 1.0 no setting beat the start; 0.5 and 0.3 did, 0.3 most).
    "temperature": 0.3,
    # Adam with a warm-up by steps and a linear decay to 0 over the last
    # `cooldown_frac` of the time, as in sft: without the decay the policy ends
    # on a noisy step, and every constant-rate setting tried lost accuracy.
    "lr": 3e-5,
    "betas": (0.9, 0.99),
    "warmup_steps": 20,
    "cooldown_frac": 0.5,
    "grad_clip": 1.0,
    "kl": 0.0,  # weight of the KL penalty to the base (0: no reference model)
    "threads": 1,
    # None: GRPO until the clock says stop. 0: no step at all, so the run scores
    # the base as it is: the start, the figure GRPO has to beat (DATA.md).
    "max_steps": None,
}
REPORT_EVERY_S = 5.0
SAVE_SECONDS = 1.0  # base.save after the last step


def forward_cached(model, idx, cache):
    """Logits of the new bytes `idx`, given the keys and values of the bytes before them (`cache`, or None).

    The frozen GPT's own modules, applied step by step: the numbers of
    `model(whole sequence)` at those positions (to float rounding), without
    recomputing the prefix at every sampled byte. Returns (logits, cache).
    """
    past = 0 if cache is None else cache[0][0].shape[2]
    x = model.tok(idx) + model.pos(torch.arange(past, past + idx.shape[1], device=idx.device))
    new_cache = []
    for i, block in enumerate(model.blocks):
        b, t, d = x.shape
        q, k, v = block.qkv(block.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, block.n_head, d // block.n_head).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[i][0], k], dim=2), torch.cat([cache[i][1], v], dim=2)
        new_cache.append((k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
        x = x + block.proj(y.transpose(1, 2).reshape(b, t, d))
        x = x + block.mlp(block.ln2(x))
    return model.head(model.ln_f(x)), new_cache


@torch.no_grad()
def sample(model, prompts, context, temperature, device):
    """One completion per prompt (prompts may repeat), sampled at `temperature`, up to its newline."""
    out = [None] * len(prompts)
    by_length = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    for idx in by_length.values():
        x = torch.tensor([prepare.encode(prompts[i]) for i in idx], dtype=torch.long, device=device)
        if x.shape[1] + prepare.MAX_NEW > context:
            raise ValueError(f"a prompt of {x.shape[1]} bytes and its answer do not fit the context {context}")
        logits, cache = forward_cached(model, x, None)
        drawn, done = [], torch.zeros(len(idx), dtype=torch.bool, device=device)
        for _ in range(prepare.MAX_NEW):
            nxt = torch.multinomial(F.softmax(logits[:, -1].float() / temperature, -1), 1)
            drawn.append(nxt)
            done |= nxt[:, 0] == ord("\n")
            if bool(done.all()):
                break
            logits, cache = forward_cached(model, nxt, cache)
        for i, row in zip(idx, torch.cat(drawn, dim=1).tolist()):
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


def lr_at(step, frac, cfg):
    """Warm-up over the first steps, then linear decay to 0 over the last `cooldown_frac` of the time."""
    warm = min(1.0, (step + 1) / cfg["warmup_steps"])
    decay = min(1.0, (1.0 - frac) / cfg["cooldown_frac"]) if cfg["cooldown_frac"] > 0 else 1.0
    return cfg["lr"] * warm * max(0.0, decay)


def train(lab, data):
    cfg = dict(CONFIG)
    torch.set_num_threads(cfg["threads"])
    device = lab.device()
    torch.manual_seed(lab.seed())
    rng = np.random.default_rng(lab.seed())
    start = base.load(lab)
    model, context = start["model"].to(device), start["context"]
    reference = copy.deepcopy(model).eval() if cfg["kl"] > 0 else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=cfg["betas"])
    began = time.time()
    step, last_report, reward_sum, reward_n, step_s = 0, began, 0.0, 0, 2.0
    while True:
        t0 = time.time()
        stop_at = lab.deadline() - (1.0 + 3.0 * step_s + SAVE_SECONDS)
        if t0 >= stop_at or (cfg["max_steps"] is not None and step >= cfg["max_steps"]):
            break
        drawn = [data[i] for i in rng.integers(0, len(data), size=cfg["prompts"])]
        prompts = [p for p in drawn for _ in range(cfg["group"])]
        model.eval()
        completions = sample(model, prompts, context, cfg["temperature"], device)
        model.train()
        rewards = torch.tensor([prepare.reward(p, c) for p, c in zip(prompts, completions)], device=device)
        adv = advantages(rewards, cfg["group"])
        # Only samples of groups with mixed rewards carry a gradient: the others
        # (advantage 0) are left out of the forward pass, not just weighted 0.
        chosen = adv.nonzero()[:, 0].tolist()
        if chosen:
            chosen_prompts, chosen_completions = [prompts[i] for i in chosen], [completions[i] for i in chosen]
            logp, n = completion_logprobs(model, chosen_prompts, chosen_completions, device)
            loss = -(adv[chosen] * logp / n).sum() / len(prompts)  # the mean over every sample
            if reference is not None:
                with torch.no_grad():
                    ref, _ = completion_logprobs(reference, chosen_prompts, chosen_completions, device)
                loss = loss + cfg["kl"] * ((logp - ref) / n).sum() / len(prompts)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, (t0 - began) / max(1e-6, stop_at - began), cfg)
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
