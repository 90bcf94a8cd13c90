"""Frozen task of the sft and rl leaves: multi-step integer arithmetic with exact answers.

This file is byte-identical in leaves/sft and leaves/rl (a test checks it): both
leaves post-train on the same task and score on the same held-out prompts, so an
rl result reads directly against the sft leader it started from.

A problem is two or three integers in [0, 99] joined by `+` or `-`, evaluated
left to right, followed by `=`: the prompt `47+18-25=`. The answer is the
decimal integer and a newline: `40\\n` (negative answers carry a `-`). Tokens
are raw bytes (VOCAB = 256, the pretrain leaf's vocabulary), so a byte-level
model from the pretrain leaf reads the task as it is.

The verifier (`reward`) recomputes the answer from the prompt itself: a
completion earns 1.0 when its text up to the first newline is exactly the
answer and the newline was produced, else 0.0. The validation and held-out
prompts are fixed (`split_prompts`, from fixed seeds, disjoint), and
`sample_prompt` never returns one of them, so training never sees a scored
prompt. `score` decodes greedily (no sampling: the same model gives the same
number) and applies the verifier.
"""

import re

import numpy as np
import torch

VOCAB = 256  # bytes
MAX_OPERAND = 99
OPERANDS = (2, 3)
MAX_NEW = 6  # bytes a completion may take: sign, three digits, newline, one spare
SPLIT_SEEDS = {"val": 1_001, "holdout": 2_002}
SPLIT_SIZE = 512
_PROBLEM = re.compile(r"^(\d+)((?:[+-]\d+)+)=$")


def make_prompt(rng):
    """One random problem's prompt, e.g. `47+18-25=`."""
    n = int(rng.integers(OPERANDS[0], OPERANDS[1] + 1))
    numbers = rng.integers(0, MAX_OPERAND + 1, size=n)
    ops = rng.choice(["+", "-"], size=n - 1)
    return str(int(numbers[0])) + "".join(f"{op}{int(x)}" for op, x in zip(ops, numbers[1:])) + "="


def answer(prompt):
    """The exact answer of `prompt` (without the newline), computed from the prompt itself."""
    match = _PROBLEM.match(prompt)
    if not match:
        raise ValueError(f"not a problem of this task: {prompt!r}")
    total = int(match.group(1))
    for op, x in re.findall(r"([+-])(\d+)", match.group(2)):
        total = total + int(x) if op == "+" else total - int(x)
    return str(total)


def reward(prompt, completion):
    """The verifier: 1.0 when `completion` is exactly the answer followed by a newline, else 0.0."""
    head, newline, _ = completion.partition("\n")
    return 1.0 if newline and head == answer(prompt) else 0.0


def split_prompts(split, n=SPLIT_SIZE):
    """The first `n` fixed prompts of `val` or `holdout` (distinct; the splits are disjoint)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}: use one of {sorted(SPLIT_SEEDS)}")
    if split == "holdout":
        taken = set(_unique(SPLIT_SEEDS["val"], SPLIT_SIZE, set()))
        return _unique(SPLIT_SEEDS["holdout"], SPLIT_SIZE, taken)[:n]
    return _unique(SPLIT_SEEDS["val"], SPLIT_SIZE, set())[:n]


def _unique(seed, n, exclude):
    rng, out, seen = np.random.default_rng(seed), [], set(exclude)
    while len(out) < n:
        prompt = make_prompt(rng)
        if prompt not in seen:
            seen.add(prompt)
            out.append(prompt)
    return out


_SCORED = None


def sample_prompt(rng):
    """A training prompt: any problem but the validation and held-out ones."""
    global _SCORED
    if _SCORED is None:
        _SCORED = set(split_prompts("val")) | set(split_prompts("holdout"))
    while True:
        prompt = make_prompt(rng)
        if prompt not in _SCORED:
            return prompt


def encode(text):
    return list(text.encode("latin-1"))


def _logits(model, x):
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.shape != (*x.shape, VOCAB):
        raise ValueError(f"model output has shape {tuple(out.shape)}; expected {(*x.shape, VOCAB)}")
    return out.float()


def greedy(model, prompts, context, device):
    """Each prompt's greedy completion (at most MAX_NEW bytes, up to the first newline)."""
    completions = {}
    by_length = {}
    for p in prompts:
        by_length.setdefault(len(p), []).append(p)
    for group in by_length.values():
        x = torch.tensor([encode(p) for p in group], dtype=torch.long, device=device)
        start = x.shape[1]
        done = torch.zeros(len(group), dtype=torch.bool, device=device)
        for _ in range(MAX_NEW):
            nxt = _logits(model, x[:, -context:])[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, ord("\n")), nxt)
            x = torch.cat([x, nxt[:, None]], dim=1)
            done |= nxt == ord("\n")
            if bool(done.all()):
                break
        for p, row in zip(group, x[:, start:].tolist()):
            text = bytes(row).decode("latin-1")
            completions[p] = text[: text.index("\n") + 1] if "\n" in text else text
    return [completions[p] for p in prompts]


def eval_size(lab):
    """Prompts scored: `settings.eval_prompts`, or `smoke_eval_prompts` in a smoke run."""
    settings = lab.settings()
    key = "smoke_eval_prompts" if lab.smoke() else "eval_prompts"
    return min(SPLIT_SIZE, int(settings.get(key, SPLIT_SIZE)))


def score(lab, model, context, split):
    """Per-prompt reward (float64 array) and completions of the greedy model on `split`."""
    prompts = split_prompts(split, eval_size(lab))
    tensors = (*model.parameters(), *model.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            completions = greedy(model, prompts, context, device)
    finally:
        model.train(was_training)
    rewards = np.array([reward(p, c) for p, c in zip(prompts, completions)], dtype=np.float64)
    return rewards, completions


if __name__ == "__main__":
    val, holdout = split_prompts("val"), split_prompts("holdout")
    print(f"val {len(val)} prompts, e.g. {val[:3]}; holdout {len(holdout)}; disjoint: {not set(val) & set(holdout)}")
    print("answers:", [answer(p) for p in val[:3]])
