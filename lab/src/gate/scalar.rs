//! Scalar mode: one metric value per run, with two sources of noise. Seed
//! noise: the run-to-run spread, measured by repeating the leader under
//! different seeds. Item noise: the draw of the validation items, measured
//! from the paired per-item scores of candidate and leader (the same items,
//! so item difficulty cancels). This owns the t interval of the difference of
//! means with both in its standard error, and how its level is shared among
//! repeated looks at a growing candidate; `decide` turns the interval into a
//! verdict.
//!
//! Invariants: the seed-noise estimate comes from the leader's repeats (pooled
//! with the candidate's own repeats, which share the noise if the two differ
//! only in their mean), or else from a stored baseline sd, which is then
//! treated as known. With neither there is no estimate, and the caller must
//! refuse to judge. The two variances add (seeds and items are independent
//! draws), and the degrees of freedom of the sum are Welch-Satterthwaite's. A
//! deterministic leaf (seed sd 0, rounding included) is still judged on its items, so a gap is
//! exact only when every item moved by the same amount. Improvement is signed
//! by the goal: positive means the candidate is better.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::kind::Goal;

/// Where the run-to-run noise came from, and how much it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Noise {
    pub(crate) sd: f64,
    /// Degrees of freedom of `sd`; infinite for a stored baseline.
    pub(crate) df: f64,
}

impl Noise {
    /// Runs that agree exactly: a rerun repeats the same value.
    pub(crate) fn exact(&self) -> bool {
        self.sd == 0.0
    }
}

/// The item-sampling standard error of the improvement, from `n` paired items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ItemNoise {
    pub(crate) se: f64,
    pub(crate) n: usize,
}

impl ItemNoise {
    /// From per-item scores whose mean is the metric: the se of the mean paired difference.
    pub(crate) fn of_scores(leader: &[f64], candidate: &[f64]) -> Self {
        let diffs: Vec<f64> = candidate.iter().zip(leader).map(|(c, l)| c - l).collect();
        let n = diffs.len();
        let se = if n < 2 { 0.0 } else { (sum_sq_dev(&diffs) / (n - 1) as f64 / n as f64).sqrt() };
        Self { se, n }
    }

    fn df(&self) -> f64 {
        self.n.saturating_sub(1).max(1) as f64
    }
}

/// The interval of the improvement of mean(candidate) over mean(leader).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Interval {
    pub(crate) improvement: f64,
    pub(crate) ci_low: f64,
    pub(crate) ci_high: f64,
    pub(crate) prob_better: f64,
}

pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

pub(crate) fn sum_sq_dev(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum()
}

/// Run-to-run sd at or below this share of the runs' magnitude (floored at 1)
/// is rounding, not seeds. Reruns of deterministic code differ only where
/// floating-point sums are reassociated (threads, BLAS blocking): about 1e-16
/// relative per operation and rarely past 1e-12 over a whole metric ("sd
/// 8.702e-15" on a leaf of mae near 0.4), while one different seed moves any
/// trained metric by far more than 1e-9 of itself. The floor keeps a metric
/// near 0 (mae 0) from reading its rounding as relative noise.
const ROUNDING: f64 = 1e-9;

/// Pooled sd when the leader has repeats, else the stored baseline, else
/// none; exactly 0 where it is no more than rounding (see [`ROUNDING`]).
pub(crate) fn noise(leader: &[f64], candidate: &[f64], stored_sd: Option<f64>) -> Option<Noise> {
    let noise = if leader.len() >= 2 {
        let df = (leader.len() - 1 + candidate.len() - 1) as f64;
        Noise { sd: ((sum_sq_dev(leader) + sum_sq_dev(candidate)) / df).sqrt(), df }
    } else {
        Noise { sd: stored_sd?, df: f64::INFINITY }
    };
    Some(Noise { sd: past_rounding(noise.sd, leader.iter().chain(candidate)), ..noise })
}

/// The sample sd of runs' `values` (n - 1 in the denominator; 0 for fewer
/// than two), exactly 0 where it is no more than rounding (see [`ROUNDING`]):
/// what `lab baseline` stores and prints.
pub fn run_sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    past_rounding((sum_sq_dev(values) / (values.len() - 1) as f64).sqrt(), values.iter())
}

/// `sd`, or 0 where it is no more than rounding of `values`.
fn past_rounding<'a>(sd: f64, values: impl Iterator<Item = &'a f64>) -> f64 {
    let scale = values.fold(1.0_f64, |m, v| m.max(v.abs()));
    if sd <= ROUNDING * scale { 0.0 } else { sd }
}

