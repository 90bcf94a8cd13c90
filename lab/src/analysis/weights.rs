//! Blend weights: non-negative weights summing to one whose blend of component
//! predictions scores best on the primary metric, and the error-correlation
//! matrix that says whether blending can help at all (errors that move together
//! do not cancel).
//!
//! The search walks the simplex in steps of 1/[`STEPS`] (0.05). With at most
//! [`EXHAUSTIVE_MAX`] components it scores every grid point (1,771 for four);
//! with more it runs greedy forward selection with replacement (Caruana et al.,
//! "Ensemble selection from libraries of models", 2004): [`STEPS`] rounds, each
//! adding one step of weight to the component that helps the blend most. Both
//! only compare values of `gate::score`, so every metric works: MAE, RAE and the
//! rank metrics have no closed form, and least squares would fit the wrong loss.
//!
//! Invariants: deterministic (points are visited in a fixed order and a later
//! point replaces the best only when strictly better, so ties go to the first);
//! weights are multiples of the step, non-negative, and sum to one; a point the
//! metric cannot score (a constant blend under a correlation metric) is skipped.

use serde::Serialize;

use crate::gate::{self, MetricError, MetricKind};

/// Folds of the cross-fitted blend the gate judges ([`cross_fit`]).
pub const FOLDS: usize = 5;
/// Grid resolution: weights are multiples of 1/STEPS.
pub const STEPS: usize = 20;
/// Most components searched exhaustively; beyond, the greedy search.
pub const EXHAUSTIVE_MAX: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Search {
    pub weights: Vec<f64>,
    /// The primary metric of the blend on the searched split.
    pub score: f64,
    /// `simplex grid` or `greedy selection`.
    pub method: &'static str,
    /// Blends scored.
    pub evaluated: usize,
}

/// The best weights for blending `components` against `y` on `kind`.
pub fn search(kind: MetricKind, y: &[f64], components: &[Vec<f64>]) -> Result<Search, MetricError> {
    for c in components {
        gate::validate(kind, y, c)?;
    }
    let mut best = Best { kind, y, components, units: None, score: f64::NAN, evaluated: 0 };
    let method = if components.len() <= EXHAUSTIVE_MAX {
        grid(&mut best, &mut Vec::with_capacity(components.len()), STEPS);
        "simplex grid"
    } else {
        greedy(&mut best);
        "greedy selection"
    };
    let Some(units) = best.units else {
        return Err(MetricError::Constant { metric: kind, what: "blends" });
    };
    Ok(Search { weights: to_weights(&units), score: best.score, method, evaluated: best.evaluated })
}

/// The out-of-fold blend: item `i` falls in fold `i % FOLDS` and is blended with
/// the weights [`search`] finds on the other folds, so no item's blended
/// prediction was tuned on that item. This is what the gate judges: weights
/// searched on the very items that then score them would carry their optimism
/// into the decision.
pub fn cross_fit(kind: MetricKind, y: &[f64], components: &[Vec<f64>]) -> Result<Vec<f64>, MetricError> {
    let mut out = vec![f64::NAN; y.len()];
    for fold in 0..FOLDS {
        let (held, rest) = folds(y.len(), fold);
        let weights = search(kind, &pick(y, &rest), &pick_each(components, &rest))?.weights;
        for i in held {
            out[i] = weights.iter().zip(components).map(|(w, c)| w * c[i]).sum();
        }
    }
    Ok(out)
}

/// The honest cross-fit's score: each fold scored alone with the weights
/// [`search`] finds on the other folds, averaged. What [`cross_fit`]'s pooled
/// blend should score within noise for every metric; pooling strays from it
/// where components differ in scale and the metric ranks (see [`units`]).
pub fn per_fold_score(kind: MetricKind, y: &[f64], components: &[Vec<f64>]) -> Result<f64, MetricError> {
    let mut total = 0.0;
    for fold in 0..FOLDS {
        let (held, rest) = folds(y.len(), fold);
        let weights = search(kind, &pick(y, &rest), &pick_each(components, &rest))?.weights;
        total += gate::score(kind, &pick(y, &held), &combine(&weights, &pick_each(components, &held)))?;
    }
    Ok(total / FOLDS as f64)
}

/// Fold `fold`'s items (`i % FOLDS == fold`) and the others, of `n`.
fn folds(n: usize, fold: usize) -> (Vec<usize>, Vec<usize>) {
    (0..n).partition(|i| i % FOLDS == fold)
}

