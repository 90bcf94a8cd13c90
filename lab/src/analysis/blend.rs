//! `lab blend`: a weighted average of recorded models' predictions, submitted as
//! a candidate through the same gate as any run.
//!
//! Order: every check comes before anything is written (predictions mode, frozen
//! files unchanged, at least two components, each with a successful full run
//! of this leaf under the current `leaf.lock`, every file matching its recorded
//! sha256), so a refusal leaves no trace. Then the blend is an experiment like
//! any other: a hypothesis ("blend of e3+e7", mechanism "uncorrelated errors
//! cancel"), an experiment row with the git snapshot, blended val, holdout and
//! submission predictions under `.lab/runs/<exp>/full/out/` scored by
//! the harness (`supervisor::scoring::score_predictions`) into a full run row, the gate
//! against the leader (`lifecycle::judge`, exactly as `lab run --decide` asks it,
//! its report stored), and a result whose metrics carry the weights
//! (`weight.e3`) and whose note names them.
//!
//! A kept blend commits nothing (no code changed): the leader may be a blend,
//! and `lab submit` then writes the blend's `submission` predictions. The
//! weights are searched on val, so the val predictions the gate reads are
//! cross-fitted (`weights::cross_fit`: each item blended with weights searched
//! on the other folds) and carry no optimism from the search; for a metric
//! that ignores scale (auc, spearman, pearson) every component is first put on
//! one scale fixed from its val predictions (`weights::units`), so pooling the
//! folds cannot scramble a ranking; holdout and
//! submission take the weights searched on all of val, and the held-out split,
//! which no keep decision reads, is where `lab holdout` checks the transfer.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use ndarray::Array1;
use serde::Serialize;

use super::weights::{self, Search};
use crate::error::LabError;
use crate::evidence;
use crate::gate::{self, GateReport, Goal, MetricKind};
use crate::ids::{ExperimentId, HypothesisId};
use crate::leaf::{Leaf, lock};
use crate::lifecycle::{decide, inputs, judge};
use crate::output::format_number;
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::candidates::{self, ScoredRun};
use crate::store::gate as gate_records;
use crate::store::records::{self, Metrics, NewExperiment, NewHypothesis, NewResult, Source, Verdict};
use crate::store::runs::{self, Leader, MetricSource, NewRun, RunFile, Tier};
use crate::supervisor::prepared::{self, Prepared, SCORED, SUBMISSION};
use crate::supervisor::scoring;
use crate::{stale, vcs};

pub const MECHANISM: &str = "uncorrelated errors cancel";

#[derive(Debug, Clone)]
pub struct BlendOptions {
    pub leaf_dir: PathBuf,
    /// The chosen components; `None`: every kept experiment under the current lock.
    pub components: Option<Vec<ExperimentId>>,
}

/// What `lab blend` prints (and `--json` serialises).
#[derive(Debug, Clone, Serialize)]
pub struct BlendSummary {
    pub experiment: String,
    pub hypothesis: String,
    pub leaf: String,
    pub components: Vec<String>,
    pub weights: Vec<f64>,
    pub method: &'static str,
    /// Each component alone on val, in the primary metric.
    pub component_scores: Vec<f64>,
    /// Pearson correlation of the val residuals `y - p` of each pair of components.
    pub error_correlation: Vec<Vec<Option<f64>>>,
    pub metric: String,
    pub goal: Goal,
    pub value: f64,
    pub metrics: Metrics,
    pub leader: Option<Leader>,
    pub gate: Option<GateReport>,
    pub verdict: Verdict,
    pub note: String,
    pub files: Vec<RunFile>,
}

/// Everything checked and computed before the first write.
struct Plan {
    leaf: Leaf,
    lock_sha256: String,
    prepared: Prepared,
    runs: Vec<ScoredRun>,
    search: Search,
    /// Each component's map onto the common scale the weights apply to.
    units: Vec<weights::Unit>,
    component_scores: Vec<f64>,
    error_correlation: Vec<Vec<Option<f64>>>,
    /// Blended predictions per split, val first.
    splits: Vec<(String, Vec<f64>)>,
}

