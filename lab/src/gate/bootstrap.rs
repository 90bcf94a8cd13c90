//! Paired bootstrap of a candidate's improvement over the leader on the same
//! validation items: how much of the gap is the model, how much the draw of
//! items.
//!
//! Each resample draws `n` item indices with replacement and scores
//! candidate and leader on the *same* draw, so item difficulty cancels.
//! Improvement is signed by the metric's goal: positive means the candidate is
//! better.
//!
//! Invariants: deterministic for a given seed; nothing is allocated per
//! resample (each thread reuses one index buffer and, for rank metrics, one
//! count buffer). Routes, by metric:
//! - mae, mse, accuracy, rae, r2: the improvement is a mean of per-item loss
//!   differences, so a resample is one gathered sum, O(n), no sort. RAE and R²
//!   keep the full set's label spread as a fixed denominator instead of the
//!   resample's own; that makes them decomposable at the cost of ignoring the
//!   (small, second-order) variability of the denominator.
//! - rmse: two gathered sums (candidate and leader squared errors), then roots.
//! - spearman, pearson, auc: the statistic is recomputed on each resample from
//!   per-item counts against rankings sorted once (see `rank`), O(n) per
//!   resample but several passes, so several times slower than mae. Resamples
//!   on which the statistic is undefined (all one class, a constant side) are
//!   skipped; the estimate reports how many remained, and fewer than half is an
//!   error. Above [`EXACT_WHOLE_DRAWS`] (1,677 items at 10,000 resamples) a
//!   resample is instead the statistic's first-order expansion, the full set's
//!   value plus the mean influence of the items drawn (`rank::influence`; for
//!   AUC DeLong's placements): one gathered sum like mae. Its error shrinks
//!   like 1/n against the interval's 1/sqrt(n), and it is never undefined.

use serde::Serialize;
use thiserror::Error;

use super::kind::MetricKind;
use super::metrics::{Decomposition, MetricError, decomposition, losses, score, validate};
use super::rank::{WholeStat, influence};
use super::resample::{Route, resample};
use super::scalar::sum_sq_dev;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapOptions {
    pub resamples: usize,
    /// Coverage of the two-sided percentile interval, strictly inside (0, 1).
    pub confidence: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapEstimate {
    /// Candidate minus leader on the full set, signed so positive = better.
    pub improvement: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Fraction of resamples whose improvement is strictly positive.
    pub prob_better: f64,
    /// Standard deviation of the resampled improvements: the bootstrap standard error.
    pub se: f64,
    /// Resamples that entered the interval (all of them unless some were undefined).
    pub resamples: usize,
    /// Validation items.
    pub n: usize,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error("confidence must lie strictly between 0 and 1, got {0}")]
    Confidence(f64),
    #[error("the bootstrap needs at least one resample")]
    NoResamples,
    #[error("{n} validation items are more than the bootstrap can index")]
    TooManyItems { n: usize },
    #[error(
        "{metric} was undefined on {skipped} of {total} resamples (one class, or a constant side); the validation set is too small or too uniform to bootstrap"
    )]
    Degenerate { metric: MetricKind, skipped: usize, total: usize },
}

/// Paired bootstrap of `candidate_pred` against `leader_pred` on `y_true`.
pub fn paired_bootstrap(
    kind: MetricKind,
    y_true: &[f64],
    leader_pred: &[f64],
    candidate_pred: &[f64],
    options: BootstrapOptions,
) -> Result<BootstrapEstimate, BootstrapError> {
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(BootstrapError::Confidence(options.confidence));
    }
    if options.resamples == 0 {
        return Err(BootstrapError::NoResamples);
    }
    validate(kind, y_true, leader_pred)?;
    validate(kind, y_true, candidate_pred)?;
    let n = y_true.len();
    if u32::try_from(n).is_err() {
        return Err(BootstrapError::TooManyItems { n });
    }
    let goal = kind.goal();
    let improvement = goal.improvement(score(kind, y_true, leader_pred)?, score(kind, y_true, candidate_pred)?);
    let linear = n.saturating_mul(options.resamples) > EXACT_WHOLE_DRAWS;
    let samples = resampled(kind, (y_true, leader_pred, candidate_pred), improvement, options, linear)?;
    let samples: Vec<f64> = samples.into_iter().filter(|d| !d.is_nan()).collect();
    let skipped = options.resamples - samples.len();
    if skipped * 2 > options.resamples {
        return Err(BootstrapError::Degenerate { metric: kind, skipped, total: options.resamples });
    }
    Ok(summarize(improvement, samples, options.confidence, n))
}

