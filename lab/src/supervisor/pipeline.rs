//! One tier (smoke or full) of one experiment: the workers it takes in the
//! leaf's mode, and the metrics the harness scored from their outputs.
//!
//! Predictions mode: the frozen `data` (skipped when its cache for this key and
//! tier verifies), then the mutable `predict`; the supervisor scores val.
//! Artifact mode: `data`, the mutable `train` (the tier's budget), `infer` in a
//! fresh process that gets the evaluated splits' inputs and the artifact only
//! (`budget.infer`), the causality probes in another fresh process when the
//! leaf asks for them, then scoring by the supervisor or by the frozen `score`.
//! Each worker is a keeper and a sandboxed worker (`launch`); the first one
//! that fails ends the tier with its reason.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Map;

use super::curve;
use super::env::{self, Venv};
use super::launch::{self, Limits, Supervised};
use super::memo::{self, Memo};
use super::outcome::{ExitReason, Outcome, classify};
use super::policy;
use super::prepared::{self, Prepared, SCORED};
use super::probes;
use super::progress::Progress;
use super::protocol::{Event, MemoSpec, Role, ScoreSplit, SplitFile, WorkerSpec};
use super::scoring::{self, Failure, Scored};
use super::shm;
use crate::gate::Scorer;
use crate::layout::{Layout, RunDir, TierDir};
use crate::leaf::Leaf;
use crate::leaf::inputs::ResolvedInput;
use crate::leaf::manifest::{Entry, Probe};
use crate::leaf::snapshot::Snapshot;
use crate::sandbox::{Policy, Status};
use crate::store::records::{self, Metrics};
use crate::store::runs::{MetricSource, RunFile, Tier};

/// Bytes of the log kept with the run record.
const LOG_TAIL_BYTES: u64 = 4000;
/// The most a run's log may hold; a worker writing more is stopped (`log_limit`).
pub const LOG_CAP: u64 = 64 << 20;
/// The largest file a worker may write (RLIMIT_FSIZE): a checkpoint, an output.
pub const FILE_CAP: u64 = 8 << 30;

/// What every worker of one `lab run` (or `lab baseline` rerun) shares.
#[derive(Debug)]
pub struct Host {
    pub venv: Option<Venv>,
    pub quiet: bool,
    pub leaf: Leaf,
    pub layout: Layout,
    pub run: RunDir,
    pub snapshot: Snapshot,
    pub seed: u64,
    pub inputs: Vec<ResolvedInput>,
    /// The comparability key: the prepared-data cache is kept per key.
    pub key: String,
    /// `false` when `LAB_SANDBOX=off`: recorded, flagged, never kept.
    pub sandboxed: bool,
    pub policy: policy::Base,
    /// `lab.memo` for the mutable code; `None` with `--no-memo` (and in `lab verify`).
    pub memo: Option<Memo>,
    pub log: File,
    pub log_path: PathBuf,
}

#[derive(Debug)]
pub struct TierRun {
    pub tier: Tier,
    pub outcome: Outcome,
    /// Finite metrics, primary first, when the run is ok.
    pub metrics: Metrics,
    pub source: MetricSource,
    pub files: Vec<RunFile>,
    pub budget: Duration,
    pub wall: Duration,
    pub teardown: Option<Duration>,
    pub started_at: String,
    pub finished_at: String,
    pub log_tail: String,
    /// Artifact mode: the sealed held-out metrics of an ok run.
    pub holdout: Option<Metrics>,
    /// What the sandbox enforced on the workers that ran code under judgement.
    pub sandbox: Status,
    /// sha256 of the prepared data's manifest: the targets this run was scored on.
    pub prepared: Option<String>,
    /// The environment of the first worker that ran code under judgement.
    pub environment: Option<serde_json::Value>,
}

/// Where one tier runs.
#[derive(Debug)]
pub struct TierPlan {
    pub tier: Tier,
    pub budget: Duration,
    pub dir: TierDir,
    /// `e<N>`, for the progress line.
    pub label: String,
}

