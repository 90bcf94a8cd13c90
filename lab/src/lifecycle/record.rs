//! The rows a `lab run` writes: the experiment (with its hypothesis), each
//! tier's run with every file it rests on and the comparison it belongs to, and
//! a crash result when lab itself fails. Every write goes through the store's
//! one recorder (`store::records`) with the harness as its source.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::decide;
use super::session::{Job, RunOptions};
use crate::error::LabError;
use crate::ids::{ExperimentId, HypothesisId};
use crate::leaf::Leaf;
use crate::leaf::snapshot::Snapshot;
use crate::store::Store;
use crate::store::comparisons::{self, NewComparison};
use crate::store::gate as gate_records;
use crate::store::records::{self, Metrics, NewExperiment, NewHypothesis, NewResult, Source, Verdict};
use crate::store::runs::{self, NewRun, RunFile};
use crate::supervisor::pipeline::TierRun;
use crate::supervisor::requires::Packages;
use crate::{stale, vcs};

pub(super) fn record_run(store: &mut Store, job: &Job, result: &TierRun, seed: u64, log: &Path) -> Result<()> {
    let row = new_run(job.experiment, result, seed, &job.compared.key, &job.snapshot, log, &job.packages);
    let comparison = comparison(job)?;
    store.write(|tx| {
        comparisons::record(tx, &comparison)?;
        let id = runs::add_run(tx, &row)?;
        runs::add_inputs(tx, id, &job.compared.inputs)?;
        if let Some(holdout) = &result.holdout {
            gate_records::seal_holdout(tx, id, job.experiment, holdout)?;
        }
        Ok(())
    })
}

/// What the run's comparison key stands for: the lock's files, the gate settings and the inputs.
fn comparison(job: &Job) -> Result<NewComparison> {
    let gate = &job.leaf.manifest.gate;
    let inputs: Vec<serde_json::Value> = job
        .compared
        .inputs
        .iter()
        .map(|i| {
            serde_json::json!({"name": i.name, "leaf": i.leaf, "file": i.file, "sha256": i.sha256(),
                                    "experiment": i.found.as_ref().map(|f| &f.experiment)})
        })
        .collect();
    Ok(NewComparison {
        leaf: job.leaf.name().to_owned(),
        key: job.compared.key.clone(),
        files: crate::leaf::lock::Lock::read(&job.leaf.dir)?.unwrap_or_default().files,
        gate: serde_json::json!({"min_improvement": gate.min_improvement, "confidence": gate.confidence,
                                 "repeats": gate.repeats}),
        inputs: serde_json::Value::Array(inputs),
        experiment: job.experiment,
        created_at: records::now(),
    })
}

pub(super) fn crash_result(experiment: ExperimentId, note: String) -> NewResult {
    NewResult {
        experiment,
        verdict: Verdict::Crash,
        metrics: Metrics::new(),
        mechanism: None,
        theory_revision: None,
        note: Some(note),
        created_at: records::now(),
        source: Source::Harness,
    }
}

/// The hypothesis (given, new from `-m`, or the leaf's standing one) and the experiment row.
pub(super) fn record_experiment(
    store: &mut Store,
    leaf: &Leaf,
    opts: &RunOptions,
    planned: Duration,
) -> Result<(ExperimentId, (HypothesisId, String))> {
    let snapshot = vcs::snapshot(&leaf.dir)?;
    let no_leader = !decide::has_kept(store, leaf.name())?;
    store.write(|tx| {
        let hypothesis = match (&opts.hypothesis, &opts.message) {
            (Some(h), _) => {
                let owner = records::hypothesis_leaf(tx, *h)?;
                if owner.as_deref().is_some_and(|o| o != leaf.name()) {
                    return Err(LabError::usage(format!(
                        "{h} belongs to leaf `{}`, not `{}`",
                        owner.unwrap_or_default(),
                        leaf.name()
                    ))
                    .into());
                }
                *h
            }
            (None, Some(text)) => records::add_hypothesis(
                tx,
                &NewHypothesis {
                    title: text.clone(),
                    mechanism: String::new(),
                    leaf: Some(leaf.name().to_owned()),
                    prediction: None,
                    created_at: records::now(),
                },
            )?,
            (None, None) => {
                // A smoke check tests the code, not an idea: it never stands under the baseline's hypothesis.
                let title = match (opts.smoke_only, no_leader) {
                    (true, _) => "smoke check",
                    (false, true) => "baseline",
                    (false, false) => "run",
                };
                runs::auto_hypothesis(tx, leaf.name(), title)?
            }
        };
        let title = runs::hypothesis_title(tx, hypothesis)?;
        let experiment = records::add_experiment(
            tx,
            &NewExperiment {
                hypothesis,
                leaf: Some(leaf.name().to_owned()),
                snapshot,
                host: stale::host_name(),
                pid: Some(i64::from(std::process::id())),
                watch_pid: true,
                budget_s: Some(planned.as_secs_f64()),
                started_at: records::now(),
            },
        )?;
        if opts.smoke_only {
            runs::mark_smoke(tx, experiment)?;
        }
        Ok((experiment, (hypothesis, title)))
    })
}

/// The run row of one tier, with the snapshot's files fingerprinted beside its outputs.
pub(super) fn new_run(
    experiment: ExperimentId,
    r: &TierRun,
    seed: u64,
    key: &str,
    snapshot: &Snapshot,
    log: &Path,
    packages: &Packages,
) -> NewRun {
    let mut files = r.files.clone();
    for file in &snapshot.files {
        let root = if file.sealed { &snapshot.frozen } else { &snapshot.code };
        let path = root.join(&file.path).display().to_string();
        files.push(RunFile { kind: "code", name: file.path.clone(), path, sha256: file.sha256.clone(), len: None });
    }
    NewRun {
        experiment,
        tier: r.tier,
        seed,
        device: r.outcome.device.clone(),
        budget_s: r.budget.as_secs_f64(),
        wall_s: r.wall.as_secs_f64(),
        exit_reason: r.outcome.reason.as_str().to_owned(),
        detail: Some(r.outcome.detail.clone()).filter(|d| !d.is_empty()),
        exit_code: r.outcome.exit_code,
        signal: r.outcome.signal,
        metric_source: r.source,
        frozen_lock_sha256: Some(key.to_owned()),
        metrics: r.metrics.clone(),
        log_path: Some(log.display().to_string()),
        log_tail: Some(r.log_tail.clone()),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        files,
        sandbox: Some(r.sandbox.label()),
        environment: r.environment.clone(),
        prepared_sha256: r.prepared.clone(),
        packages: packages.clone(),
    }
}