/// Above this many index draws (items x resamples), a rank statistic's
/// resamples take its first-order expansion (`rank::influence`) instead of
/// recomputing it: recomputed, Spearman's decision at this size takes about
/// 100 ms on a 2-core machine, and at 10,000 x 10,000 640 to 720 (the README).
const EXACT_WHOLE_DRAWS: usize = 1 << 24;

/// The resampled improvements, NaN where the statistic was undefined. With
/// `linear`, a whole-set statistic's resample is the full set's improvement
/// plus the mean difference of the items' influences it drew.
fn resampled(
    kind: MetricKind,
    (y_true, leader_pred, candidate_pred): (&[f64], &[f64], &[f64]),
    improvement: f64,
    options: BootstrapOptions,
    linear: bool,
) -> Result<Vec<f64>, BootstrapError> {
    let (n, goal) = (y_true.len(), kind.goal());
    let run = |route: &Route<'_>| resample(route, n, options.resamples, options.seed);
    let lead = || losses(kind, y_true, leader_pred);
    let cand = || losses(kind, y_true, candidate_pred);
    Ok(match decomposition(kind, y_true)? {
        Decomposition::Affine { scale, .. } => {
            // improvement = sign * scale * (mean loss_c - mean loss_l), item by item.
            let factor = goal.sign() * scale;
            run(&Route::Mean(&lead().iter().zip(&cand()).map(|(l, c)| factor * (c - l)).collect::<Vec<_>>()))
        }
        Decomposition::RootMean => run(&Route::RootMean(&lead(), &cand())),
        Decomposition::Whole if linear => {
            let (lead, cand) = (influence(kind, y_true, leader_pred), influence(kind, y_true, candidate_pred));
            let diffs: Vec<f64> = lead.iter().zip(&cand).map(|(l, c)| goal.sign() * (c - l)).collect();
            run(&Route::Mean(&diffs)).into_iter().map(|d| improvement + d).collect()
        }
        Decomposition::Whole => run(&Route::Whole(&WholeStat::new(kind, y_true, &[leader_pred, candidate_pred]), goal)),
    })
}

fn summarize(improvement: f64, mut samples: Vec<f64>, confidence: f64, n: usize) -> BootstrapEstimate {
    let better = samples.iter().filter(|&&d| d > 0.0).count();
    let count = samples.len() as f64;
    let se = (sum_sq_dev(&samples) / (count - 1.0).max(1.0)).sqrt();
    samples.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    BootstrapEstimate {
        improvement,
        ci_low: quantile(&samples, tail),
        ci_high: quantile(&samples, 1.0 - tail),
        prob_better: better as f64 / count,
        se,
        resamples: samples.len(),
        n,
    }
}

