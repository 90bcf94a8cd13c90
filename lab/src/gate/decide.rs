//! The keep/discard verdict of the honest gate, from either kind of evidence.
//!
//! The rule, shared by both modes, with every interval oriented so that
//! positive means the candidate is better:
//! - PASS when the lower bound of the two-sided `confidence` interval is
//!   strictly above `min_improvement`. The lower bound of a two-sided interval
//!   is a one-sided bound at (1 + confidence) / 2, so at the default 0.90 a
//!   candidate with no real gain passes at most about 5% of the time.
//! - NEEDS_REPEATS (scalar mode only) when the point estimate clears the
//!   minimum but the interval still reaches below it, the candidate has
//!   fewer than `max_candidate_runs` runs, and more runs could narrow the
//!   interval enough: repeats shrink the seed noise, never the item noise, so
//!   a gap that the items alone keep within noise is a FAIL at once. In
//!   predictions mode the evidence is the fixed validation set, which more
//!   runs of the same predictions cannot grow, so that case is FAIL; so it is
//!   at the candidate's last allowed run.
//! - NO_NOISE_ESTIMATE (scalar mode) when the leader has a single run and no
//!   stored noise sd: without noise, no gap is called a win, however large.
//! - FAIL otherwise.
//!
//! Scalar mode's interval carries both noises: the seeds' (repeats) and the
//! items' (the paired per-item scores the runs left, see `scalar`), so a
//! deterministic leaf rerun to identical values is still judged on how many
//! of its validation items moved.
//!
//! Scalar mode looks at a growing candidate up to `max_candidate_runs` times,
//! and each look is a chance for a lucky pass. So the level of the interval at
//! each look comes from `scalar::look_confidence`, which shares the one-sided
//! budget among the looks: over all of them together, a candidate with no real
//! gain still passes at most (1 - confidence) / 2 of the time. Reruns that
//! agree exactly (seed sd 0, to rounding) would repeat the same statistic at
//! each look, so such a candidate is judged once, at the last look's level,
//! with no repeats.
//!
//! Invariants: pure and deterministic given the config's seed; reasons are one
//! sentence, readable by a person and an agent alike.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::bootstrap::{BootstrapError, BootstrapOptions, paired_bootstrap};
use super::kind::{Goal, MetricKind};
use super::scalar::{Interval, ItemNoise, Noise, detectable, interval, look_confidence, mean, noise, spread};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Smallest improvement worth keeping, in metric units, goal-oriented.
    pub min_improvement: f64,
    /// Coverage of the two-sided interval whose lower bound must clear the minimum.
    pub confidence: f64,
    /// Bootstrap resamples in predictions mode.
    pub resamples: usize,
    pub seed: u64,
    /// Most runs a candidate gets in scalar mode: its first run plus the
    /// repeats NEEDS_REPEATS asks for. Each run count is a look at the data,
    /// and the false-keep budget is shared among the looks (see `look_confidence`).
    pub max_candidate_runs: usize,
}

impl Default for GateConfig {
    /// 0.90 two-sided is a one-sided 5% test: the largest false-keep rate the
    /// gate accepts, and so the most power at that rate. 10,000 resamples put
    /// about 500 draws in each tail, so the bounds barely move with the seed.
    /// Three candidate runs at most: a promising first run gets up to two
    /// repeats, which is where most of the scalar-mode power comes from.
    fn default() -> Self {
        Self { min_improvement: 0.0, confidence: 0.90, resamples: 10_000, seed: 0, max_candidate_runs: 3 }
    }
}

/// Predictions mode: leader and candidate scored on the same validation items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedSamples {
    pub goal: Goal,
    pub kind: MetricKind,
    pub y_true: Vec<f64>,
    pub leader_pred: Vec<f64>,
    pub candidate_pred: Vec<f64>,
}

/// Scalar mode: one metric value per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalarRuns {
    pub goal: Goal,
    /// Repeats of the leader under different seeds; at least one.
    pub leader: Vec<f64>,
    /// Runs of the candidate; at least one.
    pub candidate: Vec<f64>,
    /// Run-to-run sd from a stored baseline, used when the leader has one run.
    pub noise_sd: Option<f64>,
    /// The runs' per-item evidence on the shared validation items, when they left it.
    pub items: Option<ItemEvidence>,
}