/// A tier in progress: what it has found so far.
struct Tally {
    wall: Duration,
    teardown: Option<Duration>,
    sandbox: Option<Status>,
    environment: Option<serde_json::Value>,
    /// Files of the artifact `train` left, fingerprinted when it ended.
    artifact: Vec<RunFile>,
}

pub fn run_tier(host: &Host, plan: &TierPlan) -> Result<TierRun> {
    let started_at = records::now();
    std::fs::create_dir_all(plan.dir.root())
        .with_context(|| format!("cannot create `{}`", plan.dir.root().display()))?;
    let mut tally =
        Tally { wall: Duration::ZERO, teardown: None, sandbox: None, environment: None, artifact: Vec::new() };
    let prepared = match prepare(host, plan, &mut tally)? {
        Ok(prepared) => prepared,
        Err(outcome) => return Ok(finish(host, plan, started_at, outcome, Scored::default(), tally, None)),
    };
    let (outcome, scored) = match &host.leaf.manifest.entry {
        Entry::Predictions { predict, .. } => predictions(host, plan, &prepared, predict, &mut tally)?,
        Entry::Artifact { train, infer, score, probe, .. } => {
            artifact(host, plan, &prepared, (train, infer, score.as_deref(), *probe), &mut tally)?
        }
    };
    Ok(finish(host, plan, started_at, outcome, scored, tally, Some(prepared.sha256)))
}

/// The verified cache, or a fresh preparation by the frozen `data` (given the full budget: it is cached).
fn prepare(host: &Host, plan: &TierPlan, tally: &mut Tally) -> Result<Result<Prepared, Outcome>> {
    let dir = host.layout.prepared(host.leaf.name(), &host.key, plan.tier == Tier::Smoke);
    if prepared::is_prepared(&dir) {
        return Ok(Ok(prepared::load(&dir)?));
    }
    let staging = prepared::staging(&dir)?;
    let submission = host.leaf.manifest.submission.as_ref().map(|s| s.rows.clone());
    let role = Role::Prepare { data: host.leaf.manifest.entry.data().to_owned(), out: staging.clone(), submission };
    let budget = host.leaf.manifest.budget.full;
    let policy = host.policy.prepare(&[&staging]);
    let run = start(host, plan, Worker { name: "prepare", role, code: &host.snapshot.frozen, budget, policy }, tally)?;
    let outcome = classify(&run, "data", &text(budget));
    if !outcome.ok() {
        let _ = std::fs::remove_dir_all(&staging);
        let detail = format!("data preparation failed: {}", outcome.detail);
        return Ok(Err(outcome.clone().fail(outcome.reason, detail)));
    }
    Ok(Ok(prepared::publish(&staging, &dir)?))
}

fn predictions(
    host: &Host,
    plan: &TierPlan,
    prepared: &Prepared,
    predict: &str,
    tally: &mut Tally,
) -> Result<(Outcome, Scored)> {
    let out = plan.dir.outputs();
    let role = Role::Predict {
        predict: predict.to_owned(),
        train: prepared.dir.train(),
        eval: prepared.eval_inputs(),
        out: out.clone(),
    };
    let reads = [prepared.dir.train(), prepared.dir.eval()];
    let policy = confined(host, &host.snapshot.code, &reads, &[&out]);
    let worker = Worker { name: "predict", role, code: &host.snapshot.code, budget: plan.budget, policy };
    let run = start(host, plan, worker, tally)?;
    note_sandbox(&run, tally);
    let outcome = classify(&run, "predict", &text(plan.budget));
    if !outcome.ok() {
        return Ok((outcome, Scored::default()));
    }
    let scored = scoring::score_predictions(&host.leaf.manifest.metric, prepared, &out, &plan.dir.scores())?;
    Ok(settle(outcome, scored))
}

