//! Saturation of a predictions-mode leaf: when the latest candidates all make
//! nearly the leader's predictions and none was kept, the ideas being tried are
//! knob turns around one model, and more of them will not move the metric.
//!
//! The measure is the Pearson correlation (`gate::score`) of each of the last
//! `gate.saturation_window` candidates' **val** predictions with the leader's,
//! all under the current `leaf.lock`. The leaf is saturated when the window is
//! full, every correlation is above `gate.saturation_correlation`, and none of
//! those candidates was kept.
//!
//! Invariants: cheap (one query, at most window + 1 small .npy reads), so
//! `lab context` can show it; every file read is checked against its recorded
//! sha256 first ([`evidence`]); a candidate whose correlation is undefined (a
//! constant prediction) counts as not above the threshold.

use anyhow::Result;
use serde::Serialize;

use crate::error::LabError;
use crate::evidence;
use crate::gate::{self, MetricKind};
use crate::ids::ExperimentId;
use crate::leaf::{Leaf, discover};
use crate::lifecycle::inputs;
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::candidates::{self, ScoredRun};
use crate::store::runs;

/// What `lab saturation` and `lab context` say when a leaf is saturated.
pub const ADVICE: &str = "new ideas must change the model family or the data, not the knobs";

#[derive(Debug, Clone, Serialize)]
pub struct Saturation {
    pub leaf: String,
    pub leader: Option<String>,
    pub window: usize,
    pub threshold: f64,
    /// Newest first.
    pub candidates: Vec<Candidate>,
    pub saturated: bool,
    /// Why, in one sentence.
    pub reason: String,
    /// [`ADVICE`] when saturated.
    pub advice: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub experiment: String,
    pub verdict: Option<String>,
    /// Of its val predictions with the leader's; `None` where undefined.
    pub correlation: Option<f64>,
    pub above: bool,
}

/// The saturation of `leaf` under the lock `lock_sha256`. Refuses (exit 3) a
/// prediction file that changed since it was scored.
pub fn assess(store: &Store, leaf: &Leaf, lock_sha256: &str) -> Result<Saturation> {
    if !leaf.manifest.entry.is_predictions() {
        return Err(LabError::usage(format!("leaf `{}` is not in predictions mode", leaf.name()))
            .hint("saturation compares candidates' predictions; in-process leaves report one number per run")
            .into());
    }
    let (conn, gate_spec, metric) = (store.conn(), &leaf.manifest.gate, &leaf.manifest.metric);
    let (window, threshold) = (gate_spec.saturation_window, gate_spec.saturation_correlation);
    let mut report = Saturation {
        leaf: leaf.name().to_owned(),
        leader: None,
        window,
        threshold,
        candidates: Vec::new(),
        saturated: false,
        reason: String::new(),
        advice: None,
    };
    let Some(leader) = runs::leader(conn, leaf.name(), &metric.name, metric.goal, lock_sha256)? else {
        report.reason = "no comparable leader yet (same leaf.lock and inputs)".into();
        return Ok(report);
    };
    let leader_id: ExperimentId = leader.experiment.parse()?;
    let leader_run = scored(store, leader_id)?;
    let reference = evidence::predictions(&leader_run, "val")?;
    for id in candidates::recent(conn, leaf.name(), lock_sha256, Some(leader_id), window)? {
        let run = scored(store, id)?;
        let correlation = match run.predictions("val") {
            Some(file) => gate::score(MetricKind::Pearson, &reference, &evidence::values(id, file)?).ok(),
            None => None,
        };
        let above = correlation.is_some_and(|c| c > threshold);
        report.candidates.push(Candidate { experiment: id.to_string(), verdict: run.verdict, correlation, above });
    }
    report.leader = Some(leader.experiment);
    (report.saturated, report.reason) = verdict(&report);
    report.advice = report.saturated.then(|| ADVICE.to_owned());
    Ok(report)
}

/// For `lab context`: the saturation of the leaf named `leaf` when it is a
/// predictions-mode leaf of this lab root, else `None`.
pub fn of_leaf(lab: &LabRoot, store: &Store, leaf: &str) -> Result<Option<Saturation>> {
    let Some(dir) = discover::find_dir(&lab.leaves_dir(), leaf) else { return Ok(None) };
    let leaf = Leaf::load(&dir)?;
    if !leaf.manifest.entry.is_predictions() {
        return Ok(None);
    }
    Ok(Some(assess(store, &leaf, &inputs::comparability(lab, store, &leaf)?.key)?))
}

fn scored(store: &Store, id: ExperimentId) -> Result<ScoredRun> {
    candidates::scored_run(store.conn(), id)?
        .ok_or_else(|| anyhow::anyhow!("{id} has no successful full run, yet it was listed as scored"))
}

/// Saturated or not, and why.
fn verdict(s: &Saturation) -> (bool, String) {
    let leader = s.leader.as_deref().unwrap_or("the leader");
    let (n, k) = (s.candidates.len(), s.window);
    if n < k {
        return (false, format!("{n} of the {k} candidates the window needs have run against {leader}"));
    }
    if let Some(kept) = s.candidates.iter().find(|c| c.verdict.as_deref() == Some("keep")) {
        return (false, format!("{} was kept among the last {k} candidates", kept.experiment));
    }
    if let Some(c) = s.candidates.iter().find(|c| !c.above) {
        let shown = c.correlation.map_or_else(|| "undefined".to_owned(), |r| format!("{r:.4}"));
        return (false, format!("{} correlates {shown} with {leader}: not above {}", c.experiment, s.threshold));
    }
    (true, format!("the last {k} candidates all correlate above {} with {leader} and none was kept", s.threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(window: usize, rows: &[(Option<&str>, Option<f64>)]) -> Saturation {
        let threshold = 0.98;
        Saturation {
            leaf: "toy".into(),
            leader: Some("e1".into()),
            window,
            threshold,
            candidates: rows
                .iter()
                .enumerate()
                .map(|(i, (verdict, correlation))| Candidate {
                    experiment: format!("e{}", i + 2),
                    verdict: verdict.map(str::to_owned),
                    correlation: *correlation,
                    above: correlation.is_some_and(|c| c > threshold),
                })
                .collect(),
            saturated: false,
            reason: String::new(),
            advice: None,
        }
    }

    #[test]
    fn saturated_only_with_a_full_window_all_above_and_none_kept() {
        let d = Some("discard");
        type Row<'a> = (Option<&'a str>, Option<f64>);
        let cases: &[(usize, &[Row], bool, &str)] = &[
            (2, &[(d, Some(0.99)), (d, Some(0.995))], true, "all correlate above 0.98"),
            (3, &[(d, Some(0.99)), (d, Some(0.995))], false, "2 of the 3 candidates"),
            (2, &[(d, Some(0.99)), (Some("keep"), Some(0.999))], false, "e3 was kept"),
            (2, &[(d, Some(0.99)), (d, Some(0.98))], false, "e3 correlates 0.9800"),
            (2, &[(None, None), (d, Some(0.99))], false, "e2 correlates undefined"),
        ];
        for (window, rows, saturated, says) in cases {
            let (got, reason) = verdict(&report(*window, rows));
            assert_eq!(got, *saturated, "{rows:?}: {reason}");
            assert!(reason.contains(says), "{reason}");
        }
    }
}
