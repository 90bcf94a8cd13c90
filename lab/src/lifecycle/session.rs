//! `lab run` from start to recorded result: check, snapshot, record, run the
//! tiers, decide, and keep or restore files.
//!
//! Order matters. Integrity checks and the leaf's inputs (resolved to the
//! upstream leaders' files, see `inputs.rs`) come before anything is written,
//! so a refusal leaves no trace. The experiment row is written before the first
//! worker starts (with this process's pid, watched: if the supervisor dies the
//! experiment shows as stale), then the leaf's files are snapshotted: the
//! workers run that copy, and a keep commits exactly its bytes, whatever
//! happened to the working tree meanwhile. Each tier's run row is written as
//! soon as it ends. A keep commits before the result is recorded, so a recorded
//! keep always has its commit. Without `--decide` no file is touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::archive;
use super::decide::{self, Decision};
use super::inputs::{self, Comparability};
use super::integrity::{self, Checked};
use crate::error::LabError;
use crate::gate::{Goal, Verdict as GateVerdict};
use crate::ids::{ExperimentId, HypothesisId};
use crate::layout::RunDir;
use crate::leaf::Leaf;
use crate::leaf::inputs::ResolvedInput;
use crate::leaf::snapshot::{self, Snapshot};
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::comparisons::{self, NewComparison};
use crate::store::gate as gate_records;
use crate::store::records::{self, Metrics, NewExperiment, NewHypothesis, NewResult, Source, Verdict};
use crate::store::runs::{self, Leader, MetricSource, NewRun, RunFile, Tier};
use crate::supervisor::env;
use crate::supervisor::outcome::ExitReason;
use crate::supervisor::pipeline::{Host, TierPlan, TierRun, run_tier};
use crate::supervisor::policy;
use crate::{stale, vcs};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub leaf_dir: PathBuf,
    /// `--smoke`: only the smoke tier; never a keep.
    pub smoke_only: bool,
    /// `--no-smoke`: with `--decide`, go straight to the full tier.
    pub skip_smoke: bool,
    pub decide: bool,
    pub budget: Option<Duration>,
    pub hypothesis: Option<HypothesisId>,
    pub message: Option<String>,
    pub seed: Option<u64>,
    pub quiet: bool,
}

/// What `lab run` prints (and `--json` serialises).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub experiment: String,
    pub hypothesis: String,
    pub leaf: String,
    pub verdict: Verdict,
    pub decided: bool,
    pub metric: String,
    pub goal: Goal,
    pub value: Option<f64>,
    pub metrics: Metrics,
    pub metric_source: MetricSource,
    pub tier: Tier,
    pub exit_reason: ExitReason,
    pub detail: String,
    pub traceback: Option<String>,
    pub wall_s: f64,
    pub budget_s: f64,
    pub device: String,
    pub seed: u64,
    /// What the sandbox enforced on the code under judgement (`landlock v7`, `none`, `disabled`).
    pub sandbox: String,
    pub log: String,
    pub leader: Option<Leader>,
    pub note: String,
    pub commit: Option<String>,
    pub patch: Option<String>,
    /// From the stop at the deadline to the last process gone.
    pub teardown_s: Option<f64>,
    /// Outputs, labels and per-item scores, with their sha256.
    pub files: Vec<RunFile>,
    /// The upstream files the run started from (sha256 `none`: the fallback).
    pub inputs: Vec<ResolvedInput>,
}

pub fn run(lab: &LabRoot, store: &mut Store, opts: RunOptions) -> Result<RunSummary> {
    let leaf = Leaf::load(&opts.leaf_dir)?;
    let checked = integrity::check(&leaf)?;
    let compared = inputs::comparability(lab, store, &leaf)?;
    compared.require(&leaf)?;
    if opts.decide && !opts.smoke_only {
        require_clean_baseline(store, &leaf, &compared, &checked)?;
    }
    if !opts.quiet {
        announce_fallbacks(&leaf, &compared);
    }
    let tiers = plan_tiers(&leaf, &opts);
    let planned: Duration = tiers.iter().map(|(_, b)| *b).sum::<Duration>() + leaf.manifest.budget.full;
    let seed = opts.seed.unwrap_or_else(|| u64::from(rand::random::<u32>()));
    let (experiment, hypothesis) = record_experiment(store, &leaf, &opts, planned)?;
    let layout = lab.layout();
    let run_dir = layout.run(experiment);
    let job = snapshot::take(&leaf, &run_dir.code(), &run_dir.frozen())
        .and_then(|snapshot| {
            let patch = candidate_patch(&checked, &leaf, &snapshot, &run_dir)?;
            Ok(Job { leaf, checked, compared, tiers, seed, experiment, hypothesis, snapshot, patch })
        })
        .and_then(|job| execute(lab, store, &opts, &job));
    job.inspect_err(|err| {
        // Best effort: an experiment lab itself failed on is closed as a crash, not left running.
        let note = format!("lab failed while running it: {err:#}");
        let _ = store.write(|tx| records::add_result(tx, &crash_result(experiment, note), false));
    })
}