fn artifact(
    host: &Host,
    plan: &TierPlan,
    prepared: &Prepared,
    (train, infer, score, probe): (&str, &str, Option<&str>, Option<Probe>),
    tally: &mut Tally,
) -> Result<(Outcome, Scored)> {
    let (artifact, out) = (plan.dir.artifact(), plan.dir.outputs());
    std::fs::create_dir_all(&artifact)?;
    let role = Role::Train { train: train.to_owned(), data: prepared.dir.train(), artifact: artifact.clone() };
    let policy = confined(host, &host.snapshot.code, &[prepared.dir.train()], &[&artifact]);
    let worker = Worker { name: "train", role, code: &host.snapshot.code, budget: plan.budget, policy };
    let training = spawn(host, plan, worker, tally)?;
    // `infer` starts its interpreter while `train` runs and waits for its go
    // until `train` is gone and its artifact fingerprinted: nothing of the
    // leaf runs in it before, and its sandbox is applied already.
    let frozen = is_frozen_module(host, infer);
    let code = if frozen { &host.snapshot.frozen } else { &host.snapshot.code };
    let eval: Vec<SplitFile> =
        prepared.eval_inputs().into_iter().filter(|f| SCORED.contains(&f.split.as_str())).collect();
    let budget = host.leaf.manifest.budget.infer();
    let role = Role::Infer {
        infer: infer.to_owned(),
        frozen,
        eval: eval.clone(),
        artifact: artifact.clone(),
        out: out.clone(),
    };
    let policy = confined(host, code, &[prepared.dir.eval(), artifact.clone()], &[&out]);
    let inference = spawn(host, plan, Worker { name: "infer", role, code, budget, policy }, tally)?;
    let run = supervise(host, plan, training, tally)?;
    note_sandbox(&run, tally);
    let outcome = classify(&run, "train", &text(plan.budget));
    if !outcome.ok() {
        cancel(inference);
        return Ok((outcome, Scored::default()));
    }
    tally.artifact = fingerprint_dir("artifact", &artifact)?;
    let run = supervise(host, plan, inference, tally)?;
    note_sandbox(&run, tally);
    let outcome = classify(&run, "infer", &text(budget));
    if !outcome.ok() {
        return Ok((outcome, Scored::default()));
    }
    if probe == Some(Probe::Causal)
        && let Some(failure) = causal_probe(host, plan, (infer, frozen, code), &eval, tally)?
    {
        return Ok((outcome.fail(failure.0, failure.1), Scored::default()));
    }
    let metric = &host.leaf.manifest.metric;
    let scored = match score {
        None => {
            let scorer: Scorer = metric.kind().parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            scoring::score_outputs(metric, scorer, prepared, &out, &plan.dir.scores())?
        }
        Some(score) => match frozen_score(host, plan, prepared, score, tally)? {
            Ok(from) => scoring::read_scores(metric, prepared, &out, &from, &plan.dir.scores())?,
            Err(outcome) => return Ok((outcome, Scored::default())),
        },
    };
    Ok(settle(outcome, scored))
}

/// Run `infer` again, in a fresh process, on the probe batch; `Some` when the model fails the probes.
fn causal_probe(
    host: &Host,
    plan: &TierPlan,
    (infer, frozen, code): (&str, bool, &Path),
    eval: &[SplitFile],
    tally: &mut Tally,
) -> Result<Option<Failure>> {
    let Some(val) = eval.iter().find(|f| f.split == "val") else { return Ok(None) };
    let not_causal = |detail: String| Ok(Some((ExitReason::NotCausal, detail)));
    let tokens = match probes::Tokens::read(&val.path) {
        Ok(tokens) => tokens,
        Err(e) => return Ok(Some((ExitReason::InvalidOutput, format!("{e:#}")))),
    };
    let (batch, pairs) = probes::plan(&tokens, host.seed)?;
    let dir = plan.dir.probe();
    let out = dir.join("out");
    std::fs::create_dir_all(&out)?;
    let inputs = dir.join("inputs.npy");
    batch.write(&inputs)?;
    let artifact = plan.dir.artifact();
    let eval = vec![SplitFile { split: "val".into(), path: inputs.clone() }];
    let role = Role::Infer { infer: infer.to_owned(), frozen, eval, artifact: artifact.clone(), out: out.clone() };
    let policy = confined(host, code, &[inputs, artifact], &[&out]);
    let budget = host.leaf.manifest.budget.infer();
    let run = start(host, plan, Worker { name: "probe", role, code, budget, policy }, tally)?;
    let outcome = classify(&run, "infer on the probes", &text(budget));
    if !outcome.ok() {
        return not_causal(format!("the causality probes could not run: {}", outcome.detail));
    }
    let read = |path: &Path| ndarray_npy::read_npy::<_, ndarray::ArrayD<f32>>(path);
    let (Ok(scored), Ok(probed)) = (read(&plan.dir.outputs().join("val.npy")), read(&out.join("val.npy"))) else {
        return not_causal("the causality probes need float32 outputs (N, T, V) from infer".to_owned());
    };
    match probes::check(&scored, &probed, &pairs) {
        Some(failure) => not_causal(failure),
        None => Ok(None),
    }
}

