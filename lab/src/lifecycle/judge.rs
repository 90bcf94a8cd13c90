//! The gate applied to recorded experiments: gathers the evidence of a
//! candidate and of the leaf's leader from the store and the files the runs
//! left, and asks [`gate::decide`] for a verdict. Used by `lab run --decide`,
//! `lab gate`, and anything else that submits a candidate (a blend).
//!
//! Predictions mode: a paired bootstrap over the candidate's and the leader's
//! **val** predictions against the val labels they were scored on, which must
//! be the same labels. Every file is re-hashed first (`evidence`): a file that
//! no longer matches the sha256 recorded when it was scored is refused (exit 3),
//! so nothing edited after scoring can win. Scalar (artifact) mode: the
//! candidate's full runs against the leader's full runs (its first run plus
//! `lab baseline` repeats, attached to the leader experiment), with the latest
//! stored baseline sd of this leaf and leaf.lock when the leader has a single
//! run, and the runs' per-item val evidence for the item noise: their per-item
//! scores averaged over each side's runs where the metric is their mean, else
//! the last runs' outputs (a paired bootstrap). Both sides must have been
//! scored on the same targets.
//!
//! Flagged candidates (`seed-only`, `eval-only`, see `flags`) are never kept on
//! one run: a scalar pass on one run becomes NEEDS_REPEATS (or FAIL at the last
//! allowed run), a predictions pass becomes FAIL, and in deterministic code
//! (runs that agree exactly, so a rerun adds no run) a flagged pass is a FAIL
//! at any run count. Read-only: nothing here writes the store or a file.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::flags;
use crate::error::LabError;
use crate::evidence;
use crate::gate::{
    self, Evidence, GateConfig, GateReport, ItemEvidence, MetricKind, PairedSamples, ScalarRuns, Scorer, Verdict,
};
use crate::ids::ExperimentId;
use crate::layout::Layout;
use crate::leaf::Leaf;
use crate::leaf::manifest::Entry;
use crate::store::Store;
use crate::store::candidates;
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
    let flags = candidate_flags(store, leaf, candidate, lock_sha256)?;
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
            sensitivity: None,
        };
        return Ok(Judgement { report, leader: None, mode, flags });
    };
    let leader_id: ExperimentId = leader.experiment.parse()?;
    let config = config(leaf, candidate.0 as u64);
    let evidence = evidence(store, leaf, candidate, leader_id, lock_sha256)?;
    let report = gate::decide(&config, &evidence)
        .map_err(|e| LabError::usage(format!("the gate cannot judge {candidate}: {e}")))?;
    let report = apply_flags(report, &flags, Reruns::of(&evidence), config.max_candidate_runs);
    Ok(Judgement { report, leader: Some(leader), mode, flags })
}

/// The val evidence of `candidate` against `leader`, in the leaf's mode.
pub fn evidence(
    store: &Store,
    leaf: &Leaf,
    candidate: ExperimentId,
    leader: ExperimentId,
    lock_sha256: &str,
) -> Result<Evidence> {
    match Mode::of(leaf) {
        Mode::Predictions => predictions_evidence(store, leaf, candidate, leader, lock_sha256),
        Mode::Scalar => scalar_evidence(store, leaf, candidate, leader, lock_sha256),
    }
}

/// What another run of a candidate can show, which decides what a flag costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reruns {
    /// Predictions mode's fixed val predictions: one run is all there is.
    Fixed,
    /// Runs whose values move with the seed: repeats measure the luck.
    Vary,
    /// Runs that agree exactly (seed sd 0): a rerun repeats the same value.
    Identical,
}

impl Reruns {
    pub fn of(evidence: &Evidence) -> Self {
        match evidence {
            Evidence::Predictions(_) => Self::Fixed,
            Evidence::Scalar(runs) if gate::deterministic(runs) => Self::Identical,
            Evidence::Scalar(_) => Self::Vary,
        }
    }
}

