//! Causality probes for language models, run by the harness on the leaf's own
//! `infer` as a black box.
//!
//! A model that reads the byte it predicts scores near zero bits and is
//! worthless. The probe takes a few validation rows and makes for each a twin:
//! the same bytes up to a random cut, then the bytes of another validation row
//! from the cut on, so both are real text and neither can be told from the
//! other. Originals and twins, shuffled, go to `infer` in a fresh process that
//! shares no memory and no files with the one that produced the scored outputs.
//! The outputs must hold two equalities, up to [`TOLERANCE`] nats in every
//! log-probability: an original's outputs equal the scored run's outputs for
//! the same row (so a model cannot be causal only when probed), and a twin's
//! outputs before the cut equal its original's (so nothing before the cut saw
//! what came after it). A model that fails either is refused.

use std::path::Path;

use anyhow::{Context as _, Result};
use ndarray::{Array2, ArrayD, Axis};
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::gate::lm::log_softmax;

/// Rows probed: enough that a model cheating on some rows is caught, few
/// enough to cost a fraction of the evaluation.
pub const ROWS: usize = 8;
/// Largest difference in any log-probability (nats) still taken as equal:
/// far above float32 noise between batch shapes, far below what reading the
/// next byte gains (several bits).
pub const TOLERANCE: f64 = 0.01;

/// Token rows with their dtype kept, so probes look like the real inputs.
#[derive(Debug, Clone)]
pub enum Tokens {
    U8(Array2<u8>),
    I64(Array2<i64>),
}

impl Tokens {
    pub fn read(path: &Path) -> Result<Self> {
        if let Ok(a) = ndarray_npy::read_npy::<_, Array2<u8>>(path) {
            return Ok(Self::U8(a));
        }
        let a = ndarray_npy::read_npy::<_, Array2<i64>>(path).with_context(|| {
            format!("causal probes need integer token rows (N, T) as .npy (uint8 or int64): `{}`", path.display())
        })?;
        Ok(Self::I64(a))
    }

    fn rows(&self) -> usize {
        match self {
            Self::U8(a) => a.nrows(),
            Self::I64(a) => a.nrows(),
        }
    }

    fn width(&self) -> usize {
        match self {
            Self::U8(a) => a.ncols(),
            Self::I64(a) => a.ncols(),
        }
    }

    /// Rows `order` of `self`, where an entry `(row, Some((cut, donor)))` takes
    /// the donor's tokens from `cut` on.
    fn assemble(&self, order: &[(usize, Option<(usize, usize)>)]) -> Self {
        fn build<T: Copy>(a: &Array2<T>, order: &[(usize, Option<(usize, usize)>)]) -> Array2<T> {
            let mut out = Array2::from_elem((order.len(), a.ncols()), a[[0, 0]]);
            for (i, &(row, twin)) in order.iter().enumerate() {
                out.row_mut(i).assign(&a.row(row));
                if let Some((cut, donor)) = twin {
                    for t in cut..a.ncols() {
                        out[[i, t]] = a[[donor, t]];
                    }
                }
            }
            out
        }
        match self {
            Self::U8(a) => Self::U8(build(a, order)),
            Self::I64(a) => Self::I64(build(a, order)),
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        match self {
            Self::U8(a) => ndarray_npy::write_npy(path, a)?,
            Self::I64(a) => ndarray_npy::write_npy(path, a)?,
        }
        Ok(())
    }

    fn same_suffix(&self, a: usize, b: usize, cut: usize) -> bool {
        match self {
            Self::U8(x) => (cut..x.ncols()).all(|t| x[[a, t]] == x[[b, t]]),
            Self::I64(x) => (cut..x.ncols()).all(|t| x[[a, t]] == x[[b, t]]),
        }
    }
}

/// Which probe row stands for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The validation row probed.
    pub row: usize,
    /// Where its copy and its twin sit in the probe batch.
    pub original_at: usize,
    pub twin_at: usize,
    /// The twin differs from the original from this position on.
    pub cut: usize,
}

/// The probe batch for `val` (seeded, so a run's probes can be reproduced).
pub fn plan(val: &Tokens, seed: u64) -> Result<(Tokens, Vec<Pair>)> {
    let (n, width) = (val.rows(), val.width());
    anyhow::ensure!(n >= 2 && width >= 2, "causal probes need at least 2 rows of 2 tokens, got {n} x {width}");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut rng);
    let mut entries = Vec::new();
    for &row in rows.iter().take(ROWS.min(n)) {
        let cut = rng.random_range(1..width);
        let donors: Vec<usize> = (0..n).filter(|&d| d != row && !val.same_suffix(row, d, cut)).collect();
        let Some(&donor) = donors.get(rng.random_range(0..donors.len().max(1))) else { continue };
        entries.push((row, None));
        entries.push((row, Some((cut, donor))));
    }
    anyhow::ensure!(!entries.is_empty(), "no row of the validation inputs has a distinct suffix to probe with");
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.shuffle(&mut rng);
    let shuffled: Vec<(usize, Option<(usize, usize)>)> = order.iter().map(|&i| entries[i]).collect();
    let mut pairs = Vec::new();
    for (i, &(row, twin)) in shuffled.iter().enumerate() {
        if let Some((cut, _)) = twin {
            let original_at =
                shuffled.iter().position(|&(r, t)| r == row && t.is_none()).expect("each twin has its original");
            pairs.push(Pair { row, original_at, twin_at: i, cut });
        }
    }
    pairs.sort_by_key(|p| p.row);
    Ok((val.assemble(&shuffled), pairs))
}

