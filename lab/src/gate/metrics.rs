//! Scoring predictions against labels, and the per-sample losses that let the
//! paired bootstrap resample a metric without recomputing it from scratch.
//!
//! Invariants: every public function validates its inputs and answers with a
//! [`MetricError`] rather than a NaN or an infinity; a statistic that is
//! undefined on the data (constant labels for R² and RAE, a constant side for a
//! correlation, a single class for AUC) is an error, never a silent 0.
//! Minimum sizes: mae, mse, rmse and accuracy need 1 item; rae, r2 and auc need
//! 2 (a spread of labels, or one item per class); pearson and spearman need 3,
//! because on 2 items they are ±1 whatever the model does.
//! Accuracy takes integer class labels; when every label of the set is 0 or 1
//! the prediction is a score thresholded at 0.5 (>= 0.5 means class 1),
//! otherwise it is rounded to the nearest class.

use thiserror::Error;

use super::kind::{MetricKind, VALID_NAMES};
use super::rank::WholeStat;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    #[error("unknown metric `{0}`; expected one of: {VALID_NAMES}", VALID_NAMES = VALID_NAMES)]
    UnknownMetric(String),
    #[error("{labels} labels but {predictions} predictions; they must pair up item by item")]
    LengthMismatch { labels: usize, predictions: usize },
    #[error("{metric} needs at least {needed} items, got {got}")]
    TooFewSamples { metric: MetricKind, needed: usize, got: usize },
    #[error("{what}[{index}] is {value}; metrics need finite numbers")]
    NonFinite { what: &'static str, index: usize, value: f64 },
    #[error("{metric} is undefined because the {what} are all equal")]
    Constant { metric: MetricKind, what: &'static str },
    #[error("auc needs both classes among the labels, found only {class}")]
    SingleClass { class: f64 },
    #[error("{metric} needs {expected} labels, but labels[{index}] is {value}")]
    BadLabel { metric: MetricKind, expected: &'static str, index: usize, value: f64 },
    #[error("{metric} has no per-sample loss; recompute it with statistic_on")]
    NotDecomposable { metric: MetricKind },
    #[error("index {index} is out of range for {n} items")]
    IndexOutOfRange { index: usize, n: usize },
}

/// How a score is assembled from per-sample losses, which decides how the
/// bootstrap resamples it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decomposition {
    /// `score = offset + scale * mean(loss)`; RAE and R² fold their label
    /// spread (from the full set) into `scale`.
    Affine { offset: f64, scale: f64 },
    /// `score = sqrt(mean(loss))`.
    RootMean,
    /// A rank or correlation statistic with no per-sample loss.
    Whole,
}

/// Lengths, sizes, finiteness and label domains; constancy is left to the
/// statistic, because which side may not be constant depends on it.
pub fn validate(kind: MetricKind, y_true: &[f64], y_pred: &[f64]) -> Result<(), MetricError> {
    if y_true.len() != y_pred.len() {
        return Err(MetricError::LengthMismatch { labels: y_true.len(), predictions: y_pred.len() });
    }
    if y_true.len() < kind.min_samples() {
        let (needed, got) = (kind.min_samples(), y_true.len());
        return Err(MetricError::TooFewSamples { metric: kind, needed, got });
    }
    for (what, values) in [("labels", y_true), ("predictions", y_pred)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricError::NonFinite { what, index, value });
        }
    }
    let (expected, ok): (&str, fn(f64) -> bool) = match kind {
        MetricKind::Auc => ("0/1", |y| y == 0.0 || y == 1.0),
        MetricKind::Accuracy => ("integer class", |y| y.fract() == 0.0),
        _ => return Ok(()),
    };
    match y_true.iter().enumerate().find(|(_, y)| !ok(**y)) {
        Some((index, &value)) => Err(MetricError::BadLabel { metric: kind, expected, index, value }),
        None => Ok(()),
    }
}

