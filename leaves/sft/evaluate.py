"""Frozen inference and scoring of the sft and rl leaves: greedy completions, the verifier's reward.

This file is byte-identical in leaves/sft and leaves/rl (a test checks it).

The harness calls each function in its own process, with frozen code only on
its path (nothing here imports train.py):

- ``infer(lab, prompts)`` (``entry.infer``, sandboxed, once per split) loads the
  ``checkpoint.pt`` that train.py left in ``lab.artifact_dir()`` through
  ``base.load_checkpoint``: weights only, into the frozen GPT, so nothing the
  candidate wrote is unpickled or run. It decodes greedily (no sampling: the
  same weights give the same completions), at most ``prepare.MAX_NEW`` bytes
  and up to the first newline, and returns one completion (str) per prompt.
- ``score(lab, prompts, completions, answers)`` (``entry.score``) returns, per
  prompt, ``exact_match`` (the completion up to its first newline is exactly
  the answer, and the newline is there), ``mean_reward`` (the frozen verifier
  ``prepare.reward``, which recomputes the answer from the prompt: the same
  number, under the name rl gates on) and ``format_rate`` (the completion is an
  integer and a newline, right or wrong). The harness takes each list's mean:
  sft gates on ``exact_match``, rl on ``mean_reward`` (leaf.yaml).
"""

import os
import re

import torch

import base
import prepare

_INTEGER_LINE = re.compile(r"^-?\d+\n$")


def greedy(model, prompts, context, device):
    """Each prompt's greedy completion (at most MAX_NEW bytes, up to the first newline)."""
    completions = {}
    by_length = {}
    for p in prompts:
        by_length.setdefault(len(p), []).append(p)
    for group in by_length.values():
        x = torch.tensor([prepare.encode(p) for p in group], dtype=torch.long, device=device)
        start = x.shape[1]
        done = torch.zeros(len(group), dtype=torch.bool, device=device)
        for _ in range(prepare.MAX_NEW):
            nxt = model(x[:, -context:]).float()[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, ord("\n")), nxt)
            x = torch.cat([x, nxt[:, None]], dim=1)
            done |= nxt == ord("\n")
            if bool(done.all()):
                break
        for p, row in zip(group, x[:, start:].tolist()):
            text = bytes(row).decode("latin-1")
            completions[p] = text[: text.index("\n") + 1] if "\n" in text else text
    return [completions[p] for p in prompts]


def infer(lab, prompts):
    """The greedy completions (list of str) of the trained checkpoint, one per prompt."""
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, whatever the machine
    device = torch.device(lab.device())
    path = os.path.join(lab.artifact_dir(), base.CHECKPOINT)
    model, arch, _ = base.load_checkpoint(path, "the trained checkpoint (train.py must save it with base.save)")
    model = model.to(device).eval()
    with torch.no_grad(), torch.autocast(device.type, enabled=False):
        return greedy(model, [str(p) for p in prompts], arch["context"], device)


def score(lab, prompts, completions, answers):
    """{"exact_match", "mean_reward", "format_rate"}: one float per prompt each."""
    if not len(prompts) == len(completions) == len(answers):
        raise ValueError(f"{len(prompts)} prompts, {len(completions)} completions, {len(answers)} answers")
    exact, rewards, formats = [], [], []
    for prompt, completion, expected in zip(prompts, completions, answers):
        prompt, expected = str(prompt), str(expected)
        if not isinstance(completion, str):
            raise TypeError(f"infer must return one str per prompt, got {type(completion).__name__}")
        if prepare.answer(prompt) != expected:
            raise ValueError(f"the answer of {prompt!r} is {prepare.answer(prompt)}, not {expected!r}")
        head, newline, _ = completion.partition("\n")
        exact.append(1.0 if newline and head == expected else 0.0)
        rewards.append(prepare.reward(prompt, completion))
        formats.append(1.0 if _INTEGER_LINE.match(completion) else 0.0)
    return {"exact_match": exact, "mean_reward": rewards, "format_rate": formats}
