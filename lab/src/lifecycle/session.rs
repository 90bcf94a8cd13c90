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
use super::keep::{self, Candidate};
use super::record::{crash_result, record_experiment, record_run};
use crate::error::LabError;
use crate::gate::{Goal, Verdict as GateVerdict};
use crate::ids::{ExperimentId, HypothesisId};
use crate::layout::RunDir;
use crate::leaf::Leaf;
use crate::leaf::inputs::ResolvedInput;
use crate::leaf::snapshot::{self, Snapshot};
use crate::root::LabRoot;
use crate::store::gate as gate_records;
use crate::store::records::{self, Metrics, NewResult, Verdict};
use crate::store::runs::{self, Leader, MetricSource, RunFile, Tier};
use crate::store::{Store, chain};
use crate::supervisor::env;
use crate::supervisor::memo::Memo;
use crate::supervisor::outcome::ExitReason;
use crate::supervisor::pipeline::{Host, TierPlan, TierRun, run_tier};
use crate::supervisor::policy;
use crate::supervisor::requires::{self, Packages};

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
    /// `--no-memo`: `lab.memo` reads and writes nothing (a cold run, to rerun a suspicious result).
    pub no_memo: bool,
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
    let packages = requires::require(&leaf, env::find_venv(Some(&lab.dir))?.as_ref())?;
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
            let candidate =
                Candidate { leaf: &leaf, checked: &checked, snapshot: &snapshot, experiment, title: &hypothesis.1 };
            let python = env::python_of(env::find_venv(Some(&lab.dir))?.as_ref());
            let leader = leader_code(lab, store, &leaf, &compared)?;
            let patch = keep::candidate_patch(&candidate, &run_dir, python.as_deref(), leader.as_deref())?;
            Ok(Job { leaf, checked, compared, tiers, seed, experiment, hypothesis, snapshot, patch, packages })
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
pub(super) struct Job {
    pub leaf: Leaf,
    pub checked: Checked,
    /// The comparability key results are recorded and judged under, and the inputs.
    pub compared: Comparability,
    pub tiers: Vec<(Tier, Duration)>,
    pub seed: u64,
    pub experiment: ExperimentId,
    pub hypothesis: (HypothesisId, String),
    pub snapshot: Snapshot,
    /// The candidate's changes to its mutable files, as snapshotted.
    pub patch: PathBuf,
    /// The installed versions of the packages the leaf declares, recorded with each run.
    pub packages: Packages,
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
    let git = integrity::git_in(&checked.workdir);
    Err(LabError::refused(format!(
        "leaf `{}` has no leader under its current leaf.lock and inputs, so this run would become the baseline \
         without a gate; a baseline is the committed code, but {} differ from the last commit",
        leaf.name(),
        list.join(", ")
    ))
    .hint(format!(
        "run the committed code first: `{git}stash push -- {}`, `lab run --decide`, `{git}stash pop`, then the candidate",
        checked.mutable_changes.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
    ))
    .into())
}

/// The leader's code as it ran (its snapshot), the base a candidate's flags
/// are read against; `None` before the first keep, or for a leader without a
/// snapshot (a blend).
fn leader_code(lab: &LabRoot, store: &Store, leaf: &Leaf, compared: &Comparability) -> Result<Option<PathBuf>> {
    let metric = &leaf.manifest.metric;
    let Some(leader) = runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, &compared.key)? else {
        return Ok(None);
    };
    let code = lab.layout().run(leader.experiment.parse()?).code();
    Ok(code.is_dir().then_some(code))
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
    let memo = (!opts.no_memo).then(|| Memo::new(&job.packages));
    let mut host =
        host(lab, leaf, &run_dir, &job.compared, job.snapshot.clone(), opts.quiet, job.seed, &run_dir.log(), memo)?;
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
    let candidate =
        Candidate { leaf, checked: &job.checked, snapshot: &job.snapshot, experiment, title: &job.hypothesis.1 };
    let (commit, restored) = keep::apply(&candidate, opts.decide, &decision, &last, chain::head(store.conn())?)?;
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
    memo: Option<Memo>,
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
        memo,
        log,
        log_path: log_path.to_path_buf(),
    })
}

fn tier_plan(job: &Job, run_dir: &RunDir, tier: Tier, budget: Duration, dir: &str) -> TierPlan {
    TierPlan { tier, budget, dir: run_dir.tier(dir), label: job.experiment.to_string() }
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
