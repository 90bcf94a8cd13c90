"""Mutable training code of the pretrain leaf: a small byte-level GPT, trained and run.

`train(lab, data)` trains from scratch on `data` (the training split's bytes, a
uint8 array, from the frozen prepare.data) until the wall clock says stop, and
saves `checkpoint.pt` into `lab.artifact_dir()`: {"state_dict", "config",
"context"}. `infer(lab, inputs)` runs in a separate, sandboxed process after
training: it loads that checkpoint and returns next-byte logits for the
evaluation inputs. Both are yours to change (the architecture is the
experiment); the contract between them and the harness:

- `infer` gets one split's inputs, a (K, T) integer array of bytes, and returns
  float32 logits (K, T, 256): row k, position t predicts the byte after
  inputs[k, t]. The harness scores bits per byte itself against targets it
  never hands out, and re-runs `infer` on rows whose suffix it replaced: the
  logits at t must not depend on any input after t (a non-causal model is
  refused).
- `infer` reads only what `train` left in `lab.artifact_dir()` (or returned:
  `lab.trained()`); it cannot write anywhere, and neither worker can read the
  validation bytes or the corpus they come from.
- `checkpoint.pt` is also what the sft leaf starts from when this run leads.
  sft loads it into its own frozen GPT (leaves/sft/base.py), strictly and
  weights only: a checkpoint whose `config` (n_layer, n_embd, n_head, context)
  and state_dict (parameter names and shapes) do not fit that GPT is still a
  valid result here, but sft refuses it as a base.

`lab.deadline()` is when train() must have returned: the runner kills it then,
and inference gets its own budget afterwards. The learning-rate schedule runs on
that clock, not on a step count: warm up, hold, then decay linearly to zero as
the deadline approaches, so the same code fits a 30 s smoke budget and a 5 min
full one.
"""

import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import prepare

CONFIG = {
    "n_layer": 4,
    "n_embd": 128,
    "n_head": 4,
    "context": 128,
    "batch_size": 16,
    "lr": 3e-3,
    "min_lr_frac": 0.0,
    "warmup_steps": 30,
    "cooldown_frac": 0.5,  # last fraction of the training time spent decaying to min_lr
    "weight_decay": 0.1,
    "betas": (0.9, 0.95),
    "grad_clip": 1.0,
    "dropout": 0.0,
    # infer: bytes predicted per forward pass. 64 (context // 2): each pass also
    # re-reads the 64 bytes before its piece, so every byte is predicted from at
    # least 64 before it, at twice the passes (val_bpb 1.492 -> 1.388, DATA.md).
    # None: the context, so pieces do not overlap and a piece's first bytes have
    # little to go on.
    "infer_stride": 64,
}
REPORT_EVERY_S = 5.0
FIRST_STEP_SECONDS = 2.0
SAVE_SECONDS = 1.0  # writing checkpoint.pt after the last step (3 MB as shipped)
CHECKPOINT = "checkpoint.pt"  # in lab.artifact_dir(); the sft leaf's input `base`
INFER_BATCH_TOKENS = 16384  # tokens per forward pass in infer: bounds its memory