/// What is settled before the first worker starts.
#[derive(Debug)]
struct Job {
    leaf: Leaf,
    checked: Checked,
    /// The comparability key results are recorded and judged under, and the inputs.
    compared: Comparability,
    tiers: Vec<(Tier, Duration)>,
    seed: u64,
    experiment: ExperimentId,
    hypothesis: (HypothesisId, String),
    snapshot: Snapshot,
    /// The candidate's changes to its mutable files, as snapshotted.
    patch: PathBuf,
}

/// The first kept run of a comparison becomes its baseline without a gate, so it
/// must be the committed code: a candidate is never kept for free after a
/// re-lock or on a new base.
fn require_clean_baseline(store: &Store, leaf: &Leaf, compared: &Comparability, checked: &Checked) -> Result<()> {
    if checked.mutable_changes.is_empty() {
        return Ok(());
    }
    let metric = &leaf.manifest.metric;
    if runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, &compared.key)?.is_some() {
        return Ok(());
    }
    let list: Vec<String> = checked.mutable_changes.iter().map(|p| format!("`{}`", p.display())).collect();
    Err(LabError::refused(format!(
        "leaf `{}` has no leader under its current leaf.lock and inputs, so this run would become the baseline \
         without a gate; a baseline is the committed code, but {} differ from the last commit",
        leaf.name(),
        list.join(", ")
    ))
    .hint("run the committed code first: `git stash`, `lab run --decide`, `git stash pop`, then the candidate")
    .into())
}

/// A line on stderr for each input the leaf runs without: its fallback, compared only with itself.
fn announce_fallbacks(leaf: &Leaf, compared: &Comparability) {
    for input in compared.inputs.iter().filter(|i| i.found.is_none()) {
        eprintln!(
            "lab: input `{}` of `{}`: {}; running on the leaf's fallback (recorded as sha256 `none`, \
             compared only with other runs on the fallback)",
            input.name,
            leaf.name(),
            input.missing.as_deref().unwrap_or("not found")
        );
    }
}

/// Smoke only; smoke then full (`--decide`, unless `--no-smoke`); or full only.
fn plan_tiers(leaf: &Leaf, opts: &RunOptions) -> Vec<(Tier, Duration)> {
    let budget = &leaf.manifest.budget;
    let full = opts.budget.unwrap_or(budget.full);
    if opts.smoke_only {
        return vec![(Tier::Smoke, opts.budget.unwrap_or(budget.smoke))];
    }
    if opts.decide && !opts.skip_smoke {
        return vec![(Tier::Smoke, budget.smoke.min(full)), (Tier::Full, full)];
    }
    vec![(Tier::Full, full)]
}