/// Scalar-mode runs' per-item evidence: what measures the item-sampling noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ItemEvidence {
    /// Per-item scores whose mean is the metric, averaged over each side's runs.
    Scores { leader: Vec<f64>, candidate: Vec<f64> },
    /// Outputs and targets, for a metric that is not a mean over items (auc,
    /// spearman, rmse, ...): a paired bootstrap measures the item noise.
    Outputs(PairedSamples),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Evidence {
    Predictions(PairedSamples),
    Scalar(ScalarRuns),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NeedsRepeats,
    NoNoiseEstimate,
}

impl Verdict {
    /// The serialized name, e.g. `needs_repeats`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NeedsRepeats => "needs_repeats",
            Verdict::NoNoiseEstimate => "no_noise_estimate",
        }
    }

    /// Only a pass keeps the candidate.
    pub fn keeps(self) -> bool {
        self == Verdict::Pass
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// Point estimate, positive = candidate better.
    pub improvement: f64,
    /// Interval bounds; infinite when there is no noise estimate.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Bootstrap share of resamples that favour the candidate, or P(T > 0).
    pub prob_better: f64,
    pub verdict: Verdict,
    pub reason: String,
    /// Validation items (predictions mode) or candidate runs (scalar mode).
    pub n: usize,
    /// What this leaf's noise lets the gate see; `None` without a noise estimate.
    #[serde(default)]
    pub sensitivity: Option<Sensitivity>,
}

