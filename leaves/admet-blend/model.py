"""Mutable model code of the admet-blend leaf: the file the agent edits.

`predict(lab, train, inputs)` gets the training split `(smiles, y)` and the
unlabelled SMILES of the other splits (`{"val": [...], "holdout": [...]}`, plus
`"submission"` on the PXR data set) and returns one 1-D array of predictions per
split it was given, in input order. The harness scores them; nothing here sees
a val or holdout label.

COMPONENT picks the model family. Each kept component is one member of the
blend `lab blend admet-blend` builds, so a new family with errors unlike the
leader's is often worth more than a better-tuned copy of it.
"""

import logging
import os
import time
import warnings

# OpenMP threads that spin-wait for a core held by another process slow LightGBM
# 30x on this 2-core machine (2.3 s -> 69 s); passive waiting avoids it. Must be
# set before lightgbm or torch load their OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

COMPONENT = "lightgbm"  # "lightgbm" | "rf" | "chemprop"

# ---- features of the tree models: Morgan counts + RDKit 2D descriptors
MORGAN_RADIUS = 2
MORGAN_BITS = 2048
# RDKit 2D descriptors appended to the Morgan counts (and, with
# CHEMPROP["descriptors"], to Chemprop's learned fingerprint): a list of names
# from rdkit.Chem.Descriptors._descList, or "all" (217 of them). As shipped:
# none, Morgan counts only. PHYSCHEM, a physchem + VSA subset, is 3x faster to
# compute than "all" and scored as well or better with LightGBM on both data sets.
PHYSCHEM = [
    "MolWt", "MolLogP", "MolMR", "TPSA", "LabuteASA", "NumHDonors", "NumHAcceptors",
    "NumRotatableBonds", "NumHeteroatoms", "RingCount", "NumAromaticRings",
    "NumAliphaticRings", "NumSaturatedRings", "FractionCSP3", "HeavyAtomCount",
    "NHOHCount", "NOCount", "NumValenceElectrons", "BertzCT", "BalabanJ",
    "HallKierAlpha", "Kappa1", "Kappa2", "Kappa3", "Chi0v", "Chi1v", "Chi2v", "Chi3v",
    "Chi4v", "MaxPartialCharge", "MinPartialCharge", "NumAromaticCarbocycles",
    "NumAromaticHeterocycles", "NumAliphaticHeterocycles", "fr_halogen", "fr_benzene",
    "fr_amide", "fr_ester", "fr_ether", "fr_COO", "fr_NH2", "fr_Ar_N", "fr_Ar_OH",
    "fr_ketone", "fr_nitro", "fr_sulfonamd",
    *[f"PEOE_VSA{i}" for i in range(1, 15)], *[f"SMR_VSA{i}" for i in range(1, 11)],
    *[f"SlogP_VSA{i}" for i in range(1, 13)], *[f"EState_VSA{i}" for i in range(1, 12)],
    *[f"VSA_EState{i}" for i in range(1, 11)],
]  # fmt: skip
DESCRIPTORS = []  # [] | PHYSCHEM | "all" | a list of names

# ---- LightGBM
LGBM_PARAMS = dict(
    n_estimators=800,
    learning_rate=0.03,
    num_leaves=31,
    min_child_samples=10,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.3,
    reg_lambda=1.0,
)

# ---- random forest
RF_PARAMS = dict(n_estimators=300, max_features=0.1, min_samples_leaf=1)

# ---- Chemprop v2 (bond message passing); defaults follow chemprop's CLI
CHEMPROP = dict(
    epochs=30,
    depth=3,
    hidden=300,
    ffn_hidden=300,
    ffn_layers=1,
    dropout=0.0,
    batch_size=64,
    aggregation="norm",  # "mean" | "sum" | "norm"
    max_lr=1e-3,
    descriptors=False,  # append the DESCRIPTORS (standardised) to the learned fingerprint
)

# The smoke tier only checks that the code runs: prepare.py hands it a slice of
# each split (so a cold feature cache or a Chemprop epoch fits in 30 s), and it
# grows fewer trees and epochs.
SMOKE = dict(lgbm_trees=150, rf_trees=60, chemprop_epochs=3)