/// `None` when the probe outputs hold both equalities, else what failed.
pub fn check(scored: &ArrayD<f32>, probed: &ArrayD<f32>, pairs: &[Pair]) -> Option<String> {
    if scored.ndim() < 2 || probed.ndim() != scored.ndim() || scored.shape()[1..] != probed.shape()[1..] {
        return Some(format!(
            "the probe outputs have shape {:?}, the scored outputs {:?}: they must agree but for the rows",
            probed.shape(),
            scored.shape()
        ));
    }
    for pair in pairs {
        let original = scored.index_axis(Axis(0), pair.row);
        let copy = probed.index_axis(Axis(0), pair.original_at);
        let twin = probed.index_axis(Axis(0), pair.twin_at);
        let positions = original.shape()[0];
        if let Some((t, d)) = first_difference(&original, &copy, positions) {
            return Some(format!(
                "the model's outputs for validation row {} differ between two runs of infer on the same input \
                 (position {t}, {d:.3} nats): outputs must depend on the input alone",
                pair.row
            ));
        }
        if let Some((t, d)) = first_difference(&original, &twin, pair.cut) {
            return Some(format!(
                "the model is not causal: changing validation row {} from position {} on changed its outputs at \
                 position {t} ({d:.3} nats), before the change",
                pair.row, pair.cut
            ));
        }
    }
    None
}

/// The first of the first `upto` positions whose log-probabilities differ by more than the tolerance.
fn first_difference(a: &ndarray::ArrayViewD<f32>, b: &ndarray::ArrayViewD<f32>, upto: usize) -> Option<(usize, f64)> {
    let vocab = a.len() / a.shape()[0].max(1);
    let (flat_a, flat_b): (Vec<f32>, Vec<f32>) = (a.iter().copied().collect(), b.iter().copied().collect());
    let (mut la, mut lb) = (vec![0.0; vocab], vec![0.0; vocab]);
    for t in 0..upto {
        let range = t * vocab..(t + 1) * vocab;
        if vocab > 1 {
            log_softmax(&flat_a[range.clone()], &mut la);
            log_softmax(&flat_b[range], &mut lb);
        } else {
            (la[0], lb[0]) = (flat_a[t] as f64, flat_b[t] as f64);
        }
        let d = la.iter().zip(&lb).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        if d.is_nan() || d > TOLERANCE {
            return Some((t, d));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// A toy model over bytes: logits at t from the inputs at `0..=t`, or, when `peek`, also at t+1.
    fn model(inputs: &Array2<u8>, peek: bool) -> ArrayD<f32> {
        let (n, w) = inputs.dim();
        let mut out = Array3::<f32>::zeros((n, w, 4));
        for r in 0..n {
            let mut sum = 0.0;
            for t in 0..w {
                sum += inputs[[r, t]] as f32;
                let seen = if peek && t + 1 < w { sum + inputs[[r, t + 1]] as f32 * 3.0 } else { sum };
                for v in 0..4 {
                    out[[r, t, v]] = (seen * (v as f32 + 1.0)).sin();
                }
            }
        }
        out.into_dyn()
    }

    fn val() -> Array2<u8> {
        Array2::from_shape_fn((12, 16), |(r, t)| ((r * 31 + t * 7) % 251) as u8)
    }

    #[test]
    fn a_causal_model_passes_and_one_that_peeks_is_caught() {
        let val = val();
        let (probe, pairs) = plan(&Tokens::U8(val.clone()), 7).unwrap();
        let Tokens::U8(batch) = &probe else { panic!("dtype kept") };
        assert_eq!(batch.nrows(), 2 * ROWS);
        assert_eq!(check(&model(&val, false), &model(batch, false), &pairs), None);
        let caught = check(&model(&val, true), &model(batch, true), &pairs).unwrap();
        assert!(caught.contains("not causal"), "{caught}");
    }

    #[test]
    fn a_model_causal_only_when_probed_is_caught_by_the_copy() {
        let val = val();
        let (probe, pairs) = plan(&Tokens::U8(val.clone()), 3).unwrap();
        let Tokens::U8(batch) = &probe else { panic!() };
        let caught = check(&model(&val, true), &model(batch, false), &pairs).unwrap();
        assert!(caught.contains("differ between two runs"), "{caught}");
    }
}