/// Two-sided `confidence` interval of the improvement, and P(T > 0) for the
/// matching t (or normal) distribution centred on the observed improvement.
/// `items`, when the runs left per-item scores, adds the item-sampling noise.
pub(crate) fn interval(
    goal: Goal,
    leader: &[f64],
    candidate: &[f64],
    noise: Noise,
    items: Option<ItemNoise>,
    confidence: f64,
) -> Interval {
    let improvement = goal.improvement(mean(leader), mean(candidate));
    let (se, df) = spread(noise, items, candidate.len(), leader.len());
    if se == 0.0 {
        // Repeats agree and every item moved by the same amount: the gap is exact.
        let prob_better = if improvement > 0.0 { 1.0 } else { 0.0 };
        return Interval { improvement, ci_low: improvement, ci_high: improvement, prob_better };
    }
    let dist = Standard::new(df);
    let half = dist.quantile(1.0 - (1.0 - confidence) / 2.0) * se;
    Interval {
        improvement,
        ci_low: improvement - half + 0.0,
        ci_high: improvement + half + 0.0,
        prob_better: dist.cdf(improvement / se),
    }
}

/// The standard error of the improvement with `candidate_runs` and
/// `leader_runs` runs (seed noise shrinks with both, item noise with neither)
/// and its degrees of freedom.
pub(crate) fn spread(noise: Noise, items: Option<ItemNoise>, candidate_runs: usize, leader_runs: usize) -> (f64, f64) {
    let seed_se = noise.sd * (1.0 / candidate_runs as f64 + 1.0 / leader_runs as f64).sqrt();
    let item_se = items.map_or(0.0, |i| i.se);
    let df = satterthwaite(&[(seed_se, noise.df), (item_se, items.map_or(f64::INFINITY, |i| i.df()))]);
    (seed_se.hypot(item_se), df)
}

/// Power at which [`detectable`] is quoted: the usual 80%.
pub const POWER: f64 = 0.8;

/// The smallest true improvement the gate keeps with probability [`POWER`],
/// given the standard error `se` (on `df` degrees of freedom) of the
/// improvement it would see: the lower bound of the two-sided `confidence`
/// interval must clear `min`, so the gain must exceed `min` by the interval's
/// half-width plus the power quantile, both in units of `se`.
pub(crate) fn detectable(se: f64, df: f64, confidence: f64, min: f64) -> f64 {
    let dist = Standard::new(df);
    min + (dist.quantile(1.0 - (1.0 - confidence) / 2.0) + dist.quantile(POWER)) * se
}

/// Welch-Satterthwaite degrees of freedom of a sum of independent variance
/// estimates, each given as (se, df); infinite df (a known variance) adds nothing.
fn satterthwaite(parts: &[(f64, f64)]) -> f64 {
    let total: f64 = parts.iter().map(|(se, _)| se * se).sum();
    let spread: f64 = parts.iter().filter(|(se, df)| *se > 0.0 && df.is_finite()).map(|(se, df)| se.powi(4) / df).sum();
    if spread == 0.0 { f64::INFINITY } else { total * total / spread }
}

/// Standard t with `df` degrees of freedom, or the standard normal for df = ∞.
enum Standard {
    T(StudentsT),
    Normal(Normal),
}

impl Standard {
    fn new(df: f64) -> Self {
        if df.is_finite() {
            Standard::T(StudentsT::new(0.0, 1.0, df).expect("df > 0 by construction"))
        } else {
            Standard::Normal(Normal::standard())
        }
    }

    fn quantile(&self, p: f64) -> f64 {
        match self {
            Standard::T(t) => t.inverse_cdf(p),
            Standard::Normal(z) => z.inverse_cdf(p),
        }
    }

    fn cdf(&self, x: f64) -> f64 {
        match self {
            Standard::T(t) => t.cdf(x),
            Standard::Normal(z) => z.cdf(x),
        }
    }
}

/// A kept value judged against reruns of the same code that exclude it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Reproduction {
    pub reruns: usize,
    pub mean: f64,
    pub sd: f64,
    /// How much better the kept value is than the reruns' mean (goal-oriented).
    pub excess: f64,
    /// The largest excess a fresh run of the same code reaches with
    /// probability (1 - confidence) / 2: the one-sided prediction bound.
    pub bound: f64,
    /// The kept value is within the bound: not a lucky draw.
    pub holds: bool,
}

