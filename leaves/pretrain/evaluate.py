"""Frozen evaluation of the pretrain leaf: validation bits per byte.

The runner calls ``evaluate(lab, trained)`` with whatever ``train(lab)`` returned:
a dict with

- ``"model"``: a ``torch.nn.Module`` mapping a LongTensor of bytes ``(B, T)`` to
  next-byte logits ``(B, T, 256)``; causal (position t sees bytes 0..t only);
- ``"context"``: the longest input it accepts (its context length);
- ``"config"`` (optional): a JSON-able dict of hyperparameters, stored in the
  checkpoint so another leaf can rebuild the model.

Nothing train.py computed is trusted as a metric: this module reads the bytes
itself (prepare.py), runs the model in float32 without gradients, takes the log
softmax itself and checks that the model cannot see the byte it predicts. The
evaluation set is a fixed set of evenly spaced chunks of the validation split
(``settings.eval_bytes``, ``settings.eval_chunk`` in leaf.yaml); each chunk is
cut into consecutive windows of the model's context, so each byte is predicted
once, from the bytes before it in its window. No sampling: the same model gives
the same number.

Alongside ``val_bpb`` it reports what xz -9e and zstd -22 achieve on exactly the
scored bytes (``xz_bpb``, ``zstd_bpb``) and xz given the training bytes first
(``xz_cond_bpb``): the bars a language model should clear. It then saves each
chunk's bits per byte as the ``val_chunk_bpb`` predictions (paired evidence for a
later comparison) and the model to ``<run dir>/checkpoint.pt``, so the leader's
weights can seed other leaves.
"""

import inspect
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import prepare

BATCH_TOKENS = 16384  # tokens per forward pass: bounds the evaluation's memory


def _model_and_context(trained):
    if not isinstance(trained, dict) or "model" not in trained or "context" not in trained:
        raise TypeError("train() must return a dict with 'model' (torch.nn.Module) and 'context' (int)")
    model, context = trained["model"], int(trained["context"])
    if not isinstance(model, torch.nn.Module) or context < 1:
        raise TypeError("trained['model'] must be a torch.nn.Module and trained['context'] a positive int")
    return model, context


def _logits(model, x):
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.shape != (*x.shape, prepare.VOCAB):
        raise ValueError(f"model output has shape {tuple(out.shape)}; expected {(*x.shape, prepare.VOCAB)}")
    return out.float()


def check_causal(model, chunks, context, device):
    """Refuse a model whose prediction at t depends on bytes after t (it would see its answers)."""
    n = min(context, chunks.shape[1] - 1)
    if n < 2:
        return
    x = torch.as_tensor(np.asarray(chunks[:1, :n]), dtype=torch.long, device=device)
    j = n // 2
    y = x.clone()
    y[0, j:] = (y[0, j:] + 1) % prepare.VOCAB
    a, b = _logits(model, x)[0, :j], _logits(model, y)[0, :j]
    if not torch.allclose(a, b, rtol=1e-3, atol=1e-3):
        raise ValueError(
            f"the model is not causal: changing bytes from position {j} on changed its predictions "
            f"at earlier positions (max difference {(a - b).abs().max().item():.3g})"
        )


def bits_per_byte(model, chunks, context, device):
    """Bits per byte of each chunk, over every byte but its first (a float64 array)."""
    rows, width = chunks.shape[0], chunks.shape[1] - 1
    per_pass = max(1, BATCH_TOKENS // min(context, width))
    data = torch.as_tensor(np.asarray(chunks), dtype=torch.long)
    nats = torch.zeros(rows, dtype=torch.float64)
    for r in range(0, rows, per_pass):
        block = data[r : r + per_pass].to(device)
        for s in range(0, width, context):
            e = min(s + context, width)
            logits = _logits(model, block[:, s:e])
            targets = block[:, s + 1 : e + 1].reshape(-1)
            nll = F.cross_entropy(logits.reshape(-1, prepare.VOCAB), targets, reduction="none")
            nats[r : r + block.shape[0]] += nll.view(block.shape[0], -1).sum(1).double().cpu()
    per_chunk = (nats / width / math.log(2)).numpy()
    if not np.isfinite(per_chunk).all():
        raise ValueError("the model produced non-finite logits: bits per byte is not finite")
    return per_chunk


def _score(lab, trained, split):
    model, context = _model_and_context(trained)
    tensors = (*model.parameters(), *model.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    total, chunk = prepare.eval_settings(lab)
    chunks = prepare.eval_chunks(prepare.load_splits(lab)[split], total, chunk)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            check_causal(model, chunks, context, device)
            per_chunk = bits_per_byte(model, chunks, context, device)
    finally:
        model.train(was_training)
    return per_chunk, prepare.compression_bars(lab, split, total, chunk)


def _model_source(model):
    """The source of the module defining the model's class, so the checkpoint can be rebuilt."""
    try:
        return inspect.getsource(sys.modules[type(model).__module__])
    except (KeyError, OSError, TypeError):
        return None


def _run_dir(lab, per_chunk_path):
    """The run's artifact directory: `lab.run_dir()`, or where save_predictions wrote.

    Runners without `run_dir()` still write predictions to
    `<run dir>/predictions/<name>.npy`; its grandparent is the run directory.
    """
    if hasattr(lab, "run_dir"):
        return lab.run_dir()
    if per_chunk_path:
        return os.path.dirname(os.path.dirname(per_chunk_path))
    return None


def save_checkpoint(lab, trained, metrics, run_dir):
    """`<run dir>/checkpoint.pt`: weights, config, context, metrics and model source."""
    if run_dir is None:
        lab.log("pretrain: no run directory known; checkpoint not saved")
        return None
    path = os.path.join(run_dir, "checkpoint.pt")
    model, context = _model_and_context(trained)
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    torch.save(
        {
            "state_dict": state,
            "config": trained.get("config", {}),
            "context": context,
            "metrics": metrics,
            "model_class": type(model).__name__,
            "model_source": _model_source(model),
            "corpus_sha256": prepare.CORPUS["sha256"],
        },
        path,
    )
    return path


def evaluate(lab, trained):
    """Validation bits per byte and the compressor bars on the same bytes; saves the
    per-chunk figures (`val_chunk_bpb` predictions) and the checkpoint."""
    started = time.time()
    per_chunk, bars = _score(lab, trained, "val")
    bpb = float(per_chunk.mean())
    metrics = {"val_bpb": bpb, **bars}
    saved = lab.save_predictions("val_chunk_bpb", per_chunk)
    path = save_checkpoint(lab, trained, metrics, _run_dir(lab, saved))
    lab.log(f"pretrain: val_bpb {bpb:.4f} (xz {bars['xz_bpb']:.3f}, zstd {bars['zstd_bpb']:.3f}, "
            f"xz|train {bars['xz_cond_bpb']:.3f}) in {time.time() - started:.1f}s; checkpoint {path}")
    return metrics


def evaluate_holdout(lab, trained):
    """The same measurement on the held-out split, for explicit holdout checks only.

    The figure is returned under both ``holdout_bpb`` and the manifest's metric
    name ``val_bpb``, so a harness that looks the primary metric up by name finds it.
    """
    per_chunk, bars = _score(lab, trained, "holdout")
    bpb = float(per_chunk.mean())
    return {"val_bpb": bpb, "holdout_bpb": bpb, **bars}
