"""Frozen task of the sft and rl leaves: multi-step integer arithmetic with exact answers.

This file is byte-identical in leaves/sft and leaves/rl (a test checks it): both
leaves post-train on the same task and score on the same prompts, so an rl
result reads directly against the sft leader it started from.

A problem is two or three integers in [0, 99] joined by `+` or `-`, evaluated
left to right, followed by `=`: the prompt `47+18-25=`. The answer is the
decimal integer and a newline: `40\\n` (negative answers carry a `-`). Tokens
are raw bytes (VOCAB = 256, the pretrain leaf's vocabulary), so a byte-level
model from the pretrain leaf reads the task as it is.

The verifier (`reward`) recomputes the answer from the prompt itself: a
completion earns 1.0 when its text up to the first newline is exactly the
answer and the newline was produced, else 0.0. train.py may import it (rl's
GRPO rewards its own samples with it); the metric uses the same function.

The scored prompts are sealed data files, `data/val.txt` and `data/holdout.txt`
(one prompt per line, 512 each, distinct, disjoint), drawn once with
`make_prompt` from a random seed that was not recorded anywhere: the mutable
code cannot regenerate them, and leaf.yaml seals the files (`sealed.leaf`), so
the train and infer workers cannot read them. Only `data`, in the frozen data
worker, reads them; their sha256 are pinned in `SPLIT_SHA256` (the same files
in both leaves). The training prompts are a pool drawn from a fixed, public
seed with every scored prompt removed.
"""

import hashlib
import os
import re

import numpy as np

VOCAB = 256  # bytes
MAX_OPERAND = 99
OPERANDS = (2, 3)
MAX_NEW = 6  # bytes a completion may take: sign, three digits, newline, one spare
SPLIT_SIZE = 512
SPLIT_FILES = {"val": "data/val.txt", "holdout": "data/holdout.txt"}
SPLIT_SHA256 = {
    "val": "de5e4a40ff8b6ba80f51c94c4c213405fad9a7ff091e6f726ce506d385be3f34",
    "holdout": "05516717bb9721ec5b93d8ceed44d153258f8367c07891b2627b915ba814fa66",
}
TRAIN_POOL = 100_000  # training prompts handed to train(), drawn with repeats as the task draws them
TRAIN_SEED = 20_261_201  # public: nothing is scored on the pool
DEFAULT_EVAL = {"eval_prompts": SPLIT_SIZE, "smoke_eval_prompts": 128}
_PROBLEM = re.compile(r"^(\d+)((?:[+-]\d+)+)=$")


class SplitMismatch(RuntimeError):
    """A sealed prompt file is missing or is not the pinned one."""


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


def encode(text):
    return list(text.encode("latin-1"))


def read_split(leaf_dir, split):
    """The 512 sealed prompts of `val` or `holdout`, checked against `SPLIT_SHA256`."""
    path = os.path.join(leaf_dir, SPLIT_FILES[split])
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SplitMismatch(f"the {split} prompts {path} are missing: they ship with the leaf") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SPLIT_SHA256[split]:
        raise SplitMismatch(f"{path} has sha256 {digest}, not the pinned {SPLIT_SHA256[split]}: "
                            "the scored prompts changed; restore the file (it is the same in sft and rl)")
    prompts = raw.decode("ascii").splitlines()
    if len(prompts) != SPLIT_SIZE or len(set(prompts)) != SPLIT_SIZE:
        raise SplitMismatch(f"{path} must hold {SPLIT_SIZE} distinct prompts, one per line")
    return prompts


def train_pool(scored, n=TRAIN_POOL, seed=TRAIN_SEED):
    """`n` training prompts from `make_prompt` (repeats kept: the task's own mix), none in `scored`."""
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        prompt = make_prompt(rng)
        if prompt not in scored:
            out.append(prompt)
    return out


def eval_size(lab):
    """Prompts scored per split: `settings.eval_prompts`, or `smoke_eval_prompts` in a smoke run."""
    settings = {**DEFAULT_EVAL, **lab.settings()}
    key = "smoke_eval_prompts" if lab.smoke() else "eval_prompts"
    return min(SPLIT_SIZE, int(settings[key]))


def data(lab):
    """The leaf's data for the harness (entry.data, frozen worker).

    {"train": list of TRAIN_POOL prompts (str), none of them scored,
     "val": (prompts, answers), "holdout": (prompts, answers)}: the first
    `eval_size(lab)` sealed prompts of each split and their answers (str,
    without the newline).
    """
    splits = {s: read_split(lab.leaf_dir(), s) for s in SPLIT_FILES}
    if set(splits["val"]) & set(splits["holdout"]):
        raise SplitMismatch("the val and holdout prompts overlap")
    pool = train_pool(set(splits["val"]) | set(splits["holdout"]))
    n = eval_size(lab)
    out = {"train": pool}
    for split, prompts in splits.items():
        out[split] = (prompts[:n], [answer(p) for p in prompts[:n]])
    lab.log(f"data: {len(pool)} training prompts; {n} val and {n} held-out prompts scored")
    return out
