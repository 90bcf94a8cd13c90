//! Benchmark of the honest gate against "keep if the number is better".
//!
//! Simulates candidates with no real gain (the null set: every keep is a false
//! keep) and candidates with a real gain of 2 noise standard deviations (the
//! real set: every keep is a correct one), in predictions mode and in scalar
//! mode, and prints false-keep rates and power for both rules, then the time of
//! single decisions at the largest intended size. Prints figures only; it
//! asserts nothing, so a regression shows as a number, not a failure.
//! Everything is seeded, so two runs print the same rates (timings vary).
//! `gate/nights.rs` adds the scenarios of a whole night (a deterministic leaf,
//! no-op fishing, tuning on val, blends). All at the leaf default confidence.
//! `cargo bench -p lab --bench gate -- simulation` (or `-- timing`) runs one half.

use std::f64::consts::{PI, TAU};
use std::time::Instant;

use lab::gate::{
    Evidence, GateConfig, Goal, MetricKind, PairedSamples, ScalarRuns, Verdict, decide, naive_keep, score,
};
use lab::leaf::manifest::GateSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal};

pub(crate) const CANDIDATES: usize = 1000;
const ITEMS: usize = 200;
const LEADER_REPEATS: usize = 5;

#[path = "gate/nights.rs"]
mod nights;

fn main() {
    // The confidence a leaf gets unless its leaf.yaml says otherwise.
    let config = GateConfig { confidence: GateSpec::default().confidence, ..GateConfig::default() };
    println!(
        "honest gate benchmark: {CANDIDATES} candidates per set; default config: {:.2} two-sided \
         confidence, min_improvement {}, {} resamples, seed {}",
        config.confidence, config.min_improvement, config.resamples, config.seed
    );
    let args: Vec<String> = std::env::args().collect();
    let only = |part: &str| args.iter().any(|a| a == part);
    let (simulation, timing) = (only("simulation"), only("timing"));
    if simulation || !timing {
        // Separate seeds, so each mode's figures do not depend on the other.
        let predictions = predictions_mode(&config, &mut ChaCha8Rng::seed_from_u64(2024));
        let scalar = scalar_mode(&config, &mut ChaCha8Rng::seed_from_u64(2025));
        println!();
        println!("{:<12} {:<7} {:>12} {:>8} {:>16}", "mode", "rule", "false keeps", "power", "runs (null/real)");
        for row in predictions.iter().chain(&scalar) {
            println!("{row}");
        }
        println!("(gate@1: the gate's verdict on the first run alone, at its strict first-look level)");
        let z = Normal::standard();
        let best = z.cdf(2.0 - z.inverse_cdf(1.0 - (1.0 - config.confidence) / 2.0));
        println!("(best attainable power of one look at a 2 sd gain at this level: {})", pct_f(best));
        println!();
        rank_at_scale(&config, &mut ChaCha8Rng::seed_from_u64(2030));
        println!();
        nights::run_all(&config);
        println!();
    }
    if timing || !simulation {
        timings();
    }
}

/// One rule's outcome over the null set and the real set.
pub(crate) struct Row {
    mode: &'static str,
    rule: &'static str,
    false_keeps: usize,
    true_keeps: usize,
    runs: Option<(usize, usize)>,
}

pub(crate) fn pct(k: usize, of: usize) -> String {
    pct_f(k as f64 / of as f64)
}

fn pct_f(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |k: usize| pct(k, CANDIDATES);
        let runs = self.runs.map_or("-".to_string(), |(null, real)| {
            let avg = |r: usize| r as f64 / CANDIDATES as f64;
            format!("{:.2}/{:.2}", avg(null), avg(real))
        });
        let (mode, rule) = (self.mode, self.rule);
        write!(f, "{mode:<12} {rule:<7} {:>12} {:>8} {runs:>16}", pct(self.false_keeps), pct(self.true_keeps))
    }
}

pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

/// Mean and sample sd.
pub(crate) fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

pub(crate) fn noisy(rng: &mut ChaCha8Rng, y: &[f64], sd: f64) -> Vec<f64> {
    y.iter().map(|v| v + sd * normal(rng)).collect()
}

/// MAE of leader and candidate predictions on fresh labels, noise sd 1 and `cand_sd`.
fn draw_pair(rng: &mut ChaCha8Rng, cand_sd: f64) -> PairedSamples {
    let y_true: Vec<f64> = (0..ITEMS).map(|_| normal(rng)).collect();
    let leader_pred = noisy(rng, &y_true, 1.0);
    let candidate_pred = noisy(rng, &y_true, cand_sd);
    PairedSamples { goal: Goal::Minimize, kind: MetricKind::Mae, y_true, leader_pred, candidate_pred }
}