fn pick(values: &[f64], at: &[usize]) -> Vec<f64> {
    at.iter().map(|&i| values[i]).collect()
}

fn pick_each(components: &[Vec<f64>], at: &[usize]) -> Vec<Vec<f64>> {
    components.iter().map(|c| pick(c, at)).collect()
}

/// A component's affine map onto the blend's common scale: `(p - centre) / spread`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Unit {
    pub centre: f64,
    pub spread: f64,
}

/// The maps that put `components` (as predicted on val) on one scale: for a
/// metric that ignores scale (auc, spearman, pearson), each component's own
/// mean and sd on val, so a ridge score in the hundreds and a probability
/// weigh alike; otherwise the identity, since error metrics read predictions
/// on the label's scale (and accuracy thresholds them). Only predictions, no
/// labels, go into the maps, so they carry no optimism. Without them the
/// cross-fit pools items blended with different weights on different scales,
/// and pooling scrambles a ranking: ridge (AUC 0.9987) with LightGBM (0.9970)
/// scored 0.9789.
pub fn units(kind: MetricKind, components: &[Vec<f64>]) -> Vec<Unit> {
    let identity = Unit { centre: 0.0, spread: 1.0 };
    if !kind.ignores_scale() {
        return vec![identity; components.len()];
    }
    components
        .iter()
        .map(|c| {
            let n = c.len().max(1) as f64;
            let centre = c.iter().sum::<f64>() / n;
            let sd = (c.iter().map(|p| (p - centre).powi(2)).sum::<f64>() / n).sqrt();
            // A constant component stays as it is: it cannot move a ranking anyway.
            if sd > 0.0 { Unit { centre, spread: sd } } else { identity }
        })
        .collect()
}

/// `components` mapped by `units` (one per component).
pub fn rescale(units: &[Unit], components: &[Vec<f64>]) -> Vec<Vec<f64>> {
    units.iter().zip(components).map(|(u, c)| c.iter().map(|p| (p - u.centre) / u.spread).collect()).collect()
}

/// The blend `sum_i weights[i] * components[i]`, item by item.
pub fn combine(weights: &[f64], components: &[Vec<f64>]) -> Vec<f64> {
    let n = components.first().map_or(0, Vec::len);
    let mut out = vec![0.0; n];
    for (w, c) in weights.iter().zip(components) {
        if *w != 0.0 {
            out.iter_mut().zip(c).for_each(|(o, p)| *o += w * p);
        }
    }
    out
}

/// Pearson correlation of the residuals `y - p` of every pair of components;
/// `None` where it is undefined (a constant residual, fewer than 3 items).
pub fn error_correlations(y: &[f64], components: &[Vec<f64>]) -> Vec<Vec<Option<f64>>> {
    let residuals: Vec<Vec<f64>> = components.iter().map(|c| y.iter().zip(c).map(|(t, p)| t - p).collect()).collect();
    residuals.iter().map(|a| residuals.iter().map(|b| gate::score(MetricKind::Pearson, a, b).ok()).collect()).collect()
}

struct Best<'a> {
    kind: MetricKind,
    y: &'a [f64],
    components: &'a [Vec<f64>],
    units: Option<Vec<usize>>,
    score: f64,
    evaluated: usize,
}

impl Best<'_> {
    fn offer(&mut self, units: &[usize]) {
        self.evaluated += 1;
        let blend = combine(&to_weights(units), self.components);
        let Ok(score) = gate::score(self.kind, self.y, &blend) else { return };
        if self.units.is_none() || self.kind.goal().better(score, self.score) {
            self.units = Some(units.to_vec());
            self.score = score;
        }
    }
}

/// Every way to share `left` steps among the components not yet in `prefix`.
fn grid(best: &mut Best<'_>, prefix: &mut Vec<usize>, left: usize) {
    if prefix.len() + 1 == best.components.len() {
        prefix.push(left);
        best.offer(prefix);
        prefix.pop();
        return;
    }
    for units in 0..=left {
        prefix.push(units);
        grid(best, prefix, left - units);
        prefix.pop();
    }
}

fn greedy(best: &mut Best<'_>) {
    let mut units = vec![0; best.components.len()];
    for _ in 0..STEPS {
        let mut round = Best { units: None, score: f64::NAN, evaluated: 0, ..*best };
        for i in 0..units.len() {
            units[i] += 1;
            round.offer(&units);
            units[i] -= 1;
        }
        best.evaluated += round.evaluated;
        let Some(chosen) = round.units else { return };
        units = chosen;
    }
    best.offer(&units);
}