/// A flagged candidate cannot pass on a single run: repeats of stochastic
/// code settle it; the fixed predictions of one run cannot, and neither can
/// the reruns of deterministic code, which repeat its one run exactly: there
/// a flagged candidate is never kept at all (a seed that happens to suit the
/// validation items is one draw among seeds that no rerun can tell from
/// skill: the seed-fishing attack, `tests/attacks.rs`).
pub fn apply_flags(mut report: GateReport, flags: &[String], reruns: Reruns, max_runs: usize) -> GateReport {
    if flags.is_empty() || report.verdict != Verdict::Pass {
        return report;
    }
    let repeatable = reruns == Reruns::Vary;
    if repeatable && report.n >= 2 {
        return report;
    }
    let what = flags.join(", ");
    let luck: Vec<&str> = flags.iter().map(String::as_str).filter(|f| flags::LUCK.contains(f)).collect();
    report.verdict = if repeatable && report.n < max_runs { Verdict::NeedsRepeats } else { Verdict::Fail };
    report.reason = match reruns {
        Reruns::Identical if !luck.is_empty() => format!(
            "{}, but the candidate is flagged {} and its code is deterministic (its runs agree exactly): it differs \
             from the leader by at most the draw of a seed, which reruns repeat rather than test, so it is never kept",
            report.reason,
            luck.join(", ")
        ),
        Reruns::Identical => format!(
            "{}, but the candidate is flagged {what} and its code is deterministic (its runs agree exactly): a \
             flagged candidate is never kept on one run, and reruns repeat that run rather than add one",
            report.reason
        ),
        Reruns::Vary if report.verdict == Verdict::NeedsRepeats => format!(
            "{}, but the candidate is flagged {what}: a flagged candidate is never kept on one run, so it needs repeats",
            report.reason
        ),
        Reruns::Vary => format!("{}, but the candidate is flagged {what} and has no repeats left", report.reason),
        Reruns::Fixed => format!(
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
    let runs = run_values(store, leaf, candidate, leader, lock_sha256)?;
    if runs.candidate.is_empty() {
        return Err(LabError::usage(format!("{candidate} has no full run with a finite `{}`", metric.name)).into());
    }
    if runs.leader.is_empty() {
        return Err(
            LabError::usage(format!("the leader {leader} has no full run with a finite `{}`", metric.name)).into()
        );
    }
    Ok(Evidence::Scalar(ScalarRuns { items: item_evidence(store, leaf, candidate, leader)?, ..runs }))
}

/// Both sides' run values (the candidate's pooled with earlier submissions of
/// its code) and the seed noise `lab baseline` stored under `lock_sha256`;
/// the item evidence is the caller's, by mode.
fn run_values(
    store: &Store,
    leaf: &Leaf,
    candidate: ExperimentId,
    leader: ExperimentId,
    lock_sha256: &str,
) -> Result<ScalarRuns> {
    let metric = &leaf.manifest.metric;
    Ok(ScalarRuns {
        goal: metric.goal,
        leader: values(store, leader, &metric.name)?,
        candidate: pooled_values(store, leaf, candidate, lock_sha256)?,
        noise_sd: records::baselines(store.conn(), leaf.name(), lock_sha256)?.last().map(|b| b.sd),
        items: None,
    })
}

/// The per-item val evidence of both sides' full runs; `None` when a side's
/// runs left none (runs recorded before the harness scored per item).
fn item_evidence(
    store: &Store,
    leaf: &Leaf,
    candidate: ExperimentId,
    leader: ExperimentId,
) -> Result<Option<ItemEvidence>> {
    let metric = &leaf.manifest.metric;
    let Entry::Artifact { score, .. } = &leaf.manifest.entry else { return Ok(None) };
    let whole_sample = match score {
        Some(_) => None,
        None => Some(metric.kind().parse::<Scorer>().map_err(|e| LabError::usage(format!("{e}")))?)
            .filter(|s| !s.is_item_mean()),
    };
    let (candidate_files, leader_files) = (last_full_files(store, candidate)?, last_full_files(store, leader)?);
    if candidate_files.is_empty() || leader_files.is_empty() {
        return Ok(None);
    }
    let Some(labels) = same_targets(&candidate_files, candidate, &leader_files, leader, "val")? else {
        return Ok(None);
    };
    if let Some(Scorer::Paired(kind)) = whole_sample {
        let outputs = |files: &[RunFile], e| evidence::find(files, "outputs", "val").map(|f| evidence::values(e, f));
        let (Some(candidate_pred), Some(leader_pred)) =
            (outputs(&candidate_files, candidate), outputs(&leader_files, leader))
        else {
            return Ok(None);
        };
        let y_true = evidence::values(candidate, labels)?;
        return Ok(Some(ItemEvidence::Outputs(PairedSamples {
            goal: metric.goal,
            kind,
            y_true,
            leader_pred: leader_pred?,
            candidate_pred: candidate_pred?,
        })));
    }
    let (Some(candidate_items), Some(leader_items)) = (
        mean_item_scores(store, candidate, &metric.name, "val")?,
        mean_item_scores(store, leader, &metric.name, "val")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(ItemEvidence::Scores { leader: leader_items, candidate: candidate_items }))
}

/// The per-item `split` scores of `experiment`'s successful full runs,
/// averaged item by item; `None` when a run left no scores.
pub fn mean_item_scores(
    store: &Store,
    experiment: ExperimentId,
    metric: &str,
    split: &str,
) -> Result<Option<Vec<f64>>> {
    let runs = runs::runs_of(store.conn(), experiment)?;
    let mut sum: Vec<f64> = Vec::new();
    let mut count = 0.0;
    for run in runs.iter().filter(|r| r.tier == "full" && r.exit_reason == "ok") {
        let Some(file) = evidence::find(&run.files, "scores", split) else { return Ok(None) };
        let items = evidence::scores(experiment, file, metric)?;
        if sum.is_empty() {
            sum = vec![0.0; items.len()];
        } else if items.len() != sum.len() {
            return Err(LabError::refused(format!(
                "the full runs of {experiment} scored {} and {} {split} items; runs of one experiment share their items",
                sum.len(),
                items.len()
            ))
            .into());
        }
        sum.iter_mut().zip(&items).for_each(|(s, v)| *s += v);
        count += 1.0;
    }
    Ok((count > 0.0).then(|| sum.into_iter().map(|s| s / count).collect()))
}

/// The candidate's `split` labels, after checking the leader was scored on
/// the same ones (refused otherwise); `None` when the candidate recorded none.
pub fn same_targets<'a>(
    candidate_files: &'a [RunFile],
    candidate: ExperimentId,
    leader_files: &[RunFile],
    leader: ExperimentId,
    split: &str,
) -> Result<Option<&'a RunFile>> {
    let Some(labels) = evidence::find(candidate_files, "labels", split) else { return Ok(None) };
    let leader_labels = evidence::find(leader_files, "labels", split);
    if leader_labels.is_some_and(|l| l.sha256 != labels.sha256) {
        return Err(LabError::refused(format!(
            "{candidate} and {leader} were scored on different {split} labels (sha256 {} and {})",
            labels.sha256,
            leader_labels.map(|l| l.sha256.as_str()).unwrap_or_default()
        ))
        .hint("candidate and leader are compared only on the same targets: delete the prepared data and rerun both")
        .into());
    }
    Ok(Some(labels))
}

