//! The gate over a night, not one decision: a deterministic leaf judged on its
//! items, an agent fishing with no-op candidates, the best of many candidates
//! tuned on val then checked on the held-out split, and blends of rankers on
//! different scales. Each prints its rates; seeded, so they reproduce.

use lab::analysis::weights;
use lab::gate::{
    Evidence, GateConfig, GateReport, Goal, ItemEvidence, MetricKind, PairedSamples, ScalarRuns, Verdict, decide, score,
};
use lab::lifecycle::heldout::{self, Selection};
use lab::lifecycle::judge::{Reruns, apply_flags};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{CANDIDATES, Row, mean_sd, noisy, normal, pct};

const ITEMS: usize = 100;

/// Deterministic code, artifact mode: reruns agree exactly (seed sd 0), so
/// only the per-item scores of the 100 val items can show noise. Null: each
/// item's score moves by N(0, 0.5); real: by N(-gain, 0.5), gain 2 sd of the mean.
pub fn deterministic(config: &GateConfig, rng: &mut ChaCha8Rng) -> Row {
    let sd_item = 0.5;
    let gain = 2.0 * sd_item / (ITEMS as f64).sqrt();
    println!(
        "deterministic: {ITEMS} val items, per-item score |N(0,1)|, candidate item = leader item + N(-gain, {sd_item}); \
         reruns identical; real set: gain {gain:.3} = 2 sd of the mean difference"
    );
    let mut keeps = [0, 0];
    for (set, g) in [0.0, gain].into_iter().enumerate() {
        for _ in 0..CANDIDATES {
            let leader: Vec<f64> = (0..ITEMS).map(|_| normal(rng).abs()).collect();
            let candidate: Vec<f64> = leader.iter().map(|l| l - g + sd_item * normal(rng)).collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (l, c) = (mean(&leader), mean(&candidate));
            let runs = ScalarRuns {
                goal: Goal::Minimize,
                leader: vec![l, l],
                candidate: vec![c],
                noise_sd: None,
                items: Some(ItemEvidence::Scores { leader, candidate }),
            };
            let report = decide(config, &Evidence::Scalar(runs)).expect("valid evidence");
            // Reruns are identical, so a request for repeats could not change anything.
            assert_ne!(report.verdict, Verdict::NeedsRepeats, "repeats asked of deterministic code");
            keeps[set] += usize::from(report.verdict.keeps());
        }
    }
    Row { mode: "deterministic", rule: "gate", false_keeps: keeps[0], true_keeps: keeps[1], runs: None }
}

/// An agent fishing: 20 candidates a night that change nothing (comment-only
/// diffs, flagged `no-op`), each run through the gate with the repeats it
/// asks for, the leader's code rerun each time (scalar mode, seed sd 1, leader
/// with 5 repeats). Per candidate and per night, with and without the flag rule.
pub fn fishing(config: &GateConfig, rng: &mut ChaCha8Rng) {
    const NIGHTS: usize = 250;
    const PER_NIGHT: usize = 20;
    let flags = vec!["no-op".to_owned()];
    let (mut keeps, mut nights, mut runs) = ([0usize; 2], [0usize; 2], [0usize; 2]);
    for _ in 0..NIGHTS {
        let mut kept_tonight = [false; 2];
        for _ in 0..PER_NIGHT {
            let leader: Vec<f64> = (0..5).map(|_| normal(rng)).collect();
            let draws: Vec<f64> = (0..config.max_candidate_runs).map(|_| normal(rng)).collect();
            for (rule, flagged) in [(0, true), (1, false)] {
                let (verdict, used) = protocol(config, &leader, &draws, if flagged { &flags } else { &[] });
                keeps[rule] += usize::from(verdict.keeps());
                kept_tonight[rule] |= verdict.keeps();
                runs[rule] += used;
            }
        }
        for rule in 0..2 {
            nights[rule] += usize::from(kept_tonight[rule]);
        }
    }
    let n = NIGHTS * PER_NIGHT;
    println!(
        "fishing: {NIGHTS} nights x {PER_NIGHT} no-op candidates (scalar, seed sd 1, leader 5 repeats, repeats as asked)"
    );
    for (rule, name) in [(0, "flagged no-op (as lab does)"), (1, "unflagged")] {
        println!(
            "  {name:<28} false keeps per candidate {:>6} ({} of {n}), nights with a false keep {:>6}, runs per candidate {:.2}",
            pct(keeps[rule], n),
            keeps[rule],
            pct(nights[rule], NIGHTS),
            runs[rule] as f64 / n as f64
        );
    }
}

