//! Rank and correlation statistics (Spearman, Pearson, ROC AUC) evaluated on a
//! *weighted* set of items, where item `i` counts `weights[i]` times.
//!
//! A bootstrap resample is a multiset of the original items, so it is fully
//! described by per-item counts. Sorting every value once up front and walking
//! that fixed order with the counts gives the resample's average ranks in O(n),
//! with no sort and no allocation per resample. Each statistic is one such walk
//! per side with no branch on the data: Spearman writes the labels' ranks,
//! centred on the mean rank (which ties leave at (N + 1) / 2), then sums each
//! prediction's cross products per run of tied values as it walks; AUC sums
//! positives and negatives per run. The full set is the special case of all
//! weights 1, so `score` and the bootstrap share one implementation.
//!
//! [`influence`] gives each item's first-order effect on a statistic, which
//! the bootstrap uses instead of the walk when resamples are many and large.
//!
//! Invariants: inputs are finite (callers validate); a statistic that is
//! undefined on the weighted set (a constant side, a missing class) is `None`,
//! never NaN; items of weight 0 never influence a result.

use super::kind::MetricKind;

/// Values sorted once, with runs of equal values marked, so that average ranks
/// of any weighted multiset of the same items follow in one pass.
#[derive(Debug, Clone)]
pub(crate) struct Ranking {
    order: Vec<u32>,
    /// Whether `order[k]` ends a run of equal values: one flag per position,
    /// so the walk is one flat loop whether or not the values tie.
    last: Vec<bool>,
}

impl Ranking {
    pub(crate) fn new(values: &[f64]) -> Self {
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
        // `==` rather than total_cmp so that -0.0 and 0.0 tie, as they should.
        let last = (0..order.len())
            .map(|k| k + 1 == order.len() || values[order[k] as usize] != values[order[k + 1] as usize])
            .collect();
        Self { order, last }
    }

    /// Walks the items in increasing value order, summing each run of tied
    /// values' weight and weighted `value(item)`, and hands both to `group`
    /// at the end of the run. Generic, so both closures inline into the loop.
    #[inline]
    fn fold_groups(&self, weights: &[u32], value: impl Fn(usize) -> f64, mut group: impl FnMut(f64, f64)) {
        let (mut weight, mut sum) = (0.0, 0.0);
        for (&item, &last) in self.order.iter().zip(&self.last) {
            let w = f64::from(weights[item as usize]);
            weight += w;
            sum += w * value(item as usize);
            if last {
                group(weight, sum);
                (weight, sum) = (0.0, 0.0);
            }
        }
    }

    /// Centred average ranks within the multiset of `total` items (rank minus
    /// the mean rank (total + 1) / 2, which ties leave unchanged) into `out`;
    /// returns their weighted sum of squares and how many runs of tied values
    /// carry weight (fewer than 2: the side is constant).
    fn centred_ranks_into(&self, weights: &[u32], total: f64, out: &mut [f64]) -> (f64, usize) {
        let (mut before, mut weight, mut ss, mut groups, mut start) = (0.0, 0.0, 0.0, 0, 0);
        for (k, (&item, &last)) in self.order.iter().zip(&self.last).enumerate() {
            weight += f64::from(weights[item as usize]);
            if last {
                let centred = before + (weight - total) / 2.0;
                for &tied in &self.order[start..=k] {
                    out[tied as usize] = centred;
                }
                ss += weight * centred * centred;
                groups += usize::from(weight > 0.0);
                before += weight;
                (weight, start) = (0.0, k + 1);
            }
        }
        (ss, groups)
    }
}

/// Weighted Spearman correlation of `x` (its ranking) with labels whose
/// centred ranks `y_centred`, sum of squares `y_ss` and weighted run count
/// `y_groups` come from [`Ranking::centred_ranks_into`]: one pass over `x`'s
/// order, the cross products summed per run of tied `x` values. `None` when
/// either side is constant over the items of positive weight.
fn weighted_spearman(
    x: &Ranking,
    y_centred: &[f64],
    (y_ss, y_groups): (f64, usize),
    weights: &[u32],
    total: f64,
) -> Option<f64> {
    let (mut before, mut ss, mut cross, mut groups) = (0.0, 0.0, 0.0, 0);
    x.fold_groups(
        weights,
        |item| y_centred[item],
        |weight, y_sum| {
            let centred = before + (weight - total) / 2.0;
            ss += weight * centred * centred;
            cross += centred * y_sum;
            groups += usize::from(weight > 0.0);
            before += weight;
        },
    );
    // Rounding can push |r| a hair past 1; the statistic cannot exceed it.
    (groups >= 2 && y_groups >= 2).then(|| (cross / (ss * y_ss).sqrt()).clamp(-1.0, 1.0))
}