/// The frozen `score` on every scored split that has outputs; the directory it wrote its lists into.
fn frozen_score(
    host: &Host,
    plan: &TierPlan,
    prepared: &Prepared,
    score: &str,
    tally: &mut Tally,
) -> Result<Result<PathBuf, Outcome>> {
    let splits: Vec<ScoreSplit> = prepared
        .eval_inputs()
        .into_iter()
        .filter_map(|f| {
            let targets = prepared.targets(&f.split)?;
            let outputs = ["npy", "json"]
                .iter()
                .map(|e| plan.dir.outputs().join(format!("{}.{e}", f.split)))
                .find(|p| p.is_file())?;
            Some(ScoreSplit { split: f.split, inputs: f.path, outputs, targets })
        })
        .collect();
    let reads = [prepared.dir.eval(), prepared.dir.targets(), plan.dir.outputs()];
    score_splits(host, plan, score, splits, &reads, tally)
}

/// Re-run a keep's frozen `score` on outputs and targets it recorded (`lab verify`);
/// the directory of the per-item lists it wrote, `<split>.json`.
pub fn rescore(host: &Host, plan: &TierPlan, score: &str, splits: Vec<ScoreSplit>) -> Result<Result<PathBuf, Outcome>> {
    let reads: Vec<PathBuf> =
        splits.iter().flat_map(|s| [s.inputs.clone(), s.outputs.clone(), s.targets.clone()]).collect();
    let mut tally =
        Tally { wall: Duration::ZERO, teardown: None, sandbox: None, environment: None, artifact: Vec::new() };
    std::fs::create_dir_all(plan.dir.root())?;
    score_splits(host, plan, score, splits, &reads, &mut tally)
}

fn score_splits(
    host: &Host,
    plan: &TierPlan,
    score: &str,
    splits: Vec<ScoreSplit>,
    reads: &[PathBuf],
    tally: &mut Tally,
) -> Result<Result<PathBuf, Outcome>> {
    let out = plan.dir.root().join("score.out");
    let role = Role::Score { score: score.to_owned(), splits, out: out.clone() };
    let policy = confined(host, &host.snapshot.frozen, reads, &[&out]);
    let budget = host.leaf.manifest.budget.infer();
    let run = start(host, plan, Worker { name: "score", role, code: &host.snapshot.frozen, budget, policy }, tally)?;
    let outcome = classify(&run, "score", &text(budget));
    if !outcome.ok() {
        let detail = format!("the frozen score failed: {}", outcome.detail);
        return Ok(Err(outcome.clone().fail(outcome.reason, detail)));
    }
    Ok(Ok(out))
}

/// Whether the module of `target` (`module:function`) is one of the leaf's frozen files.
fn is_frozen_module(host: &Host, target: &str) -> bool {
    let module = target.split(':').next().unwrap_or_default().replace('.', "/");
    [format!("{module}.py"), format!("{module}/__init__.py")]
        .iter()
        .any(|path| host.snapshot.file(path).is_some_and(|f| f.frozen && !f.mutable))
}

fn confined(host: &Host, code: &Path, reads: &[PathBuf], writes: &[&Path]) -> Policy {
    let mut reads: Vec<&Path> = reads.iter().map(PathBuf::as_path).collect();
    reads.extend(host.inputs.iter().filter_map(|i| i.found.as_ref()).map(|f| f.path.as_path()));
    host.policy.confined(code, &reads, writes)
}