/// One candidate through the gate: a run, then one more per NEEDS_REPEATS
/// (the flag rule applied as `lab run` applies it), from `draws`.
fn protocol(config: &GateConfig, leader: &[f64], draws: &[f64], flags: &[String]) -> (Verdict, usize) {
    for used in 1..=draws.len() {
        let runs = ScalarRuns {
            goal: Goal::Minimize,
            leader: leader.to_vec(),
            candidate: draws[..used].to_vec(),
            noise_sd: None,
            items: None,
        };
        let report = decide(config, &Evidence::Scalar(runs)).expect("valid evidence");
        let report = apply_flags(report, flags, Reruns::Vary, config.max_candidate_runs);
        if report.verdict != Verdict::NeedsRepeats {
            return (report.verdict, used);
        }
    }
    (Verdict::Fail, draws.len())
}

/// Tuning on val: 50 candidates with no real gain, the best on val taken as
/// the leader, then `lab holdout`'s rule on equal val and held-out splits
/// (predictions mode, MAE, 200 items each), with the selection counted and,
/// for comparison, as if the leader had been the only candidate.
pub fn tune_on_val(config: &GateConfig, rng: &mut ChaCha8Rng) {
    const TRIALS: usize = 300;
    const TRIED: u64 = 50;
    const N: usize = 200;
    let mut verdicts = [[0usize; 3]; 2];
    for _ in 0..TRIALS {
        let split = |rng: &mut ChaCha8Rng| -> (Vec<f64>, Vec<f64>) {
            let y: Vec<f64> = (0..N).map(|_| normal(rng)).collect();
            let baseline = noisy(rng, &y, 1.0);
            (y, baseline)
        };
        let ((yv, bv), (yh, bh)) = (split(rng), split(rng));
        let candidates: Vec<(Vec<f64>, Vec<f64>)> =
            (0..TRIED).map(|_| (noisy(rng, &yv, 1.0), noisy(rng, &yh, 1.0))).collect();
        let mae = |y: &[f64], p: &[f64]| score(MetricKind::Mae, y, p).expect("valid");
        let (val, held) =
            candidates.into_iter().min_by(|a, b| mae(&yv, &a.0).total_cmp(&mae(&yv, &b.0))).expect("candidates");
        let pair = |y: &[f64], b: &[f64], c: Vec<f64>| {
            Evidence::Predictions(PairedSamples {
                goal: Goal::Minimize,
                kind: MetricKind::Mae,
                y_true: y.to_vec(),
                leader_pred: b.to_vec(),
                candidate_pred: c,
            })
        };
        let one_look = GateConfig { max_candidate_runs: 1, ..*config };
        let v: GateReport = decide(&one_look, &pair(&yv, &bv, val)).expect("valid");
        let h: GateReport = decide(&one_look, &pair(&yh, &bh, held)).expect("valid");
        for (row, tried) in [(0, TRIED), (1, 1)] {
            let selection = Some(Selection::new(1.0 - v.prob_better, tried));
            let (verdict, _) = heldout::rule(v.improvement, h.ci_low, h.ci_high, selection, config.confidence);
            let column = [heldout::DID_NOT_TRANSFER, heldout::NOT_SHOWN, heldout::TRANSFERRED]
                .iter()
                .position(|x| *x == verdict)
                .expect("a verdict");
            verdicts[row][column] += 1;
        }
    }
    println!("tune on val: {TRIALS} trials, best of {TRIED} null candidates on val, {N} val and {N} held-out items");
    for (row, name) in [(0, "lab holdout (tries counted)"), (1, "as if it were the only try")] {
        let [dnt, shown, yes] = verdicts[row];
        println!(
            "  {name:<28} did not transfer {:>6}, not shown {:>6}, transferred {:>6}",
            pct(dnt, TRIALS),
            pct(shown, TRIALS),
            pct(yes, TRIALS)
        );
    }
}