# CPU threads for LightGBM, the forest and torch. Half the cores leaves room for
# whatever else runs; on a busy 2-core machine one thread beats two.
THREADS = max(1, (os.cpu_count() or 1) // 2)

# Seconds kept back from the deadline for predicting and handing results back
# (tree models predict in well under a second; Chemprop also keeps 1.5 epochs).
RESERVE_S = 4.0


def predict(lab, train, inputs):
    smiles, y = list(train[0]), np.asarray(train[1], dtype=np.float64)
    inputs = {name: list(x) for name, x in inputs.items()}
    components = {"lightgbm": _lightgbm, "rf": _random_forest, "chemprop": _chemprop}
    if COMPONENT not in components:
        raise ValueError(f"COMPONENT {COMPONENT!r} is not one of {sorted(components)}")
    fit = components[COMPONENT]
    start = time.time()
    preds = fit(lab, smiles, y, inputs)
    lab.report(fit_predict_s=round(time.time() - start, 2))
    return {name: np.asarray(preds[name], dtype=np.float64).reshape(-1) for name in inputs}


# ---------------------------------------------------------------- tree models


def _lightgbm(lab, smiles, y, inputs):
    import lightgbm as lgb

    X, by_split = _features(lab, smiles, inputs)
    params = dict(LGBM_PARAMS)
    if lab.smoke():
        params["n_estimators"] = SMOKE["lgbm_trees"]
    model = lgb.LGBMRegressor(**params, random_state=_seed(lab), n_jobs=THREADS, verbose=-1)
    model.fit(X, y, callbacks=[_lgbm_deadline(lab, lgb)])
    lab.report(trees=int(model.booster_.current_iteration()), train_mae=_mae(y, model.predict(X)))
    return {name: model.predict(Xs) for name, Xs in by_split.items()}


def _lgbm_deadline(lab, lgb):
    def stop_before_deadline(env):
        if lab.time_left() < RESERVE_S:
            lab.log(f"lightgbm: stopping at tree {env.iteration} before the deadline")
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    return stop_before_deadline


def _random_forest(lab, smiles, y, inputs):
    from sklearn.ensemble import RandomForestRegressor

    X, by_split = _features(lab, smiles, inputs)
    params = dict(RF_PARAMS)
    total = params.pop("n_estimators")
    if lab.smoke():
        total = SMOKE["rf_trees"]
    model = RandomForestRegressor(warm_start=True, random_state=_seed(lab), n_jobs=THREADS, **params)
    model.n_estimators = 0
    # Grown in chunks so the forest stops at the deadline with what it has.
    chunk_start = time.time()
    while model.n_estimators < total:
        model.n_estimators = min(total, model.n_estimators + 50)
        model.fit(X, y)
        chunk_s = time.time() - chunk_start
        chunk_start = time.time()
        if lab.time_left() < RESERVE_S + 1.5 * chunk_s:
            lab.log(f"random forest: stopping at {model.n_estimators} trees before the deadline")
            break
    lab.report(trees=model.n_estimators, train_mae=_mae(y, model.predict(X)))
    return {name: model.predict(Xs) for name, Xs in by_split.items()}


# ---------------------------------------------------------------- features


def _features(lab, smiles, inputs):
    """Feature matrices for train and each input split, each molecule featurized once."""
    everything = sorted(set(smiles + [s for x in inputs.values() for s in x]))
    start = time.time()
    table = dict(zip(everything, lab.memo(_featurize, everything)))
    lab.report(featurized=len(everything), featurize_s=round(time.time() - start, 2))
    X = np.stack([table[s] for s in smiles])
    by_split = {name: np.stack([table[s] for s in x]) for name, x in inputs.items()}
    return X, by_split


def _featurize(smi):
    """One molecule's row: Morgan counts, then the DESCRIPTORS. Called through
    lab.memo, which keys it by this code, what it reads (MORGAN_*, DESCRIPTORS,
    _descriptor) and the SMILES: a later run with the same features reads the
    row back instead of computing it; an edit here or to those constants is a
    new key."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors, rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smi)
    morgan = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)
    if DESCRIPTORS == "all":
        values = list(Descriptors.CalcMolDescriptors(mol, missingVal=np.nan).values())
    else:
        table = dict(Descriptors._descList)
        values = [_descriptor(table[name], mol) for name in DESCRIPTORS]
    row = np.concatenate([morgan.GetCountFingerprintAsNumPy(mol), np.asarray(values, dtype=np.float64)])
    # A few descriptors (Ipc) overflow float32; trees only need the order.
    return np.clip(np.nan_to_num(row, nan=0.0, posinf=1e30, neginf=-1e30), -1e30, 1e30).astype(np.float32)


def _descriptor(fn, mol):
    try:
        return fn(mol)
    except Exception:  # a few descriptors fail on odd molecules; trees take NaN
        return np.nan


# ---------------------------------------------------------------- chemprop


def _chemprop(lab, smiles, y, inputs):
    import torch
    from lightning import pytorch as pl

    from chemprop import data, featurizers, models, nn

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    torch.set_num_threads(THREADS)
    pl.seed_everything(_seed(lab), workers=True, verbose=False)
    cfg = dict(CHEMPROP)
    if lab.smoke():
        cfg["epochs"] = SMOKE["chemprop_epochs"]

    if cfg["descriptors"] and not DESCRIPTORS:
        raise ValueError('CHEMPROP["descriptors"] appends DESCRIPTORS, which is empty: set it to PHYSCHEM or "all"')
    extra = _extra_descriptors(lab, smiles, inputs) if cfg["descriptors"] else None
    featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()
    points = [data.MoleculeDatapoint.from_smi(s, [t], x_d=_get(extra, s)) for s, t in zip(smiles, y)]
    train_set = data.MoleculeDataset(points, featurizer)
    scaler = train_set.normalize_targets()
    # Scales the training descriptors in place; at prediction the model scales raw ones.
    x_d_scaler = train_set.normalize_inputs("X_d") if extra else None
    n_extra = len(next(iter(extra.values()))) if extra else 0
    # drop_last=False: no batch norm here, so no molecule needs dropping.
    train_loader = data.build_dataloader(
        train_set, batch_size=cfg["batch_size"], num_workers=0, seed=_seed(lab), drop_last=False
    )

    mp = nn.BondMessagePassing(d_h=cfg["hidden"], depth=cfg["depth"], dropout=cfg["dropout"])
    agg = {"mean": nn.MeanAggregation, "sum": nn.SumAggregation, "norm": nn.NormAggregation}[cfg["aggregation"]]()
    ffn = nn.RegressionFFN(
        input_dim=mp.output_dim + n_extra,
        hidden_dim=cfg["ffn_hidden"],
        n_layers=cfg["ffn_layers"],
        dropout=cfg["dropout"],
        output_transform=nn.UnscaleTransform.from_standard_scaler(scaler),
    )
    x_d_transform = nn.ScaleTransform.from_standard_scaler(x_d_scaler) if extra else None
    model = models.MPNN(mp, agg, ffn, max_lr=cfg["max_lr"], X_d_transform=x_d_transform)
    cuda = lab.device().startswith("cuda") and torch.cuda.is_available()
    trainer = pl.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        max_epochs=cfg["epochs"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_EpochGuard(lab, pl)],
    )
    trainer.fit(model, train_loader)

    preds = {}
    for name, x in inputs.items():
        dset = data.MoleculeDataset([data.MoleculeDatapoint.from_smi(s, x_d=_get(extra, s)) for s in x], featurizer)
        # drop_last=False: otherwise a final batch of one molecule is silently dropped.
        loader = data.build_dataloader(dset, batch_size=256, shuffle=False, drop_last=False)
        preds[name] = torch.cat(trainer.predict(model, loader)).reshape(-1).cpu().numpy()
    return preds


def _extra_descriptors(lab, smiles, inputs):
    """The DESCRIPTORS of every molecule (the tree models' features past the Morgan counts)."""
    everything = sorted(set(smiles + [s for x in inputs.values() for s in x]))
    return {s: row[MORGAN_BITS:].astype(np.float64) for s, row in zip(everything, lab.memo(_featurize, everything))}


def _get(extra, smi):
    return None if extra is None else extra[smi]


def _EpochGuard(lab, pl):
    """A Lightning callback: reports each epoch and stops before the deadline."""

    class EpochGuard(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.start = time.time()

        def on_train_epoch_end(self, trainer, module):
            seconds = time.time() - self.start
            loss = trainer.callback_metrics.get("train_loss_epoch", trainer.callback_metrics.get("train_loss"))
            metrics = {"epoch": trainer.current_epoch + 1, "epoch_s": round(seconds, 2)}
            if loss is not None:
                metrics["train_loss"] = float(loss)
            lab.report(**metrics)
            if lab.time_left() < RESERVE_S + 1.5 * seconds:
                lab.log(f"chemprop: stopping after epoch {trainer.current_epoch + 1} before the deadline")
                trainer.should_stop = True

    return EpochGuard()


# ---------------------------------------------------------------- helpers


def _seed(lab):
    # lab.seed() is a u64; LightGBM, scikit-learn and Lightning take 31 or 32 bits.
    return int(lab.seed()) % (2**31 - 1)


def _mae(y, p):
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(p))))