fn execute(lab: &LabRoot, store: &mut Store, opts: &RunOptions, job: &Job) -> Result<RunSummary> {
    let (leaf, experiment) = (&job.leaf, job.experiment);
    let layout = lab.layout();
    let run_dir = layout.run(experiment);
    let mut host =
        host(lab, leaf, &run_dir, &job.compared, job.snapshot.clone(), opts.quiet, job.seed, &run_dir.log())?;
    let mut last: Option<TierRun> = None;
    for &(tier, budget) in &job.tiers {
        let result = run_tier(&host, &tier_plan(job, &run_dir, tier, budget, tier.as_str()))?;
        record_run(store, job, &result, host.seed, &run_dir.log())?;
        let ok = result.outcome.ok();
        last = Some(result);
        if !ok {
            break;
        }
    }
    let mut last = last.expect("at least one tier runs");
    let mut decision = decide::decide(store, leaf, opts, &last, &job.compared.key, experiment)?;
    // NEEDS_REPEATS: more full runs of the candidate under new seeds, each recorded, until the gate decides.
    let full_budget = job.tiers.last().map_or(leaf.manifest.budget.full, |t| t.1);
    let mut runs = 1;
    while decision.judgement.as_ref().is_some_and(|j| j.report.verdict == GateVerdict::NeedsRepeats) {
        runs += 1;
        // A given --seed makes the repeats reproducible too: seed + 1, seed + 2, ...
        host.seed = opts.seed.map_or_else(|| u64::from(rand::random::<u32>()), |s| s + runs as u64 - 1);
        let plan = tier_plan(job, &run_dir, Tier::Full, full_budget, &format!("full-{runs}"));
        last = run_tier(&host, &plan)?;
        record_run(store, job, &last, host.seed, &run_dir.log())?;
        decision = decide::decide(store, leaf, opts, &last, &job.compared.key, experiment)?;
    }
    let (commit, restored) = apply(job, opts, &decision, &last, crate::store::chain::head(store.conn())?)?;
    let mut metrics = last.metrics.clone();
    let primary = &leaf.manifest.metric.name;
    let values = gate_records::full_values(store.conn(), experiment, primary)?;
    if values.len() > 1 && last.outcome.ok() {
        // Repeated: the result is the mean over the candidate's full runs, which is what the gate judged.
        let mean = values.iter().map(|(_, v)| v).sum::<f64>() / values.len() as f64;
        metrics.insert(primary.clone(), crate::supervisor::protocol::encode_number(mean));
    }
    let patch = restored.then(|| job.patch.display().to_string());
    let archived = if opts.decide && decision.verdict != Verdict::Keep && last.outcome.reason != ExitReason::Environment
    {
        Some(archive::archive(leaf, experiment, decision.verdict, patch.as_deref(), &last, &metrics, &decision)?)
    } else {
        None
    };
    let result = NewResult {
        metrics,
        note: Some(decision.note.clone()),
        verdict: decision.verdict,
        ..crash_result(experiment, String::new())
    };
    store.write(|tx| {
        records::add_result(tx, &result, false)?;
        if let Some(judgement) = &decision.judgement {
            gate_records::add_report(tx, &decide::stored(leaf, experiment, judgement))?;
        }
        if let Some(path) = &archived {
            gate_records::add_archive(tx, experiment, decision.verdict.as_str(), &path.display().to_string())?;
        }
        Ok(())
    })?;
    Ok(summary(job, opts, last, decision, commit, patch, run_dir.log()))
}

/// What every worker of one leaf's runs shares; the log is appended to.
#[allow(clippy::too_many_arguments)]
pub(super) fn host(
    lab: &LabRoot,
    leaf: &Leaf,
    run_dir: &RunDir,
    compared: &Comparability,
    snapshot: Snapshot,
    quiet: bool,
    seed: u64,
    log_path: &Path,
) -> Result<Host> {
    let venv = env::find_venv(Some(&lab.dir))?;
    let module_dir = env::write_child_module(&run_dir.python_module())?;
    std::fs::create_dir_all(run_dir.root())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot open `{}`", log_path.display()))?;
    Ok(Host {
        policy: policy::Base::new(venv.as_ref(), &module_dir, &leaf.manifest.sealed.site_packages),
        venv,
        quiet,
        leaf: leaf.clone(),
        layout: lab.layout(),
        run: run_dir.clone(),
        snapshot,
        seed,
        inputs: compared.inputs.clone(),
        key: compared.key.clone(),
        sandboxed: std::env::var("LAB_SANDBOX").map_or(true, |v| v != "off"),
        log,
        log_path: log_path.to_path_buf(),
    })
}

fn tier_plan(job: &Job, run_dir: &RunDir, tier: Tier, budget: Duration, dir: &str) -> TierPlan {
    TierPlan { tier, budget, dir: run_dir.tier(dir), label: job.experiment.to_string() }
}