pub fn blend(lab: &LabRoot, store: &mut Store, opts: BlendOptions) -> Result<BlendSummary> {
    let plan = plan(lab, store, opts)?;
    let (experiment, hypothesis) = record_experiment(store, &plan)?;
    match finish(lab, store, &plan, experiment) {
        Ok((outcome, files, metrics)) => Ok(summary(plan, experiment, hypothesis, outcome, files, metrics)),
        Err(err) => {
            let note = format!("lab failed while blending: {err:#}");
            let _ = store
                .write(|tx| records::add_result(tx, &result(experiment, Verdict::Crash, Metrics::new(), note), false));
            Err(err)
        }
    }
}

fn plan(lab: &LabRoot, store: &Store, opts: BlendOptions) -> Result<Plan> {
    let leaf = Leaf::load(&opts.leaf_dir)?;
    if !leaf.manifest.entry.is_predictions() {
        return Err(LabError::usage(format!(
            "leaf `{}` runs in artifact mode: blending needs predictions mode",
            leaf.name()
        ))
        .hint("a blend averages per-item predictions of models that return them (mode: predictions)")
        .into());
    }
    lock::ensure_unchanged(&leaf)?;
    let lock_sha256 = inputs::comparability(lab, store, &leaf)?.key;
    let kind: MetricKind = leaf.manifest.metric.name.parse().map_err(|e| LabError::usage(format!("{e}")))?;
    let runs = components(store, &leaf, &lock_sha256, opts.components)?;
    let dir = lab.layout().prepared(leaf.name(), &lock_sha256, false);
    if !prepared::is_prepared(&dir) {
        return Err(LabError::failure(format!("no prepared data for leaf `{}` under its leaf.lock", leaf.name()))
            .hint("`lab run` prepares it (and caches it under .lab/data/)")
            .into());
    }
    let prepared = prepared::load(&dir)?;
    let labels = runs[0].labels("val").with_context(|| format!("{} recorded no val labels", runs[0].experiment))?;
    let y = evidence::values(runs[0].experiment, labels)?;
    let raw = runs.iter().map(|r| evidence::predictions(r, "val")).collect::<Result<Vec<_>>>()?;
    let bad = |e: gate::MetricError| LabError::usage(format!("cannot blend on val: {e}"));
    let component_scores = raw.iter().map(|p| gate::score(kind, &y, p)).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    let error_correlation = weights::error_correlations(&y, &raw);
    // One scale for every split, fixed on val's predictions (no labels).
    let units = weights::units(kind, &raw);
    let val = weights::rescale(&units, &raw);
    let search = weights::search(kind, &y, &val).map_err(bad)?;
    // The gate reads the out-of-fold blend on val; the other splits take the weights searched on all of val.
    let mut splits = vec![("val".to_owned(), weights::cross_fit(kind, &y, &val).map_err(bad)?)];
    for split in SCORED.iter().skip(1).chain([&SUBMISSION]) {
        // A split is blended only when every component predicted it.
        if runs.iter().all(|r| r.predictions(split).is_some()) {
            let parts = runs.iter().map(|r| evidence::predictions(r, split)).collect::<Result<Vec<_>>>()?;
            if parts.iter().any(|p| p.len() != parts[0].len()) {
                return Err(LabError::usage(format!("the components' {split} predictions differ in length")).into());
            }
            splits.push(((*split).to_owned(), weights::combine(&search.weights, &weights::rescale(&units, &parts))));
        }
    }
    Ok(Plan { leaf, lock_sha256, prepared, runs, search, units, component_scores, error_correlation, splits })
}

