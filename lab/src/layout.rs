//! The `.lab/` directory: the one place that knows where every file of the
//! harness lives (uv keeps one such type for its cache).
//!
//! ```text
//! .lab/lab.db                           the research memory
//! .lab/runs/e<N>/run.log                every worker's output, capped
//! .lab/runs/e<N>/code/                  the leaf's files as they were at launch (what ran, what a keep commits)
//! .lab/runs/e<N>/frozen/                the frozen files only (frozen-code workers import from here)
//! .lab/runs/e<N>/candidate.patch        a discarded candidate's diff
//! .lab/runs/e<N>/<tier>/artifact/       what `train` left (other leaves' inputs come from here)
//! .lab/runs/e<N>/<tier>/out/            outputs of `predict` or `infer`, per split
//! .lab/runs/e<N>/<tier>/probe/          the causality probes' inputs and outputs
//! .lab/runs/e<N>/<tier>/scores/         per-item scores the harness computed
//! .lab/runs/e<N>/<tier>/<worker>.json   a worker's spec; <worker>.tmp/ its private temporary directory
//! .lab/runs/e<N>/<tier>/<worker>.curve.jsonl  what its code reported with `lab.report`, in time (display only)
//! .lab/data/<leaf>/<key>/               data prepared by the frozen `data` (train.pkl, eval/, targets/, prepared.json)
//! .lab/memo/<leaf>/<key>/               `lab.memo` entries of the mutable code, per comparability key and tier
//! .lab/checkpoints/<name>.md            `lab checkpoint`
//! .lab/submissions/<leaf>/              `lab submit`
//! ```
//!
//! Invariant: code under judgement can read only its own inputs and write only
//! its own tier's `artifact/` or `out/`, its temporary directory and (in
//! `predict` and `train`) its leaf's memo for its key and tier, which nothing
//! the harness trusts reads; the sandbox policies are built from these paths
//! (`supervisor::policy`).

use std::path::{Path, PathBuf};

use crate::ids::ExperimentId;

pub const DB_FILE: &str = "lab.db";

/// The `.lab/` directory of a lab root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    pub fn runs(&self) -> PathBuf {
        self.dir.join("runs")
    }

    pub fn run(&self, experiment: ExperimentId) -> RunDir {
        RunDir { root: self.runs().join(experiment.to_string()) }
    }

    /// Prepared data of `leaf` under comparability key `key` (its first 16 hex digits), per tier.
    pub fn prepared(&self, leaf: &str, key: &str, smoke: bool) -> PreparedDir {
        PreparedDir { root: self.dir.join("data").join(leaf).join(keyed(key, smoke)) }
    }

    /// Every `lab.memo` entry of `leaf` (what the harness prunes to its cap).
    pub fn memo_root(&self, leaf: &str) -> PathBuf {
        self.dir.join("memo").join(leaf)
    }

    /// The memo the mutable code of `leaf` reads and writes under key `key` in one tier: named like
    /// its prepared data, since every run that reads it was handed the same inputs.
    pub fn memo(&self, leaf: &str, key: &str, smoke: bool) -> PathBuf {
        self.memo_root(leaf).join(keyed(key, smoke))
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    pub fn submissions(&self, leaf: &str) -> PathBuf {
        self.dir.join("submissions").join(leaf)
    }
}

/// A directory name for a comparability key (its first 16 hex digits) and tier.
fn keyed(key: &str, smoke: bool) -> String {
    let short = &key[..key.len().min(16)];
    if smoke { format!("{short}-smoke") } else { short.to_owned() }
}

/// `.lab/runs/e<N>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn log(&self) -> PathBuf {
        self.root.join("run.log")
    }

    /// Every file of the leaf but sealed ones, copied at launch.
    pub fn code(&self) -> PathBuf {
        self.root.join("code")
    }

    /// The frozen files only (sealed ones included), for frozen-code workers.
    pub fn frozen(&self) -> PathBuf {
        self.root.join("frozen")
    }

    pub fn candidate_patch(&self) -> PathBuf {
        self.root.join("candidate.patch")
    }

    /// The flags of the candidate's changes (`lifecycle::flags`), settled at launch.
    pub fn candidate_flags(&self) -> PathBuf {
        self.root.join("candidate.flags.json")
    }

    /// The pure-Python `lab` module child processes import.
    pub fn python_module(&self) -> PathBuf {
        self.root.join("python")
    }

    /// One tier's runs: `smoke`, `full`, `full-2`, ...
    pub fn tier(&self, name: &str) -> TierDir {
        TierDir { root: self.root.join(name) }
    }
}

/// `.lab/runs/e<N>/<tier>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierDir {
    root: PathBuf,
}

impl TierDir {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn artifact(&self) -> PathBuf {
        self.root.join("artifact")
    }

    pub fn outputs(&self) -> PathBuf {
        self.root.join("out")
    }

    pub fn probe(&self) -> PathBuf {
        self.root.join("probe")
    }

    pub fn scores(&self) -> PathBuf {
        self.root.join("scores")
    }

    pub fn spec(&self, worker: &str) -> PathBuf {
        self.root.join(format!("{worker}.json"))
    }

    /// A worker's private `$TMPDIR` and `$HOME`, removed when it ends.
    pub fn scratch(&self, worker: &str) -> PathBuf {
        self.root.join(format!("{worker}.tmp"))
    }
}

/// `.lab/data/<leaf>/<key>/`: what the frozen `data` returned, split by who may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedDir {
    root: PathBuf,
}

impl PreparedDir {
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The training split (`train` and `predict` read it).
    pub fn train(&self) -> PathBuf {
        self.root.join("train.pkl")
    }

    /// Unlabelled inputs of the evaluated splits (`predict` and `infer` read them).
    pub fn eval(&self) -> PathBuf {
        self.root.join("eval")
    }

    /// Labels and targets: read by the supervisor and frozen scorers only.
    pub fn targets(&self) -> PathBuf {
        self.root.join("targets")
    }

    /// The rows of a submission file (`lab submit`).
    pub fn submission_rows(&self) -> PathBuf {
        self.root.join("submission.json")
    }

    /// Constant reference figures of the evaluated splits (e.g. compressor bars).
    pub fn reference(&self) -> PathBuf {
        self.root.join("reference.json")
    }

    /// The sha256 of every file above, written by the supervisor after the data
    /// worker ended and checked before every use.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("prepared.json")
    }
}
