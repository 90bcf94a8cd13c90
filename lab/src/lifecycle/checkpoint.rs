//! `lab checkpoint`: the state of a leaf written down, with a red team.
//!
//! The state: leader and metric, the comparison it leads (and what the re-lock
//! that started it changed), noise estimate, held-out score (a counted read of
//! the held-out split), queue length, counts, and the sha256 of every
//! prediction file of the leader and every frozen file. The red team takes each
//! claim the harness can check, names the attack that would fake it, shows the
//! evidence and says whether the claim holds, fails or is unknown; one claim is
//! `lab verify`'s verdict on the leaf (the chain, files re-hashed, keeps
//! re-scored).
//!
//! Invariants: a checkpoint file is written once (an existing name is
//! refused); nothing else is written but the held-out read counter.

mod markdown;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::heldout::{self, Transfer};
use super::judge;
use crate::error::LabError;
use crate::evidence;
use crate::gate;
use crate::ids::ExperimentId;
use crate::leaf::lock::{self, LockState};
use crate::leaf::{Leaf, manifest};
use crate::output::{format_number, plural, times};
use crate::root::LabRoot;
use crate::store::gate::{self as records, Baseline};
use crate::store::runs::{self, Leader};
use crate::store::verify::{CheckVerdict, Report};
use crate::store::{Store, comparisons, queries, queue};

#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub claim: &'static str,
    pub attack: &'static str,
    pub evidence: String,
    /// `holds`, `fails` or `unknown`.
    pub verdict: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub name: String,
    pub path: String,
    pub leaf: String,
    pub metric: String,
    pub leader: Option<Leader>,
    pub state: State,
    pub red_team: Vec<Claim>,
}

/// What the leaf stands at; `--json` shows every field, the Markdown says it in words.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    pub comparison_summary: Option<String>,
    pub comparison: Option<comparisons::Current>,
    pub leader: Option<Leader>,
    /// The latest `lab baseline` of the leader under this comparison.
    pub noise: Option<Baseline>,
    pub holdout: Option<Transfer>,
    /// Why the held-out split was not read.
    pub holdout_error: Option<String>,
    pub queue_length: usize,
    pub counts: Counts,
    /// Every file of the leader's last full run, not only predictions (the key predates artifact mode).
    pub prediction_files: Vec<FileHash>,
    pub frozen_files: BTreeMap<String, String>,
    pub lock_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub experiments: u64,
    pub keep: u64,
    pub discard: u64,
    pub crash: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileHash {
    pub kind: &'static str,
    pub name: String,
    pub path: String,
    pub sha256: String,
}