/// The components' runs: the chosen experiments (deduplicated, in the order
/// given) or every kept one; at least two, each of this leaf and lock.
fn components(
    store: &Store,
    leaf: &Leaf,
    lock_sha256: &str,
    chosen: Option<Vec<ExperimentId>>,
) -> Result<Vec<ScoredRun>> {
    let defaulted = chosen.is_none();
    let mut ids = chosen.unwrap_or(candidates::kept(store.conn(), leaf.name(), lock_sha256)?);
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    if ids.len() < 2 {
        let what = if defaulted { "kept experiments under the current leaf.lock" } else { "distinct components" };
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        return Err(LabError::usage(format!(
            "a blend needs at least 2 components; found {} {what} ({})",
            ids.len(),
            list.join(", ")
        ))
        .hint("name them with --components e3,e7 (any experiments of this leaf with a successful full run)")
        .into());
    }
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        let run = candidates::scored_run(store.conn(), id)?;
        let run = run.ok_or_else(|| LabError::usage(format!("{id} has no successful full run to blend")))?;
        if run.leaf.as_deref() != Some(leaf.name()) {
            let other = run.leaf.clone().unwrap_or_default();
            return Err(LabError::usage(format!("{id} belongs to leaf `{other}`, not `{}`", leaf.name())).into());
        }
        if run.lock_sha256.as_deref() != Some(lock_sha256) {
            return Err(LabError::refused(format!("{id} was scored under another leaf.lock than the current one"))
                .hint("only runs under the same frozen files are comparable: rerun it under the current lock")
                .into());
        }
        runs.push(run);
    }
    Ok(runs)
}

fn title(plan: &Plan) -> String {
    let ids: Vec<String> = plan.runs.iter().map(|r| r.experiment.to_string()).collect();
    format!("blend of {}", ids.join("+"))
}

fn record_experiment(store: &mut Store, plan: &Plan) -> Result<(ExperimentId, HypothesisId)> {
    let snapshot = vcs::snapshot(&plan.leaf.dir)?;
    let leaf = Some(plan.leaf.name().to_owned());
    store.write(|tx| {
        let hypothesis = records::add_hypothesis(
            tx,
            &NewHypothesis {
                title: title(plan),
                mechanism: MECHANISM.to_owned(),
                leaf: leaf.clone(),
                prediction: None,
                created_at: records::now(),
            },
        )?;
        let experiment = records::add_experiment(
            tx,
            &NewExperiment {
                hypothesis,
                leaf: leaf.clone(),
                snapshot,
                host: stale::host_name(),
                pid: Some(i64::from(std::process::id())),
                watch_pid: true,
                budget_s: None,
                started_at: records::now(),
            },
        )?;
        Ok((experiment, hypothesis))
    })
}

/// The gate's outcome for the blend.
struct Outcome {
    verdict: Verdict,
    leader: Option<Leader>,
    gate: Option<GateReport>,
    note: String,
}