fn predictions_mode(config: &GateConfig, rng: &mut ChaCha8Rng) -> [Row; 2] {
    // The "noise sd" of this mode: sd of MAE(candidate) - MAE(leader) across
    // independent draws of items and noise, with no real difference.
    let diffs: Vec<f64> = (0..4000).map(|_| mae_gap(&draw_pair(rng, 1.0))).collect();
    let (_, sd_diff) = mean_sd(&diffs);
    // E|N(0, s)| = s * sqrt(2/pi): shrink the candidate's noise until its true
    // MAE is 2 sd_diff below the leader's.
    let gain = 2.0 * sd_diff;
    let cand_sd = 1.0 - gain / (2.0 / PI).sqrt();
    println!(
        "predictions: n={ITEMS} items, y~N(0,1), leader=y+N(0,1), metric mae; sd of the MAE \
         difference under the null {sd_diff:.4} (4000 draws); real set: candidate noise sd \
         {cand_sd:.4}, true MAE gain {gain:.4} = 2 sd"
    );
    let mut gate = [0, 0];
    let mut naive = [0, 0];
    for (set, sd) in [1.0, cand_sd].into_iter().enumerate() {
        for _ in 0..CANDIDATES {
            let pair = draw_pair(rng, sd);
            naive[set] += usize::from(mae_gap(&pair) > 0.0);
            let report = decide(config, &Evidence::Predictions(pair)).expect("valid evidence");
            gate[set] += usize::from(report.verdict.keeps());
        }
    }
    let row = |rule, keeps: [usize; 2]| Row {
        mode: "predictions",
        rule,
        false_keeps: keeps[0],
        true_keeps: keeps[1],
        runs: None,
    };
    [row("gate", gate), row("naive", naive)]
}

/// MAE(leader) - MAE(candidate): positive when the candidate looks better.
fn mae_gap(p: &PairedSamples) -> f64 {
    let mae = |pred: &[f64]| score(MetricKind::Mae, &p.y_true, pred).expect("valid");
    let (leader, candidate) = (mae(&p.leader_pred), mae(&p.candidate_pred));
    if naive_keep(Goal::Minimize, leader, candidate) { leader - candidate } else { -(candidate - leader).abs() }
}

fn scalar_mode(config: &GateConfig, rng: &mut ChaCha8Rng) -> [Row; 3] {
    const SIGMA: f64 = 1.0;
    println!(
        "scalar: run metric = truth + N(0, {SIGMA}), minimized; leader {LEADER_REPEATS} repeats; \
         candidate 1 run, +1 per needs_repeats up to {}; real set: gain 2 sigma",
        config.max_candidate_runs
    );
    let (mut gate, mut first_look, mut naive, mut runs) = ([0, 0], [0, 0], [0, 0], [0, 0]);
    for (set, gain) in [0.0, 2.0 * SIGMA].into_iter().enumerate() {
        for _ in 0..CANDIDATES {
            let leader: Vec<f64> = (0..LEADER_REPEATS).map(|_| SIGMA * normal(rng)).collect();
            let leader_mean = leader.iter().sum::<f64>() / leader.len() as f64;
            let first_run = -gain + SIGMA * normal(rng);
            naive[set] += usize::from(naive_keep(Goal::Minimize, leader_mean, first_run));
            let (last, first, used) = scalar_protocol(config, leader, first_run, || -gain + SIGMA * normal(rng));
            gate[set] += usize::from(last.keeps());
            first_look[set] += usize::from(first.keeps());
            runs[set] += used;
        }
    }
    let row =
        |rule, keeps: [usize; 2], runs| Row { mode: "scalar", rule, false_keeps: keeps[0], true_keeps: keeps[1], runs };
    [
        row("gate", gate, Some((runs[0], runs[1]))),
        row("gate@1", first_look, Some((CANDIDATES, CANDIDATES))),
        row("naive", naive, Some((CANDIDATES, CANDIDATES))),
    ]
}

/// The caller's side of scalar mode: one candidate run, then one more per
/// NEEDS_REPEATS until the gate settles. Returns the final verdict, the
/// verdict on the first run alone, and the runs used.
fn scalar_protocol(
    config: &GateConfig,
    leader: Vec<f64>,
    first: f64,
    mut run: impl FnMut() -> f64,
) -> (Verdict, Verdict, usize) {
    let mut runs = ScalarRuns { goal: Goal::Minimize, leader, candidate: vec![first], noise_sd: None, items: None };
    let mut first_verdict = None;
    loop {
        let verdict = decide(config, &Evidence::Scalar(runs.clone())).expect("valid evidence").verdict;
        let first_verdict = *first_verdict.get_or_insert(verdict);
        // The gate answers FAIL rather than NEEDS_REPEATS at its last allowed run.
        if verdict != Verdict::NeedsRepeats {
            return (verdict, first_verdict, runs.candidate.len());
        }
        runs.candidate.push(run());
    }
}