fn record_run(store: &mut Store, job: &Job, result: &TierRun, seed: u64, log: &Path) -> Result<()> {
    let row = new_run(job.experiment, result, seed, &job.compared.key, &job.snapshot, log);
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

fn crash_result(experiment: ExperimentId, note: String) -> NewResult {
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
fn record_experiment(
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
            (None, None) => runs::auto_hypothesis(tx, leaf.name(), if no_leader { "baseline" } else { "run" })?,
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
    }
}

/// The snapshot's content of each changed mutable file (`None`: deleted),
/// repository-relative, for the keep commit and the candidate patch.
fn contents(checked: &Checked, leaf: &Leaf, snapshot: &Snapshot) -> Vec<vcs::Content> {
    let prefix = super::judge::leaf_prefix(leaf, &checked.workdir);
    checked
        .mutable_changes
        .iter()
        .map(|path| {
            let rel = path.to_string_lossy();
            let inside = rel.strip_prefix(&prefix).unwrap_or(&rel);
            let file = snapshot.file(inside);
            let executable = std::fs::metadata(checked.workdir.join(path))
                .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
            vcs::Content { path: path.clone(), bytes: file.map(|f| f.bytes.clone()), executable }
        })
        .collect()
}

/// `candidate.patch`: the diff from HEAD to the snapshot's mutable files, written at launch.
fn candidate_patch(checked: &Checked, leaf: &Leaf, snapshot: &Snapshot, run_dir: &RunDir) -> Result<PathBuf> {
    let path = run_dir.candidate_patch();
    let patch = if checked.mutable_changes.is_empty() {
        String::new()
    } else {
        vcs::patch_of_contents(&checked.workdir, &contents(checked, leaf, snapshot))?
    };
    std::fs::write(&path, patch).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(path)
}

/// Keep: commit the snapshot of the changed mutable files, with the chain's
/// head as an anchor. Discard or crash:
/// restore each of them to HEAD, unless it changed during the run (an agent
/// already editing the next candidate), which is left as it is. Only with
/// `--decide`, and never after an environment failure: the candidate did not
/// run at all. Returns the commit, and whether the files were restored.
fn apply(
    job: &Job,
    opts: &RunOptions,
    decision: &Decision,
    last: &TierRun,
    (seq, head): (i64, String),
) -> Result<(Option<String>, bool)> {
    let (leaf, checked, experiment) = (&job.leaf, &job.checked, job.experiment);
    if !opts.decide || checked.mutable_changes.is_empty() || last.outcome.reason == ExitReason::Environment {
        return Ok((None, false));
    }
    let contents = contents(checked, leaf, &job.snapshot);
    if decision.verdict == Verdict::Keep {
        let metric = &leaf.manifest.metric.name;
        let value = last.metrics.get(metric).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        // The chain's head goes into the commit: a rebuilt chain no longer has it (`lab verify`).
        let anchor = super::verify::ANCHOR;
        let message =
            format!("lab: keep {experiment} {metric}={value} ({})\n\n{anchor}: {seq} {head}", job.hypothesis.1);
        return Ok((Some(vcs::commit_contents(&checked.workdir, &contents, &message)?), false));
    }
    let (unchanged, edited): (Vec<&vcs::Content>, Vec<&vcs::Content>) =
        contents.iter().partition(|c| std::fs::read(checked.workdir.join(&c.path)).ok() == c.bytes);
    for content in &edited {
        eprintln!("lab: left `{}` as it is: it changed while {experiment} ran", content.path.display());
    }
    let paths: Vec<PathBuf> = unchanged.iter().map(|c| c.path.clone()).collect();
    vcs::restore_paths(&checked.workdir, &paths)?;
    Ok((None, true))
}

fn summary(
    job: &Job,
    opts: &RunOptions,
    last: TierRun,
    decision: Decision,
    commit: Option<String>,
    patch: Option<String>,
    log: PathBuf,
) -> RunSummary {
    let (leaf, experiment, hypothesis, seed) = (&job.leaf, job.experiment, &job.hypothesis, job.seed);
    let metric = leaf.manifest.metric.name.clone();
    RunSummary {
        experiment: experiment.to_string(),
        hypothesis: hypothesis.0.to_string(),
        leaf: leaf.name().to_owned(),
        verdict: decision.verdict,
        decided: opts.decide,
        value: last.metrics.get(&metric).and_then(serde_json::Value::as_f64),
        goal: leaf.manifest.metric.goal,
        metric,
        metrics: last.metrics.clone(),
        metric_source: last.source,
        tier: last.tier,
        exit_reason: last.outcome.reason,
        detail: last.outcome.detail.clone(),
        traceback: last.outcome.traceback.clone(),
        wall_s: last.wall.as_secs_f64(),
        budget_s: last.budget.as_secs_f64(),
        device: last.outcome.device.clone().unwrap_or_else(|| "cpu".into()),
        seed,
        sandbox: last.sandbox.label(),
        log: log.display().to_string(),
        leader: decision.leader,
        note: decision.note,
        commit,
        patch,
        teardown_s: last.teardown.map(|d| d.as_secs_f64()),
        files: last.files.clone(),
        inputs: job.compared.inputs.clone(),
    }
}