pub fn checkpoint(lab: &LabRoot, store: &mut Store, leaf: &Leaf, name: &str) -> Result<Checkpoint> {
    manifest::validate_name(name).map_err(|_| {
        LabError::usage(format!("invalid checkpoint name `{name}`: lowercase letters, digits and dashes"))
    })?;
    let dir = dir(lab);
    let path = dir.join(format!("{name}.md"));
    if path.exists() {
        return Err(LabError::refused(format!(
            "checkpoint `{}` exists; a checkpoint is never overwritten",
            path.display()
        ))
        .hint("choose another NAME")
        .into());
    }
    let lock_sha256 = super::inputs::comparability(lab, store, leaf)?.key;
    let metric = &leaf.manifest.metric;
    let leader = runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, &lock_sha256)?;
    let leader_id: Option<ExperimentId> = leader.as_ref().map(|l| l.experiment.parse()).transpose()?;
    let noise = records::baselines(store.conn(), leaf.name(), &lock_sha256)?.pop();
    let transfer = match leader {
        Some(_) => heldout::transfer(store, leaf, &lock_sha256, "lab checkpoint").map_err(|e| format!("{e:#}")),
        None => Err("no leader".to_owned()),
    };
    let counts = queries::counts(store.conn(), Some(leaf.name()))?;
    let queued = queue::list(store.conn(), Some(leaf.name()), &["queued"])?.len();
    let files = leader_id.map(|e| judge::last_full_files(store, e)).transpose()?.unwrap_or_default();
    let frozen = lock::Lock::compute(leaf)?;
    let lock_state = lock::verify(leaf)?;
    let comparison = comparisons::current(store.conn(), leaf.name())?;
    let state = State {
        comparison_summary: comparison.as_ref().map(comparisons::Current::describe),
        comparison,
        leader: leader.clone(),
        noise,
        holdout: transfer.as_ref().ok().cloned(),
        holdout_error: transfer.as_ref().err().cloned(),
        queue_length: queued,
        counts: Counts {
            experiments: counts.experiments,
            keep: counts.keep,
            discard: counts.discard,
            crash: counts.crash,
        },
        prediction_files: files
            .iter()
            .map(|f| FileHash { kind: f.kind, name: f.name.clone(), path: f.path.clone(), sha256: f.sha256.clone() })
            .collect(),
        frozen_files: frozen.files,
        lock_sha256,
    };
    let mut red_team = vec![reproducible(store, leaf, leader.as_ref(), leader_id)?];
    red_team.push(frozen_claim(&lock_state));
    red_team.push(predictions_claim(&files, leader_id));
    red_team.push(transfer_claim(&transfer));
    red_team.push(noise_claim(store, leader_id)?);
    red_team.push(records_claim(&super::verify::verify(lab, store, Some(leaf.name()))?));
    let checkpoint = Checkpoint {
        name: name.to_owned(),
        path: path.display().to_string(),
        leaf: leaf.name().to_owned(),
        metric: metric.name.clone(),
        leader,
        state,
        red_team,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    std::fs::write(&path, markdown::render(&checkpoint))
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(checkpoint)
}

fn claim(claim: &'static str, attack: &'static str, evidence: String, verdict: &'static str) -> Claim {
    Claim { claim, attack, evidence, verdict }
}

fn reproducible(store: &Store, leaf: &Leaf, leader: Option<&Leader>, id: Option<ExperimentId>) -> Result<Claim> {
    let (c, a) = ("leader reproducible", "a lucky seed");
    let (Some(leader), Some(id)) = (leader, id) else { return Ok(claim(c, a, "no leader".into(), "unknown")) };
    let metric = &leaf.manifest.metric;
    let values: Vec<f64> = records::full_values(store.conn(), id, &metric.name)?.into_iter().map(|v| v.1).collect();
    // The runs the keep was decided on made the kept value; only later reruns can test it.
    let decided = match records::latest_report(store.conn(), id)? {
        Some(r) if r.mode == "scalar" => r.n.max(1),
        _ => 1,
    };
    let reruns = values.get(decided..).unwrap_or_default();
    let Some(r) = gate::reproduction(metric.goal, leader.value, reruns, leaf.manifest.gate.confidence) else {
        let evidence = format!(
            "{id} has {} besides the {} it was kept on; `lab baseline` reruns it (2 needed)",
            plural(reruns.len(), "rerun", "reruns"),
            plural(decided, "run", "runs")
        );
        return Ok(claim(c, a, evidence, "unknown"));
    };
    let evidence = format!(
        "{id} kept {}; {} excluding it: mean {} sd {}; kept is better by {} (a fresh run exceeds {} 1 time in {})",
        format_number(leader.value),
        plural(r.reruns, "rerun", "reruns"),
        format_number(r.mean),
        format_number(r.sd),
        format_number(r.excess),
        format_number(r.bound),
        (2.0 / (1.0 - leaf.manifest.gate.confidence)).round()
    );
    Ok(claim(c, a, evidence, if r.holds { "holds" } else { "fails" }))
}

fn frozen_claim(state: &LockState) -> Claim {
    let (c, a) = ("frozen files unchanged", "an edited evaluation");
    match state {
        LockState::Ok => claim(c, a, "every frozen file matches leaf.lock".into(), "holds"),
        LockState::Missing => claim(c, a, "no leaf.lock".into(), "unknown"),
        LockState::Changed(changes) => {
            let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
            claim(c, a, list.join("; "), "fails")
        }
    }
}