# ---------------------------------------------------------------------- model
class Block(nn.Module):
    def __init__(self, d, n_head, dropout):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d, bias=False), nn.GELU(), nn.Linear(4 * d, d, bias=False))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, n_layer, n_embd, n_head, context, dropout=0.0, **_):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(prepare.VOCAB, n_embd)
        self.pos = nn.Embedding(context, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, prepare.VOCAB, bias=False)
        self.head.weight = self.tok.weight  # tied: fewer parameters, faster start
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# ------------------------------------------------------------------ training
class Threads:
    """The CPU thread count that trains fastest right now, re-measured as load changes.

    All cores of the affinity mask is fastest on an idle machine, but on a shared
    one a thread that loses its core stalls every parallel op: on 2 busy cores,
    2 threads measured 2.4 to 8 times slower per step than 1. So every
    `every` seconds a few real training steps are timed at each candidate count
    and the fastest is kept. Probing a slow count costs steps, so while the same
    count keeps winning clearly the interval doubles (up to 8 times); but when
    steps get 1.5 times slower than the probe measured (the load changed), the
    next probe comes at once. A no-op on GPU.
    """

    def __init__(self, device, every=30.0, steps=3):
        cores = len(os.sched_getaffinity(0))
        self.options = sorted({1, max(1, cores // 2), cores}) if device == "cpu" else []
        self.base_every, self.every, self.steps = every, every, steps
        self.plan, self.times, self.next_probe, self.current = [], {}, 0.0, cores
        self.measured, self.recent = None, None  # step seconds: at the last probe, moving average since
        self.probed_at = 0.0
        if self.options:
            torch.set_num_threads(cores)

    def before_step(self, now, stop_at):
        # The first probe always; later ones not near the end, where a slow count costs most.
        probe_due = now >= self.next_probe and (not self.times or stop_at - now > self.base_every)
        if len(self.options) > 1 and not self.plan and probe_due:
            self.plan = [n for n in self.options for _ in range(self.steps)]
            self.times = {}
        if self.plan:
            torch.set_num_threads(self.plan[0])

    def after_step(self, seconds, now):
        """After a probe's last step: a line saying what was measured and chosen; else None."""
        if not self.plan:
            self.recent = seconds if self.recent is None else 0.8 * self.recent + 0.2 * seconds
            if self.measured and self.recent > 1.5 * self.measured:
                self.next_probe = min(self.next_probe, max(now, self.probed_at + 10.0))
            return None
        n = self.plan.pop(0)
        self.times.setdefault(n, []).append(seconds)
        # The first step at each count pays for the switch: not counted.
        fastest = {k: min(v[1:] or v) for k, v in self.times.items()}
        if len(self.times[n]) >= 2 and fastest[n] > 1.5 * min(fastest.values()):
            self.plan = [k for k in self.plan if k != n]  # clearly slower: stop probing it
        if self.plan:
            return None
        best = min(fastest, key=fastest.get)
        clear = max(fastest.values()) > 1.5 * fastest[best]
        same = best == self.current
        self.every = min(2 * self.every, 8 * self.base_every) if clear and same else self.base_every
        self.current, self.measured, self.recent = best, fastest[best], None
        torch.set_num_threads(best)
        self.probed_at, self.next_probe = now, now + self.every
        return "threads: " + ", ".join(f"{k}: {v * 1000:.0f} ms/step" for k, v in fastest.items()) + f"; using {best}"


def make_optimizer(model, cfg, device):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=cfg["betas"], fused=device == "cuda")


def lr_at(step, frac, cfg):
    """Linear warm-up by steps, then hold, then linear decay over the last `cooldown_frac` of the time."""
    warm = min(1.0, (step + 1) / cfg["warmup_steps"])
    left = 1.0 - frac
    decay = min(1.0, left / cfg["cooldown_frac"]) if cfg["cooldown_frac"] > 0 else 1.0
    return cfg["lr"] * warm * (cfg["min_lr_frac"] + (1 - cfg["min_lr_frac"]) * max(0.0, decay))


def stop_margin(step_seconds):
    """Seconds before `lab.deadline()` at which to stop starting steps.

    The deadline is when train() must have returned (the runner kills it then;
    inference gets its own budget afterwards), so leave room for the step in
    flight and a slower one, for saving the checkpoint and for returning.
    """
    return 1.0 + 3.0 * step_seconds + SAVE_SECONDS


def batches(data, cfg, gen, device):
    n, t, b = len(data), cfg["context"], cfg["batch_size"]
    data = torch.from_numpy(np.asarray(data).astype(np.int64))
    while True:
        ix = torch.randint(n - t - 1, (b,), generator=gen)
        rows = torch.stack([data[i : i + t + 1] for i in ix.tolist()])
        rows = rows.pin_memory().to(device, non_blocking=True) if device == "cuda" else rows
        yield rows[:, :-1], rows[:, 1:]


def train(lab, data):
    cfg = dict(CONFIG)
    device = lab.device()
    threads = Threads(device)
    torch.manual_seed(lab.seed())
    gen = torch.Generator().manual_seed(lab.seed())
    train_data = np.asarray(data)

    model = GPT(**cfg).to(device)
    opt = make_optimizer(model, cfg, device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    n_params = sum(p.numel() for p in model.parameters())
    lab.log(f"pretrain: {n_params / 1e6:.2f}M parameters on {device}, {torch.get_num_threads()} threads")

    start = time.time()
    step_seconds = last_step_seconds = FIRST_STEP_SECONDS  # replaced by measured ones after the first steps
    step, last_report, loss_sum, loss_n = 0, start, 0.0, 0
    for x, y in batches(train_data, cfg, gen, device):
        now = time.time()
        if step == 2:
            timed_from = now  # the first steps pay for allocation and warm-up: not timed
        elif step > 2:
            step_seconds = max((now - timed_from) / (step - 2), last_step_seconds)
        stop_at = lab.deadline() - stop_margin(step_seconds)
        if now >= stop_at:
            break
        threads.before_step(now, stop_at)
        frac = (now - start) / max(1e-6, stop_at - start)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, frac, cfg)
        with amp:
            logits = model(x)
            loss = F.cross_entropy(logits.float().view(-1, prepare.VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        step += 1
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        last_step_seconds = time.time() - now
        probed = threads.after_step(last_step_seconds, now)
        if probed:
            lab.log(f"pretrain: step {step}: {probed}")
        if now - last_report >= REPORT_EVERY_S:
            lab.report(step=step, train_loss=loss_sum / loss_n, train_bpb=loss_sum / loss_n / math.log(2),
                       threads=torch.get_num_threads())
            last_report, loss_sum, loss_n = now, 0.0, 0

    lab.log(f"pretrain: {step} steps in {time.time() - start:.1f}s")
    lab.report(step=step)
    save(lab, model, {**cfg, "steps": step, "n_params": n_params}, cfg["context"])


def save(lab, model, config, context):
    """`checkpoint.pt` in the artifact directory: weights (on cpu), config, context."""
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": config, "context": int(context)},
               os.path.join(lab.artifact_dir(), CHECKPOINT))


# ----------------------------------------------------------------- inference
def load(lab, device):
    """The trained model from `checkpoint.pt` (weights only), in eval mode, and its context."""
    checkpoint = torch.load(os.path.join(lab.artifact_dir(), CHECKPOINT), map_location="cpu", weights_only=True)
    model = GPT(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model.to(device).eval(), int(checkpoint["context"])


def infer(lab, inputs):
    """Logits (K, T, 256) float32 for bytes (K, T), each predicted from the bytes before
    it: `infer_stride` bytes per forward pass of at most the model's context; no sampling."""
    device = lab.device()
    model, context = load(lab, device)
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.long)
    rows, width = x.shape
    out = np.empty((rows, width, prepare.VOCAB), dtype=np.float32)
    stride = min(CONFIG["infer_stride"] or context, context)
    per_pass = max(1, INFER_BATCH_TOKENS // min(context, width))
    with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=False):
        for r in range(0, rows, per_pass):
            block = x[r : r + per_pass].to(device)
            for s in range(0, width, stride):
                lo = max(0, s + stride - context)  # the pass reads [lo, s + stride), keeps [s, s + stride)
                logits = model(block[:, lo : s + stride]).float()
                out[r : r + block.shape[0], s : s + stride] = logits[:, s - lo :].cpu().numpy()
    return out
