"""Frozen: the model of the post-training leaves, the base a run starts from, and the checkpoint it leaves.

This file is byte-identical in leaves/sft and leaves/rl (a test checks it).

The model is the frozen `GPT` below: the pretrain leaf's shipped architecture
(pre-norm blocks with causal attention and a GELU MLP, learnt positions, a byte
embedding tied to the output head), at any of its sizes: the four numbers
`n_layer`, `n_embd`, `n_head` and `context` come from a checkpoint's `config`.
Every checkpoint is read with `torch.load(..., weights_only=True)` and loaded
strictly into this class: no code from a checkpoint is run. (Checkpoints used
to carry their model's source, which was executed: a pretrain candidate could
have smuggled an arithmetic solver into sft through it.) A checkpoint that does
not fit (other parameter names or shapes, an untied head, a config without the
four numbers) is refused with `BaseMismatch`: sft and rl start only from
checkpoints of this GPT family.

`load(lab)` returns the base declared as input `base` in leaf.yaml: the
`checkpoint.pt` of the upstream leaf's current leader (pretrain's for sft,
sft's for rl), which the runner resolved and fingerprinted (`lab.input("base")`).
The file is re-hashed first: it must be the one the runner recorded.

Without an upstream leader (a lab where the upstream leaf never kept a run, or
has no such leaf, as in CI's smoke runs) the base is the **fallback**: the GPT
of the pretrain leaf's shipped shape (4 layers, width 128, 4 heads, context
128), freshly initialised from the run's seed. The runner records such runs
with base sha256 `none`; they are compared only with each other, never with
runs from a real base.

`save(lab, model, config, context)` writes `checkpoint.pt` into
`lab.artifact_dir()`: {"state_dict", "config", "context"} (and "base", where the
weights came from), the format `load` and `load_checkpoint` read, so the
leader can seed the next leaf and the frozen inference can score it.
"""

import hashlib
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import prepare

INPUT = "base"
CHECKPOINT = "checkpoint.pt"
ARCH = ("n_layer", "n_embd", "n_head", "context")
FALLBACK_CONFIG = {"n_layer": 4, "n_embd": 128, "n_head": 4, "context": 128}
FAMILY = ("sft and rl start only from checkpoints of the frozen GPT family of base.py "
          "(the pretrain leaf's shipped architecture, any n_layer, n_embd, n_head and context)")


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
    """The frozen byte-level GPT: the pretrain leaf's shipped architecture."""

    def __init__(self, n_layer, n_embd, n_head, context):
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
    """A checkpoint cannot be used: changed since the runner hashed it, or not of the frozen GPT family."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def architecture(config, context, origin):
    """The four numbers that size the frozen GPT, checked; BaseMismatch when absent or invalid."""
    if not isinstance(config, dict):
        raise BaseMismatch(f"{origin}: its config is not a dict; {FAMILY}")
    arch = {}
    for key in ARCH:
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BaseMismatch(f"{origin}: config[{key!r}] is {value!r}, not a positive int; {FAMILY}")
        arch[key] = value
    if arch["n_embd"] % arch["n_head"]:
        raise BaseMismatch(f"{origin}: n_embd {arch['n_embd']} is not a multiple of n_head {arch['n_head']}")
    if context != arch["context"]:
        raise BaseMismatch(f"{origin}: its context {context!r} differs from config['context'] {arch['context']}")
    return arch


def check_fits(state_dict, arch, origin):
    """BaseMismatch unless `state_dict` has exactly the frozen GPT's parameter names and shapes."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise BaseMismatch(f"{origin}: its state_dict is not a dict of tensors; {FAMILY}")
    with torch.device("meta"):  # shapes only: nothing allocated before the checkpoint fits
        expected = {k: tuple(v.shape) for k, v in GPT(**arch).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    common = sorted(set(got) & set(expected))
    shapes = [f"{k} {got[k]} (expected {expected[k]})" for k in common if got[k] != expected[k]]
    problems = [f"{label}: {', '.join(items[:6])}{' …' if len(items) > 6 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected), ("other shapes", shapes))
                if items]
    if not problems and not torch.equal(state_dict["tok.weight"], state_dict["head.weight"]):
        problems.append("head.weight differs from tok.weight (the frozen GPT ties them)")
    if problems:
        raise BaseMismatch(f"{origin} does not fit the frozen GPT {arch}: {'; '.join(problems)}; {FAMILY}")


def load_checkpoint(path, origin):
    """(model, arch, checkpoint): the frozen GPT with the weights of `path`, read as weights only."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BaseMismatch(f"{origin}: no checkpoint at {path}") from None
    except Exception as e:  # torch's refusal of anything but tensors and plain containers
        why = next((line.strip() for line in str(e).splitlines() if "Unsupported global" in line), type(e).__name__)
        raise BaseMismatch(f"{origin}: {path} holds more than weights ({why}); {FAMILY}") from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "config", "context"} <= set(checkpoint):
        raise BaseMismatch(f"{origin}: {path} is not a dict with state_dict, config and context; {FAMILY}")
    arch = architecture(checkpoint["config"], checkpoint["context"], origin)
    check_fits(checkpoint["state_dict"], arch, origin)
    model = GPT(**arch)
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model, arch, checkpoint


def load(lab):
    """{"model", "context", "config", "base"}: the upstream leader's model, or the fallback.

    `config` is the four numbers of the GPT; `base` says where the weights came
    from: {"leaf", "experiment", "sha256"}, or {"sha256": "none"} for the fallback.
    """
    found = lab.input(INPUT)
    if found is None:
        torch.manual_seed(lab.seed())
        model = GPT(**FALLBACK_CONFIG)
        lab.log(f"base: no upstream leader; the fallback (a freshly initialised GPT {FALLBACK_CONFIG})")
        return {"model": model, "context": FALLBACK_CONFIG["context"], "config": dict(FALLBACK_CONFIG),
                "base": {"sha256": "none"}}
    origin = f"{found.get('leaf', 'upstream')} leader {found.get('experiment', '?')} ({found['path']})"
    if _sha256(found["path"]) != found["sha256"]:
        raise BaseMismatch(f"{origin} changed after the runner recorded its sha256 {found['sha256']}")
    model, arch, _ = load_checkpoint(found["path"], origin)
    lab.log(f"base: {origin}, sha256 {found['sha256'][:12]}, GPT {arch}")
    base = {"leaf": found.get("leaf"), "experiment": found.get("experiment"), "sha256": found["sha256"]}
    return {"model": model, "context": arch["context"], "config": arch, "base": base}


def save(lab, model, config, context, base=None):
    """`checkpoint.pt` of `model` in `lab.artifact_dir()`; returns its path.

    Checked first: a model that left the frozen GPT family would only fail
    later, in the frozen inference.
    """
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    arch = architecture(config, context, "the trained model")
    check_fits(state, arch, "the trained model")
    path = os.path.join(lab.artifact_dir(), CHECKPOINT)
    checkpoint = {"state_dict": state, "config": arch, "context": int(context)}
    if base is not None:
        checkpoint["base"] = base
    torch.save(checkpoint, path)
    return path
