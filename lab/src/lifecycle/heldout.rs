//! The held-out split: the only reader of held-out scores, and the counter of
//! how often they were read. No keep decision comes through here.
//!
//! Predictions mode scores the leader's (and the first baseline's) saved
//! holdout predictions against the holdout labels they were recorded with,
//! after re-hashing both (`evidence`). Artifact mode reads the sealed metrics
//! the harness scored on the held-out split at run time (their mean per
//! experiment) and the per-item held-out scores beside them. Every call records
//! one read in `holdout_reads` before it returns numbers: a held-out split read
//! many times is being tuned on, and the count says so. What the read found
//! about the leader is recorded beside it (`holdout_transfers`), for the views.
//!
//! Whether the leader's validation gain over the first baseline transferred is
//! decided on an interval of the held-out gain, from the same gate that keeps
//! (paired on the held-out items; with the seed noise too in artifact mode),
//! at the leaf's `gate.confidence`:
//! - **transferred**: the validation gain is positive and the held-out
//!   interval lies above zero;
//! - **did not transfer**: the held-out interval lies below the validation
//!   gain (the held-out split rejects the gain claimed on val: what tuning on
//!   the validation split leaves behind); or the held-out split shows no gain
//!   and the validation gain itself is not significant once every candidate
//!   judged on val in this comparison is counted (a Šidák correction of its
//!   one-sided p-value for `tried` looks: the best of 50 candidates with no
//!   real gain looks like a 2.3 sd gain); or the validation gain is not positive;
//! - **not shown**: otherwise: the validation gain survives the count of
//!   tries, and the held-out split is too small or too noisy to tell.

use anyhow::Result;
use serde::Serialize;

use super::judge::{self, Mode};
use crate::error::LabError;
use crate::evidence;
use crate::gate::{self, Evidence, GateConfig, ItemEvidence, MetricKind, PairedSamples, ScalarRuns};
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::output::format_number;
use crate::store::Store;
use crate::store::gate as records;
use crate::store::runs;

/// One experiment's validation and held-out score.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub experiment: String,
    pub val: f64,
    pub holdout: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    pub leaf: String,
    pub metric: String,
    pub mode: Mode,
    /// Reads of this leaf's held-out split, this one included.
    pub reads: u64,
    pub leader: Scored,
    /// The first kept run under this leaf.lock, when it is not the leader.
    pub baseline: Option<Scored>,
    /// Leader over baseline, positive = better.
    pub val_gain: Option<f64>,
    pub holdout_gain: Option<f64>,
    /// Held-out gain / validation gain.
    pub ratio: Option<f64>,
    /// The held-out gain's interval at the leaf's `gate.confidence`.
    pub holdout_ci: Option<[f64; 2]>,
    /// The validation gain's significance once the candidates tried on val
    /// are counted; `None` without a noise estimate (or a baseline).
    pub selection: Option<Selection>,
    /// `transferred`, `did_not_transfer` or `not_shown` (see the module doc);
    /// `None` without a baseline or held-out scores.
    pub verdict: Option<&'static str>,
    /// `true` for transferred, `false` for did not transfer, `None` otherwise.
    pub transferred: Option<bool>,
    /// The rule behind the verdict, in one sentence.
    pub reason: Option<String>,
}

