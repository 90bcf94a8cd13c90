"""The worker's side of each role: call the leaf's function, check what it
returned, and write it where the supervisor reads it. Embedded in the lab binary
(python/roles.rs) and run inside the worker's interpreter; nothing here is a
metric. Files written for the supervisor are .npy (never pickled: the supervisor
and frozen scorers never unpickle what code under judgement produced) or JSON.
Pickles exist only where frozen code wrote them (prepared inputs) or where the
same code reads them back (the trained object of a mutable infer). `lab.memo`'s
entries are .npy files that only code under judgement reads (never pickles).
"""

import importlib
import math
import os
import struct

# The C pickler, not `pickle`, and `json` only where it is used: both pull in
# `re` and more, 10 ms a worker, and a trivial leaf's whole overhead budget is 50 ms.
import _pickle as pickle


class Refused(Exception):
    """What the leaf returned cannot be used: the run ends with this message."""


def target(spec):
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def _numeric_array(value):
    try:
        import numpy as np
    except ImportError:
        return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value
    return None


def _strings(value):
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _numbers(value):
    if isinstance(value, (list, tuple)) and all(type(v) in (int, float) for v in value):
        return [float(v) for v in value]
    return None


def _save_floats(path, values):
    """A 1-D float64 .npy written without numpy: plain lists cost no import."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % len(values)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%dd" % len(values), *values))


def _save_inputs(value, stem):
    array = _numeric_array(value)
    if array is not None:
        import numpy as np

        np.save(stem + ".npy", np.ascontiguousarray(array), allow_pickle=False)
    else:
        with open(stem + ".pkl", "wb") as f:
            pickle.dump(value, f, protocol=5)


def _save_targets(value, stem, split):
    strings = _strings(value)
    if strings is not None:
        import json

        with open(stem + ".json", "w") as f:
            json.dump(strings, f)
        return len(strings)
    numbers = _numbers(value)
    if numbers is not None:
        _save_floats(stem + ".npy", numbers)
        return len(numbers)
    import numpy as np

    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise Refused(f"data's `{split}` targets must be numbers or strings: {e}") from None
    np.save(stem + ".npy", array, allow_pickle=False)
    return len(array)


def load(path):
    """Inputs as prepared: an .npy array or a pickled object (frozen code wrote it)."""
    if path.endswith(".npy"):
        import numpy as np

        return np.load(path, allow_pickle=False)
    with open(path, "rb") as f:
        return pickle.load(f)


def prepare(lab, data, out, submission):
    """The frozen data(lab) -> train.pkl, eval/<split>, targets/<split>, reference.json, submission.json."""
    import json

    splits = target(data)(lab)
    if not isinstance(splits, dict):
        raise Refused('data must return a dict of splits: {"train": ..., "val": (inputs, targets), ...}')
    if "val" not in splits:
        raise Refused("data returned no `val` split")
    os.makedirs(os.path.join(out, "eval"))
    os.makedirs(os.path.join(out, "targets"))
    with open(os.path.join(out, "train.pkl"), "wb") as f:
        pickle.dump(splits.get("train"), f, protocol=5)
    for split in ("val", "holdout"):
        if split not in splits:
            continue
        pair = splits[split]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise Refused(f"data's `{split}` must be a pair (inputs, targets)")
        inputs, targets = pair
        n = _save_targets(targets, os.path.join(out, "targets", split), split)
        if len(inputs) != n:
            raise Refused(f"data's `{split}` has {len(inputs)} inputs but {n} targets")
        _save_inputs(inputs, os.path.join(out, "eval", split))
    if "submission" in splits:
        pair = splits["submission"]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise Refused("data's `submission` must be a pair (inputs, None)")
        _save_inputs(pair[0], os.path.join(out, "eval", "submission"))
    reference = splits.get("reference")
    if reference is not None:
        checked = {}
        for split, figures in dict(reference).items():
            checked[split] = {k: float(v) for k, v in dict(figures).items() if math.isfinite(float(v))}
        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump(checked, f)
    if submission:
        rows = target(submission)(lab)
        with open(os.path.join(out, "submission.json"), "w") as f:
            json.dump(rows, f)


def predict(lab, predict_fn, train, eval_files, out):
    """predict(lab, train, inputs) -> {split: predictions}: one float64 .npy per split given."""
    inputs = {split: load(path) for split, path in eval_files}
    lab._set_inputs(inputs)
    predictions = target(predict_fn)(lab, load(train), inputs)
    if not isinstance(predictions, dict):
        raise Refused('predict must return a dict of predictions by split: {"val": ..., "holdout": ...}')
    for split, given in inputs.items():
        if split not in predictions:
            raise Refused(f"predict returned no predictions for `{split}`")
        path = os.path.join(out, split + ".npy")
        numbers = _numbers(predictions[split])
        if numbers is not None:
            if len(numbers) != len(given):
                raise Refused(f"predictions for `{split}`: {len(numbers)} for {len(given)} inputs")
            _save_floats(path, numbers)
            continue
        import numpy as np

        try:
            # Materialised here, inside the budget: a lazy object cannot keep working later.
            array = np.array(predictions[split], dtype=np.float64, copy=True)
        except (TypeError, ValueError) as e:
            raise Refused(f"predictions for `{split}` are not numeric: {e}") from None
        if array.ndim == 0 or len(array) != len(given):
            raise Refused(f"predictions for `{split}`: {array.shape} for {len(given)} inputs")
        np.save(path, array, allow_pickle=False)


def train(lab, train_fn, data, artifact):
    """train(lab, data) -> its return value pickled as artifact/trained.pkl (unless None)."""
    trained = target(train_fn)(lab, load(data))
    if trained is not None:
        with open(os.path.join(artifact, "trained.pkl"), "wb") as f:
            pickle.dump(trained, f, protocol=5)


def infer(lab, infer_fn, eval_files, out):
    """infer(lab, inputs) once per split -> one output per input: an .npy array or a JSON list of strings."""
    function = target(infer_fn)
    for split, path in eval_files:
        inputs = load(path)
        outputs = function(lab, inputs)
        strings = _strings(outputs)
        if strings is not None:
            if len(strings) != len(inputs):
                raise Refused(f"infer returned {len(strings)} outputs for {len(inputs)} `{split}` inputs")
            import json

            with open(os.path.join(out, split + ".json"), "w") as f:
                json.dump(strings, f)
            continue
        numbers = _numbers(outputs)
        if numbers is not None:
            if len(numbers) != len(inputs):
                raise Refused(f"infer returned {len(numbers)} outputs for {len(inputs)} `{split}` inputs")
            _save_floats(os.path.join(out, split + ".npy"), numbers)
            continue
        import numpy as np

        try:
            array = np.array(outputs, copy=True)
        except (TypeError, ValueError) as e:
            raise Refused(f"infer's outputs for `{split}` are neither numbers nor strings: {e}") from None
        if array.dtype.kind not in "biuf":
            raise Refused(f"infer's outputs for `{split}` are neither numbers nor strings (dtype {array.dtype})")
        if array.ndim == 0 or len(array) != len(inputs):
            raise Refused(f"infer returned outputs of shape {array.shape} for {len(inputs)} `{split}` inputs")
        if array.dtype != np.float32:
            array = array.astype(np.float64)
        np.save(os.path.join(out, split + ".npy"), array, allow_pickle=False)


def _outputs(path):
    if path.endswith(".json"):
        import json

        with open(path) as f:
            return json.load(f)
    import numpy as np

    return np.load(path, allow_pickle=False)


def score(lab, score_fn, splits, out):
    """The frozen score(lab, inputs, outputs, targets) -> {metric: [one float per item]} per split."""
    import json

    function = target(score_fn)
    for split, inputs, outputs, targets in splits:
        given = load(inputs)
        scored = function(lab, given, _outputs(outputs), _outputs(targets))
        if not isinstance(scored, dict):
            raise Refused(f"score must return a dict of per-item lists for `{split}`")
        lists = {}
        for name, values in scored.items():
            values = [float(v) for v in values]
            if len(values) != len(given):
                raise Refused(f"score's `{name}` has {len(values)} values for {len(given)} `{split}` items")
            lists[str(name)] = [v if math.isfinite(v) else str(v) for v in values]
        with open(os.path.join(out, split + ".json"), "w") as f:
            json.dump(lists, f)


# ---------------------------------------------------------------- lab.memo

# Values whose repr is their whole identity.
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def memo(fn, items, directory, salt, leaf):
    """lab.memo(fn, items): one array per item, np.asarray(fn(item)), read from
    `directory` where an entry for its key is there and readable, else computed
    and written. The key is the sha256 of `salt` (package versions), the Python
    version, fn's code and everything of the leaf's it reads (see _digest),
    and the item's bytes. Returns (values, hits, misses, unreadable)."""
    import numpy as np

    items = list(items)
    for item in items:
        if not isinstance(item, (str, bytes)):
            raise TypeError(f"lab.memo keys each item by its bytes: a str or bytes, not {type(item).__name__}")
    if directory is None:
        return [_memo_array(np, fn(item)) for item in items], 0, len(items), 0
    import hashlib
    import sys

    base = hashlib.sha256(f"lab.memo 1\0{salt}\0{sys.version}\0".encode())
    _digest(base, fn, set(), leaf + os.sep)
    values, hits, misses, unreadable = [], 0, 0, 0
    for item in items:
        h = base.copy()
        h.update(b"s" + item.encode("utf-8", "surrogatepass") if isinstance(item, str) else b"b" + item)
        key = h.hexdigest()
        path = os.path.join(directory, key[:2], key + ".npy")
        try:
            value = np.load(path, allow_pickle=False)
            os.utime(path)  # the cap prunes the least recently used first
            hits += 1
        except FileNotFoundError:
            value, misses = None, misses + 1
        except Exception:  # corrupt, truncated, pickled, not an array: computed again
            value, unreadable = None, unreadable + 1
        if value is None:
            value = _memo_array(np, fn(item))
            _memo_write(np, path, value)
        values.append(value)
    return values, hits, misses, unreadable