/// Blends of two rankers of one signal, one on a scale 3x wider and shifted:
/// the pooled out-of-fold score the gate judges, against what its fold weights
/// score on fresh items (the honest figure: weights judged on items none of
/// them was searched on), on raw scales and on `lab blend`'s common one.
/// Each gap is printed as its mean over the trials, the sd of one trial's gap
/// and the standard error of the mean: "equal within noise" is a mean within
/// about 2 standard errors of zero.
pub fn blends(rng: &mut ChaCha8Rng) {
    const TRIALS: usize = 100;
    const N: usize = 400;
    const FRESH: usize = 10_000;
    println!(
        "blend: {TRIALS} trials, two rankers of {N} items on different scales, 5-fold cross-fit, each fold's \
         weights scored on {FRESH} fresh items; each gap as mean (sd of a trial, se of the mean)"
    );
    let draw = |rng: &mut ChaCha8Rng, binary: bool, n: usize| {
        let signal: Vec<f64> = (0..n).map(|_| normal(rng)).collect();
        let y: Vec<f64> = if binary {
            signal.iter().map(|s| f64::from(u8::from(s + 0.3 * normal(rng) > 0.0))).collect()
        } else {
            noisy(rng, &signal, 0.3)
        };
        let narrow = noisy(rng, &signal, 0.3);
        let wide: Vec<f64> = noisy(rng, &signal, 0.3).iter().map(|p| 3.0 * p + 5.0).collect();
        (y, vec![narrow, wide])
    };
    for (kind, binary) in [(MetricKind::Auc, true), (MetricKind::Spearman, false)] {
        // Per trial: pooled - fresh on raw and common scales, blend - best component on both.
        let mut gaps: [Vec<f64>; 4] = Default::default();
        for _ in 0..TRIALS {
            let (y, components) = draw(rng, binary, N);
            let (fresh_y, fresh) = draw(rng, binary, FRESH);
            let s = |y: &[f64], p: &[f64]| score(kind, y, p).expect("valid");
            let best = s(&y, &components[0]).max(s(&y, &components[1]));
            let units = weights::units(kind, &components);
            for (at, (val, fresh)) in [
                (components.clone(), fresh.clone()),
                (weights::rescale(&units, &components), weights::rescale(&units, &fresh)),
            ]
            .into_iter()
            .enumerate()
            {
                let pooled = s(&y, &weights::cross_fit(kind, &y, &val).expect("valid"));
                let folds = weights::fold_weights(kind, &y, &val).expect("valid");
                let honest =
                    folds.iter().map(|w| s(&fresh_y, &weights::combine(w, &fresh))).sum::<f64>() / folds.len() as f64;
                gaps[at].push(pooled - honest);
                gaps[2 + at].push(pooled - best);
            }
        }
        let [raw_gap, fit_gap, raw_over_best, fit_over_best] = gaps.map(|g| spread(&g));
        println!(
            "  {kind:<8} pooled - fresh: raw scales {raw_gap}, common scale {fit_gap}; blend - best component: \
             raw {raw_over_best}, common {fit_over_best}"
        );
    }
}

/// Mean of per-trial figures with the sd of one trial and the se of the mean.
fn spread(values: &[f64]) -> String {
    let (mean, sd) = mean_sd(values);
    format!("{mean:+.4} (sd {sd:.4}, se {:.4})", sd / (values.len() as f64).sqrt())
}

/// Seeds of the night scenarios, one each so none depends on another.
pub fn run_all(config: &GateConfig) {
    let seeded = ChaCha8Rng::seed_from_u64;
    println!("{}", deterministic(config, &mut seeded(2026)));
    fishing(config, &mut seeded(2027));
    tune_on_val(config, &mut seeded(2028));
    blends(&mut seeded(2029));
}