/// Step counts to weights; an empty partial blend (greedy's start) has no steps.
fn to_weights(units: &[usize]) -> Vec<f64> {
    let total: usize = units.iter().sum::<usize>().max(1);
    units.iter().map(|&u| u as f64 / total as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Standard normal draws without another crate: Box-Muller on a seeded stream.
    fn normal(rng: &mut impl Rng, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    fn noisy(truth: &[f64], noise: &[f64], scale: f64) -> Vec<f64> {
        truth.iter().zip(noise).map(|(t, e)| t + scale * e).collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn the_truth_among_the_components_takes_all_the_weight() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let truth = normal(&mut rng, 500);
        let wrong = noisy(&truth, &normal(&mut rng, 500), 1.0);
        for kind in [MetricKind::Mae, MetricKind::Rmse, MetricKind::Rae] {
            let s = search(kind, &truth, &[wrong.clone(), truth.clone()]).unwrap();
            assert_eq!(s.weights, [0.0, 1.0], "{kind}");
            assert_eq!((s.score, s.method, s.evaluated), (0.0, "simplex grid", STEPS + 1));
        }
        let s = search(MetricKind::Pearson, &truth, &[truth.clone(), wrong]).unwrap();
        assert!(close(s.weights[0], 1.0, 1e-12) && close(s.score, 1.0, 1e-12), "{s:?}");
    }

    #[test]
    fn two_equally_noisy_independent_copies_share_the_weight_evenly() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let truth = normal(&mut rng, 20_000);
        let a = noisy(&truth, &normal(&mut rng, 20_000), 1.0);
        let b = noisy(&truth, &normal(&mut rng, 20_000), 1.0);
        for kind in [MetricKind::Mae, MetricKind::Mse] {
            let s = search(kind, &truth, &[a.clone(), b.clone()]).unwrap();
            assert!(close(s.weights[0], 0.5, 1.0 / STEPS as f64 + 1e-12), "{kind}: {s:?}");
            let alone = gate::score(kind, &truth, &a).unwrap();
            assert!(s.score < alone * 0.8, "{kind}: averaging two independent errors must help: {s:?} vs {alone}");
        }
        let corr = error_correlations(&truth, &[a, b]);
        assert!(close(corr[0][0].unwrap(), 1.0, 1e-12) && corr[0][1].unwrap().abs() < 0.05, "{corr:?}");
    }

    #[test]
    fn weights_are_non_negative_steps_summing_to_one_in_both_searches() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let truth = normal(&mut rng, 400);
        // Pure noise equal to three times the best component's error: least squares
        // would subtract it (a negative weight); here it must get none.
        let noise = normal(&mut rng, 400);
        let mut components = vec![noise.iter().map(|e| 3.0 * e).collect(), noisy(&truth, &noise, 0.5)];
        for scale in [0.8, 1.0, 1.5, 2.0] {
            components.push(noisy(&truth, &normal(&mut rng, 400), scale));
        }
        for n in [3, 6] {
            let s = search(MetricKind::Mae, &truth, &components[..n]).unwrap();
            assert_eq!(s.method, if n <= EXHAUSTIVE_MAX { "simplex grid" } else { "greedy selection" });
            assert!(close(s.weights.iter().sum::<f64>(), 1.0, 1e-12), "{s:?}");
            for w in &s.weights {
                assert!(*w >= 0.0 && close((w * STEPS as f64).round(), w * STEPS as f64, 1e-9), "{s:?}");
            }
            assert_eq!(s.weights[0], 0.0, "the error-correlated noise gets nothing: {s:?}");
            assert_eq!(search(MetricKind::Mae, &truth, &components[..n]).unwrap(), s, "deterministic");
        }
    }

    #[test]
    fn the_cross_fitted_blend_uses_weights_from_the_other_folds_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let truth = normal(&mut rng, 200);
        let (a, b) = (normal(&mut rng, 200), normal(&mut rng, 200));
        let components = vec![noisy(&truth, &a, 0.3), noisy(&truth, &b, 0.3)];
        let oof = cross_fit(MetricKind::Mae, &truth, &components).unwrap();
        // Item 0 is in fold 0: its blend uses the weights searched without fold 0.
        let rest: Vec<usize> = (0..200).filter(|i| i % FOLDS != 0).collect();
        let pick = |v: &[f64]| rest.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let parts: Vec<Vec<f64>> = components.iter().map(|c| pick(c)).collect();
        let w = search(MetricKind::Mae, &pick(&truth), &parts).unwrap().weights;
        assert!(close(oof[0], w[0] * components[0][0] + w[1] * components[1][0], 1e-12));
        assert!(oof.iter().all(|p| p.is_finite()));
        // With the truth among the components every fold gives it all the weight.
        let with_truth = vec![components[0].clone(), truth.clone()];
        assert_eq!(cross_fit(MetricKind::Rae, &truth, &with_truth).unwrap(), truth);
    }

    #[test]
    fn the_pooled_cross_fit_scores_what_the_honest_per_fold_one_does() {
        // Two independent readers of one latent signal, one on a scale three times
        // wider and shifted (a raw score beside a probability). Each fold's weights
        // differ, and pooling folds blended on raw scales interleaves them out of
        // order, which a rank metric punishes; one common scale does not.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = 400;
        let binary: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 2 == 0))).collect();
        let latent = noisy(&binary, &normal(&mut rng, n), 0.45);
        let narrow = noisy(&latent, &normal(&mut rng, n), 0.2);
        let wide: Vec<f64> = noisy(&latent, &normal(&mut rng, n), 0.2).iter().map(|p| 3.0 * p + 5.0).collect();
        let components = vec![narrow, wide];
        let measured = noisy(&latent, &normal(&mut rng, n), 0.5);
        // The attack, where this draw shows it: AUC pooled on raw scales loses 0.048
        // (Spearman's folds happen to agree on their weights here, so it loses nothing).
        for (kind, y, scrambled) in [(MetricKind::Auc, &binary, Some(0.02)), (MetricKind::Spearman, &measured, None)] {
            let score = |p: &[f64]| gate::score(kind, y, p).unwrap();
            let best_alone = score(&components[0]).max(score(&components[1]));
            let raw = score(&cross_fit(kind, y, &components).unwrap());
            let scaled = rescale(&units(kind, &components), &components);
            let pooled = score(&cross_fit(kind, y, &scaled).unwrap());
            let honest = per_fold_score(kind, y, &scaled).unwrap();
            if let Some(margin) = scrambled {
                assert!(
                    raw < best_alone - margin,
                    "{kind}, the attack: raw scales scramble it ({raw} vs {best_alone})"
                );
            }
            assert!(pooled > best_alone - 0.005, "{kind}: one scale keeps it ({pooled} vs {best_alone})");
            assert!((pooled - honest).abs() < 0.01, "{kind}: pooled {pooled} and per-fold {honest} agree");
        }
        // Accuracy reads probabilities against 0.5 and errors read the label's
        // scale: their components stay as they are, and pooling is already sound.
        let probabilities: Vec<Vec<f64>> =
            components.iter().map(|c| c.iter().map(|p| 1.0 / (1.0 + (-(p - c[0])).exp())).collect()).collect();
        for kind in [MetricKind::Accuracy, MetricKind::Mae] {
            assert!(units(kind, &probabilities).iter().all(|u| *u == Unit { centre: 0.0, spread: 1.0 }), "{kind}");
        }
        let pooled = gate::score(
            MetricKind::Accuracy,
            &binary,
            &cross_fit(MetricKind::Accuracy, &binary, &probabilities).unwrap(),
        )
        .unwrap();
        let honest = per_fold_score(MetricKind::Accuracy, &binary, &probabilities).unwrap();
        assert!((pooled - honest).abs() < 0.01, "accuracy: pooled {pooled} and per-fold {honest} agree");
    }

    #[test]
    fn bad_inputs_are_errors_not_weights() {
        let y = [1.0, 2.0, 3.0];
        let err = search(MetricKind::Mae, &y, &[vec![1.0, 2.0], vec![1.0, 2.0, 3.0]]).unwrap_err();
        assert!(matches!(err, MetricError::LengthMismatch { .. }), "{err}");
        let err = search(MetricKind::Pearson, &y, &[vec![1.0; 3], vec![2.0; 3]]).unwrap_err();
        assert!(matches!(err, MetricError::Constant { .. }), "{err}");
        assert_eq!(error_correlations(&y, &[y.to_vec()])[0][0], None, "a zero residual has no correlation");
    }
}
