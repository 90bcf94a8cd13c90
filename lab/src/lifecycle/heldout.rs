//! The held-out split: the only reader of held-out scores, and the counter of
//! how often they were read. No keep decision comes through here.
//!
//! Predictions mode scores the leader's (and the first baseline's) saved
//! holdout predictions against the holdout labels they were recorded with,
//! after re-hashing both (`evidence`). Artifact mode reads the sealed metrics
//! the harness scored on the held-out split at run time (their mean per
//! experiment). Every call records one read in `holdout_reads` before it
//! returns numbers: a held-out split read many times is being tuned on, and
//! the count says so.

use anyhow::Result;
use serde::Serialize;

use super::judge::{self, Mode};
use crate::error::LabError;
use crate::evidence;
use crate::gate::{self, MetricKind};
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
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
    /// Same sign on both splits (and a positive validation gain).
    pub transferred: Option<bool>,
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
    let reads = store.write(|tx| records::add_holdout_read(tx, leaf.name(), &read, purpose))?;
    let score = |e: ExperimentId, val: f64| -> Result<Scored> {
        Ok(Scored { experiment: e.to_string(), val, holdout: holdout_score(store, leaf, e)? })
    };
    let leader_scored = score(leader_id, leader.value)?;
    let baseline = baseline_id.map(|(e, v)| score(e, v)).transpose()?;
    let (mut val_gain, mut holdout_gain, mut ratio, mut transferred) = (None, None, None, None);
    if let Some(b) = &baseline {
        let v = metric.goal.improvement(b.val, leader_scored.val);
        val_gain = Some(v);
        if let (Some(bh), Some(lh)) = (b.holdout, leader_scored.holdout) {
            let h = metric.goal.improvement(bh, lh);
            holdout_gain = Some(h);
            ratio = (v != 0.0).then(|| h / v);
            transferred = Some(v > 0.0 && h > 0.0);
        }
    }
    Ok(Transfer {
        leaf: leaf.name().to_owned(),
        metric: metric.name.clone(),
        mode: Mode::of(leaf),
        reads,
        leader: leader_scored,
        baseline,
        val_gain,
        holdout_gain,
        ratio,
        transferred,
    })
}

/// The held-out score of one experiment, `None` when the leaf has no held-out split.
fn holdout_score(store: &Store, leaf: &Leaf, e: ExperimentId) -> Result<Option<f64>> {
    let metric = &leaf.manifest.metric;
    if Mode::of(leaf) == Mode::Scalar {
        let values: Vec<f64> = records::sealed_holdout(store.conn(), e)?
            .iter()
            .filter_map(|m| m.get(&metric.name).and_then(serde_json::Value::as_f64))
            .collect();
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
