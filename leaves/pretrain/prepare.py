"""Frozen data preparation for the pretrain leaf: bytes of Python source code.

The corpus is the CPython standard library's own top-level ``.py`` files (the
directory ``sysconfig.get_paths()["stdlib"]``), sorted by file name and
concatenated as raw bytes. It ships with every Python installation, so the leaf
needs no download; but another Python version has another standard library, so
the corpus is pinned by its sha256 and the interpreter version it came from
(``CORPUS``). A mismatch is an error that names both, never a silent change of
the data the leaderboard is measured on.

Splits are contiguous and fixed, by position: the first 80% of the bytes train,
the next 10% validate (the metric), the last 10% are held out (``lab holdout``).

The evaluation set is a fixed, evenly spaced selection of chunks of a split
(``eval_chunks``), so a bounded number of bytes still covers many files.
``compression_bars`` gives what general-purpose compressors achieve on exactly
those bytes: the bar a language model should clear. Everything is cached under
``lab.data_dir()`` (``lab`` may be None: no cache, for use outside the runner).
"""

import hashlib
import json
import lzma
import os
import sys
import sysconfig
import tempfile

import numpy as np

# The corpus every figure of this leaf is measured on. Regenerate only together
# with a new baseline (and a new `lab lock`): changing it changes the task.
CORPUS = {
    "python": "3.11.7",
    "files": 168,
    "bytes": 4_698_388,
    "sha256": "2e31e854ce7c5a39d3549a94420e7ba4b51281ef0f32fc8b6ddd601eff6d7d42",
}
SPLITS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "holdout": (0.9, 1.0)}
VOCAB = 256  # bytes
XZ_PRESET = 9 | lzma.PRESET_EXTREME  # `xz -9e`
ZSTD_LEVEL = 22  # zstd's highest (`zstd --ultra -22`)


class CorpusMismatch(RuntimeError):
    """This interpreter's standard library is not the pinned corpus."""


def stdlib_sources():
    """The corpus files: top-level `.py` files of the stdlib, sorted by name."""
    root = sysconfig.get_paths()["stdlib"]
    names = sorted(n for n in os.listdir(root) if n.endswith(".py") and os.path.isfile(os.path.join(root, n)))
    return root, names


def read_corpus():
    """The corpus bytes from this interpreter's stdlib, checked against `CORPUS`."""
    root, names = stdlib_sources()
    parts = []
    for name in names:
        with open(os.path.join(root, name), "rb") as f:
            parts.append(f.read())
    data = b"".join(parts)
    digest = hashlib.sha256(data).hexdigest()
    if digest != CORPUS["sha256"]:
        here = sys.version.split()[0]
        raise CorpusMismatch(
            f"the pretrain corpus is the standard library of Python {CORPUS['python']} "
            f"({CORPUS['files']} files, {CORPUS['bytes']} bytes, sha256 {CORPUS['sha256']}); "
            f"this interpreter is Python {here}, whose stdlib at {root} gives "
            f"{len(names)} files, {len(data)} bytes, sha256 {digest}. "
            f"Run the leaf with Python {CORPUS['python']} (the .venv the runner embeds), "
            "or re-pin CORPUS together with a new baseline and `lab lock`."
        )
    return data


def _cache_dir(lab):
    if lab is None:
        return None
    path = os.path.join(lab.data_dir(), "corpus-" + CORPUS["sha256"][:16])
    os.makedirs(path, exist_ok=True)
    return path