/// Linear interpolation between order statistics (Hyndman-Fan type 7, the
/// default of R and numpy) on a sorted, non-empty slice.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi]);
    a + (h - lo as f64) * (b - a) + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::metrics::statistic_on;
    use crate::gate::resample::{CHUNK, IndexDraw, chunk_rng};

    const OPTIONS: BootstrapOptions = BootstrapOptions { resamples: 2000, confidence: 0.9, seed: 7 };

    /// Deterministic, irregular data: a small LCG rather than a dependency.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }

    /// Every resample's indices, drawn one after another on one thread.
    fn index_stream(n: usize, o: BootstrapOptions) -> Vec<Vec<usize>> {
        let mut draw = IndexDraw::new(n);
        let mut out = Vec::new();
        for j in 0..o.resamples.div_ceil(CHUNK) {
            let mut rng = chunk_rng(o.seed, j);
            for _ in 0..CHUNK.min(o.resamples - j * CHUNK) {
                out.push(draw.draw(&mut rng).iter().map(|&i| i as usize).collect());
            }
        }
        out
    }

    /// The textbook bootstrap: same index stream, each resample scored from
    /// scratch with `statistic_on`, undefined resamples skipped.
    fn reference(kind: MetricKind, y: &[f64], lead: &[f64], cand: &[f64], o: BootstrapOptions) -> BootstrapEstimate {
        let mut samples = Vec::new();
        for idx in index_stream(y.len(), o) {
            let l = statistic_on(kind, y, lead, &idx);
            let c = statistic_on(kind, y, cand, &idx);
            if let (Ok(l), Ok(c)) = (l, c) {
                samples.push(kind.goal().improvement(l, c));
            }
        }
        let improvement = kind.goal().improvement(score(kind, y, lead).unwrap(), score(kind, y, cand).unwrap());
        summarize(improvement, samples, o.confidence, y.len())
    }

    #[test]
    fn identical_models_show_no_improvement() {
        let y = noise(50, 1);
        let p = add(&y, &noise(50, 2));
        for kind in [MetricKind::Mae, MetricKind::Rmse, MetricKind::Spearman] {
            let est = paired_bootstrap(kind, &y, &p, &p, OPTIONS).unwrap();
            assert_eq!((est.improvement, est.ci_low, est.ci_high), (0.0, 0.0, 0.0), "{kind}");
            assert_eq!((est.prob_better, est.se, est.resamples, est.n), (0.0, 0.0, 2000, 50), "{kind}");
        }
    }

    #[test]
    fn uniform_gain_gives_a_point_interval() {
        // Dyadic offsets keep every error exact: the leader is off by 0.5 and
        // the candidate by 0.25 on every item, alternating sides.
        let y: Vec<f64> = (0..40).map(|i| f64::from(i * 7 % 13)).collect();
        let side = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
        let lead: Vec<f64> = y.iter().enumerate().map(|(i, v)| v + 0.5 * side(i)).collect();
        let cand: Vec<f64> = y.iter().enumerate().map(|(i, v)| v - 0.25 * side(i)).collect();
        let est = paired_bootstrap(MetricKind::Mae, &y, &lead, &cand, OPTIONS).unwrap();
        assert_eq!((est.improvement, est.ci_low, est.ci_high, est.prob_better), (0.25, 0.25, 0.25, 1.0));
    }

    #[test]
    fn same_seed_same_estimate() {
        let y = noise(80, 3);
        let (lead, cand) = (add(&y, &noise(80, 4)), add(&y, &noise(80, 5)));
        let run = |seed| paired_bootstrap(MetricKind::Mae, &y, &lead, &cand, BootstrapOptions { seed, ..OPTIONS });
        assert_eq!(run(11).unwrap(), run(11).unwrap());
        assert_ne!(run(11).unwrap(), run(12).unwrap());
    }

    #[test]
    fn fast_routes_match_the_reference() {
        let y = noise(60, 6);
        let lead = add(&y, &noise(60, 7));
        let cand: Vec<f64> = add(&y, &noise(60, 8)).iter().map(|v| v * 0.8).collect();
        let o = BootstrapOptions { resamples: 300, ..OPTIONS };
        for kind in [MetricKind::Mae, MetricKind::Mse, MetricKind::Rmse, MetricKind::Spearman, MetricKind::Pearson] {
            let (fast, slow) =
                (paired_bootstrap(kind, &y, &lead, &cand, o).unwrap(), reference(kind, &y, &lead, &cand, o));
            for (a, b) in
                [(fast.ci_low, slow.ci_low), (fast.ci_high, slow.ci_high), (fast.improvement, slow.improvement)]
            {
                assert!((a - b).abs() < 1e-9, "{kind}: {fast:?} vs {slow:?}");
            }
            assert_eq!((fast.prob_better, fast.resamples), (slow.prob_better, slow.resamples), "{kind}");
        }
    }

    #[test]
    fn auc_and_accuracy_match_the_reference() {
        let y = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
        let lead = [0.2, 0.3, 0.6, 0.5, 0.9, 0.1, 0.3, 0.3];
        let cand = [0.1, 0.3, 0.4, 0.5, 0.9, 0.2, 0.7, 0.3];
        let (fast, slow) = (
            paired_bootstrap(MetricKind::Auc, &y, &lead, &cand, OPTIONS).unwrap(),
            reference(MetricKind::Auc, &y, &lead, &cand, OPTIONS),
        );
        assert!(fast.resamples < OPTIONS.resamples && fast.resamples > 0);
        assert_eq!(fast.resamples, slow.resamples);
        assert!((fast.ci_low - slow.ci_low).abs() < 1e-12 && (fast.prob_better - slow.prob_better).abs() < 1e-12);
        // Accuracy on the same binary labels takes the per-item route.
        let (fast, slow) = (
            paired_bootstrap(MetricKind::Accuracy, &y, &lead, &cand, OPTIONS).unwrap(),
            reference(MetricKind::Accuracy, &y, &lead, &cand, OPTIONS),
        );
        assert!((fast.ci_low - slow.ci_low).abs() < 1e-12 && (fast.ci_high - slow.ci_high).abs() < 1e-12);
        assert_eq!((fast.improvement, fast.prob_better), (slow.improvement, slow.prob_better));
    }

    #[test]
    fn first_order_resamples_track_exact_ones_on_many_items() {
        let n = 3000;
        let y = noise(n, 21);
        let lead = add(&y, &noise(n, 22));
        // Coarse candidate values, so its ranks tie.
        let cand: Vec<f64> = add(&y, &noise(n, 23)).iter().map(|v| (v * 0.9 * 20.0).round() / 20.0).collect();
        let labels: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v > 0.2))).collect();
        let o = BootstrapOptions { resamples: 1000, ..OPTIONS };
        for (kind, y) in [(MetricKind::Spearman, &y), (MetricKind::Pearson, &y), (MetricKind::Auc, &labels)] {
            let improvement = kind.goal().improvement(score(kind, y, &lead).unwrap(), score(kind, y, &cand).unwrap());
            let run = |linear| resampled(kind, (y, &lead, &cand), improvement, o, linear).unwrap();
            let (exact, linear) = (run(false), run(true));
            let se = summarize(improvement, exact.clone(), o.confidence, n).se;
            // The same draws: each resample's expansion departs from the
            // statistic recomputed by a few hundredths of a standard error
            // (the terms of second order), without a drift.
            let gaps: Vec<f64> = exact.iter().zip(&linear).map(|(e, l)| e - l).collect();
            let drift = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let spread = (sum_sq_dev(&gaps) / gaps.len() as f64).sqrt();
            assert!(drift.abs() < 0.01 * se && spread < 0.1 * se, "{kind}: drift {drift}, spread {spread}, se {se}");
            let (e, l) = (summarize(improvement, exact, 0.9, n), summarize(improvement, linear, 0.9, n));
            for (a, b) in [(e.ci_low, l.ci_low), (e.ci_high, l.ci_high), (e.se, l.se)] {
                assert!((a - b).abs() < 0.05 * se, "{kind}: {e:?} vs {l:?}");
            }
        }
    }

    #[test]
    fn only_large_jobs_take_the_expansion() {
        let n = 2000;
        let y = noise(n, 31);
        let (lead, cand) = (add(&y, &noise(n, 32)), add(&y, &noise(n, 33)));
        let kind = MetricKind::Spearman;
        let improvement = kind.goal().improvement(score(kind, &y, &lead).unwrap(), score(kind, &y, &cand).unwrap());
        for (resamples, linear) in [(EXACT_WHOLE_DRAWS / n, false), (EXACT_WHOLE_DRAWS / n + 1, true)] {
            let o = BootstrapOptions { resamples, ..OPTIONS };
            let route = resampled(kind, (&y, &lead, &cand), improvement, o, linear).unwrap();
            let want = summarize(improvement, route, o.confidence, n);
            assert_eq!(paired_bootstrap(kind, &y, &lead, &cand, o).unwrap(), want, "{resamples} resamples");
        }
    }

    #[test]
    fn bad_options_are_errors() {
        let y = noise(10, 9);
        let run = |o| paired_bootstrap(MetricKind::Mae, &y, &y, &y, o).unwrap_err();
        assert_eq!(run(BootstrapOptions { confidence: 1.0, ..OPTIONS }), BootstrapError::Confidence(1.0));
        assert_eq!(run(BootstrapOptions { resamples: 0, ..OPTIONS }), BootstrapError::NoResamples);
    }

    #[test]
    fn quantile_interpolates() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            (quantile(&s, 0.0), quantile(&s, 0.125), quantile(&s, 0.5), quantile(&s, 1.0)),
            (1.0, 1.5, 3.0, 5.0)
        );
    }
}