/// Whether `kept` looks like one more run of the code that produced `reruns`
/// (at least two, never including the kept run itself: a check that counts
/// the value it judges can hardly fail). Worse than the reruns always holds;
/// better by more than the prediction bound t * sd * sqrt(1 + 1/m) is a lucky
/// draw. Deterministic reruns (sd 0) must reproduce the kept value exactly.
pub fn reproduction(goal: Goal, kept: f64, reruns: &[f64], confidence: f64) -> Option<Reproduction> {
    let m = reruns.len();
    if m < 2 {
        return None;
    }
    let (mean, sd) = (mean(reruns), run_sd(reruns));
    let excess = goal.improvement(mean, kept);
    let t = Standard::new((m - 1) as f64).quantile(1.0 - (1.0 - confidence) / 2.0);
    let bound = t * sd * (1.0 + 1.0 / m as f64).sqrt();
    // Rounding noise of a deterministic rerun is not luck.
    let holds = excess <= bound + ROUNDING * kept.abs().max(1.0);
    Some(Reproduction { reruns: m, mean, sd, excess, bound, holds })
}

/// Exponent of the power-family spending function t^rho (Kim and DeMets):
/// 2 keeps most of the budget for the later, better-informed looks.
const SPENDING_POWER: f64 = 2.0;

