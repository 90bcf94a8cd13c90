//! The names `lab` uses for metrics and directions: which metrics exist, what
//! each is called on the command line and in files, and which way it improves.
//!
//! Invariants: names are lowercase and round-trip through `FromStr`, `Display`
//! and serde alike; [`VALID_NAMES`] lists every [`MetricKind`] in order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::metrics::MetricError;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Minimize,
    Maximize,
}

impl Goal {
    /// +1 when larger is better, -1 when smaller is better.
    pub fn sign(self) -> f64 {
        match self {
            Goal::Minimize => -1.0,
            Goal::Maximize => 1.0,
        }
    }

    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Minimize => a < b,
            Goal::Maximize => a > b,
        }
    }

    /// How much better `candidate` is than `leader`: positive means better,
    /// whatever the direction. Never -0.0, which would print as "-0.000".
    pub fn improvement(self, leader: f64, candidate: f64) -> f64 {
        self.sign() * (candidate - leader) + 0.0
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Goal::Minimize => "minimize",
            Goal::Maximize => "maximize",
        })
    }
}

/// The metrics a run can be scored on in predictions mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Mae,
    Rmse,
    Mse,
    Rae,
    Spearman,
    Pearson,
    R2,
    Auc,
    Accuracy,
}

/// Kept beside [`MetricKind::ALL`]; a test checks they agree.
pub(crate) const VALID_NAMES: &str = "mae, rmse, mse, rae, spearman, pearson, r2, auc, accuracy";

impl MetricKind {
    pub const ALL: [MetricKind; 9] = [
        MetricKind::Mae,
        MetricKind::Rmse,
        MetricKind::Mse,
        MetricKind::Rae,
        MetricKind::Spearman,
        MetricKind::Pearson,
        MetricKind::R2,
        MetricKind::Auc,
        MetricKind::Accuracy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Mae => "mae",
            MetricKind::Rmse => "rmse",
            MetricKind::Mse => "mse",
            MetricKind::Rae => "rae",
            MetricKind::Spearman => "spearman",
            MetricKind::Pearson => "pearson",
            MetricKind::R2 => "r2",
            MetricKind::Auc => "auc",
            MetricKind::Accuracy => "accuracy",
        }
    }

    /// The natural direction: errors are minimized, agreement is maximized.
    pub fn goal(self) -> Goal {
        match self {
            MetricKind::Mae | MetricKind::Rmse | MetricKind::Mse | MetricKind::Rae => Goal::Minimize,
            MetricKind::Spearman | MetricKind::Pearson | MetricKind::R2 | MetricKind::Auc | MetricKind::Accuracy => {
                Goal::Maximize
            }
        }
    }

    /// Whether a positive affine map of the predictions leaves the metric
    /// unchanged (rank and correlation metrics): such a metric says nothing
    /// about a component's scale, so models on different scales can rank well
    /// alike, and a blend must put them on one scale first.
    pub fn ignores_scale(self) -> bool {
        matches!(self, MetricKind::Auc | MetricKind::Spearman | MetricKind::Pearson)
    }

    /// The best value the metric can take: no error, perfect agreement.
    pub fn perfect(self) -> f64 {
        match self.goal() {
            Goal::Minimize => 0.0,
            Goal::Maximize => 1.0,
        }
    }

    /// Fewest items on which the statistic means anything (the `metrics` module
    /// docs say why).
    pub fn min_samples(self) -> usize {
        match self {
            MetricKind::Mae | MetricKind::Rmse | MetricKind::Mse | MetricKind::Accuracy => 1,
            MetricKind::Rae | MetricKind::R2 | MetricKind::Auc => 2,
            MetricKind::Spearman | MetricKind::Pearson => 3,
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MetricKind {
    type Err = MetricError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        MetricKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| MetricError::UnknownMetric(s.to_string()))
    }
}

/// How the harness scores a leaf's outputs when no frozen `score` does: a
/// metric of (label, prediction) pairs, or bits per byte from a language
/// model's logits (outputs `(N, T, V)`, targets `(N, T)` token ids; per item the
/// mean over T of -log2 softmax(logits)[target]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scorer {
    Paired(MetricKind),
    BitsPerByte,
}

impl Scorer {
    /// Every name `metric.kind` accepts.
    pub const NAMES: [&'static str; 10] =
        ["mae", "rmse", "mse", "rae", "spearman", "pearson", "r2", "auc", "accuracy", "bits_per_byte"];

    pub fn goal(self) -> Goal {
        match self {
            Scorer::Paired(kind) => kind.goal(),
            Scorer::BitsPerByte => Goal::Minimize,
        }
    }

    /// The best attainable value, where there is one: text always has some entropy.
    pub fn perfect(self) -> Option<f64> {
        match self {
            Scorer::Paired(kind) => Some(kind.perfect()),
            Scorer::BitsPerByte => None,
        }
    }

    /// Whether the metric is the mean of its per-item scores (mae, mse,
    /// accuracy, bits per byte). The others (rmse, rae, r2, spearman, pearson,
    /// auc) are whole-sample statistics: every item carries the whole value.
    pub fn is_item_mean(self) -> bool {
        matches!(self, Scorer::BitsPerByte | Scorer::Paired(MetricKind::Mae | MetricKind::Mse | MetricKind::Accuracy))
    }
}

impl FromStr for Scorer {
    type Err = MetricError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "bits_per_byte" => Ok(Scorer::BitsPerByte),
            other => other.parse().map(Scorer::Paired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scorer_names_are_the_metric_kinds_and_bits_per_byte() {
        for name in Scorer::NAMES {
            assert!(name.parse::<Scorer>().is_ok(), "{name}");
        }
        assert_eq!(Scorer::NAMES[..9].join(", "), VALID_NAMES);
        assert!("f1".parse::<Scorer>().is_err());
    }

    #[test]
    fn names_round_trip_and_unknown_lists_valid_names() {
        let names: Vec<&str> = MetricKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.join(", "), VALID_NAMES);
        for kind in MetricKind::ALL {
            assert_eq!(kind.name().parse::<MetricKind>().unwrap(), kind);
        }
        assert_eq!(" AUC ".parse::<MetricKind>().unwrap(), MetricKind::Auc);
        let err = "f1".parse::<MetricKind>().unwrap_err().to_string();
        assert!(err.contains("`f1`") && err.contains(VALID_NAMES), "{err}");
        assert_eq!(serde_json::to_string(&Goal::Minimize).unwrap(), "\"minimize\"");
    }

    #[test]
    fn goals_orient_improvement() {
        assert!(Goal::Minimize.better(1.0, 2.0) && !Goal::Minimize.better(2.0, 2.0));
        assert!(Goal::Maximize.better(2.0, 1.0));
        assert_eq!(Goal::Minimize.improvement(0.5, 0.3), 0.2);
        assert_eq!(Goal::Maximize.improvement(0.5, 0.3), -0.2);
        assert!(Goal::Minimize.improvement(1.0, 1.0).is_sign_positive());
    }
}