pub fn transfer(store: &mut Store, leaf: &Leaf, lock_sha256: &str, purpose: &str) -> Result<Transfer> {
    let metric = &leaf.manifest.metric;
    let leader = runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, lock_sha256)?.ok_or_else(|| {
        LabError::refused(format!("leaf `{}` has no comparable leader (same leaf.lock and inputs)", leaf.name()))
            .hint("keep a first run with `lab run --decide`")
    })?;
    let leader_id: ExperimentId = leader.experiment.parse()?;
    let first = records::first_keep(store.conn(), leaf.name(), &metric.name, lock_sha256)?;
    let baseline_id = first.filter(|(e, _)| *e != leader_id);
    let mut read = vec![leader_id];
    read.extend(baseline_id.map(|b| b.0));
    let read = store.write(|tx| records::add_holdout_read(tx, leaf.name(), &read, purpose))?;
    let score = |e: ExperimentId, val: f64| -> Result<Scored> {
        Ok(Scored { experiment: e.to_string(), val, holdout: holdout_score(store, leaf, e)? })
    };
    let leader_scored = score(leader_id, leader.value)?;
    let baseline = baseline_id.map(|(e, v)| score(e, v)).transpose()?;
    let (mut val_gain, mut holdout_gain, mut ratio) = (None, None, None);
    let (mut holdout_ci, mut selection, mut verdict, mut reason) = (None, None, None, None);
    if let Some(b) = &baseline {
        let v = metric.goal.improvement(b.val, leader_scored.val);
        val_gain = Some(v);
        if let (Some(bh), Some(lh)) = (b.holdout, leader_scored.holdout) {
            let h = metric.goal.improvement(bh, lh);
            holdout_gain = Some(h);
            ratio = (v != 0.0).then(|| h / v);
            let (lo, hi) = holdout_interval(store, leaf, lock_sha256, b, &leader_scored)?;
            holdout_ci = Some([lo, hi]);
            let tried = records::power(store.conn(), leaf.name(), lock_sha256)?.decisions.max(1);
            let chosen = val_selection(store, leaf, lock_sha256, b, &leader_scored, tried)?;
            let (which, why) = rule(v, lo, hi, chosen, leaf.manifest.gate.confidence);
            (selection, verdict, reason) = (chosen, Some(which), Some(why));
        }
    }
    let transferred = verdict.and_then(|v| match v {
        TRANSFERRED => Some(true),
        DID_NOT_TRANSFER => Some(false),
        _ => None,
    });
    store.write(|tx| records::add_transfer(tx, read, leader_id, (leader_scored.holdout, holdout_gain), verdict))?;
    Ok(Transfer {
        leaf: leaf.name().to_owned(),
        metric: metric.name.clone(),
        mode: Mode::of(leaf),
        reads: read.reads,
        leader: leader_scored,
        baseline,
        val_gain,
        holdout_gain,
        ratio,
        holdout_ci,
        selection,
        verdict,
        transferred,
        reason,
    })
}

pub const TRANSFERRED: &str = "transferred";
pub const DID_NOT_TRANSFER: &str = "did_not_transfer";
pub const NOT_SHOWN: &str = "not_shown";

/// How significant the validation gain is once the candidates tried on val are counted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Selection {
    /// Candidates the gate judged on val in this comparison (at least 1).
    pub tried: u64,
    /// One-sided p-value of the validation gain alone, from the gate's interval.
    pub p: f64,
    /// The chance that the best of `tried` candidates with no real gain shows
    /// a gain this large: 1 - (1 - p)^tried (Šidák).
    pub p_selected: f64,
}

impl Selection {
    pub fn new(p: f64, tried: u64) -> Self {
        let p = p.clamp(0.0, 1.0);
        Self { tried, p, p_selected: 1.0 - (1.0 - p).powf(tried as f64) }
    }
}

/// The verdict on a validation gain `val_gain` whose held-out gain has the
/// interval `lo..hi`, with the validation gain's significance after
/// `selection` where the gate could measure it (see the module doc).
pub fn rule(val_gain: f64, lo: f64, hi: f64, selection: Option<Selection>, confidence: f64) -> (&'static str, String) {
    let ci = format!("{}% CI {}..{}", (confidence * 10_000.0).round() / 100.0, format_number(lo), format_number(hi));
    let v = format_number(val_gain);
    let chance = (1.0 - confidence) / 2.0;
    if val_gain <= 0.0 {
        (DID_NOT_TRANSFER, format!("there is no validation gain to transfer ({v})"))
    } else if lo > 0.0 {
        (TRANSFERRED, format!("the held-out gain's {ci} lies above zero"))
    } else if hi < val_gain {
        (DID_NOT_TRANSFER, format!("the held-out gain's {ci} lies below the validation gain {v}"))
    } else if let Some(Selection { tried, p_selected, .. }) = selection.filter(|s| s.p_selected >= chance) {
        (
            DID_NOT_TRANSFER,
            format!(
                "the held-out gain's {ci} holds zero, and the validation gain {v} is what the best of {tried} \
                 candidates with no real gain shows {}% of the time",
                format_number((100.0 * p_selected).min(100.0))
            ),
        )
    } else {
        (NOT_SHOWN, format!("the held-out gain's {ci} holds both zero and the validation gain {v}"))
    }
}