fn predictions_claim(files: &[runs::RunFile], leader: Option<ExperimentId>) -> Claim {
    let (c, a) = ("recorded files unchanged since scoring", "outputs or labels edited after they were scored");
    let Some(leader) = leader.filter(|_| !files.is_empty()) else {
        return claim(c, a, "no recorded files".into(), "unknown");
    };
    let changed: Vec<String> = files.iter().filter_map(|f| evidence::holds(leader, f).err()).collect();
    if changed.is_empty() {
        claim(c, a, format!("{} files re-hashed, all match their recorded sha256", files.len()), "holds")
    } else {
        claim(c, a, format!("changed: {}", changed.join("; ")), "fails")
    }
}

fn transfer_claim(transfer: &Result<Transfer, String>) -> Claim {
    let (c, a) = ("validation gain transferred to held-out", "tuning on the validation split");
    let t = match transfer {
        Err(e) => return claim(c, a, e.clone(), "unknown"),
        Ok(t) => t,
    };
    let read = format!("the held-out split has been read {}", times(t.reads));
    if t.baseline.is_none() {
        return claim(c, a, format!("the leader is the baseline: nothing to transfer yet; {read}"), "unknown");
    }
    let reason = t.reason.as_deref().unwrap_or("no verdict");
    let evidence = format!("{}: {reason}; {read}", markdown::gains(t));
    let verdict = match t.transferred {
        Some(true) => "holds",
        Some(false) => "fails",
        None => "unknown",
    };
    claim(c, a, evidence, verdict)
}

fn noise_claim(store: &Store, leader: Option<ExperimentId>) -> Result<Claim> {
    let (c, a) = ("improvement larger than noise", "a gain within the noise");
    let Some(id) = leader else { return Ok(claim(c, a, "no leader".into(), "unknown")) };
    let Some(r) = records::latest_report(store.conn(), id)? else {
        return Ok(claim(c, a, format!("{id} was never judged by the gate"), "unknown"));
    };
    let Some(against) = r.leader else {
        return Ok(claim(c, a, format!("{id} is the first baseline: nothing to improve on"), "unknown"));
    };
    let evidence = format!(
        "{id} vs {against}: improvement {} ({}% CI {}..{}), P(better) {}, gate {} over {}",
        format_number(r.improvement),
        format_number(r.confidence * 100.0),
        format_number(r.ci_low),
        format_number(r.ci_high),
        format_number(r.prob_better),
        r.verdict,
        // n counts validation items in predictions mode, candidate runs in scalar mode.
        if r.mode == "scalar" { plural(r.n, "run", "runs") } else { plural(r.n, "item", "items") }
    );
    Ok(claim(c, a, evidence, if r.verdict == "pass" && r.ci_low > r.min_improvement { "holds" } else { "fails" }))
}

fn records_claim(report: &Report) -> Claim {
    let (c, a) = ("records untampered", "rows, files or scores edited behind the harness's back");
    let failing: Vec<String> = report
        .checks
        .iter()
        .filter(|check| check.verdict == CheckVerdict::Fails)
        .map(|check| {
            let first = check.findings.first().map(|f| format!(": {}", f.describe())).unwrap_or_default();
            format!("{} ({}{first})", check.name, plural(check.findings.len(), "finding", "findings"))
        })
        .collect();
    if !failing.is_empty() {
        return claim(c, a, format!("`lab verify` fails: {}", failing.join("; ")), "fails");
    }
    let unchecked: Vec<&str> =
        report.checks.iter().filter(|check| check.verdict == CheckVerdict::Unknown).map(|check| check.name).collect();
    let names: Vec<&str> = report.checks.iter().map(|check| check.name).collect();
    let evidence = format!("`lab verify` at chain entry {}: {}", report.head.seq, names.join(", "));
    if unchecked.is_empty() {
        claim(c, a, format!("{evidence} hold"), "holds")
    } else {
        claim(c, a, format!("{evidence}; not checked: {}", unchecked.join(", ")), "unknown")
    }
}

/// Where checkpoints go.
pub fn dir(lab: &LabRoot) -> PathBuf {
    lab.layout().checkpoints()
}