/// One worker of a tier: its role, the code it imports, its budget and its sandbox.
struct Worker<'a> {
    name: &'static str,
    role: Role,
    code: &'a Path,
    budget: Duration,
    policy: Policy,
}

/// Start one worker of this tier and supervise it to its end.
fn start(host: &Host, plan: &TierPlan, worker: Worker, tally: &mut Tally) -> Result<Supervised> {
    let started = spawn(host, plan, worker, tally)?;
    supervise(host, plan, started, tally)
}

/// A worker of this tier started and waiting for its go (`launch::Pending`):
/// no code of the leaf has run in it. Dropped unsupervised, it is stopped.
#[derive(Debug)]
struct Started {
    name: String,
    budget: Duration,
    scratch: PathBuf,
    memo: bool,
    pending: launch::Pending,
}

/// Write the worker's spec and start its keeper and interpreter, up to its go.
fn spawn(host: &Host, plan: &TierPlan, worker: Worker, tally: &mut Tally) -> Result<Started> {
    let Worker { name, role, code, budget, mut policy } = worker;
    let smoke = plan.tier == Tier::Smoke;
    let scratch = plan.dir.scratch(name);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create `{}`", scratch.display()))?;
    policy.write.push(scratch.clone());
    let memo = memo_spec(host, &role, smoke);
    policy.write.extend(memo.iter().map(|m| m.dir.clone()));
    // A rule names an existing directory: what a worker may write must exist before it starts.
    for dir in &policy.write {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let artifact = match &role {
        Role::Train { artifact, .. } | Role::Infer { artifact, .. } => Some(artifact.clone()),
        _ => None,
    };
    let manifest = &host.leaf.manifest;
    let spec = WorkerSpec {
        role,
        leaf: host.leaf.name().to_owned(),
        code_dir: code.to_path_buf(),
        module_dir: host.run.python_module(),
        seed: host.seed,
        smoke,
        device: manifest.device,
        settings: manifest.settings.clone(),
        inputs: host.inputs.clone(),
        sandbox: host.sandboxed.then_some(policy),
        file_limit: FILE_CAP,
        memo,
    };
    let spec_path = plan.dir.spec(name);
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("cannot write `{}`", spec_path.display()))?;
    let env = env::worker_env(&spec, host.venv.as_ref(), &scratch, artifact.as_deref());
    if tally.environment.is_none() && spec.sandbox.as_ref().is_none_or(|p| !p.read_all) {
        tally.environment =
            Some(serde_json::Value::Object(env.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect()));
    }
    let pending = launch::spawn(&spec_path, &env, code, &host.log)?;
    Ok(Started { name: name.to_owned(), budget, scratch, memo: spec.memo.is_some(), pending })
}

/// Let a started worker run its role (its budget starts now) and supervise it to its end.
fn supervise(host: &Host, plan: &TierPlan, started: Started, tally: &mut Tally) -> Result<Supervised> {
    let Started { name, budget, scratch, memo, pending } = started;
    let label = format!("{} {}", plan.label, plan.tier.as_str());
    header(host, &format!("{label}: {name} (budget {}, seed {})", text(budget), host.seed));
    let curve = curve::Recorder::create(&curve::path(plan.dir.root(), &name));
    let mut progress = Progress::new(!host.quiet, format!("{label} {name}"), budget).recording(curve);
    let used = host.log.metadata().map_or(0, |m| m.len());
    let limits = Limits { budget, log_bytes: LOG_CAP.saturating_sub(used) };
    let shared = shm::before();
    let supervised = pending.supervise(limits, &mut progress);
    progress.finish();
    let _ = std::fs::remove_dir_all(&scratch);
    let left = shm::sweep(&shared);
    if left > 0 {
        header(host, &format!("{label}: {name}: removed {left} file(s) it left in /dev/shm"));
    }
    if memo {
        let pruned = memo::prune(&host.layout.memo_root(host.leaf.name()), memo::CAP);
        if pruned.files > 0 {
            header(host, &format!("{label}: memo pruned to its cap: {} file(s), {} bytes", pruned.files, pruned.bytes));
        }
    }
    let supervised = supervised?;
    tally.wall += supervised.wall;
    if supervised.teardown.is_some() {
        tally.teardown = supervised.teardown;
    }
    if supervised.stragglers > 0 {
        header(
            host,
            &format!("{label}: {name}: {} process(es) still running after it ended were killed", supervised.stragglers),
        );
    }
    Ok(supervised)
}