/// The smallest improvement the gate can detect, from the noise measured in a
/// decision: a candidate truly better by `detectable` is kept with
/// probability `scalar::POWER` (80%) once it has had all its runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sensitivity {
    /// Standard error of the improvement with every run the gate allows.
    pub se: f64,
    pub detectable: f64,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum GateError {
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("{kind} should {expected}, but the evidence says {goal}")]
    GoalMismatch { kind: MetricKind, expected: Goal, goal: Goal },
    #[error("scalar mode needs at least one {which} run")]
    NoRuns { which: &'static str },
    #[error("{which} run {index} is {value}; runs need finite metrics")]
    NonFiniteRun { which: &'static str, index: usize, value: f64 },
    #[error("noise_sd must be finite and non-negative, got {0}")]
    NoiseSd(f64),
    #[error("confidence must lie strictly between 0 and 1, got {0}")]
    Confidence(f64),
    #[error("min_improvement must be finite, got {0}")]
    MinImprovement(f64),
    #[error("the leader scored {leader} validation items and the candidate {candidate}; they must share their items")]
    ItemMismatch { leader: usize, candidate: usize },
}

/// The gate's verdict on a candidate against the leader.
pub fn decide(config: &GateConfig, evidence: &Evidence) -> Result<GateReport, GateError> {
    if !config.min_improvement.is_finite() {
        return Err(GateError::MinImprovement(config.min_improvement));
    }
    if !(config.confidence > 0.0 && config.confidence < 1.0) {
        return Err(GateError::Confidence(config.confidence));
    }
    match evidence {
        Evidence::Predictions(samples) => decide_predictions(config, samples),
        Evidence::Scalar(runs) => decide_scalar(config, runs),
    }
}

/// "Keep if the number is better": the rule the gate replaces, kept for comparison.
pub fn naive_keep(goal: Goal, leader: f64, candidate: f64) -> bool {
    goal.better(candidate, leader)
}

fn decide_predictions(config: &GateConfig, s: &PairedSamples) -> Result<GateReport, GateError> {
    if s.goal != s.kind.goal() {
        return Err(GateError::GoalMismatch { kind: s.kind, expected: s.kind.goal(), goal: s.goal });
    }
    let options = BootstrapOptions { resamples: config.resamples, confidence: config.confidence, seed: config.seed };
    let est = paired_bootstrap(s.kind, &s.y_true, &s.leader_pred, &s.candidate_pred, options)?;
    let iv = Interval {
        improvement: est.improvement,
        ci_low: est.ci_low,
        ci_high: est.ci_high,
        prob_better: est.prob_better,
    };
    let straddle = format!("on {} validation items it is within noise", est.n);
    let sensitivity =
        Sensitivity { se: est.se, detectable: detectable(est.se, f64::INFINITY, config.confidence, config.minimum()) };
    Ok(report(config.minimum(), Level::once(config.confidence), iv, None, &straddle, est.n).with(sensitivity))
}

fn decide_scalar(config: &GateConfig, r: &ScalarRuns) -> Result<GateReport, GateError> {
    for (which, runs) in [("leader", &r.leader), ("candidate", &r.candidate)] {
        if runs.is_empty() {
            return Err(GateError::NoRuns { which });
        }
        if let Some((index, &value)) = runs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(GateError::NonFiniteRun { which, index, value });
        }
    }
    if let Some(sd) = r.noise_sd.filter(|sd| !(sd.is_finite() && *sd >= 0.0)) {
        return Err(GateError::NoiseSd(sd));
    }
    let n = r.candidate.len();
    let Some(noise) = noise(&r.leader, &r.candidate, r.noise_sd) else {
        let improvement = r.goal.improvement(mean(&r.leader), mean(&r.candidate));
        let digits = decimals(&[improvement]);
        let reason = format!(
            "the gap of {} cannot be judged: the leader has a single run and no stored noise sd, so repeat the leader with other seeds first",
            fixed(improvement, digits)
        );
        // The limit of the t interval as the noise grows without bound.
        let (ci_low, ci_high) = (f64::NEG_INFINITY, f64::INFINITY);
        return Ok(GateReport {
            improvement,
            ci_low,
            ci_high,
            prob_better: 0.5,
            verdict: Verdict::NoNoiseEstimate,
            reason,
            n,
            sensitivity: None,
        });
    };
    let items = r.items.as_ref().map(|items| item_noise(config, items)).transpose()?;
    let looks = config.max_candidate_runs.max(1);
    // Reruns that agree exactly (seed sd 0) make every later look the same
    // statistic, so it is judged once at the last look's level: the share of
    // the budget it would reach after the repeats, without running them.
    let deterministic = noise.exact();
    let look = if deterministic { looks } else { n.min(looks) };
    let confidence = look_confidence(config.confidence, look, looks);
    let iv = interval(r.goal, &r.leader, &r.candidate, noise, items, confidence);
    let last_look = look_confidence(config.confidence, looks, looks);
    let (se, df) = spread(noise, items, looks, r.leader.len());
    let sensitivity = Sensitivity { se, detectable: detectable(se, df, last_look, config.minimum()) };
    // Repeats shrink only the seed noise: ask for them only if, with the seed
    // noise gone at the last look, the item noise alone would let the gap clear.
    let limit = interval(r.goal, &r.leader, &r.candidate, Noise { sd: 0.0, ..noise }, items, last_look);
    let ask = (!deterministic && n < looks && limit.ci_low > config.minimum())
        .then(|| format!("so the candidate needs more runs (it has {n} of at most {looks})"));
    let straddle = match items {
        Some(items) => format!("after {n} candidate runs on {} validation items it is within noise", items.n),
        None => format!("after {n} candidate runs it is within noise"),
    };
    let level = Level { confidence, look, looks, exact: deterministic };
    Ok(report(config.minimum(), level, iv, ask, &straddle, n).with(sensitivity))
}

/// Whether the runs measure no seed noise at all: the leader's reruns (or its
/// stored baseline) and the candidate's runs agree exactly, or to rounding
/// (`scalar::ROUNDING`), so a rerun repeats the same value. `false` where there is no noise estimate.
pub fn deterministic(r: &ScalarRuns) -> bool {
    noise(&r.leader, &r.candidate, r.noise_sd).is_some_and(|n| n.exact())
}

/// The item-sampling noise of scalar-mode runs.
fn item_noise(config: &GateConfig, items: &ItemEvidence) -> Result<ItemNoise, GateError> {
    match items {
        ItemEvidence::Scores { leader, candidate } => {
            if leader.len() != candidate.len() || leader.is_empty() {
                return Err(GateError::ItemMismatch { leader: leader.len(), candidate: candidate.len() });
            }
            Ok(ItemNoise::of_scores(leader, candidate))
        }
        ItemEvidence::Outputs(s) => {
            let options =
                BootstrapOptions { resamples: config.resamples, confidence: config.confidence, seed: config.seed };
            let est = paired_bootstrap(s.kind, &s.y_true, &s.leader_pred, &s.candidate_pred, options)?;
            Ok(ItemNoise { se: est.se, n: est.n })
        }
    }
}

