//! Rank and correlation statistics (Spearman, Pearson, ROC AUC) evaluated on a
//! *weighted* set of items, where item `i` counts `weights[i]` times.
//!
//! A bootstrap resample is a multiset of the original items, so it is fully
//! described by per-item counts. Sorting every value once up front and walking
//! that fixed order with the counts gives the resample's average ranks in O(n),
//! with no sort and no allocation per resample. The full set is the special case
//! of all weights 1, so `score` and the bootstrap share one implementation.
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
    /// Start of each run of equal values within `order`, then `order.len()`.
    bounds: Vec<usize>,
}

impl Ranking {
    pub(crate) fn new(values: &[f64]) -> Self {
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
        let mut bounds = Vec::with_capacity(values.len() + 1);
        for (k, &item) in order.iter().enumerate() {
            // `==` rather than total_cmp so that -0.0 and 0.0 tie, as they should.
            if k == 0 || values[order[k - 1] as usize] != values[item as usize] {
                bounds.push(k);
            }
        }
        bounds.push(order.len());
        Self { order, bounds }
    }

    /// Runs of tied items, in increasing value order.
    fn groups(&self) -> impl Iterator<Item = &[u32]> {
        self.bounds.windows(2).map(|w| &self.order[w[0]..w[1]])
    }

    /// 1-based average ranks within the multiset; ties share the mean of the
    /// positions they occupy, duplicates of one item included.
    pub(crate) fn ranks_into(&self, weights: &[u32], out: &mut [f64]) {
        let mut before = 0.0;
        for group in self.groups() {
            let weight: f64 = group.iter().map(|&i| f64::from(weights[i as usize])).sum();
            let rank = before + (weight + 1.0) / 2.0;
            for &i in group {
                out[i as usize] = rank;
            }
            before += weight;
        }
    }
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
pub(crate) fn weighted_auc(scores: &Ranking, positive: &[bool], weights: &[u32]) -> Option<f64> {
    let (mut negatives_below, mut wins) = (0.0, 0.0);
    let mut positives = 0.0;
    for group in scores.groups() {
        let (mut pos, mut neg) = (0.0, 0.0);
        for &i in group {
            let w = f64::from(weights[i as usize]);
            if positive[i as usize] {
                pos += w;
            } else {
                neg += w;
            }
        }
        wins += pos * (negatives_below + 0.5 * neg);
        negatives_below += neg;
        positives += pos;
    }
    (positives > 0.0 && negatives_below > 0.0).then(|| wins / (positives * negatives_below))
}

/// A whole-set statistic (spearman, pearson or auc) prepared once for several
/// prediction vectors against the same labels; immutable, so threads share it.
#[derive(Debug)]
pub(crate) struct WholeStat<'a> {
    kind: MetricKind,
    y_true: &'a [f64],
    y_ranking: Option<Ranking>,
    positive: Vec<bool>,
    preds: Vec<(&'a [f64], Option<Ranking>)>,
}

/// Per-thread buffers for [`WholeStat::eval`], reused across resamples.
#[derive(Debug, Default)]
pub(crate) struct RankScratch {
    y_ranks: Vec<f64>,
    p_ranks: Vec<f64>,
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
            positive: y_true.iter().map(|&y| y == 1.0).collect(),
            preds,
        }
    }

    pub(crate) fn scratch(&self) -> RankScratch {
        let n = if self.kind == MetricKind::Spearman { self.y_true.len() } else { 0 };
        RankScratch { y_ranks: vec![0.0; n], p_ranks: vec![0.0; n] }
    }

    /// The statistic of each prediction vector on the weighted items, in the
    /// order given to `new`; `None` where it is undefined on this multiset.
    pub(crate) fn eval(&self, weights: &[u32], scratch: &mut RankScratch, out: &mut [Option<f64>]) {
        if let Some(ranking) = &self.y_ranking {
            ranking.ranks_into(weights, &mut scratch.y_ranks);
        }
        for ((pred, ranking), slot) in self.preds.iter().zip(out.iter_mut()) {
            *slot = match (self.kind, ranking) {
                (MetricKind::Auc, Some(r)) => weighted_auc(r, &self.positive, weights),
                (MetricKind::Spearman, Some(r)) => {
                    r.ranks_into(weights, &mut scratch.p_ranks);
                    weighted_pearson(&scratch.p_ranks, &scratch.y_ranks, weights)
                }
                _ => weighted_pearson(pred, self.y_true, weights),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_share_tied_positions() {
        let r = Ranking::new(&[3.0, 1.0, 2.0, 2.0]);
        let mut out = [0.0; 4];
        r.ranks_into(&[1, 1, 1, 1], &mut out);
        assert_eq!(out, [4.0, 1.0, 2.5, 2.5]);
        // Item 1 twice, item 2 once, items 0 and 3 absent: the multiset {1, 1, 2}.
        r.ranks_into(&[0, 2, 1, 0], &mut out);
        // The 1s share positions 1 and 2; the 2 sits at 3, and so would its absent twin.
        assert_eq!((out[1], out[2], out[3]), (1.5, 3.0, 3.0));
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
        let positive = [false, false, true, true];
        // Pairs (pos, neg): (0.4 vs 0.1) win, (0.4 vs 0.4) half, (0.8 vs both) two wins.
        assert_eq!(weighted_auc(&scores, &positive, &[1, 1, 1, 1]), Some(3.5 / 4.0));
        assert_eq!(weighted_auc(&scores, &positive, &[0, 0, 1, 1]), None);
    }
}
