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
/// that fold's [`fold_weights`], searched on the other folds, so no item's
/// blended prediction was tuned on that item. This is what the gate judges:
/// weights searched on the very items that then score them would carry their
/// optimism into the decision.
pub fn cross_fit(kind: MetricKind, y: &[f64], components: &[Vec<f64>]) -> Result<Vec<f64>, MetricError> {
    let mut out = vec![f64::NAN; y.len()];
    for (fold, weights) in fold_weights(kind, y, components)?.iter().enumerate() {
        for i in folds(y.len(), fold).0 {
            out[i] = weights.iter().zip(components).map(|(w, c)| w * c[i]).sum();
        }
    }
    Ok(out)
}

/// Each fold's weights, as [`search`] finds them on the other folds. Their
/// score on items none of them saw is what [`cross_fit`]'s pooled blend
/// estimates (within noise, for every metric, once a rank metric's components
/// share one scale: see [`units`]); `bench-gate` measures that on fresh draws.
pub fn fold_weights(kind: MetricKind, y: &[f64], components: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, MetricError> {
    (0..FOLDS)
        .map(|fold| {
            let rest = folds(y.len(), fold).1;
            Ok(search(kind, &pick(y, &rest), &pick_each(components, &rest))?.weights)
        })
        .collect()
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

    /// Two independent readers of one latent signal, one on a scale three times
    /// wider and shifted (a raw score beside a probability), and labels: binary
    /// for AUC and accuracy (the latent is the label plus noise), the latent plus
    /// noise otherwise.
    fn readers(rng: &mut impl Rng, kind: MetricKind, n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
        let (y, latent) = match kind {
            MetricKind::Auc | MetricKind::Accuracy => {
                let y: Vec<f64> = (0..n).map(|_| f64::from(u8::from(rng.random::<bool>()))).collect();
                let latent = noisy(&y, &normal(rng, n), 0.45);
                (y, latent)
            }
            _ => {
                let latent = normal(rng, n);
                (noisy(&latent, &normal(rng, n), 0.5), latent)
            }
        };
        let narrow = noisy(&latent, &normal(rng, n), 0.2);
        let wide = noisy(&latent, &normal(rng, n), 0.2).iter().map(|p| 3.0 * p + 5.0).collect();
        (y, vec![narrow, wide])
    }

    /// Over 20 draws of 400 items: the pooled cross-fit's score on val minus what
    /// its fold weights score on 2,000 fresh items (the val units applied, as
    /// holdout applies them), as (mean, se of the mean). The fresh score is the
    /// honest figure: weights judged on items none of them was searched on, with
    /// no small-fold bias (Spearman on a fold of 80 runs low).
    fn pooled_minus_fresh(kind: MetricKind, common_scale: bool, to_probabilities: bool) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let gaps: Vec<f64> = (0..20)
            .map(|_| {
                let as_given = |c: Vec<Vec<f64>>| {
                    if to_probabilities {
                        c.iter().map(|p| p.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect()).collect()
                    } else {
                        c
                    }
                };
                let (y, val) = readers(&mut rng, kind, 400);
                let (fresh_y, fresh) = readers(&mut rng, kind, 2000);
                let (val, fresh) = (as_given(val), as_given(fresh));
                let scale = if common_scale { units(kind, &val) } else { vec![Unit { centre: 0.0, spread: 1.0 }; 2] };
                let (val, fresh) = (rescale(&scale, &val), rescale(&scale, &fresh));
                let pooled = gate::score(kind, &y, &cross_fit(kind, &y, &val).unwrap()).unwrap();
                let folds = fold_weights(kind, &y, &val).unwrap();
                let honest =
                    folds.iter().map(|w| gate::score(kind, &fresh_y, &combine(w, &fresh)).unwrap()).sum::<f64>()
                        / FOLDS as f64;
                pooled - honest
            })
            .collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        (mean, sd / n.sqrt())
    }

    #[test]
    fn the_pooled_cross_fit_scores_what_its_fold_weights_score_on_fresh_items() {
        // The attack: pooling folds blended on raw scales interleaves them out of
        // order, which AUC punishes far beyond its noise.
        let (raw, se) = pooled_minus_fresh(MetricKind::Auc, false, false);
        assert!(raw < -0.01 && raw < -3.0 * se, "auc on raw scales is scrambled: {raw:+.4} (se {se:.4})");
        // On one scale, and for the metrics that read the label's scale (whose
        // units are the identity), the pooled blend is honest within noise.
        for (kind, probabilities) in [
            (MetricKind::Auc, false),
            (MetricKind::Spearman, false),
            (MetricKind::Pearson, false),
            (MetricKind::Accuracy, true),
            (MetricKind::Mae, false),
            (MetricKind::Rae, false),
        ] {
            let (gap, se) = pooled_minus_fresh(kind, true, probabilities);
            assert!(gap.abs() < 3.0 * se + 1e-3, "{kind}: pooled - fresh {gap:+.4} (se {se:.4})");
        }
        for kind in [MetricKind::Accuracy, MetricKind::Mae, MetricKind::Rae] {
            assert!(units(kind, &[vec![0.2, 0.9]]).iter().all(|u| *u == Unit { centre: 0.0, spread: 1.0 }), "{kind}");
        }
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
