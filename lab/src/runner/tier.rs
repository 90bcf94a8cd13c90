//! One tier (smoke or full) of one experiment: the workers it takes in the
//! leaf's mode, and the metrics it produced with where they came from.
//!
//! In-process mode is one worker (train, then the frozen evaluate). Predictions
//! mode is up to two: the frozen data preparation (skipped when the cache for
//! this leaf.lock is complete; given the full budget, because it is frozen code
//! and cached) and the agent's `predict`, whose output the harness scores.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::Map;

use super::launch::{Host, Launch, launch};
use super::outcome::{ExitReason, Outcome, classify};
use super::predictions;
use super::protocol::{Event, Phase, encode_number};
use super::supervise::Supervised;
use crate::leaf::Leaf;
use crate::leaf::manifest::Entry;
use crate::store::records::{self, Metrics};
use crate::store::runs::{MetricSource, RunFile, Tier};

/// Bytes of the log kept with the run record.
const LOG_TAIL_BYTES: u64 = 4000;

#[derive(Debug)]
pub struct TierRun {
    pub tier: Tier,
    pub outcome: Outcome,
    /// Finite metrics, primary included when the run is ok.
    pub metrics: Metrics,
    pub source: MetricSource,
    pub files: Vec<RunFile>,
    pub budget: Duration,
    pub wall: Duration,
    pub teardown: Option<Duration>,
    pub started_at: String,
    pub finished_at: String,
    pub log_tail: String,
    /// In-process mode with an `entry.holdout`: the sealed held-out metrics of an ok run.
    pub holdout: Option<Metrics>,
}

/// Where one tier runs.
#[derive(Debug)]
pub struct TierPlan<'a> {
    pub leaf: &'a Leaf,
    pub tier: Tier,
    pub budget: Duration,
    /// `.lab/runs/e<N>/<tier>/`.
    pub dir: PathBuf,
    pub log_path: &'a Path,
    pub lock_sha256: &'a str,
    /// `e<N>`, for the progress line.
    pub label: String,
}

pub fn run_tier(host: &Host, plan: &TierPlan<'_>) -> Result<TierRun> {
    let started_at = records::now();
    let smoke = plan.tier == Tier::Smoke;
    let budget_text = humantime::format_duration(plan.budget).to_string();
    let primary = plan.leaf.manifest.metric.name.as_str();
    let label = format!("{} {}", plan.label, plan.tier.as_str());
    let mut walls = Duration::ZERO;
    let mut step = |phase: Phase, name: &str, budget: Duration, smoke: bool| -> Result<Supervised> {
        header(host, &format!("{label}: {name} (budget {}, seed {})", humantime::format_duration(budget), host.seed));
        let run = launch(host, Launch { phase, name, dir: &plan.dir, budget, smoke, label: label.clone() })?;
        walls += run.wall;
        Ok(run)
    };
    let mut holdout = None;
    let (outcome, metrics, source, files, teardown) = match &plan.leaf.manifest.entry {
        Entry::InProcess { train, evaluate, holdout: sealed } => {
            let phase = Phase::Train { train: train.clone(), evaluate: evaluate.clone(), holdout: sealed.clone() };
            let run = step(phase, "train", plan.budget, smoke)?;
            let outcome = classify(&run, Some(primary), &budget_text);
            let metrics = outcome.metrics.iter().map(|(k, v)| (k.clone(), encode_number(*v))).collect();
            holdout = run.events.iter().find_map(|e| match e {
                Event::Holdout { metrics } if outcome.ok() => Some(metrics.clone()),
                _ => None,
            });
            (outcome, metrics, MetricSource::Evaluate, Vec::new(), run.teardown)
        }
        Entry::Predictions { data, predict } => {
            let prepared = predictions::prepared_dir(&host.data_dir, plan.lock_sha256);
            if !predictions::is_prepared(&prepared) {
                let staging = predictions::staging_dir(&prepared)?;
                let submission = plan.leaf.manifest.submission.as_ref().map(|s| s.rows.clone());
                let phase = Phase::Prepare { data: data.clone(), out: staging.clone(), submission };
                let full = plan.leaf.manifest.budget.full;
                let run = step(phase, "prepare", full, false)?;
                let outcome = classify(&run, None, &humantime::format_duration(full).to_string());
                if !outcome.ok() {
                    let detail = format!("data preparation failed: {}", outcome.detail);
                    let outcome = outcome.clone().fail(outcome.reason, detail);
                    return Ok(finish(
                        host,
                        plan,
                        started_at,
                        outcome,
                        Map::new(),
                        MetricSource::Harness,
                        vec![],
                        walls,
                        run.teardown,
                    ));
                }
                predictions::publish(&staging, &prepared)?;
            }
            let phase = Phase::Predict { predict: predict.clone(), prepared: prepared.clone() };
            let run = step(phase, "predict", plan.budget, smoke)?;
            let outcome = classify(&run, None, &budget_text);
            let (outcome, metrics, files) = if outcome.ok() {
                match predictions::score(&plan.leaf.manifest.metric, &prepared, &plan.dir)? {
                    Ok(scored) => (outcome, scored.metrics, scored.files),
                    Err((reason, detail)) => (outcome.fail(reason, detail), Map::new(), Vec::new()),
                }
            } else {
                (outcome, Map::new(), Vec::new())
            };
            (outcome, metrics, MetricSource::Harness, files, run.teardown)
        }
    };
    let mut run = finish(host, plan, started_at, outcome, metrics, source, files, walls, teardown);
    run.holdout = holdout;
    Ok(run)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    host: &Host,
    plan: &TierPlan<'_>,
    started_at: String,
    outcome: Outcome,
    metrics: Metrics,
    source: MetricSource,
    files: Vec<RunFile>,
    wall: Duration,
    teardown: Option<Duration>,
) -> TierRun {
    let verdict_line =
        if outcome.ok() { "ok".to_owned() } else { format!("{}: {}", outcome.reason.as_str(), outcome.detail) };
    header(host, &format!("{} {}: {verdict_line}", plan.label, plan.tier.as_str()));
    let metrics = if outcome.reason == ExitReason::Ok { metrics } else { Map::new() };
    TierRun {
        tier: plan.tier,
        outcome,
        metrics,
        source,
        files,
        budget: plan.budget,
        wall,
        teardown,
        started_at,
        finished_at: records::now(),
        log_tail: log_tail(plan.log_path),
        holdout: None,
    }
}

/// A line in the run's log marking what the harness did, between the leaf's output.
fn header(host: &Host, text: &str) {
    let mut log = &host.log;
    let _ = writeln!(log, "==== lab: {text} ====");
}

/// The last few KB of the log, from a line start.
pub fn log_tail(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).and_then(|_| file.read_to_end(&mut bytes)).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match (start > 0, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_owned(),
        _ => text,
    }
}