/// Paired val predictions; with the seed noise as well where it was measured
/// (`lab baseline` reran the leader, or stored its spread under this key):
/// stochastic code is then judged like artifact mode, on its runs' values with
/// the bootstrap of the paired predictions as the item noise, so repeats can
/// settle a close call. Deterministic or unmeasured code is judged on the
/// bootstrap alone.
fn predictions_evidence(
    store: &Store,
    leaf: &Leaf,
    candidate: ExperimentId,
    leader: ExperimentId,
    lock_sha256: &str,
) -> Result<Evidence> {
    let metric = &leaf.manifest.metric;
    let kind: MetricKind = metric.kind().parse().map_err(|e| LabError::usage(format!("{e}")))?;
    let (candidate_files, leader_files) = (last_full_files(store, candidate)?, last_full_files(store, leader)?);
    let val = |files: &[RunFile], e: ExperimentId| -> Result<Vec<f64>> {
        let file = evidence::find(files, "predictions", "val")
            .ok_or_else(|| LabError::usage(format!("{e} has no recorded val predictions from a full run")))?;
        evidence::values(e, file)
    };
    let (candidate_pred, leader_pred) = (val(&candidate_files, candidate)?, val(&leader_files, leader)?);
    let labels = same_targets(&candidate_files, candidate, &leader_files, leader, "val")?
        .ok_or_else(|| LabError::usage(format!("{candidate} recorded no val labels")))?;
    let y_true = evidence::values(candidate, labels)?;
    let samples = PairedSamples { goal: metric.goal, kind, y_true, leader_pred, candidate_pred };
    let runs = run_values(store, leaf, candidate, leader, lock_sha256)?;
    if (runs.leader.len() < 2 && runs.noise_sd.is_none()) || runs.leader.is_empty() || runs.candidate.is_empty() {
        return Ok(Evidence::Predictions(samples));
    }
    Ok(Evidence::Scalar(ScalarRuns { items: Some(ItemEvidence::Outputs(samples)), ..runs }))
}

/// The files of `experiment`'s last successful full run.
pub fn last_full_files(store: &Store, experiment: ExperimentId) -> Result<Vec<RunFile>> {
    let runs = runs::runs_of(store.conn(), experiment)?;
    Ok(runs.into_iter().rev().find(|r| r.tier == "full" && r.exit_reason == "ok").map(|r| r.files).unwrap_or_default())
}