fn finish(
    lab: &LabRoot,
    store: &mut Store,
    plan: &Plan,
    experiment: ExperimentId,
) -> Result<(Outcome, Vec<RunFile>, Metrics)> {
    let (started_at, clock) = (records::now(), Instant::now());
    let tier = lab.layout().run(experiment).tier(Tier::Full.as_str());
    write_predictions(&tier.outputs(), &plan.splits)?;
    let metric = &plan.leaf.manifest.metric;
    let scored = scoring::score_predictions(metric, &plan.prepared, &tier.outputs(), &tier.scores())?.map_err(
        |(reason, detail)| LabError::failure(format!("the blend could not be scored ({}): {detail}", reason.as_str())),
    )?;
    let mut metrics = scored.metrics.clone();
    for (run, w) in plan.runs.iter().zip(&plan.search.weights) {
        metrics.insert(format!("weight.{}", run.experiment), serde_json::json!(w));
    }
    let row = NewRun {
        experiment,
        tier: Tier::Full,
        seed: 0,
        device: None,
        budget_s: 0.0,
        wall_s: clock.elapsed().as_secs_f64(),
        exit_reason: "ok".into(),
        detail: Some(weights_text(plan)),
        exit_code: None,
        signal: None,
        metric_source: MetricSource::Harness,
        frozen_lock_sha256: Some(plan.lock_sha256.clone()),
        metrics: metrics.clone(),
        log_path: None,
        log_tail: None,
        started_at,
        finished_at: records::now(),
        files: scored.files.clone(),
        sandbox: None,
        environment: None,
        prepared_sha256: Some(plan.prepared.sha256.clone()),
        // No worker ran: a blend imports nothing.
        packages: Default::default(),
    };
    store.write(|tx| runs::add_run(tx, &row))?;
    // The same gate as `lab run --decide`: a paired bootstrap of the blend's val
    // predictions against the leader's, both re-hashed first.
    let judgement = judge::judge(store, &plan.leaf, experiment, &plan.lock_sha256)?;
    let value = metrics.get(&plan.leaf.manifest.metric.name).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    let shown = format!("{}={}", plan.leaf.manifest.metric.name, format_number(value));
    let decision = decide::from_judgement(&shown, judgement.clone());
    let note = format!("{} ({}): {}", title(plan), weights_text(plan), decision.note);
    let stored = decide::stored(&plan.leaf, experiment, &judgement);
    store.write(|tx| {
        records::add_result(tx, &result(experiment, decision.verdict, metrics.clone(), note.clone()), false)?;
        gate_records::add_report(tx, &stored)
    })?;
    let gate = judgement.leader.is_some().then_some(judgement.report);
    let outcome = Outcome { verdict: decision.verdict, leader: decision.leader, gate, note };
    Ok((outcome, scored.files, metrics))
}

fn write_predictions(dir: &Path, splits: &[(String, Vec<f64>)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    for (split, values) in splits {
        let path = dir.join(format!("{split}.npy"));
        ndarray_npy::write_npy(&path, &Array1::from(values.clone()))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(())
}

/// `weights e3 0.30, e7 0.70 by simplex grid on val`, and the scale they weigh
/// where it is not the predictions' own.
fn weights_text(plan: &Plan) -> String {
    let parts: Vec<String> =
        plan.runs.iter().zip(&plan.search.weights).map(|(r, w)| format!("{} {w:.2}", r.experiment)).collect();
    let scale = if plan.units.iter().any(|u| u.centre != 0.0 || u.spread != 1.0) {
        " (of each component's predictions standardized by its val mean and sd)"
    } else {
        ""
    };
    format!("weights {}{scale} by {} on val", parts.join(", "), plan.search.method)
}

fn result(experiment: ExperimentId, verdict: Verdict, metrics: Metrics, note: String) -> NewResult {
    NewResult {
        experiment,
        verdict,
        metrics,
        mechanism: None,
        theory_revision: None,
        note: Some(note),
        created_at: records::now(),
        source: Source::Harness,
    }
}

fn summary(
    plan: Plan,
    experiment: ExperimentId,
    hypothesis: HypothesisId,
    outcome: Outcome,
    files: Vec<RunFile>,
    metrics: Metrics,
) -> BlendSummary {
    let metric = plan.leaf.manifest.metric.name.clone();
    BlendSummary {
        experiment: experiment.to_string(),
        hypothesis: hypothesis.to_string(),
        leaf: plan.leaf.name().to_owned(),
        components: plan.runs.iter().map(|r| r.experiment.to_string()).collect(),
        weights: plan.search.weights.clone(),
        method: plan.search.method,
        component_scores: plan.component_scores,
        error_correlation: plan.error_correlation,
        goal: plan.leaf.manifest.metric.goal,
        value: metrics.get(&metric).and_then(serde_json::Value::as_f64).unwrap_or(plan.search.score),
        metric,
        metrics,
        leader: outcome.leader,
        gate: outcome.gate,
        verdict: outcome.verdict,
        note: outcome.note,
        files,
    }
}
