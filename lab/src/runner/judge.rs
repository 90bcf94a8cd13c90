//! The gate applied to recorded experiments: gathers the evidence of a
//! candidate and of the leaf's leader from the store and the files the runs
//! left, and asks [`gate::decide`] for a verdict. Used by `lab run --decide`,
//! `lab gate`, and anything else that submits a candidate (a blend).
//!
//! Predictions mode: a paired bootstrap over the candidate's and the leader's
//! **val** predictions against the val labels in the prepared directory. Every
//! file is re-hashed first: a file that no longer matches the sha256 recorded
//! when it was scored is refused (exit 3), so nothing edited after scoring can
//! win. Scalar (in-process) mode: the candidate's full runs against the
//! leader's full runs (its first run plus `lab baseline` repeats, attached to
//! the leader experiment), with the latest stored baseline sd of this leaf and
//! leaf.lock when the leader has a single run.
//!
//! Flagged candidates (`seed-only`, `eval-only`, see `flags`) are never kept on
//! one run: a scalar pass on one run becomes NEEDS_REPEATS (or FAIL at the last
//! allowed run), a predictions pass becomes FAIL. Read-only: nothing here
//! writes the store or a file.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::{flags, integrity, predictions};
use crate::error::LabError;
use crate::fingerprint;
use crate::gate::{self, Evidence, GateConfig, GateReport, MetricKind, PairedSamples, ScalarRuns, Verdict};
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::runner::protocol::prepared;
use crate::store::Store;
use crate::store::gate as records;
use crate::store::runs::{self, Leader, RunFile};
use crate::vcs;

/// Which evidence the gate read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Predictions,
    Scalar,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Predictions => "predictions",
            Self::Scalar => "scalar",
        }
    }

    pub fn of(leaf: &Leaf) -> Self {
        if leaf.manifest.entry.is_predictions() { Self::Predictions } else { Self::Scalar }
    }
}

/// The gate's answer on one candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub report: GateReport,
    /// `None`: no leader under this leaf.lock yet. The report then passes with
    /// NaN numbers: the first full run is the baseline.
    pub leader: Option<Leader>,
    pub mode: Mode,
    /// `seed-only`, `eval-only`.
    pub flags: Vec<String>,
}

/// The gate's settings from the manifest's `gate:`; `seed` fixes the bootstrap draws.
pub fn config(leaf: &Leaf, seed: u64) -> GateConfig {
    let spec = &leaf.manifest.gate;
    GateConfig {
        min_improvement: spec.min_improvement,
        confidence: spec.confidence,
        seed,
        max_candidate_runs: spec.repeats.max(1) as usize,
        ..GateConfig::default()
    }
}

/// Judge `candidate` against the leader of `leaf` under `lock_sha256`.
pub fn judge(store: &Store, leaf: &Leaf, candidate: ExperimentId, lock_sha256: &str) -> Result<Judgement> {
    let mode = Mode::of(leaf);
    let flags = candidate_flags(store, leaf, candidate)?;
    let metric = &leaf.manifest.metric;
    let Some(leader) = runs::rival(store.conn(), leaf.name(), &metric.name, metric.goal, lock_sha256, candidate)?
    else {
        let report = GateReport {
            improvement: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            prob_better: f64::NAN,
            verdict: Verdict::Pass,
            reason: "no comparable leader yet (same leaf.lock and inputs): the first full run is the baseline".into(),
            n: 0,
        };
        return Ok(Judgement { report, leader: None, mode, flags });
    };
    let leader_id: ExperimentId = leader.experiment.parse()?;
    let config = config(leaf, candidate.0 as u64);
    let evidence = match mode {
        Mode::Predictions => predictions_evidence(store, leaf, candidate, leader_id, lock_sha256)?,
        Mode::Scalar => scalar_evidence(store, leaf, candidate, leader_id, lock_sha256)?,
    };
    let report = gate::decide(&config, &evidence)
        .map_err(|e| LabError::usage(format!("the gate cannot judge {candidate}: {e}")))?;
    let report = apply_flags(report, &flags, mode, config.max_candidate_runs);
    Ok(Judgement { report, leader: Some(leader), mode, flags })
}

/// A flagged candidate cannot pass on a single run.
fn apply_flags(mut report: GateReport, flags: &[String], mode: Mode, max_runs: usize) -> GateReport {
    if flags.is_empty() || report.verdict != Verdict::Pass || (mode == Mode::Scalar && report.n >= 2) {
        return report;
    }
    let what = flags.join(", ");
    report.verdict = if mode == Mode::Scalar && report.n < max_runs { Verdict::NeedsRepeats } else { Verdict::Fail };
    report.reason = match mode {
        Mode::Scalar if report.verdict == Verdict::NeedsRepeats => format!(
            "{}, but the candidate is flagged {what}: a flagged candidate is never kept on one run, so it needs repeats",
            report.reason
        ),
        Mode::Scalar => format!("{}, but the candidate is flagged {what} and has no repeats left", report.reason),
        Mode::Predictions => format!(
            "{}, but the candidate is flagged {what}: refused a keep (a flagged candidate is never kept on one run)",
            report.reason
        ),
    };
    report
}