/// The validation gain's one-sided p-value from the gate's interval of leader
/// over baseline on val, corrected for the `tried` candidates; `None` when the
/// gate has no noise estimate to judge the validation gain with.
fn val_selection(
    store: &Store,
    leaf: &Leaf,
    lock_sha256: &str,
    baseline: &Scored,
    leader: &Scored,
    tried: u64,
) -> Result<Option<Selection>> {
    let (b, l): (ExperimentId, ExperimentId) = (baseline.experiment.parse()?, leader.experiment.parse()?);
    let evidence = judge::evidence(store, leaf, l, b, lock_sha256)?;
    let report = interval(leaf, l, &evidence, "validation")?;
    Ok((report.verdict != gate::Verdict::NoNoiseEstimate).then(|| Selection::new(1.0 - report.prob_better, tried)))
}

/// The gate's one-look interval on `evidence`, with no minimum.
fn interval(leaf: &Leaf, leader: ExperimentId, evidence: &Evidence, what: &str) -> Result<gate::GateReport> {
    let config = GateConfig { max_candidate_runs: 1, min_improvement: 0.0, ..judge::config(leaf, leader.0 as u64) };
    Ok(gate::decide(&config, evidence)
        .map_err(|e| LabError::usage(format!("cannot put an interval on the {what} gain: {e}")))?)
}

/// The interval of the leader's held-out gain over the baseline, from the gate.
fn holdout_interval(
    store: &Store,
    leaf: &Leaf,
    lock_sha256: &str,
    baseline: &Scored,
    leader: &Scored,
) -> Result<(f64, f64)> {
    let metric = &leaf.manifest.metric;
    let (b, l): (ExperimentId, ExperimentId) = (baseline.experiment.parse()?, leader.experiment.parse()?);
    let evidence = match Mode::of(leaf) {
        Mode::Predictions => {
            let kind: MetricKind = metric.kind().parse().map_err(|err| LabError::usage(format!("{err}")))?;
            let (bf, lf) = (judge::last_full_files(store, b)?, judge::last_full_files(store, l)?);
            let labels = judge::same_targets(&lf, l, &bf, b, "holdout")?
                .ok_or_else(|| LabError::usage(format!("{l} recorded no holdout labels")))?;
            let pred = |files: &[runs::RunFile], e: ExperimentId| -> Result<Vec<f64>> {
                let file = evidence::find(files, "predictions", "holdout")
                    .ok_or_else(|| LabError::usage(format!("{e} saved no holdout predictions")))?;
                evidence::values(e, file)
            };
            Evidence::Predictions(PairedSamples {
                goal: metric.goal,
                kind,
                y_true: evidence::values(l, labels)?,
                leader_pred: pred(&bf, b)?,
                candidate_pred: pred(&lf, l)?,
            })
        }
        Mode::Scalar => {
            let items = match (
                judge::mean_item_scores(store, b, &metric.name, "holdout")?,
                judge::mean_item_scores(store, l, &metric.name, "holdout")?,
            ) {
                (Some(leader), Some(candidate)) if leader.len() == candidate.len() => {
                    Some(ItemEvidence::Scores { leader, candidate })
                }
                _ => None,
            };
            let noise_sd = records::baselines(store.conn(), leaf.name(), lock_sha256)?.last().map(|x| x.sd);
            Evidence::Scalar(ScalarRuns {
                goal: metric.goal,
                leader: sealed_values(store, b, &metric.name)?,
                candidate: sealed_values(store, l, &metric.name)?,
                noise_sd,
                items,
            })
        }
    };
    let report = interval(leaf, l, &evidence, "held-out")?;
    Ok((report.ci_low, report.ci_high))
}