/// The metric of `y_pred` against `y_true` on the full set.
pub fn score(kind: MetricKind, y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricError> {
    validate(kind, y_true, y_pred)?;
    let mean = |losses: Vec<f64>| losses.iter().sum::<f64>() / losses.len() as f64;
    match decomposition(kind, y_true)? {
        Decomposition::Affine { offset, scale } => Ok(offset + scale * mean(losses(kind, y_true, y_pred))),
        Decomposition::RootMean => Ok(mean(losses(kind, y_true, y_pred)).sqrt()),
        Decomposition::Whole => whole_score(kind, y_true, y_pred),
    }
}

/// Per-item loss (lower is better) whose mean determines the score: absolute
/// error for mae and rae, squared error for mse, rmse and r2, 0/1 for a wrong
/// class in accuracy. Rank and correlation metrics have none: resample them
/// with [`statistic_on`].
pub fn per_sample_errors(kind: MetricKind, y_true: &[f64], y_pred: &[f64]) -> Result<Vec<f64>, MetricError> {
    validate(kind, y_true, y_pred)?;
    match kind {
        MetricKind::Spearman | MetricKind::Pearson | MetricKind::Auc => {
            Err(MetricError::NotDecomposable { metric: kind })
        }
        _ => Ok(losses(kind, y_true, y_pred)),
    }
}

/// The metric recomputed from scratch on the items `indices` names, repeats
/// included, exactly as if they were the whole set. This is the reference a
/// bootstrap resample stands for; the bootstrap itself takes faster, equivalent
/// routes (see `bootstrap`).
pub fn statistic_on(kind: MetricKind, y_true: &[f64], y_pred: &[f64], indices: &[usize]) -> Result<f64, MetricError> {
    validate(kind, y_true, y_pred)?;
    let n = y_true.len();
    if let Some(&index) = indices.iter().find(|&&i| i >= n) {
        return Err(MetricError::IndexOutOfRange { index, n });
    }
    let yt: Vec<f64> = indices.iter().map(|&i| y_true[i]).collect();
    let yp: Vec<f64> = indices.iter().map(|&i| y_pred[i]).collect();
    score(kind, &yt, &yp)
}

/// Assumes `y_true` is validated for `kind`.
pub(crate) fn decomposition(kind: MetricKind, y_true: &[f64]) -> Result<Decomposition, MetricError> {
    let n = y_true.len() as f64;
    let mean = y_true.iter().sum::<f64>() / n;
    let constant = || MetricError::Constant { metric: kind, what: "labels" };
    Ok(match kind {
        MetricKind::Mae | MetricKind::Mse => Decomposition::Affine { offset: 0.0, scale: 1.0 },
        MetricKind::Accuracy => Decomposition::Affine { offset: 1.0, scale: -1.0 },
        MetricKind::Rmse => Decomposition::RootMean,
        MetricKind::Rae => {
            let spread: f64 = y_true.iter().map(|y| (y - mean).abs()).sum();
            if all_equal(y_true) {
                return Err(constant());
            }
            Decomposition::Affine { offset: 0.0, scale: n / spread }
        }
        MetricKind::R2 => {
            let spread: f64 = y_true.iter().map(|y| (y - mean).powi(2)).sum();
            if all_equal(y_true) {
                return Err(constant());
            }
            Decomposition::Affine { offset: 1.0, scale: -n / spread }
        }
        MetricKind::Spearman | MetricKind::Pearson | MetricKind::Auc => Decomposition::Whole,
    })
}

/// Assumes validated inputs and a decomposable `kind`.
pub(crate) fn losses(kind: MetricKind, y_true: &[f64], y_pred: &[f64]) -> Vec<f64> {
    let pairs = y_true.iter().zip(y_pred);
    match kind {
        MetricKind::Accuracy => {
            let binary = y_true.iter().all(|&y| y == 0.0 || y == 1.0);
            pairs.map(|(&y, &p)| f64::from(u8::from(predicted_class(binary, p) != y))).collect()
        }
        MetricKind::Mae | MetricKind::Rae => pairs.map(|(y, p)| (y - p).abs()).collect(),
        _ => pairs.map(|(y, p)| (y - p).powi(2)).collect(),
    }
}

fn predicted_class(binary: bool, p: f64) -> f64 {
    match binary {
        true if p >= 0.5 => 1.0,
        true => 0.0,
        false => p.round(),
    }
}

fn all_equal(values: &[f64]) -> bool {
    values.iter().all(|&v| v == values[0])
}

/// Spearman, pearson and auc on the full set, with the undefined cases named.
fn whole_score(kind: MetricKind, y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricError> {
    if kind == MetricKind::Auc {
        if all_equal(y_true) {
            return Err(MetricError::SingleClass { class: y_true[0] });
        }
    } else {
        for (what, values) in [("labels", y_true), ("predictions", y_pred)] {
            if all_equal(values) {
                return Err(MetricError::Constant { metric: kind, what });
            }
        }
    }
    let stat = WholeStat::new(kind, y_true, &[y_pred]);
    let mut out = [None];
    stat.eval(&vec![1; y_true.len()], &mut stat.scratch(), &mut out);
    // Unreachable after the checks above; kept as an error rather than a panic.
    out[0].ok_or(MetricError::Constant { metric: kind, what: "values" })
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: [f64; 4] = [1.0, 2.0, 3.0, 4.0];
    const P: [f64; 4] = [1.5, 2.0, 2.0, 5.0];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn known_values() {
        // Errors on (Y, P): 0.5, 0, 1, 1. Labels: mean 2.5, |y - mean| sums to 4,
        // (y - mean)^2 sums to 5.
        let spearman_labels = [1.0, 2.0, 2.0, 3.0];
        let auc_labels = [1.0, 0.0, 1.0, 0.0, 1.0];
        let cases: [(MetricKind, &[f64], &[f64], f64); 11] = [
            (MetricKind::Mae, &Y, &P, 2.5 / 4.0),
            (MetricKind::Mse, &Y, &P, 2.25 / 4.0),
            (MetricKind::Rmse, &Y, &P, 0.75),
            (MetricKind::Rae, &Y, &P, 2.5 / 4.0),
            (MetricKind::R2, &Y, &P, 1.0 - 2.25 / 5.0),
            // x - mean: -1.5 -.5 .5 1.5; y - mean(3.75): -1.75 .25 1.25 .25;
            // sxy = 3.5, sxx = 5, syy = 4.75.
            (MetricKind::Pearson, &Y, &[2.0, 4.0, 5.0, 4.0], 3.5 / 23.75_f64.sqrt()),
            // Average ranks: labels 1, 2.5, 2.5, 4; predictions 1, 3, 2, 4; both
            // centre on 2.5. Deviations -1.5 0 0 1.5 and -1.5 .5 -.5 1.5 give
            // sxy = 4.5, sxx = 4.5, syy = 5, so rho = 4.5 / sqrt(22.5) = sqrt(0.9).
            (MetricKind::Spearman, &spearman_labels, &[1.0, 3.0, 2.0, 4.0], 0.9_f64.sqrt()),
            // Positives score .9 .8 .1, negatives .8 .3: .9 wins twice, .8 ties
            // one and wins one, .1 loses both: 3.5 of 6 pairs.
            (MetricKind::Auc, &auc_labels, &[0.9, 0.8, 0.8, 0.3, 0.1], 3.5 / 6.0),
            (MetricKind::Auc, &[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.4, 0.8], 3.5 / 4.0),
            // Binary: thresholded at 0.5 -> 0 1 0 1, two of four right.
            (MetricKind::Accuracy, &[0.0, 1.0, 1.0, 0.0], &[0.2, 0.5, 0.4, 0.7], 0.5),
            // Multi-class: rounded -> 0 1 3 2, three of four right.
            (MetricKind::Accuracy, &[0.0, 1.0, 2.0, 2.0], &[0.2, 1.4, 2.6, 1.5], 0.75),
        ];
        for (kind, y, p, want) in cases {
            let got = score(kind, y, p).unwrap();
            assert!(close(got, want), "{kind}: got {got}, want {want}");
        }
    }

    #[test]
    fn undefined_inputs_are_errors() {
        let constant = |metric, what| MetricError::Constant { metric, what };
        let cases: [(MetricKind, &[f64], &[f64], MetricError); 9] = [
            (MetricKind::Pearson, &Y, &[2.0; 4], constant(MetricKind::Pearson, "predictions")),
            (MetricKind::Spearman, &[3.0; 4], &P, constant(MetricKind::Spearman, "labels")),
            (MetricKind::R2, &[3.0; 4], &P, constant(MetricKind::R2, "labels")),
            (MetricKind::Rae, &[3.0; 4], &P, constant(MetricKind::Rae, "labels")),
            (
                MetricKind::Mae,
                &[1.0, f64::NAN],
                &[1.0, 2.0],
                MetricError::NonFinite { what: "labels", index: 1, value: f64::NAN },
            ),
            (
                MetricKind::Spearman,
                &[1.0, 2.0],
                &[1.0, 2.0],
                MetricError::TooFewSamples { metric: MetricKind::Spearman, needed: 3, got: 2 },
            ),
            (MetricKind::Mae, &Y, &[1.0], MetricError::LengthMismatch { labels: 4, predictions: 1 }),
            (MetricKind::Auc, &[1.0; 3], &[0.1, 0.2, 0.3], MetricError::SingleClass { class: 1.0 }),
            (
                MetricKind::Auc,
                &[0.0, 2.0],
                &[0.1, 0.2],
                MetricError::BadLabel { metric: MetricKind::Auc, expected: "0/1", index: 1, value: 2.0 },
            ),
        ];
        for (kind, y, p, want) in cases {
            let got = score(kind, y, p).unwrap_err();
            // NaN != NaN, so compare the rendered messages.
            assert_eq!(got.to_string(), want.to_string(), "{kind}");
        }
        let inf = score(MetricKind::Mae, &Y, &[1.0, 2.0, f64::INFINITY, 4.0]).unwrap_err();
        assert!(matches!(inf, MetricError::NonFinite { what: "predictions", index: 2, .. }));
    }

    #[test]
    fn per_sample_losses_and_resampled_statistic() {
        assert_eq!(per_sample_errors(MetricKind::Mae, &Y, &P).unwrap(), [0.5, 0.0, 1.0, 1.0]);
        assert_eq!(per_sample_errors(MetricKind::Rmse, &Y, &P).unwrap(), [0.25, 0.0, 1.0, 1.0]);
        let err = per_sample_errors(MetricKind::Auc, &[0.0, 1.0], &[0.2, 0.3]).unwrap_err();
        assert_eq!(err, MetricError::NotDecomposable { metric: MetricKind::Auc });
        // Items 0, 0, 3: errors 0.5, 0.5, 1.
        let mae = statistic_on(MetricKind::Mae, &Y, &P, &[0, 0, 3]).unwrap();
        assert!(close(mae, 2.0 / 3.0));
        let err = statistic_on(MetricKind::Mae, &Y, &P, &[4]).unwrap_err();
        assert_eq!(err, MetricError::IndexOutOfRange { index: 4, n: 4 });
    }
}