/// Spearman and AUC on 10,000 items, where each resample is the statistic's
/// first-order expansion rather than the statistic recomputed: false keeps
/// under the null (two equally noisy models) and power at a true gain of 2 sd
/// of the null difference (the candidate's noise shrunk until it has it).
fn rank_at_scale(config: &GateConfig, rng: &mut ChaCha8Rng) {
    const N: usize = 10_000;
    const TRIALS: usize = 300;
    println!(
        "rank metrics at scale: {N} items, y~N(0,1) (auc: labels y > 0), leader score y+N(0,1); \
         {TRIALS} candidates per set"
    );
    for kind in [MetricKind::Spearman, MetricKind::Auc] {
        let draw = |rng: &mut ChaCha8Rng, n: usize, cand_sd: f64| {
            let signal: Vec<f64> = (0..n).map(|_| normal(rng)).collect();
            let (leader_pred, candidate_pred) = (noisy(rng, &signal, 1.0), noisy(rng, &signal, cand_sd));
            let y_true = match kind {
                MetricKind::Auc => signal.iter().map(|&s| f64::from(u8::from(s > 0.0))).collect(),
                _ => signal,
            };
            PairedSamples { goal: kind.goal(), kind, y_true, leader_pred, candidate_pred }
        };
        let gap = |p: &PairedSamples| {
            let s = |pred: &[f64]| score(kind, &p.y_true, pred).expect("valid");
            s(&p.candidate_pred) - s(&p.leader_pred)
        };
        let (_, sd) = mean_sd(&(0..200).map(|_| gap(&draw(rng, N, 1.0))).collect::<Vec<_>>());
        // The candidate noise whose true gain is 2 sd, by bisection on one large sample.
        let (mut low, mut high) = (0.5, 1.0);
        for _ in 0..25 {
            let mid = (low + high) / 2.0;
            let gain = gap(&draw(&mut ChaCha8Rng::seed_from_u64(1), 200_000, mid));
            if gain > 2.0 * sd { low = mid } else { high = mid }
        }
        let cand_sd = (low + high) / 2.0;
        let mut keeps = [0, 0];
        for (set, noise) in [1.0, cand_sd].into_iter().enumerate() {
            for _ in 0..TRIALS {
                let report = decide(config, &Evidence::Predictions(draw(rng, N, noise))).expect("valid evidence");
                keeps[set] += usize::from(report.verdict.keeps());
            }
        }
        println!(
            "  {kind:<8} sd of the null difference {sd:.5}; candidate noise sd {cand_sd:.3} for a 2 sd gain: \
             false keeps {} ({} of {TRIALS}), power {}",
            pct(keeps[0], TRIALS),
            keeps[0],
            pct(keeps[1], TRIALS)
        );
    }
}

/// Wall-clock milliseconds of `reps` decisions on `n` items with `resamples`
/// resamples, sorted, and the mean CPU milliseconds (all threads) per decision.
fn time_decision(kind: MetricKind, n: usize, resamples: usize, reps: usize) -> (Vec<f64>, Option<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut y_true: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    let (leader_pred, candidate_pred) = (noisy(&mut rng, &y_true, 1.0), noisy(&mut rng, &y_true, 0.9));
    if kind == MetricKind::Auc {
        // Binary labels; the predictions stay continuous scores.
        y_true = y_true.iter().map(|&y| f64::from(u8::from(y > 0.0))).collect();
    }
    let goal = kind.goal();
    let evidence = Evidence::Predictions(PairedSamples { goal, kind, y_true, leader_pred, candidate_pred });
    let config = GateConfig { resamples, ..GateConfig::default() };
    let cpu_before = cpu_ms();
    let mut ms: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(decide(&config, std::hint::black_box(&evidence)).expect("valid"));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu = cpu_before.zip(cpu_ms()).map(|(before, after)| (after - before) / reps as f64);
    ms.sort_by(f64::total_cmp);
    (ms, cpu)
}

/// CPU time of this process so far (Linux only). On a shared machine the
/// wall clock also counts time spent waiting for a core; this does not.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports in USER_HZ, 100 on every mainstream Linux.
    Some(ticks * 10.0)
}

fn timings() {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    println!("timings ({threads} hardware threads; wall time is sensitive to other load, CPU time less so):");
    for (kind, n, resamples, reps) in [
        (MetricKind::Mae, 10_000, 10_000, 15),
        (MetricKind::Rmse, 10_000, 10_000, 15),
        (MetricKind::Spearman, 10_000, 10_000, 15),
        (MetricKind::Auc, 10_000, 10_000, 15),
    ] {
        let (ms, cpu) = time_decision(kind, n, resamples, reps);
        let cpu = cpu.map_or(String::new(), |c| format!(", cpu {c:.0} ms/decision"));
        println!(
            "  one decision, {kind:<8} {n} items x {resamples:>5} resamples: median {:7.1} ms \
             (min {:.1}, max {:.1}, {reps} reps{cpu})",
            ms[reps / 2],
            ms[0],
            ms[reps - 1]
        );
    }
}