/// The level of an interval, and which of a candidate's looks it is.
#[derive(Debug, Clone, Copy)]
struct Level {
    confidence: f64,
    look: usize,
    looks: usize,
    /// Reruns agree exactly: judged at the last look without running it.
    exact: bool,
}

impl Level {
    fn once(confidence: f64) -> Self {
        Self { confidence, look: 1, looks: 1, exact: false }
    }

    /// Why a level is not the leaf's confidence: each run is one look, and the
    /// looks share the false-keep budget (the README's gate section).
    fn why(self) -> String {
        match (self.looks, self.exact) {
            (1, _) => String::new(),
            (looks, true) => format!(", the level of run {looks} of {looks}: reruns agree exactly"),
            (looks, false) => format!(", the level of run {} of up to {looks}", self.look),
        }
    }
}

/// Applies the rule; `ask` is the request for repeats, where repeats can help,
/// and `straddle` explains a FAIL that repeats cannot fix.
fn report(min: f64, level: Level, iv: Interval, ask: Option<String>, straddle: &str, n: usize) -> GateReport {
    let digits = decimals(&[iv.improvement, iv.ci_high - iv.ci_low, min]);
    let (imp, lo, hi, min_s) =
        (fixed(iv.improvement, digits), fixed(iv.ci_low, digits), fixed(iv.ci_high, digits), fixed(min, digits));
    let ci = format!("{} CI {lo}..{hi}{}", percent(level.confidence), level.why());
    let (verdict, reason) = if iv.ci_low > min {
        (Verdict::Pass, format!("improvement {imp} ({ci}) clears the minimum {min_s}"))
    } else if iv.improvement > min {
        let head = format!("improvement {imp} clears the minimum {min_s} but its {ci} does not");
        match ask {
            Some(ask) => (Verdict::NeedsRepeats, format!("{head}, {ask}")),
            None => (Verdict::Fail, format!("{head}: {straddle}")),
        }
    } else {
        (Verdict::Fail, format!("improvement {imp} ({ci}) does not clear the minimum {min_s}"))
    };
    GateReport {
        improvement: iv.improvement,
        ci_low: iv.ci_low,
        ci_high: iv.ci_high,
        prob_better: iv.prob_better,
        verdict,
        reason,
        n,
        sensitivity: None,
    }
}

impl GateReport {
    fn with(self, sensitivity: Sensitivity) -> Self {
        Self { sensitivity: Some(sensitivity), ..self }
    }
}

impl GateConfig {
    /// -0.0 would print as "-0.000".
    fn minimum(&self) -> f64 {
        self.min_improvement + 0.0
    }
}

/// Enough decimals to show about two significant digits of the largest
/// magnitude involved, never fewer than three.
fn decimals(values: &[f64]) -> usize {
    let scale = values.iter().filter(|v| v.is_finite()).fold(0.0_f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return 3;
    }
    (1.0 - scale.log10().floor()).clamp(3.0, 12.0) as usize
}

fn fixed(value: f64, digits: usize) -> String {
    format!("{value:.digits$}")
}