/// The stored flags of a judged candidate, else those its run settled at
/// launch (`keep::candidate_patch`; a run from before those were stored: the
/// text flags of its patch), and `resubmitted` when it runs the code of an
/// earlier discarded candidate.
fn candidate_flags(store: &Store, leaf: &Leaf, candidate: ExperimentId, key: &str) -> Result<Vec<String>> {
    if let Some(report) = records::latest_report(store.conn(), candidate)? {
        return Ok(report.flags);
    }
    let run = Layout::new(data_dir(store)).run(candidate);
    let settled = std::fs::read(run.candidate_flags()).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let mut flags: Vec<String> = match (settled, std::fs::read_to_string(run.candidate_patch())) {
        (Some(flags), _) => flags,
        (None, Ok(patch)) => {
            let workdir = vcs::changed_paths(&leaf.dir).map(|c| c.workdir).unwrap_or_default();
            flags::diff_flags(&patch, &leaf_prefix(leaf, &workdir))
        }
        (None, Err(_)) => Vec::new(),
    };
    if !candidates::same_code(store.conn(), leaf.name(), key, candidate)?.is_empty() {
        flags.push(flags::RESUBMITTED.to_owned());
    }
    Ok(flags)
}

/// The primary metric of every successful full run of `e`'s code: its own
/// runs and those of earlier discarded experiments that ran the same code
/// (a resubmission is pooled with its first submission, so fishing for a
/// lucky rerun only adds looks at one candidate).
fn pooled_values(store: &Store, leaf: &Leaf, e: ExperimentId, key: &str) -> Result<Vec<f64>> {
    let mut pooled = Vec::new();
    for same in candidates::same_code(store.conn(), leaf.name(), key, e)?.into_iter().chain([e]) {
        pooled.extend(values(store, same, &leaf.manifest.metric.name)?);
    }
    Ok(pooled)
}

/// The primary metric of `e`'s own successful full runs.
fn values(store: &Store, e: ExperimentId, metric: &str) -> Result<Vec<f64>> {
    Ok(records::full_values(store.conn(), e, metric)?.into_iter().map(|(_, v)| v).collect())
}

/// The lab's `.lab/` directory: the database's.
pub fn data_dir(store: &Store) -> PathBuf {
    store.path().parent().map(Path::to_path_buf).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(n: usize) -> GateReport {
        GateReport {
            improvement: 0.1,
            ci_low: 0.05,
            ci_high: 0.15,
            prob_better: 1.0,
            verdict: Verdict::Pass,
            reason: "improvement 0.1 clears the minimum".into(),
            n,
            sensitivity: None,
        }
    }

    #[test]
    fn flags_cost_what_reruns_can_show() {
        let (seed, eval) = (vec![flags::SEED_ONLY.to_owned()], vec![flags::EVAL_ONLY.to_owned()]);
        let cases = [
            (&seed, Reruns::Vary, 1, Verdict::NeedsRepeats),
            (&seed, Reruns::Vary, 2, Verdict::Pass),
            (&seed, Reruns::Vary, 3, Verdict::Pass),
            (&seed, Reruns::Fixed, 1, Verdict::Fail),
            (&seed, Reruns::Identical, 1, Verdict::Fail),
            (&seed, Reruns::Identical, 2, Verdict::Fail),
            (&eval, Reruns::Vary, 1, Verdict::NeedsRepeats),
            (&eval, Reruns::Vary, 2, Verdict::Pass),
            (&eval, Reruns::Identical, 1, Verdict::Fail),
            (&eval, Reruns::Identical, 2, Verdict::Fail),
            (&vec![], Reruns::Identical, 1, Verdict::Pass),
        ];
        for (flags, reruns, n, want) in cases {
            let report = apply_flags(pass(n), flags, reruns, 3);
            assert_eq!(report.verdict, want, "{flags:?} {reruns:?} n={n}: {}", report.reason);
        }
        let no_op = apply_flags(pass(2), &[flags::NO_OP.to_owned()], Reruns::Identical, 3);
        assert!(
            no_op.reason.ends_with("which reruns repeat rather than test, so it is never kept"),
            "{}",
            no_op.reason
        );
        let eval_only = apply_flags(pass(2), &eval, Reruns::Identical, 3);
        assert!(eval_only.reason.ends_with("reruns repeat that run rather than add one"), "{}", eval_only.reason);
    }
}