/// Two-sided confidence of the interval judged at look `look` of `looks` (the
/// candidate's run count, capped at `looks`). The one-sided false-keep budget
/// (1 - confidence) / 2 is split over the looks by the spending function; the
/// look-k share is this look's one-sided level, so by the union bound a null
/// candidate passes at any look with probability at most the budget, however
/// the looks correlate and whichever of them the caller takes. With one look
/// this is `confidence` itself.
pub(crate) fn look_confidence(confidence: f64, look: usize, looks: usize) -> f64 {
    let alpha = (1.0 - confidence) / 2.0;
    let spent = |k: usize| (k as f64 / looks as f64).powf(SPENDING_POWER);
    1.0 - 2.0 * alpha * (spent(look) - spent(look - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        // Student t and normal tables: t(0.95; 4) = 2.1318, t(0.975; 10) = 2.2281, z(0.95) = 1.6449.
        for (df, p, want) in [(4.0, 0.95, 2.131847), (10.0, 0.975, 2.228139), (f64::INFINITY, 0.95, 1.644854)] {
            let got = Standard::new(df).quantile(p);
            assert!((got - want).abs() < 1e-5, "df {df}: {got}");
        }
    }

    #[test]
    fn noise_pools_leader_and_candidate_repeats() {
        // Leader deviations 0 .1 -.1 0 0 (ss .02), candidate .05 -.05 (ss .005): df 4 + 1.
        let n = noise(&[1.0, 1.1, 0.9, 1.0, 1.0], &[0.55, 0.45], None).unwrap();
        assert!((n.sd - (0.025_f64 / 5.0).sqrt()).abs() < 1e-12 && n.df == 5.0);
        assert_eq!(noise(&[1.0], &[0.5, 0.6], Some(0.1)), Some(Noise { sd: 0.1, df: f64::INFINITY }));
        assert_eq!(noise(&[1.0], &[0.5, 0.6], None), None);
    }

    #[test]
    fn rounding_is_not_seed_noise() {
        // Reruns of deterministic code that differ in the last bits: the "sd 8.702e-15" of a real baseline.
        let loss = 0.4123456789;
        let rounded = noise(&[loss, loss + 1.2e-14, loss], &[0.40], None).unwrap();
        assert_eq!(rounded.sd, 0.0);
        assert!(rounded.exact() && rounded.df == 2.0, "{rounded:?}");
        assert!(noise(&[loss], &[0.40], Some(8.702e-15)).unwrap().exact(), "a stored rounding sd");
        // The tolerance scales with the values, floored at 1: 1e-9 of 5000 is rounding, of 1 it is not.
        assert!(noise(&[5000.0, 5000.0 + 4e-6], &[4000.0], None).unwrap().exact());
        assert!(!noise(&[0.0, 4e-9], &[0.0], None).unwrap().exact(), "a metric near 0 keeps an absolute floor");
        // Real seed noise, however small next to the metric, stays.
        let seeds = noise(&[loss, loss + 1e-6], &[0.40], None).unwrap();
        assert!(seeds.sd > 0.0 && !seeds.exact(), "{seeds:?}");
    }

    #[test]
    fn interval_of_known_case() {
        // sd sqrt(.005), se = sd * sqrt(1 + 1/5) = sqrt(.006); half = t(.95; 4) * se.
        let noise = Noise { sd: 0.005_f64.sqrt(), df: 4.0 };
        let iv = interval(Goal::Minimize, &[1.0, 1.1, 0.9, 1.0, 1.0], &[0.5], noise, None, 0.9);
        let half = 2.131847 * 0.006_f64.sqrt();
        assert!((iv.improvement - 0.5).abs() < 1e-12);
        assert!((iv.ci_low - (0.5 - half)).abs() < 1e-5 && (iv.ci_high - (0.5 + half)).abs() < 1e-5);
        let even = interval(Goal::Maximize, &[1.0, 2.0], &[1.5], noise, None, 0.9);
        assert!((even.prob_better - 0.5).abs() < 1e-12);
    }

    #[test]
    fn deterministic_runs_are_still_judged_on_their_items() {
        // Repeats agree exactly (seed sd 0); the candidate is better on 3 items of 4.
        let exact = Noise { sd: 0.0, df: 1.0 };
        let items = ItemNoise::of_scores(&[1.0, 1.0, 1.0, 1.0], &[0.8, 0.8, 0.8, 1.2]);
        // Differences -.2 -.2 -.2 .2: sd .2, se .1 on 3 df.
        assert!((items.se - 0.1).abs() < 1e-12 && items.n == 4, "{items:?}");
        let iv = interval(Goal::Minimize, &[1.0, 1.0], &[0.9], exact, Some(items), 0.9);
        let half = 2.353363 * 0.1;
        assert!((iv.ci_low - (0.1 - half)).abs() < 1e-5 && (iv.ci_high - (0.1 + half)).abs() < 1e-5, "{iv:?}");
        assert!(iv.ci_low < 0.0, "a gain on 3 of 4 items is within item noise");
        // Every item moved by the same amount: nothing is left to doubt.
        let uniform = ItemNoise::of_scores(&[1.0, 1.0, 1.0], &[0.9, 0.9, 0.9]);
        let iv = interval(Goal::Minimize, &[1.0, 1.0], &[0.9], exact, Some(uniform), 0.9);
        assert_eq!((iv.ci_low, iv.ci_high), (iv.improvement, iv.improvement));
    }

    #[test]
    fn a_kept_value_is_judged_against_reruns_that_exclude_it() {
        // Reruns 1.0 1.1 0.9: mean 1, sd .1, bound t(.95; 2) * .1 * sqrt(4/3) = .3379.
        let r = reproduction(Goal::Minimize, 0.70, &[1.0, 1.1, 0.9], 0.9).unwrap();
        assert!((r.bound - 2.919986 * 0.1 * (4.0_f64 / 3.0).sqrt()).abs() < 1e-5, "{r:?}");
        assert!((r.excess - 0.30).abs() < 1e-12 && r.holds, "{r:?}");
        assert!(!reproduction(Goal::Minimize, 0.60, &[1.0, 1.1, 0.9], 0.9).unwrap().holds, "a lucky seed");
        assert!(reproduction(Goal::Minimize, 1.5, &[1.0, 1.1, 0.9], 0.9).unwrap().holds, "worse is not luck");
        assert!(!reproduction(Goal::Maximize, 0.9, &[0.8, 0.8], 0.9).unwrap().holds, "deterministic must match");
        assert!(reproduction(Goal::Maximize, 0.8, &[0.8, 0.8], 0.9).unwrap().holds);
        assert_eq!(reproduction(Goal::Minimize, 0.5, &[1.0], 0.9), None, "one rerun has no spread");
    }

    #[test]
    fn detectable_is_the_gain_kept_four_times_in_five() {
        // Normal: (z(.975) + z(.8)) * se = (1.95996 + 0.84162) * 0.01 above the minimum.
        let d = detectable(0.01, f64::INFINITY, 0.95, 0.002);
        assert!((d - (0.002 + 0.0280158)).abs() < 1e-6, "{d}");
        // Few degrees of freedom widen it: t(.975; 4) = 2.7764, t(.8; 4) = 0.9410.
        assert!((detectable(0.01, 4.0, 0.95, 0.0) - 0.037174).abs() < 1e-5);
        assert_eq!(detectable(0.0, 4.0, 0.95, 0.0), 0.0, "no noise: any gain is seen");
    }

    #[test]
    fn satterthwaite_combines_seed_and_item_noise() {
        assert_eq!(satterthwaite(&[(0.1, f64::INFINITY), (0.0, 3.0)]), f64::INFINITY);
        assert!((satterthwaite(&[(0.1, 4.0), (0.0, 3.0)]) - 4.0).abs() < 1e-12);
        // Equal variances on 4 and 10 df: (2v)^2 / (v^2/4 + v^2/10) = 4 / 0.35.
        assert!((satterthwaite(&[(0.1, 4.0), (0.1, 10.0)]) - 4.0 / 0.35).abs() < 1e-9);
    }
}