def _memo_array(np, value):
    array = np.asarray(value)
    if array.dtype.kind not in "biufcSU":
        raise TypeError(f"lab.memo stores arrays of numbers or strings: fn returned dtype {array.dtype}")
    return array


def _memo_write(np, path, value):
    """Written beside its place and renamed: a reader never sees half an entry."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "wb") as f:
            np.save(f, value, allow_pickle=False)
        os.replace(partial, path)
    except OSError:  # a full disk costs the hit later, never the run
        try:
            os.remove(partial)
        except OSError:
            pass


def _digest(h, value, seen, leaf):
    """Feed h with what value computes: a function's bytecode, constants,
    defaults, closure and the globals it names (the leaf's functions, classes
    and modules by their code; a package's by name, its version is in the
    salt; constants by value). Anything else is refused: a key that missed a
    global a function reads would hand back stale values."""
    import types

    kind = type(value)
    h.update(f"{kind.__module__}.{kind.__qualname__}:".encode())
    if kind in _PLAIN:
        h.update(repr(value).encode("utf-8", "surrogatepass"))
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if kind in (tuple, list):
        h.update(b"%d" % len(value))
        for v in value:
            _digest(h, v, seen, leaf)
    elif kind in (set, frozenset):
        import hashlib

        parts = []
        for v in value:
            part = hashlib.sha256()
            _digest(part, v, set(), leaf)
            parts.append(part.digest())
        h.update(b"".join(sorted(parts)))
    elif kind is dict:
        for k, v in value.items():
            _digest(h, k, seen, leaf)
            _digest(h, v, seen, leaf)
    elif kind is types.FunctionType and value.__code__.co_filename.startswith(leaf):
        _digest_code(h, value.__code__, value.__globals__, seen, leaf)
        _digest(h, (value.__defaults__, value.__kwdefaults__), seen, leaf)
        for cell in value.__closure__ or ():
            _digest(h, cell.cell_contents, seen, leaf)
    elif isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType)):
        name = getattr(value, "__qualname__", "") or value.__name__
        module = value if isinstance(value, types.ModuleType) else _module_of(value)
        h.update(f"{getattr(module, '__name__', '')}.{name}".encode())
        source = getattr(module, "__file__", None) or ""
        if source.startswith(leaf):  # a class or module of the leaf: by its file
            with open(source, "rb") as f:
                h.update(f.read())
    elif hasattr(value, "__wrapped__"):  # functools.wraps, lru_cache
        _digest(h, value.__wrapped__, seen, leaf)
    elif kind.__module__ == "functools" and kind.__name__ == "partial":
        _digest(h, (value.func, value.args, value.keywords), seen, leaf)
    elif kind.__module__ == "numpy" and kind.__name__ == "ufunc":
        h.update(value.__name__.encode())
    elif kind.__module__ == "numpy" and kind.__name__ == "ndarray" and value.dtype.kind in "biufcSU":
        h.update(f"{value.dtype.str}{value.shape}".encode())
        h.update(value.tobytes())
    else:
        raise TypeError(
            f"lab.memo cannot key fn by a value of type {kind.__qualname__} it reads: make it a constant "
            "(numbers, strings, lists, dicts, arrays) or a function, or compute it inside fn"
        )


def _digest_code(h, code, names, seen, leaf):
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, type(code)):
            _digest_code(h, const, names, seen, leaf)
        else:
            _digest(h, const, seen, leaf)
    for name in code.co_names:
        if name in names:
            h.update(name.encode() + b"=")
            _digest(h, names[name], seen, leaf)


def _module_of(value):
    import sys

    return sys.modules.get(getattr(value, "__module__", None) or "")
