"""Frozen evaluation of the sft and rl leaves: the verifier's reward on fixed prompts.

This file is byte-identical in leaves/sft and leaves/rl (a test checks it).

The runner calls ``evaluate(lab, trained)`` with what ``train(lab)`` returned: a
dict with ``"model"`` (a ``torch.nn.Module`` mapping a LongTensor of bytes
``(B, T)`` to logits ``(B, T, 256)``), ``"context"`` (the longest input it
takes), ``"config"`` (the keyword arguments that rebuild the model class) and
optionally ``"base"`` (where the weights came from, from ``base.load``).

Nothing train.py computed is trusted: this module decodes greedily itself
(``prepare.score``), so the same weights give the same number, and the frozen
verifier (``prepare.reward``) checks each completion against the answer it
recomputes from the prompt. ``mean_reward`` is the verifier's mean reward over
the validation prompts (``settings.eval_prompts``; a smoke run scores
``smoke_eval_prompts``). The reward is 1 for an exact answer and 0 otherwise,
so it equals ``exact_match``, the fraction answered exactly: sft gates on
``exact_match``, rl on ``mean_reward`` (leaf.yaml). ``format_rate`` is the
fraction whose completion is an integer and a newline, right or wrong. The
per-prompt rewards are saved as the ``val_reward`` predictions and the model as
``<run dir>/checkpoint.pt`` (``base.save``), which the next leaf takes as its base.
"""

import re
import time

import numpy as np

import base
import prepare

_INTEGER_LINE = re.compile(r"^-?\d+\n$")


def _model_and_context(trained):
    if not isinstance(trained, dict) or "model" not in trained or "context" not in trained:
        raise TypeError("train() must return a dict with 'model' (torch.nn.Module) and 'context' (int)")
    return trained["model"], int(trained["context"])


def _metrics(lab, trained, split):
    model, context = _model_and_context(trained)
    rewards, completions = prepare.score(lab, model, context, split)
    format_rate = float(np.mean([bool(_INTEGER_LINE.match(c)) for c in completions]))
    mean = float(rewards.mean())
    return rewards, {"exact_match": mean, "mean_reward": mean, "format_rate": format_rate}


def evaluate(lab, trained):
    """The reward on the validation prompts; saves per-prompt rewards and the checkpoint."""
    started = time.time()
    rewards, metrics = _metrics(lab, trained, "val")
    lab.save_predictions("val_reward", rewards)
    path = base.save(lab, trained, metrics)
    lab.log(f"eval: exact_match {metrics['exact_match']:.4f} on {len(rewards)} prompts "
            f"(format {metrics['format_rate']:.3f}) in {time.time() - started:.1f}s; checkpoint {path}")
    return metrics


def evaluate_holdout(lab, trained):
    """The same on the held-out prompts, for explicit holdout checks only (`lab holdout`)."""
    _, metrics = _metrics(lab, trained, "holdout")
    return metrics
