"""Frozen data preparation of the pretrain leaf: bytes of Python source code.

The corpus is the source of an installed package the model has no reason to
import: every ``.py`` file under the package directory of ``pygments==2.21.0``
(BSD-2-Clause), sorted by relative path, concatenated as raw bytes. It is in
the leaf's requirements, so the leaf needs no download; it is pinned by
version, file count, byte count and sha256 (``CORPUS``), and a mismatch is an
error that names both, never a silent change of the data the leaderboard is
measured on. It is not the standard library on purpose: every Python process
reads the stdlib, so a sandbox cannot seal it, while leaf.yaml seals this
package (``sealed.site_packages``): the train and infer workers cannot read
it, only this file can, in the frozen data worker.

Splits are contiguous and fixed, by position: the first 80% of the bytes train,
the next 10% validate (the metric), the last 10% are held out (``lab holdout``).

The evaluation set of a split is a fixed, evenly spaced selection of K windows
of ``chunk + 1`` bytes (``eval_windows``), so a bounded number of bytes still
covers many files. Inputs are the first ``chunk`` bytes of each window and
targets the next byte at each position (``window[1:]``): the model is scored on
exactly K * chunk bytes and the infer worker never sees the last target.
``compression_bars`` gives what general-purpose compressors achieve on exactly
the target bytes: the bars a language model should clear.

``data(lab)`` is the entry point (``entry.data`` in leaf.yaml). Nothing is
cached here: the harness caches data()'s result per leaf.lock and tier.
"""

import hashlib
import importlib.metadata
import lzma
import os
import sys

import numpy as np

# The corpus every figure of this leaf is measured on. Change it only together
# with a new baseline (and a new `lab lock`): changing it changes the task.
CORPUS = {
    "package": "pygments",
    "version": "2.21.0",
    "files": 343,
    "bytes": 4_577_209,
    "sha256": "30aab47e680e4f199c076510a8bd639281aabd2b9090141521e3ff0e58782b5e",
}
SPLITS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "holdout": (0.9, 1.0)}
EVALUATED = ("val", "holdout")
VOCAB = 256  # bytes
XZ_PRESET = 9 | lzma.PRESET_EXTREME  # `xz -9e`
ZSTD_LEVEL = 22  # zstd's highest (`zstd --ultra -22`)
DEFAULT_EVAL = {"eval_bytes": 131072, "smoke_eval_bytes": 32768, "eval_chunk": 4096}


class CorpusMismatch(RuntimeError):
    """The installed package is not the pinned corpus (absent, another version, other bytes)."""


def corpus_sources():
    """(package directory, version, its `.py` files relative to it, sorted).

    Found through the installed distribution's metadata, not by importing it:
    the corpus is read as bytes, never executed.
    """
    name = CORPUS["package"]
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise CorpusMismatch(
            f"the pretrain corpus is the source of {name}=={CORPUS['version']}, which this "
            f"interpreter ({sys.executable}) does not have installed: install the leaf's "
            "requirements.txt (scripts/setup --leaves)"
        ) from None
    root = str(dist.locate_file(name))
    files = []
    for here, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(here, root)
        for n in names:
            if n.endswith(".py"):
                files.append(n if rel == "." else f"{rel.replace(os.sep, '/')}/{n}")
    return root, dist.version, sorted(files)


def read_corpus():
    """The corpus bytes, checked against `CORPUS`."""
    root, version, files = corpus_sources()
    parts = []
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            parts.append(f.read())
    data = b"".join(parts)
    digest = hashlib.sha256(data).hexdigest()
    if digest != CORPUS["sha256"]:
        raise CorpusMismatch(
            f"the pretrain corpus is the source of {CORPUS['package']} {CORPUS['version']} "
            f"({CORPUS['files']} files, {CORPUS['bytes']} bytes, sha256 {CORPUS['sha256']}); "
            f"the package installed at {root} is version {version} and gives "
            f"{len(files)} files, {len(data)} bytes, sha256 {digest}. Install "
            f"{CORPUS['package']}=={CORPUS['version']} (the leaf's requirements.txt), "
            "or re-pin CORPUS together with a new baseline and `lab lock`."
        )
    return data


def load_splits():
    """{"train", "val", "holdout"} -> read-only uint8 arrays (views of one buffer)."""
    data = np.frombuffer(read_corpus(), dtype=np.uint8)
    n = len(data)
    return {s: data[int(n * lo) : int(n * hi)] for s, (lo, hi) in SPLITS.items()}


