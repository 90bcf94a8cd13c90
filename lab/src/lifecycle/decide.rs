//! The verdict of a run, through the honest gate.
//!
//! A crash is a crash; a smoke run is never a keep; a run without `--decide`
//! is recorded as a discard that touched nothing. With `--decide` the full run
//! is judged by [`judge`]: kept when there is no leader yet under the same
//! leaf.lock (the first full run becomes the baseline) or when the gate
//! passes; NEEDS_REPEATS is answered by the session with more full runs of the
//! candidate (scalar mode, see `session`), and what is left after the last one
//! is a discard. NO_NOISE_ESTIMATE is a discard that tells the agent to run
//! `lab baseline`.

use anyhow::Result;

use super::judge::{self, Judgement};
use super::session::RunOptions;
use crate::gate::Verdict as GateVerdict;
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::output::format_number;
use crate::sandbox::Status;
use crate::store::Store;
use crate::store::gate::StoredReport;
use crate::store::queries;
use crate::store::records::Verdict;
use crate::store::runs::{Leader, Tier};
use crate::supervisor::pipeline::TierRun;

#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub leader: Option<Leader>,
    /// Why, in one line (stored as the result's note).
    pub note: String,
    /// What the gate said, when it was asked (a decided full run).
    pub judgement: Option<Judgement>,
}

/// Whether the leaf has any kept result (the auto hypothesis is "baseline" before).
pub fn has_kept(store: &Store, leaf: &str) -> Result<bool> {
    Ok(queries::counts(store.conn(), Some(leaf))?.keep > 0)
}

pub fn decide(
    store: &Store,
    leaf: &Leaf,
    opts: &RunOptions,
    last: &TierRun,
    lock_sha256: &str,
    experiment: ExperimentId,
) -> Result<Decision> {
    let decision = |verdict, note: String| Ok(Decision { verdict, leader: None, note, judgement: None });
    if !last.outcome.ok() {
        let tier = last.tier.as_str();
        return decision(
            Verdict::Crash,
            format!("{tier} run: {}: {}", last.outcome.reason.as_str(), last.outcome.detail),
        );
    }
    let metric = &leaf.manifest.metric;
    let value = last.metrics.get(&metric.name).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    let shown = format!("{}={}", metric.name, format_number(value));
    if last.tier == Tier::Smoke {
        return decision(Verdict::Discard, format!("smoke check passed ({shown}); a smoke run is never kept"));
    }
    if !opts.decide {
        return decision(Verdict::Discard, format!("{shown}; not decided (no --decide): files left as they were"));
    }
    if last.sandbox == Status::Disabled {
        return decision(
            Verdict::Discard,
            format!(
                "{shown}; never kept: the sandbox was disabled (LAB_SANDBOX=off), so the code could have read \
                 what it is judged on"
            ),
        );
    }
    let judgement = judge::judge(store, leaf, experiment, lock_sha256)?;
    Ok(from_judgement(&shown, judgement))
}

/// The verdict and note a judgement stands for.
pub fn from_judgement(shown: &str, judgement: Judgement) -> Decision {
    let Some(leader) = judgement.leader.clone() else {
        let note = format!("{shown}; no comparable leader yet (same leaf.lock and inputs): the baseline");
        return Decision { verdict: Verdict::Keep, leader: None, note, judgement: Some(judgement) };
    };
    let report = &judgement.report;
    let verdict = if report.verdict.keeps() { Verdict::Keep } else { Verdict::Discard };
    let flags =
        if judgement.flags.is_empty() { String::new() } else { format!(" [flagged {}]", judgement.flags.join(", ")) };
    let advice = match report.verdict {
        GateVerdict::NoNoiseEstimate => "; run `lab baseline` to measure the leader's noise, then try again".to_owned(),
        _ => String::new(),
    };
    let note = format!(
        "{shown} vs leader {} {}: gate {} ({} mode, prob_better {}): {}{advice}{flags}",
        leader.experiment,
        format_number(leader.value),
        report.verdict,
        judgement.mode.as_str(),
        format_number(report.prob_better),
        report.reason
    );
    Decision { verdict, leader: Some(leader), note, judgement: Some(judgement) }
}

/// The record of a judgement, for `store::gate::add_report`.
pub fn stored(leaf: &Leaf, experiment: ExperimentId, judgement: &Judgement) -> StoredReport {
    let r = &judgement.report;
    StoredReport {
        experiment,
        leaf: leaf.name().to_owned(),
        leader: judgement.leader.as_ref().and_then(|l| l.experiment.parse().ok()),
        mode: judgement.mode.as_str().to_owned(),
        verdict: r.verdict.name().to_owned(),
        improvement: r.improvement,
        ci_low: r.ci_low,
        ci_high: r.ci_high,
        prob_better: r.prob_better,
        n: r.n,
        reason: r.reason.clone(),
        flags: judgement.flags.clone(),
        min_improvement: leaf.manifest.gate.min_improvement,
        confidence: leaf.manifest.gate.confidence,
        sensitivity: r.sensitivity,
    }
}
