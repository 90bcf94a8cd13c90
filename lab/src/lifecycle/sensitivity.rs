//! What the gate can detect on a leaf, read from its decisions: the smallest
//! true improvement the gate keeps four times in five (from the noise the
//! latest decision measured: seeds and validation items), whether the leader
//! is so close to the metric's best possible value that no detectable gain is
//! left (the ceiling), and how many of the comparison's keeps candidates with
//! no real gain would have won (the night as a whole, not one decision).
//!
//! Invariants: read-only, from the stored, chained gate reports of the
//! current comparison; nothing here re-runs a bootstrap, so `lab context`
//! stays fast.

use anyhow::Result;
use serde::Serialize;

use crate::gate::Scorer;
use crate::leaf::Leaf;
use crate::output::format_number;
use crate::store::Store;
use crate::store::gate::{self as records, Power};
use crate::store::runs;

/// A leaf's power in its current comparison, with a sentence saying it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeafPower {
    pub leaf: String,
    pub metric: String,
    #[serde(flatten)]
    pub power: Power,
    pub leader: Option<f64>,
    /// How far the leader is from the metric's best possible value (auc 1,
    /// rmse 0); `None` where the metric has none (bits per byte, a leaf's own scorer).
    pub headroom: Option<f64>,
    /// The headroom is no larger than the gain the gate can detect: no
    /// candidate can be told apart from the leader any more.
    pub at_ceiling: bool,
    pub summary: String,
}

pub fn of_leaf(store: &Store, leaf: &Leaf, key: &str) -> Result<LeafPower> {
    let metric = &leaf.manifest.metric;
    let power = records::power(store.conn(), leaf.name(), key)?;
    let leader = runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, key)?.map(|l| l.value);
    let perfect = metric.kind().parse::<Scorer>().ok().and_then(Scorer::perfect);
    let headroom = leader.zip(perfect).map(|(value, best)| metric.goal.improvement(value, best));
    let at_ceiling = match (headroom, power.sensitivity) {
        (Some(headroom), Some(s)) => headroom <= s.detectable,
        _ => false,
    };
    let summary = summary(&metric.name, &power, headroom, at_ceiling);
    Ok(LeafPower {
        leaf: leaf.name().to_owned(),
        metric: metric.name.clone(),
        power,
        leader,
        headroom,
        at_ceiling,
        summary,
    })
}

fn summary(metric: &str, p: &Power, headroom: Option<f64>, at_ceiling: bool) -> String {
    let detect = match (p.sensitivity, p.measured_by) {
        (Some(s), Some(e)) => format!(
            "the gate keeps a true gain of {} {metric} or more 4 times in 5 (noise measured by {e})",
            format_number(s.detectable)
        ),
        _ => "what the gate can detect is measured by the first candidate judged against a leader \
              whose outputs differ from it"
            .to_owned(),
    };
    let ceiling = match headroom {
        Some(h) if at_ceiling => {
            format!("; at its ceiling: the leader is {} from a perfect {metric}, no more than that", format_number(h))
        }
        _ => String::new(),
    };
    let night = format!(
        "; {} of {} candidates kept, of which noise alone explains up to {}",
        p.keeps,
        p.decisions,
        format_number(p.expected_noise_keeps)
    );
    format!("{detect}{ceiling}{night}")
}