def _atomic_write(path, write):
    """Write through a temporary file so a run killed mid-write leaves no half cache."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_splits(lab=None):
    """{"train", "val", "holdout"} -> read-only uint8 arrays, cached as .npy files."""
    cache = _cache_dir(lab)
    paths = {s: os.path.join(cache, s + ".npy") for s in SPLITS} if cache else {}
    if cache and all(os.path.exists(p) for p in paths.values()):
        splits = {s: np.load(p, mmap_mode="r") for s, p in paths.items()}
        if sum(len(a) for a in splits.values()) == CORPUS["bytes"]:
            return splits
    data = np.frombuffer(read_corpus(), dtype=np.uint8)
    n = len(data)
    splits = {s: data[int(n * lo) : int(n * hi)] for s, (lo, hi) in SPLITS.items()}
    for s, p in paths.items():
        _atomic_write(p, lambda f, a=splits[s]: np.save(f, a))
    return splits


def eval_chunks(split, total_bytes, chunk):
    """A fixed (K, chunk + 1) uint8 array of evenly spaced chunks of `split`.

    Each row is scored on its last `chunk` bytes (the first byte is context
    only), so the model is scored on exactly K * chunk bytes: `bytes_scored`.
    """
    k = max(1, total_bytes // chunk)
    if k * (chunk + 1) > len(split):
        raise ValueError(f"{k} chunks of {chunk + 1} bytes do not fit in a split of {len(split)} bytes")
    starts = np.linspace(0, len(split) - (chunk + 1), k).astype(np.int64)
    return np.stack([np.asarray(split[s : s + chunk + 1]) for s in starts])


def bytes_scored(chunks):
    """The bytes the model predicts, in order: what the compressors get too."""
    return np.ascontiguousarray(chunks[:, 1:]).tobytes()


def _bpb(compressed_len, n):
    return 8.0 * compressed_len / n


def _read_json(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return None


def _write_json(path, value):
    if path:
        _atomic_write(path, lambda f: f.write(json.dumps(value, indent=1).encode()))


def _xz_len(data):
    return len(lzma.compress(data, preset=XZ_PRESET))


def xz_train_len(lab):
    """Compressed length of the training split under xz -9e (cached: the slow part, about 6 s)."""
    cache = _cache_dir(lab)
    path = os.path.join(cache, "xz-train.json") if cache else None
    cached = _read_json(path)
    if cached is not None:
        return cached["bytes"]
    n = _xz_len(np.asarray(load_splits(lab)["train"]).tobytes())
    _write_json(path, {"bytes": n, "preset": "9e"})
    return n


def compression_bars(lab, split_name, total_bytes, chunk):
    """Bits per byte of xz -9e and zstd -22 on the evaluation bytes of a split, and
    of xz given the training split first (compressed train+target minus train).

    Cached per split and evaluation set; a fresh machine pays about 8 s once.
    """
    import zstandard

    splits = load_splits(lab)
    target = bytes_scored(eval_chunks(splits[split_name], total_bytes, chunk))
    key = hashlib.sha256(target).hexdigest()[:16]
    cache = _cache_dir(lab)
    path = os.path.join(cache, f"bars-{split_name}-{key}.json") if cache else None
    bars = _read_json(path)
    if bars is None:
        train = np.asarray(splits["train"]).tobytes()
        bars = {
            "xz_bpb": _bpb(_xz_len(target), len(target)),
            "zstd_bpb": _bpb(len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(target)), len(target)),
            "xz_cond_bpb": _bpb(_xz_len(train + target) - xz_train_len(lab), len(target)),
        }
        _write_json(path, bars)
    return bars


def eval_settings(lab):
    """(total_bytes, chunk) of the evaluation set, from leaf.yaml `settings`."""
    settings = lab.settings() if lab is not None else {}
    smoke = lab is not None and lab.smoke()
    total = settings.get("smoke_eval_bytes" if smoke else "eval_bytes", 131072)
    return int(total), int(settings.get("eval_chunk", 4096))


if __name__ == "__main__":
    # `python prepare.py`: this interpreter's corpus; `--bars`: also the compressor
    # bars of the evaluation sets (about 20 s, nothing cached).
    root, names = stdlib_sources()
    data = read_corpus()
    print(f"Python {sys.version.split()[0]}: {len(names)} files, {len(data)} bytes from {root}")
    print("sha256", hashlib.sha256(data).hexdigest())
    print({s: len(a) for s, a in load_splits().items()})
    if "--bars" in sys.argv:
        for split, total in [("val", 131072), ("val", 32768), ("holdout", 131072)]:
            print(split, total, compression_bars(None, split, total, 4096))
