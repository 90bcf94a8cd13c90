"""Frozen: the model a post-training leaf starts from, and the checkpoint it leaves.

This file is byte-identical in leaves/sft and leaves/rl (a test checks it).

`load(lab)` returns the base declared as input `base` in leaf.yaml: the
`checkpoint.pt` of the upstream leaf's current leader (pretrain's for sft, sft's
for rl), which the runner resolved and fingerprinted (`lab.input("base")`). The
checkpoint carries the source of the module that defined the model; the class
is rebuilt from it (with this leaf's prepare.py importable as `prepare`, which
gives VOCAB = 256 as the pretrain leaf's does) and the weights are loaded
strictly. The file is re-hashed first: it must be the one the runner recorded.

Without an upstream leader (a lab where the upstream leaf never kept a run, or
has no such leaf, as in CI's smoke runs) the base is the **fallback**: the
pretrain leaf's shipped architecture (4 layers, width 128, 4 heads, context 128,
byte vocabulary), freshly initialised from the run's seed. The runner records
such runs with base sha256 `none`; they are compared only with each other,
never with runs from a real base.

`save(lab, trained, metrics)` writes `<run dir>/checkpoint.pt` in the pretrain
leaf's format (state_dict, config, context, metrics, model_class, model_source)
plus `base` (where the weights came from), so the leader can seed the next leaf.
"""

import hashlib
import inspect
import math
import os
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

import prepare

INPUT = "base"
FALLBACK_CONFIG = {"n_layer": 4, "n_embd": 128, "n_head": 4, "context": 128}


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d, bias=False), nn.GELU(), nn.Linear(4 * d, d, bias=False))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """The fallback base: a byte-level GPT of the pretrain leaf's shipped shape."""

    def __init__(self, n_layer, n_embd, n_head, context, **_):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(prepare.VOCAB, n_embd)
        self.pos = nn.Embedding(context, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, prepare.VOCAB, bias=False)
        self.head.weight = self.tok.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class BaseMismatch(RuntimeError):
    """The base checkpoint cannot be used: changed since the runner hashed it, or not rebuildable."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rebuild(checkpoint, origin):
    """The model class from the checkpoint's source, instantiated with its config, weights loaded."""
    source, name = checkpoint.get("model_source"), checkpoint.get("model_class")
    if not source or not name:
        raise BaseMismatch(f"{origin} has no model_source/model_class: the model cannot be rebuilt")
    module = types.ModuleType(f"base_model_{checkpoint.get('sha256', '')[:8]}")
    exec(compile(source, f"<model source of {origin}>", "exec"), module.__dict__)
    cls = getattr(module, name, None)
    if cls is None:
        raise BaseMismatch(f"{origin}: its model source defines no class {name!r}")
    cls.__lab_source__ = source
    model = cls(**checkpoint.get("config", {}))
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model


def load(lab):
    """{"model", "context", "config", "base"}: the upstream leader's model, or the fallback.

    `base` says where the weights came from: {"leaf", "experiment", "sha256"}, or
    {"sha256": "none"} for the fallback.
    """
    found = lab.input(INPUT)
    if found is None:
        torch.manual_seed(lab.seed())
        model = GPT(**FALLBACK_CONFIG)
        lab.log(f"base: no upstream leader; the fallback (a freshly initialised GPT {FALLBACK_CONFIG})")
        return {"model": model, "context": FALLBACK_CONFIG["context"], "config": dict(FALLBACK_CONFIG),
                "base": {"sha256": "none"}}
    origin = f"{found['leaf']} leader {found['experiment']} ({found['path']})"
    if _sha256(found["path"]) != found["sha256"]:
        raise BaseMismatch(f"{origin} changed after the runner recorded its sha256 {found['sha256']}")
    checkpoint = torch.load(found["path"], map_location="cpu", weights_only=True)
    checkpoint["sha256"] = found["sha256"]
    model = _rebuild(checkpoint, origin)
    lab.log(f"base: {origin}, sha256 {found['sha256'][:12]}, metrics {checkpoint.get('metrics')}")
    base = {"leaf": found["leaf"], "experiment": found["experiment"], "sha256": found["sha256"]}
    return {"model": model, "context": int(checkpoint["context"]), "config": checkpoint.get("config", {}),
            "base": base}


def _model_source(model):
    """The source that defines the model's class: kept from the base, or its module's file."""
    source = getattr(type(model), "__lab_source__", None)
    if source:
        return source
    try:
        return inspect.getsource(sys.modules[type(model).__module__])
    except (KeyError, OSError, TypeError):
        return None


def save(lab, trained, metrics):
    """`<run dir>/checkpoint.pt` of the trained model; returns its path."""
    model = trained["model"]
    path = os.path.join(lab.run_dir(), "checkpoint.pt")
    torch.save(
        {
            "state_dict": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
            "config": trained.get("config", {}),
            "context": int(trained["context"]),
            "metrics": metrics,
            "model_class": type(model).__name__,
            "model_source": _model_source(model),
            "base": trained.get("base", {}),
        },
        path,
    )
    return path