def eval_windows(split, total_bytes, chunk):
    """(inputs, targets) of K = total_bytes // chunk evenly spaced windows of `split`.

    Each window is chunk + 1 bytes; inputs (K, chunk) uint8 are its first chunk
    bytes, targets (K, chunk) int64 its last chunk bytes: target[t] is the byte
    after input[t].
    """
    k = max(1, total_bytes // chunk)
    if k * (chunk + 1) > len(split):
        raise ValueError(f"{k} windows of {chunk + 1} bytes do not fit in a split of {len(split)} bytes")
    starts = np.linspace(0, len(split) - (chunk + 1), k).astype(np.int64)
    windows = np.stack([np.asarray(split[s : s + chunk + 1]) for s in starts])
    return np.ascontiguousarray(windows[:, :-1]), windows[:, 1:].astype(np.int64)


def scored_bytes(targets):
    """The bytes the model predicts, row by row: what the compressors get too."""
    return np.asarray(targets, dtype=np.uint8).tobytes()


def _bpb(compressed_len, n):
    return 8.0 * compressed_len / n


def _xz_len(data):
    return len(lzma.compress(data, preset=XZ_PRESET))


def compression_bars(train, target, xz_train_len=None):
    """Bits per byte of xz -9e and zstd -22 on `target` (bytes), and of xz given
    the training bytes first (compressed train + target minus compressed train).

    xz -9e of the 3.66 MB training split takes about 6 s here; pass its length
    (`xz_train_len`) to pay that once for several targets.
    """
    import zstandard

    if xz_train_len is None:
        xz_train_len = _xz_len(train)
    return {
        "xz_bpb": _bpb(_xz_len(target), len(target)),
        "zstd_bpb": _bpb(len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(target)), len(target)),
        "xz_cond_bpb": _bpb(_xz_len(train + target) - xz_train_len, len(target)),
    }


def eval_settings(lab):
    """(total_bytes, chunk) of the evaluation set, from leaf.yaml `settings` (smoke: fewer bytes)."""
    settings = {**DEFAULT_EVAL, **(lab.settings() if lab is not None else {})}
    smoke = lab is not None and lab.smoke()
    return int(settings["smoke_eval_bytes" if smoke else "eval_bytes"]), int(settings["eval_chunk"])


def data(lab):
    """The leaf's data for the harness (entry.data).

    {"train": uint8 array of the training split,
     "val": (inputs, targets), "holdout": (inputs, targets),   # see eval_windows
     "reference": {"val": bars, "holdout": bars}}              # see compression_bars
    """
    total, chunk = eval_settings(lab)
    splits = load_splits()
    train = np.ascontiguousarray(splits["train"])
    train_bytes = train.tobytes()
    xz_train = _xz_len(train_bytes)
    out = {"train": train, "reference": {}}
    for name in EVALUATED:
        inputs, targets = eval_windows(splits[name], total, chunk)
        out[name] = (inputs, targets)
        out["reference"][name] = compression_bars(train_bytes, scored_bytes(targets), xz_train)
    if lab is not None:
        bars = ", ".join(f"{k} {v:.3f}" for k, v in out["reference"]["val"].items())
        rows = out["val"][0].shape[0]
        lab.log(f"pretrain data: {len(train)} training bytes; val {rows} x {chunk} bytes scored ({bars})")
    return out


if __name__ == "__main__":
    # `python prepare.py`: the installed corpus; `--bars`: also the compressor bars
    # of the full and smoke evaluation sets (about 25 s).
    root, version, files = corpus_sources()
    corpus = read_corpus()
    print(f"{CORPUS['package']} {version}: {len(files)} files, {len(corpus)} bytes from {root}")
    print("sha256", hashlib.sha256(corpus).hexdigest())
    print({s: len(a) for s, a in load_splits().items()})
    if "--bars" in sys.argv:
        splits = load_splits()
        train_bytes = splits["train"].tobytes()
        xz_train = _xz_len(train_bytes)
        chunk = DEFAULT_EVAL["eval_chunk"]
        for total in (DEFAULT_EVAL["eval_bytes"], DEFAULT_EVAL["smoke_eval_bytes"]):
            for split in EVALUATED:
                target = scored_bytes(eval_windows(splits[split], total, chunk)[1])
                print(split, total, compression_bars(train_bytes, target, xz_train))