fn percent(confidence: f64) -> String {
    format!("{}%", (confidence * 10_000.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: [f64; 5] = [1.0, 1.1, 0.9, 1.0, 1.0];

    fn scalar(goal: Goal, leader: &[f64], candidate: &[f64], noise_sd: Option<f64>) -> Evidence {
        Evidence::Scalar(ScalarRuns {
            goal,
            leader: leader.to_vec(),
            candidate: candidate.to_vec(),
            noise_sd,
            items: None,
        })
    }

    fn verdict(min_improvement: f64, evidence: &Evidence) -> Verdict {
        let config = GateConfig { min_improvement, ..GateConfig::default() };
        decide(&config, evidence).unwrap().verdict
    }

    /// Every item: leader off by `lead_err`, candidate by `cand_err[i % len]`.
    fn paired(lead_err: f64, cand_err: &[f64]) -> Evidence {
        let y: Vec<f64> = (0..20).map(|i| f64::from(i % 7)).collect();
        let candidate_pred = y.iter().enumerate().map(|(i, v)| v + cand_err[i % cand_err.len()]).collect();
        let leader_pred = y.iter().map(|v| v + lead_err).collect();
        Evidence::Predictions(PairedSamples {
            goal: Goal::Minimize,
            kind: MetricKind::Mae,
            y_true: y,
            leader_pred,
            candidate_pred,
        })
    }

    #[test]
    fn scalar_verdicts_follow_the_rule() {
        // Leader sd sqrt(.005) on 4 df; one candidate run: 90% half-width ~0.165.
        let cases = [
            (Goal::Minimize, 0.0, [0.5], Verdict::Pass),
            (Goal::Minimize, 0.0, [0.9], Verdict::NeedsRepeats),
            (Goal::Minimize, 0.0, [1.05], Verdict::Fail),
            (Goal::Minimize, 0.4, [0.5], Verdict::NeedsRepeats),
            (Goal::Minimize, 0.6, [0.5], Verdict::Fail),
            (Goal::Maximize, 0.0, [1.5], Verdict::Pass),
            (Goal::Maximize, 0.0, [0.5], Verdict::Fail),
        ];
        for (goal, min, cand, want) in cases {
            assert_eq!(verdict(min, &scalar(goal, &LEADER, &cand, None)), want, "{goal} {min} {cand:?}");
        }
    }

    #[test]
    fn scalar_report_reads_as_a_sentence() {
        let one_look = GateConfig { max_candidate_runs: 1, ..GateConfig::default() };
        let report = decide(&one_look, &scalar(Goal::Minimize, &LEADER, &[0.5], None)).unwrap();
        assert_eq!(report.reason, "improvement 0.500 (90% CI 0.335..0.665) clears the minimum 0.000");
        assert_eq!((report.n, report.verdict.keeps()), (1, true));
        assert!(report.prob_better > 0.99);
        let report = decide(&GateConfig::default(), &scalar(Goal::Minimize, &LEADER, &[0.9], None)).unwrap();
        assert!(
            report.reason.ends_with("so the candidate needs more runs (it has 1 of at most 3)"),
            "{}",
            report.reason
        );
    }

    #[test]
    fn looks_share_the_false_keep_budget() {
        assert_eq!(look_confidence(0.9, 1, 1), 0.9);
        // One-sided budget 0.05 spent as t^2 over three looks: 1/9, 3/9, 5/9 of it.
        let levels: Vec<f64> = (1..=3).map(|k| (1.0 - look_confidence(0.9, k, 3)) / 2.0).collect();
        for (got, want) in levels.iter().zip([0.05 / 9.0, 0.05 / 3.0, 0.25 / 9.0]) {
            assert!((got - want).abs() < 1e-15, "{levels:?}");
        }
        // Third run: still straddling, but no more repeats are on offer.
        let report = decide(&GateConfig::default(), &scalar(Goal::Minimize, &LEADER, &[0.9, 1.0, 0.95], None)).unwrap();
        assert_eq!(report.verdict, Verdict::Fail);
        assert!(report.reason.ends_with("after 3 candidate runs it is within noise"), "{}", report.reason);
        assert!(report.reason.contains("94.44% CI"), "{}", report.reason);
    }

    #[test]
    fn deterministic_runs_are_judged_at_the_last_look_without_repeats() {
        // Six of 20 items 0.5 better, the rest unchanged: se of the mean .105, gain .15.
        let mut candidate = vec![1.0; 20];
        candidate[..6].iter_mut().for_each(|c| *c = 0.5);
        let runs = ScalarRuns {
            goal: Goal::Minimize,
            leader: vec![1.0, 1.0],
            candidate: vec![0.85],
            noise_sd: None,
            items: Some(ItemEvidence::Scores { leader: vec![1.0; 20], candidate }),
        };
        let config = GateConfig { confidence: 0.6, ..GateConfig::default() };
        // Reruns that differ in their last bits are as deterministic as identical ones.
        let rounded = ScalarRuns { leader: vec![1.0, 1.0 + 4.0 * f64::EPSILON], ..runs.clone() };
        assert!(deterministic(&runs) && deterministic(&rounded));
        for runs in [runs, rounded] {
            let report = decide(&config, &Evidence::Scalar(runs)).unwrap();
            // At the first look's 95.56% it would straddle and ask for two identical reruns.
            assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
            assert!(report.reason.contains("(77.78% CI"), "the third look's level: {}", report.reason);
        }
    }

    #[test]
    fn a_deterministic_gap_is_judged_on_its_items() {
        // Leader rerun to the identical value; the candidate gains 0.05 on average,
        // all of it on 2 of 20 items: within item noise, so no pass.
        let leader_items = vec![1.0; 20];
        let mut candidate_items = leader_items.clone();
        candidate_items[0] = 0.5;
        candidate_items[1] = 0.5;
        let runs = |items| {
            Evidence::Scalar(ScalarRuns {
                goal: Goal::Minimize,
                leader: vec![1.0, 1.0],
                candidate: vec![0.95],
                noise_sd: None,
                items,
            })
        };
        let one_look = GateConfig { max_candidate_runs: 1, ..GateConfig::default() };
        let naive = decide(&one_look, &runs(None)).unwrap();
        assert!(naive.verdict == Verdict::Pass && naive.ci_low == naive.ci_high, "the old exact gap: {naive:?}");
        let scores = ItemEvidence::Scores { leader: leader_items.clone(), candidate: candidate_items.clone() };
        let report = decide(&one_look, &runs(Some(scores))).unwrap();
        assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
        assert!(report.ci_low < 0.0 && report.ci_high > 0.1, "{report:?}");
        assert!(
            report.reason.ends_with("after 1 candidate runs on 20 validation items it is within noise"),
            "{}",
            report.reason
        );
        // Repeats would shrink only the seed noise, which is already zero: no repeats asked.
        let scores = ItemEvidence::Scores { leader: leader_items.clone(), candidate: candidate_items.clone() };
        let report = decide(&GateConfig::default(), &runs(Some(scores))).unwrap();
        assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
        // With seed noise to shrink, the same items do get repeats.
        let stochastic = Evidence::Scalar(ScalarRuns {
            goal: Goal::Minimize,
            leader: vec![1.0, 1.1, 0.9],
            candidate: vec![0.95],
            noise_sd: None,
            items: Some(ItemEvidence::Scores { leader: leader_items.clone(), candidate: vec![0.95; 20] }),
        });
        assert_eq!(decide(&GateConfig::default(), &stochastic).unwrap().verdict, Verdict::NeedsRepeats);
        // A gain on every item is a pass.
        let scores = ItemEvidence::Scores { leader: leader_items, candidate: vec![0.95; 20] };
        assert_eq!(decide(&one_look, &runs(Some(scores))).unwrap().verdict, Verdict::Pass);
        // Items must be shared.
        let scores = ItemEvidence::Scores { leader: vec![1.0; 3], candidate: vec![1.0; 2] };
        assert_eq!(
            decide(&one_look, &runs(Some(scores))).unwrap_err(),
            GateError::ItemMismatch { leader: 3, candidate: 2 }
        );
    }

    #[test]
    fn a_whole_sample_metric_measures_item_noise_by_bootstrap() {
        // AUC has no per-item decomposition: its item noise comes from the outputs.
        let y: Vec<f64> = (0..40).map(|i| f64::from(i % 2)).collect();
        let leader_pred: Vec<f64> = (0..40).map(|i| f64::from(i % 2) * 0.2 + f64::from(i % 7) * 0.1).collect();
        let candidate_pred: Vec<f64> = (0..40).map(|i| f64::from(i % 2) * 0.25 + f64::from(i % 7) * 0.1).collect();
        let items = ItemEvidence::Outputs(PairedSamples {
            goal: Goal::Maximize,
            kind: MetricKind::Auc,
            y_true: y,
            leader_pred,
            candidate_pred,
        });
        let evidence = Evidence::Scalar(ScalarRuns {
            goal: Goal::Maximize,
            leader: vec![0.80, 0.80],
            candidate: vec![0.82],
            noise_sd: None,
            items: Some(items),
        });
        let report = decide(&GateConfig { max_candidate_runs: 1, ..GateConfig::default() }, &evidence).unwrap();
        assert!(report.ci_high - report.ci_low > 0.0, "the bootstrap gave the gap an interval: {report:?}");
    }

    #[test]
    fn no_noise_means_no_verdict_however_large_the_gap() {
        let evidence = scalar(Goal::Minimize, &[1.0], &[0.001, 0.002, 0.001], None);
        let report = decide(&GateConfig::default(), &evidence).unwrap();
        assert_eq!(report.verdict, Verdict::NoNoiseEstimate);
        assert_eq!((report.ci_low, report.ci_high), (f64::NEG_INFINITY, f64::INFINITY));
        // A stored baseline sd (treated as known) restores judgement: se = .1 * sqrt(2).
        let evidence = scalar(Goal::Minimize, &[1.0], &[0.5], Some(0.1));
        assert_eq!(verdict(0.0, &evidence), Verdict::Pass);
        assert_eq!(verdict(0.3, &evidence), Verdict::NeedsRepeats);
        assert_eq!(verdict(0.5, &evidence), Verdict::Fail);
    }

    #[test]
    fn predictions_verdicts_and_minimum() {
        // Uniform gain of 0.25 on every item: the interval is exactly [0.25, 0.25].
        let uniform = paired(0.5, &[0.25]);
        assert_eq!(verdict(0.0, &uniform), Verdict::Pass);
        assert_eq!(verdict(0.25, &uniform), Verdict::Fail, "the minimum is strict");
        // Gains of +0.5 and -0.4 alternating: mean +0.05, well inside the noise.
        let noisy = paired(1.0, &[0.5, 1.4]);
        let report = decide(&GateConfig::default(), &noisy).unwrap();
        assert_eq!(report.verdict, Verdict::Fail);
        assert!(report.reason.ends_with("on 20 validation items it is within noise"), "{}", report.reason);
        assert_eq!(verdict(0.0, &paired(0.25, &[0.5])), Verdict::Fail);
    }

    #[test]
    fn predictions_respect_a_maximized_metric() {
        // Leader right on items 0..10; candidate also on 10..15.
        let y: Vec<f64> = (0..20).map(|i| f64::from(i % 2)).collect();
        let right_until =
            |k: usize| -> Vec<f64> { y.iter().enumerate().map(|(i, v)| if i < k { *v } else { 1.0 - v }).collect() };
        let samples = |leader_pred, candidate_pred| {
            Evidence::Predictions(PairedSamples {
                goal: Goal::Maximize,
                kind: MetricKind::Accuracy,
                y_true: y.clone(),
                leader_pred,
                candidate_pred,
            })
        };
        let better = decide(&GateConfig::default(), &samples(right_until(10), right_until(15))).unwrap();
        assert_eq!((better.verdict, better.improvement), (Verdict::Pass, 0.25));
        assert_eq!(verdict(0.0, &samples(right_until(15), right_until(10))), Verdict::Fail);
        let Evidence::Predictions(mut wrong) = samples(right_until(10), right_until(15)) else { unreachable!() };
        wrong.goal = Goal::Minimize;
        let err = decide(&GateConfig::default(), &Evidence::Predictions(wrong)).unwrap_err();
        assert_eq!(err.to_string(), "accuracy should maximize, but the evidence says minimize");
    }

    #[test]
    fn invalid_evidence_is_an_error() {
        let config = GateConfig::default();
        let run = |e: Evidence| decide(&config, &e).unwrap_err();
        assert_eq!(run(scalar(Goal::Minimize, &[], &[1.0], None)), GateError::NoRuns { which: "leader" });
        assert_eq!(run(scalar(Goal::Minimize, &LEADER, &[1.0], Some(-1.0))), GateError::NoiseSd(-1.0));
        let nan = run(scalar(Goal::Minimize, &LEADER, &[f64::NAN], None));
        assert!(matches!(nan, GateError::NonFiniteRun { which: "candidate", index: 0, .. }));
        let bad = GateConfig { confidence: 0.0, ..config };
        assert_eq!(
            decide(&bad, &scalar(Goal::Minimize, &LEADER, &[1.0], None)).unwrap_err(),
            GateError::Confidence(0.0)
        );
    }

    #[test]
    fn naive_rule_and_names() {
        assert!(naive_keep(Goal::Minimize, 1.0, 0.99) && !naive_keep(Goal::Maximize, 1.0, 0.99));
        let names: Vec<String> = [Verdict::NeedsRepeats, Verdict::NoNoiseEstimate]
            .iter()
            .map(|v| serde_json::to_string(v).unwrap())
            .collect();
        assert_eq!(names, ["\"needs_repeats\"", "\"no_noise_estimate\""]);
        assert_eq!(Verdict::NeedsRepeats.to_string(), "needs_repeats");
    }
}