/// The sealed held-out `metric` of each of `e`'s runs (artifact mode).
fn sealed_values(store: &Store, e: ExperimentId, metric: &str) -> Result<Vec<f64>> {
    Ok(records::sealed_holdout(store.conn(), e)?
        .iter()
        .filter_map(|m| m.get(metric).and_then(serde_json::Value::as_f64))
        .collect())
}

/// The held-out score of one experiment, `None` when the leaf has no held-out split.
fn holdout_score(store: &Store, leaf: &Leaf, e: ExperimentId) -> Result<Option<f64>> {
    let metric = &leaf.manifest.metric;
    if Mode::of(leaf) == Mode::Scalar {
        let values = sealed_values(store, e, &metric.name)?;
        return Ok((!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64));
    }
    let files = judge::last_full_files(store, e)?;
    let (Some(pred), Some(labels)) =
        (evidence::find(&files, "predictions", "holdout"), evidence::find(&files, "labels", "holdout"))
    else {
        return Ok(None);
    };
    let kind: MetricKind = metric.kind().parse().map_err(|err| LabError::usage(format!("{err}")))?;
    let (y, p) = (evidence::values(e, labels)?, evidence::values(e, pred)?);
    let value = gate::score(kind, &y, &p)
        .map_err(|err| LabError::failure(format!("cannot score the holdout predictions of {e}: {err}")))?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_needs_an_interval_not_a_sign() {
        // A held-out gain of 0.02 of a validation gain of 1, with the interval 0.01..0.03:
        // positive, but the held-out split rejects the gain claimed on val.
        let sure = Some(Selection::new(1e-6, 1));
        assert_eq!(rule(1.0, 0.01, 0.03, sure, 0.9).0, TRANSFERRED, "above zero is shown, however small");
        assert_eq!(rule(1.0, -0.2, 0.3, sure, 0.9).0, DID_NOT_TRANSFER);
        assert_eq!(rule(1.0, -0.2, 1.3, sure, 0.9).0, NOT_SHOWN);
        assert_eq!(rule(-0.1, 0.2, 0.3, sure, 0.9).0, DID_NOT_TRANSFER, "no validation gain to transfer");
        let (_, why) = rule(1.0, -0.2, 1.3, sure, 0.9);
        assert_eq!(why, "the held-out gain's 90% CI -0.2000..1.300 holds both zero and the validation gain 1");
    }

    #[test]
    fn a_validation_gain_that_selection_explains_did_not_transfer() {
        // p = 0.012 alone (a 2.26 sd gain) is significant at 2.5% once, not as the best of 50 tries.
        let once = Selection::new(0.012, 1);
        let fished = Selection::new(0.012, 50);
        let (once, fished) = (Some(once), Some(fished));
        assert!((fished.unwrap().p_selected - (1.0 - 0.988_f64.powi(50))).abs() < 1e-12, "{fished:?}");
        assert_eq!(rule(1.0, -0.2, 1.3, once, 0.95).0, NOT_SHOWN);
        let (verdict, why) = rule(1.0, -0.2, 1.3, fished, 0.95);
        assert_eq!(verdict, DID_NOT_TRANSFER);
        assert!(why.ends_with("is what the best of 50 candidates with no real gain shows 45.32% of the time"), "{why}");
        assert_eq!(rule(1.0, 0.1, 1.3, fished, 0.95).0, TRANSFERRED, "a held-out gain above zero settles it");
        assert_eq!(rule(1.0, -0.2, 1.3, None, 0.95).0, NOT_SHOWN, "no noise estimate, no verdict on the val gain");
    }
}