/// Weighted Pearson correlation; `None` when either side is constant over the
/// items of positive weight (checked exactly, not via a rounded variance).
pub(crate) fn weighted_pearson(x: &[f64], y: &[f64], weights: &[u32]) -> Option<f64> {
    let (mut total, mut sx, mut sy) = (0.0, 0.0, 0.0);
    let (mut x_min, mut x_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for ((&xi, &yi), &w) in x.iter().zip(y).zip(weights) {
        if w == 0 {
            continue;
        }
        let w = f64::from(w);
        total += w;
        sx += w * xi;
        sy += w * yi;
        (x_min, x_max) = (x_min.min(xi), x_max.max(xi));
        (y_min, y_max) = (y_min.min(yi), y_max.max(yi));
    }
    if x_min >= x_max || y_min >= y_max {
        return None;
    }
    let (mx, my) = (sx / total, sy / total);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for ((&xi, &yi), &w) in x.iter().zip(y).zip(weights) {
        let w = f64::from(w);
        let (dx, dy) = (xi - mx, yi - my);
        sxy += w * dx * dy;
        sxx += w * dx * dx;
        syy += w * dy * dy;
    }
    // Rounding can push |r| a hair past 1; the statistic cannot exceed it.
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Weighted ROC AUC (the Mann-Whitney U statistic over all positive/negative
/// pairs, a tied pair counting one half); `None` when a class has no weight.
/// `positive` is 1.0 or 0.0 per item, so the walk has no branch on the class.
pub(crate) fn weighted_auc(scores: &Ranking, positive: &[f64], weights: &[u32]) -> Option<f64> {
    let (mut negatives_below, mut wins, mut positives) = (0.0, 0.0, 0.0);
    scores.fold_groups(
        weights,
        |item| positive[item],
        |weight, pos| {
            let neg = weight - pos;
            wins += pos * (negatives_below + 0.5 * neg);
            negatives_below += neg;
            positives += pos;
        },
    );
    (positives > 0.0 && negatives_below > 0.0).then(|| wins / (positives * negatives_below))
}

impl Ranking {
    /// The items in runs of tied values, in increasing value order.
    fn runs(&self) -> Vec<&[u32]> {
        let mut start = 0;
        let ends = self.last.iter().enumerate().filter(|(_, last)| **last);
        ends.map(|(k, _)| {
            let run = &self.order[start..=k];
            start = k + 1;
            run
        })
        .collect()
    }
}

/// Empirical influence of each item on a whole-set statistic (spearman,
/// pearson or auc; inputs validated and the statistic defined on them): the
/// derivative of the statistic as item `i`'s share of the weight grows, scaled
/// so that a resample's statistic is, to first order, the full set's plus the
/// mean influence of the items it drew (the values sum to zero). This is the
/// infinitesimal jackknife; for AUC it is DeLong's placement values.
///
/// Derivations, with `p` the uniform item distribution (each item 1/n):
/// - pearson: `z_x z_y - r (z_x^2 + z_y^2) / 2`, z the standardized values.
/// - spearman: pearson's on the mid-ranks `a` (as fractions of n, ties
///   averaged), plus how moving weight to item `k` moves every rank: item
///   `i`'s rank rises by `h(k, i) - a_i` where `h` is 1 if `x_k < x_i`, 1/2 on
///   a tie, else 0, so `k` adds `sum_i p_i (z_b,i - r z_a,i) h(k, i) / s_a`
///   (the `a_i` part sums to zero), and likewise for the labels' ranks `b`.
/// - auc: a positive's `(V_k - auc) / share of positives`, V the share of
///   negatives it outranks (ties half); a negative's the same with the share
///   of positives that outrank it.
pub(crate) fn influence(kind: MetricKind, y_true: &[f64], pred: &[f64]) -> Vec<f64> {
    match kind {
        MetricKind::Auc => auc_influence(&Ranking::new(pred), y_true),
        MetricKind::Spearman => {
            let (x, y) = (Ranking::new(pred), Ranking::new(y_true));
            let (a, b) = (standardized(&mid_ranks(&x)), standardized(&mid_ranks(&y)));
            let mut out = pearson_part(&a, &b);
            rank_part(&x, &a, &b, &mut out);
            rank_part(&y, &b, &a, &mut out);
            out
        }
        _ => pearson_part(&standardized(pred), &standardized(y_true)),
    }
}

/// A side's values centred and scaled to unit population sd, with that sd.
struct Standardized {
    z: Vec<f64>,
    sd: f64,
}

fn standardized(values: &[f64]) -> Standardized {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    Standardized { z: values.iter().map(|v| (v - mean) / sd).collect(), sd }
}

/// Each item's mid-rank as a fraction of n: the share of items below it plus
/// half the share tied with it.
fn mid_ranks(ranking: &Ranking) -> Vec<f64> {
    let n = ranking.order.len() as f64;
    let mut out = vec![0.0; ranking.order.len()];
    let mut below = 0.0;
    for run in ranking.runs() {
        let tied = run.len() as f64;
        for &item in run {
            out[item as usize] = (below + tied / 2.0) / n;
        }
        below += tied;
    }
    out
}

/// The correlation's influence with both sides held fixed.
fn pearson_part(a: &Standardized, b: &Standardized) -> Vec<f64> {
    let r = a.z.iter().zip(&b.z).map(|(x, y)| x * y).sum::<f64>() / a.z.len() as f64;
    a.z.iter().zip(&b.z).map(|(x, y)| x * y - r * (x * x + y * y) / 2.0).collect()
}

/// Adds to `out[k]` what moving weight to item `k` does through the mid-ranks
/// `a` of the side ranked by `ranking` (the other side's ranks `b`).
fn rank_part(ranking: &Ranking, a: &Standardized, b: &Standardized, out: &mut [f64]) {
    let n = a.z.len() as f64;
    let r = a.z.iter().zip(&b.z).map(|(x, y)| x * y).sum::<f64>() / n;
    let g = |i: u32| (b.z[i as usize] - r * a.z[i as usize]) / (n * a.sd);
    // From the top: `above` sums g over the items ranked strictly higher.
    let mut above = 0.0;
    for run in ranking.runs().into_iter().rev() {
        let tied: f64 = run.iter().map(|&i| g(i)).sum();
        for &item in run {
            out[item as usize] += above + tied / 2.0;
        }
        above += tied;
    }
}

fn auc_influence(scores: &Ranking, y_true: &[f64]) -> Vec<f64> {
    let n = y_true.len() as f64;
    let is_positive = |i: u32| y_true[i as usize] == 1.0;
    let positives = y_true.iter().filter(|&&y| y == 1.0).count() as f64;
    let negatives = n - positives;
    let (mut negatives_below, mut positives_below, mut wins) = (0.0, 0.0, 0.0);
    let mut placement = vec![0.0; y_true.len()];
    for run in scores.runs() {
        let pos = run.iter().filter(|&&i| is_positive(i)).count() as f64;
        let neg = run.len() as f64 - pos;
        for &item in run {
            placement[item as usize] = if is_positive(item) {
                (negatives_below + neg / 2.0) / negatives
            } else {
                (positives - positives_below - pos / 2.0) / positives
            };
        }
        wins += pos * (negatives_below + neg / 2.0);
        (negatives_below, positives_below) = (negatives_below + neg, positives_below + pos);
    }
    let auc = wins / (positives * negatives);
    let share = |i: u32| if is_positive(i) { positives / n } else { negatives / n };
    (0..y_true.len() as u32).map(|i| (placement[i as usize] - auc) / share(i)).collect()
}

/// A whole-set statistic (spearman, pearson or auc) prepared once for several
/// prediction vectors against the same labels; immutable, so threads share it.
#[derive(Debug)]
pub(crate) struct WholeStat<'a> {
    kind: MetricKind,
    y_true: &'a [f64],
    y_ranking: Option<Ranking>,
    /// 1.0 for a positive label, else 0.0 (auc).
    positive: Vec<f64>,
    preds: Vec<(&'a [f64], Option<Ranking>)>,
}

/// Per-thread buffer for [`WholeStat::eval`], reused across resamples: the
/// labels' centred ranks (spearman).
#[derive(Debug, Default)]
pub(crate) struct RankScratch {
    y_centred: Vec<f64>,
}

impl<'a> WholeStat<'a> {
    /// `kind` must be spearman, pearson or auc; inputs already validated.
    pub(crate) fn new(kind: MetricKind, y_true: &'a [f64], preds: &[&'a [f64]]) -> Self {
        let ranked = matches!(kind, MetricKind::Spearman | MetricKind::Auc);
        let preds = preds.iter().map(|&p| (p, ranked.then(|| Ranking::new(p)))).collect();
        let spearman = kind == MetricKind::Spearman;
        Self {
            kind,
            y_true,
            y_ranking: spearman.then(|| Ranking::new(y_true)),
            positive: y_true.iter().map(|&y| f64::from(u8::from(y == 1.0))).collect(),
            preds,
        }
    }

    pub(crate) fn scratch(&self) -> RankScratch {
        let n = if self.kind == MetricKind::Spearman { self.y_true.len() } else { 0 };
        RankScratch { y_centred: vec![0.0; n] }
    }

    /// The statistic of each prediction vector on the weighted items, in the
    /// order given to `new`; `None` where it is undefined on this multiset.
    pub(crate) fn eval(&self, weights: &[u32], scratch: &mut RankScratch, out: &mut [Option<f64>]) {
        let total = weights.iter().map(|&w| f64::from(w)).sum::<f64>();
        let labels = self.y_ranking.as_ref().map(|r| r.centred_ranks_into(weights, total, &mut scratch.y_centred));
        for ((pred, ranking), slot) in self.preds.iter().zip(out.iter_mut()) {
            *slot = match (ranking, labels) {
                (Some(r), Some(labels)) => weighted_spearman(r, &scratch.y_centred, labels, weights, total),
                (Some(r), None) => weighted_auc(r, &self.positive, weights),
                (None, _) => weighted_pearson(pred, self.y_true, weights),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, irregular numbers in [0, 1): a small LCG rather than a dependency.
    fn uniform(state: &mut u64) -> f64 {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The multiset spelled out: item `i` repeated `weights[i]` times.
    fn expand(v: &[f64], weights: &[u32]) -> Vec<f64> {
        v.iter().zip(weights).flat_map(|(&a, &k)| std::iter::repeat_n(a, k as usize)).collect()
    }

    /// Average ranks the textbook way: sort, then give each run of ties the mean of its positions.
    fn sorted_ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut ranks = vec![0.0; v.len()];
        let mut start = 0;
        while start < order.len() {
            let end = (start..order.len()).find(|&k| v[order[k]] != v[order[start]]).unwrap_or(order.len());
            for &i in &order[start..end] {
                ranks[i] = (start + end + 1) as f64 / 2.0;
            }
            start = end;
        }
        ranks
    }

    /// Spearman on the spelled-out multiset: sorted ranks, then a two-pass Pearson.
    fn naive_spearman(x: &[f64], y: &[f64]) -> Option<f64> {
        let (rx, ry) = (sorted_ranks(x), sorted_ranks(y));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (mx, my) = (mean(&rx), mean(&ry));
        let sxy: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
        let syy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
        (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
    }

    /// AUC on the spelled-out multiset, every positive/negative pair counted.
    fn naive_auc(scores: &[f64], positive: &[f64]) -> Option<f64> {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (s, _) in scores.iter().zip(positive).filter(|(_, p)| **p == 1.0) {
            for (t, _) in scores.iter().zip(positive).filter(|(_, p)| **p == 0.0) {
                wins += if s > t {
                    1.0
                } else if s == t {
                    0.5
                } else {
                    0.0
                };
                pairs += 1.0;
            }
        }
        (pairs > 0.0).then(|| wins / pairs)
    }

    #[test]
    fn one_pass_statistics_equal_sorting_each_multiset() {
        let mut state = 11;
        for case in 0..300 {
            let n = 3 + case % 57;
            // Few distinct values on some cases, so ties of every size occur.
            let levels = [3.0, 8.0, 1e9][case % 3];
            let mut draw = |scale: f64| (uniform(&mut state) * scale).floor() / scale;
            let x: Vec<f64> = (0..n).map(|_| draw(levels)).collect();
            let y: Vec<f64> = (0..n).map(|_| draw(levels)).collect();
            let positive: Vec<f64> = (0..n).map(|_| f64::from(u8::from(uniform(&mut state) < 0.4))).collect();
            // A bootstrap resample's counts: n draws with replacement.
            let mut weights = vec![0u32; n];
            for _ in 0..n {
                weights[(uniform(&mut state) * n as f64) as usize] += 1;
            }
            let stat = WholeStat::new(MetricKind::Spearman, &y, &[&x]);
            let mut out = [None];
            stat.eval(&weights, &mut stat.scratch(), &mut out);
            let want = naive_spearman(&expand(&x, &weights), &expand(&y, &weights));
            match (out[0], want) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-12, "case {case}: {got} vs {want}"),
                (got, want) => assert_eq!(got, want, "case {case}: undefined on one side only"),
            }
            let got = weighted_auc(&Ranking::new(&x), &positive, &weights);
            let want = naive_auc(&expand(&x, &weights), &expand(&positive, &weights));
            match (got, want) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-12, "case {case}: {got} vs {want}"),
                (got, want) => assert_eq!(got, want, "case {case}: a class missing on one side only"),
            }
        }
    }

    #[test]
    fn influence_is_the_derivative_of_the_weighted_statistic() {
        // Item k's weight M +- 1 among weights M is the full set moved by
        // +-1/(nM +- 1) towards k, so a central difference of the exact
        // weighted statistic gives the influence to O(1/M^2).
        const M: u32 = 10_000;
        let mut state = 5;
        for case in 0..12 {
            let n = 9 + case * 3;
            // Coarse values on odd cases, so ties occur on both sides.
            let scale = if case % 2 == 1 { 4.0 } else { 1e9 };
            let mut draw = || (uniform(&mut state) * scale).floor();
            let x: Vec<f64> = (0..n).map(|_| draw()).collect();
            let y: Vec<f64> = x.iter().map(|v| v + draw()).collect();
            let labels: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
            for (kind, y) in [(MetricKind::Spearman, &y), (MetricKind::Pearson, &y), (MetricKind::Auc, &labels)] {
                let stat = WholeStat::new(kind, y, &[&x]);
                let at = |k: usize, w: u32| {
                    let mut weights = vec![M; n];
                    weights[k] = w;
                    let mut out = [None];
                    stat.eval(&weights, &mut stat.scratch(), &mut out);
                    out[0].unwrap()
                };
                let got = influence(kind, y, &x);
                let total = f64::from(M) * n as f64;
                for (k, &got) in got.iter().enumerate() {
                    let step = 1.0 / (total + 1.0) + 1.0 / (total - 1.0);
                    let want = (at(k, M + 1) - at(k, M - 1)) / step;
                    assert!(
                        (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "{kind} case {case} item {k}: {got} vs {want}"
                    );
                }
                assert!(got.iter().sum::<f64>().abs() < 1e-9, "{kind} case {case}: influences sum to zero");
            }
        }
    }

    #[test]
    fn weights_equal_duplicated_items() {
        let x = [0.3, 1.2, -0.5, 2.0, 0.9];
        let y = [1.0, 0.2, -1.0, 3.0, 0.1];
        let w = [2, 0, 1, 3, 1];
        let expand = |v: &[f64]| -> Vec<f64> {
            v.iter().zip(&w).flat_map(|(&a, &k)| std::iter::repeat_n(a, k as usize)).collect()
        };
        let (xe, ye) = (expand(&x), expand(&y));
        let weighted = weighted_pearson(&x, &y, &w).unwrap();
        let expanded = weighted_pearson(&xe, &ye, &vec![1; xe.len()]).unwrap();
        assert!((weighted - expanded).abs() < 1e-12);
    }

    #[test]
    fn constant_side_is_undefined() {
        assert_eq!(weighted_pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], &[1, 1, 1]), None);
        // Non-constant overall, constant among the items that carry weight.
        assert_eq!(weighted_pearson(&[1.0, 2.0, 1.0], &[1.0, 2.0, 3.0], &[1, 0, 1]), None);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        let scores = Ranking::new(&[0.1, 0.4, 0.4, 0.8]);
        let positive = [0.0, 0.0, 1.0, 1.0];
        // Pairs (pos, neg): (0.4 vs 0.1) win, (0.4 vs 0.4) half, (0.8 vs both) two wins.
        assert_eq!(weighted_auc(&scores, &positive, &[1, 1, 1, 1]), Some(3.5 / 4.0));
        assert_eq!(weighted_auc(&scores, &positive, &[0, 0, 1, 1]), None);
    }
}
