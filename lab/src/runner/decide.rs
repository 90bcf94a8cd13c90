//! The verdict of a run, until the statistical gate is wired in.
//!
//! A crash is a crash; a smoke run is never a keep; a run without `--decide`
//! is recorded as a discard that touched nothing. With `--decide` the candidate
//! is kept when there is no leader yet under the same leaf.lock (the first full
//! run becomes the baseline), or when it beats the leader by more than the
//! manifest's `gate.min_improvement`: strictly better, in the metric's direction.

use anyhow::Result;

use super::session::RunOptions;
use super::tier::TierRun;
use crate::leaf::Leaf;
use crate::runner::progress::format_number;
use crate::store::Store;
use crate::store::queries;
use crate::store::records::Verdict;
use crate::store::runs::{self, Leader, Tier};

#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub leader: Option<Leader>,
    /// Why, in one line (stored as the result's note).
    pub note: String,
}

/// Whether the leaf has any kept result (the auto hypothesis is "baseline" before).
pub fn has_kept(store: &Store, leaf: &str) -> Result<bool> {
    Ok(queries::counts(store.conn(), Some(leaf))?.keep > 0)
}

pub fn decide(store: &Store, leaf: &Leaf, opts: &RunOptions, last: &TierRun, lock_sha256: &str) -> Result<Decision> {
    let decision = |verdict, leader, note: String| Ok(Decision { verdict, leader, note });
    if !last.outcome.ok() {
        let tier = last.tier.as_str();
        return decision(
            Verdict::Crash,
            None,
            format!("{tier} run: {}: {}", last.outcome.reason.as_str(), last.outcome.detail),
        );
    }
    let metric = &leaf.manifest.metric;
    let value = last.metrics.get(&metric.name).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    let shown = format!("{}={}", metric.name, format_number(value));
    if last.tier == Tier::Smoke {
        return decision(Verdict::Discard, None, format!("smoke check passed ({shown}); a smoke run is never kept"));
    }
    if !opts.decide {
        return decision(
            Verdict::Discard,
            None,
            format!("{shown}; not decided (no --decide): files left as they were"),
        );
    }
    let Some(leader) = runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, lock_sha256)? else {
        return decision(Verdict::Keep, None, format!("{shown}; no leader under this leaf.lock yet: the baseline"));
    };
    let min = leaf.manifest.gate.min_improvement;
    let improvement = metric.goal.improvement(leader.value, value);
    let verdict = if improvement > min { Verdict::Keep } else { Verdict::Discard };
    let relation = if verdict == Verdict::Keep { "above" } else { "not above" };
    let note = format!(
        "{shown} vs leader {} {}: improvement {} is {relation} min_improvement {}",
        leader.experiment,
        format_number(leader.value),
        format_number(improvement),
        format_number(min)
    );
    decision(verdict, Some(leader), note)
}