/// A started worker that will not run after all: stopped, its scratch removed.
fn cancel(started: Started) {
    let scratch = started.scratch.clone();
    drop(started);
    let _ = std::fs::remove_dir_all(scratch);
}

/// The memo of the mutable-code roles (`predict`, `train`): this leaf's, for this key and tier.
/// Frozen roles and `infer` get none, so `lab.memo` computes every item there.
fn memo_spec(host: &Host, role: &Role, smoke: bool) -> Option<MemoSpec> {
    let memo = host.memo.as_ref()?;
    matches!(role, Role::Predict { .. } | Role::Train { .. })
        .then(|| MemoSpec { dir: host.layout.memo(host.leaf.name(), &host.key, smoke), salt: memo.salt.clone() })
}

/// Keep the weakest sandbox status of the workers that ran code under judgement.
fn note_sandbox(run: &Supervised, tally: &mut Tally) {
    let first = run.events.iter().find_map(|e| match e {
        Event::Sandbox { status } => Some(*status),
        _ => None,
    });
    // A worker that never said (it died before) counts as unsandboxed.
    let status = first.unwrap_or(Status::None);
    let weaker = |a: Status, b: Status| if rank(b) < rank(a) { b } else { a };
    tally.sandbox = Some(tally.sandbox.map_or(status, |s| weaker(s, status)));
}

fn rank(status: Status) -> u8 {
    match status {
        Status::Disabled => 0,
        Status::None => 1,
        Status::Partial { .. } => 2,
        Status::Enforced { .. } => 3,
    }
}

fn settle(outcome: Outcome, scored: Result<Scored, Failure>) -> (Outcome, Scored) {
    match scored {
        Ok(scored) => (outcome, scored),
        Err((reason, detail)) => (outcome.fail(reason, detail), Scored::default()),
    }
}

fn text(budget: Duration) -> String {
    humantime::format_duration(budget).to_string()
}

fn finish(
    host: &Host,
    plan: &TierPlan,
    started_at: String,
    outcome: Outcome,
    scored: Scored,
    tally: Tally,
    prepared: Option<String>,
) -> TierRun {
    let verdict_line =
        if outcome.ok() { "ok".to_owned() } else { format!("{}: {}", outcome.reason.as_str(), outcome.detail) };
    header(host, &format!("{} {}: {verdict_line}", plan.label, plan.tier.as_str()));
    let ok = outcome.reason == ExitReason::Ok;
    let mut files = scored.files;
    files.extend(tally.artifact);
    TierRun {
        tier: plan.tier,
        metrics: if ok { scored.metrics } else { Map::new() },
        holdout: if ok { scored.holdout } else { None },
        files,
        outcome,
        source: MetricSource::Harness,
        budget: plan.budget,
        wall: tally.wall,
        teardown: tally.teardown,
        started_at,
        finished_at: records::now(),
        log_tail: log_tail(&host.log_path),
        sandbox: tally.sandbox.unwrap_or(if host.sandboxed { Status::None } else { Status::Disabled }),
        prepared,
        environment: tally.environment,
    }
}

/// Every file under `dir` as a record of `kind`, named by its path inside `dir`.
fn fingerprint_dir(kind: &'static str, dir: &Path) -> Result<Vec<RunFile>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            let name = entry.path().strip_prefix(dir)?.to_string_lossy().into_owned();
            let sha256 = crate::fingerprint::sha256_file(entry.path())?;
            let len = entry.metadata().ok().map(|m| m.len() as usize);
            files.push(RunFile { kind, name, path: entry.path().display().to_string(), sha256, len });
        }
    }
    Ok(files)
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