fn scalar_evidence(
    store: &Store,
    leaf: &Leaf,
    candidate: ExperimentId,
    leader: ExperimentId,
    lock_sha256: &str,
) -> Result<Evidence> {
    let metric = &leaf.manifest.metric;
    let values = |e: ExperimentId| -> Result<Vec<f64>> {
        Ok(records::full_values(store.conn(), e, &metric.name)?.into_iter().map(|(_, v)| v).collect())
    };
    let (leader_runs, candidate_runs) = (values(leader)?, values(candidate)?);
    if candidate_runs.is_empty() {
        return Err(LabError::usage(format!("{candidate} has no full run with a finite `{}`", metric.name)).into());
    }
    if leader_runs.is_empty() {
        return Err(
            LabError::usage(format!("the leader {leader} has no full run with a finite `{}`", metric.name)).into()
        );
    }
    let noise_sd = records::baselines(store.conn(), leaf.name(), lock_sha256)?.last().map(|b| b.sd);
    Ok(Evidence::Scalar(ScalarRuns { goal: metric.goal, leader: leader_runs, candidate: candidate_runs, noise_sd }))
}

fn predictions_evidence(
    store: &Store,
    leaf: &Leaf,
    candidate: ExperimentId,
    leader: ExperimentId,
    lock_sha256: &str,
) -> Result<Evidence> {
    let metric = &leaf.manifest.metric;
    let kind: MetricKind = metric.name.parse().map_err(|e| LabError::usage(format!("{e}")))?;
    let (candidate_pred, labels_record) = val_predictions(store, candidate)?;
    let (leader_pred, _) = val_predictions(store, leader)?;
    let labels_path = prepared_labels(store, leaf, lock_sha256, "val");
    if let Some(record) = &labels_record {
        verify(&labels_path, &record.sha256, "the val labels")?;
    }
    let y_true = predictions::read_flat(&labels_path)?.to_vec();
    Ok(Evidence::Predictions(PairedSamples { goal: metric.goal, kind, y_true, leader_pred, candidate_pred }))
}

/// `.lab/data/<leaf>/<lock>/<split>_labels.npy`: the labels the supervisor scored against.
pub fn prepared_labels(store: &Store, leaf: &Leaf, lock_sha256: &str, split: &str) -> PathBuf {
    let data = data_dir(store).join("data").join(leaf.name());
    predictions::prepared_dir(&data, lock_sha256).join(prepared::labels(split))
}

/// The lab's `.lab/` directory: the database's.
pub fn data_dir(store: &Store) -> PathBuf {
    store.path().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The val predictions of `experiment`'s last successful full run, re-hashed
/// against the record, and the record of the labels it was scored on.
fn val_predictions(store: &Store, experiment: ExperimentId) -> Result<(Vec<f64>, Option<RunFile>)> {
    let files = last_full_files(store, experiment)?;
    let find = |kind: &str, name: &str| files.iter().find(|f| f.kind == kind && f.name == name).cloned();
    let file = find("predictions", "val")
        .ok_or_else(|| LabError::usage(format!("{experiment} has no recorded val predictions from a full run")))?;
    let path = PathBuf::from(&file.path);
    verify(&path, &file.sha256, &format!("the val predictions of {experiment}"))?;
    Ok((predictions::read_flat(&path)?.to_vec(), find("labels", "val")))
}

/// The files of `experiment`'s last successful full run.
pub fn last_full_files(store: &Store, experiment: ExperimentId) -> Result<Vec<RunFile>> {
    let runs = runs::runs_of(store.conn(), experiment)?;
    Ok(runs.into_iter().rev().find(|r| r.tier == "full" && r.exit_reason == "ok").map(|r| r.files).unwrap_or_default())
}

/// Refuse a file whose bytes are not the ones recorded when it was scored.
pub fn verify(path: &Path, sha256: &str, what: &str) -> Result<()> {
    let now = fingerprint::sha256_file(path).ok();
    if now.as_deref() == Some(sha256) {
        return Ok(());
    }
    let state = if now.is_some() { "changed" } else { "is missing" };
    Err(LabError::refused(format!("{what} `{}` {state} since it was scored", path.display()))
        .hint("a scored file is never edited: rerun the experiment to score new predictions")
        .into())
}

/// The stored flags of a judged candidate; for one being decided (no result
/// yet), the flags of the working tree's mutable changes; else of its saved patch.
fn candidate_flags(store: &Store, leaf: &Leaf, candidate: ExperimentId) -> Result<Vec<String>> {
    if let Some(report) = records::latest_report(store.conn(), candidate)? {
        return Ok(report.flags);
    }
    if !records::has_result(store.conn(), candidate)? {
        let Ok(checked) = integrity::check(leaf) else { return Ok(Vec::new()) };
        if checked.mutable_changes.is_empty() {
            return Ok(Vec::new());
        }
        let patch = vcs::patch_of(&checked.workdir, &checked.mutable_changes)?;
        return Ok(flags::diff_flags(&patch, &leaf_prefix(leaf, &checked.workdir)));
    }
    let saved = data_dir(store).join("runs").join(candidate.to_string()).join("candidate.patch");
    match std::fs::read_to_string(&saved) {
        Ok(patch) => {
            let workdir = vcs::changed_paths(&leaf.dir).map(|c| c.workdir).unwrap_or_default();
            Ok(flags::diff_flags(&patch, &leaf_prefix(leaf, &workdir)))
        }
        Err(_) => Ok(Vec::new()),
    }
}

/// The leaf's directory inside the repository, `/`-terminated (`leaves/ok/`).
pub fn leaf_prefix(leaf: &Leaf, workdir: &Path) -> String {
    let dir = leaf.dir.canonicalize().unwrap_or_else(|_| leaf.dir.clone());
    let workdir = workdir.canonicalize().unwrap_or_else(|_| workdir.to_path_buf());
    match dir.strip_prefix(&workdir) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("{}/", rel.display()),
        _ => String::new(),
    }
}

/// The candidate's current flags for `lab run`'s patch analysis.
pub fn flags_of_patch(leaf: &Leaf, workdir: &Path, patch: &str) -> Vec<String> {
    flags::diff_flags(patch, &leaf_prefix(leaf, workdir))
}
