//! Language-model scores from logits: bits per byte per item, and the distance
//! between two rows of log-probabilities that the causality probes compare.
//!
//! Invariants: the log-softmax is taken here, never trusted from the model (an
//! unnormalised output cannot buy a better score); a non-finite logit or a
//! target outside the vocabulary is an error, not a NaN.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum LmError {
    #[error("logits have {got} values; {rows} rows x {positions} positions x {vocab} tokens need {expected}")]
    Shape { got: usize, rows: usize, positions: usize, vocab: usize, expected: usize },
    #[error("target {target} at item {row}, position {position} is outside the vocabulary of {vocab}")]
    Target { target: i64, row: usize, position: usize, vocab: usize },
    #[error("a logit at item {row}, position {position} is not finite")]
    NonFinite { row: usize, position: usize },
}

/// The log-softmax of one position's logits, into `out`.
pub fn log_softmax(logits: &[f32], out: &mut [f64]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let log_sum = max + sum.ln();
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = x as f64 - log_sum;
    }
}

/// Per item, the mean over its `positions` of -log2 softmax(logits)[target].
/// `logits` is `(rows, positions, vocab)` and `targets` `(rows, positions)`, flat.
/// Items are split over the machine's cores.
pub fn bits_per_byte(logits: &[f32], targets: &[i64], rows: usize, vocab: usize) -> Result<Vec<f64>, LmError> {
    let positions = targets.len().checked_div(rows).unwrap_or(0);
    let expected = rows * positions * vocab;
    if logits.len() != expected || targets.len() != rows * positions || vocab == 0 {
        return Err(LmError::Shape { got: logits.len(), rows, positions, vocab, expected });
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, rows.max(1));
    let per = rows.div_ceil(threads).max(1);
    let mut out = vec![0.0; rows];
    std::thread::scope(|scope| {
        let handles: Vec<_> = out
            .chunks_mut(per)
            .enumerate()
            .map(|(chunk, slots)| {
                scope.spawn(move || {
                    for (i, slot) in slots.iter_mut().enumerate() {
                        let row = chunk * per + i;
                        *slot = row_bits(logits, targets, row, positions, vocab)?;
                    }
                    Ok::<(), LmError>(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("scoring threads do not panic"))
    })?;
    Ok(out)
}

fn row_bits(logits: &[f32], targets: &[i64], row: usize, positions: usize, vocab: usize) -> Result<f64, LmError> {
    let mut nats = 0.0;
    for position in 0..positions {
        let target = targets[row * positions + position];
        if target < 0 || target as usize >= vocab {
            return Err(LmError::Target { target, row, position, vocab });
        }
        let at = (row * positions + position) * vocab;
        let slice = &logits[at..at + vocab];
        let max = slice.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() || slice.iter().any(|x| !x.is_finite()) {
            return Err(LmError::NonFinite { row, position });
        }
        let sum: f32 = slice.iter().map(|&x| (x - max).exp()).sum();
        nats += (max as f64 + (sum as f64).ln()) - slice[target as usize] as f64;
    }
    Ok(nats / positions.max(1) as f64 / std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_cost_eight_bits_a_byte_and_a_sure_model_none() {
        let (rows, positions, vocab) = (3, 4, 256);
        let targets: Vec<i64> = (0..rows * positions).map(|i| (i * 7 % vocab) as i64).collect();
        let uniform = vec![0.5f32; rows * positions * vocab];
        for bits in bits_per_byte(&uniform, &targets, rows, vocab).unwrap() {
            assert!((bits - 8.0).abs() < 1e-9, "{bits}");
        }
        let mut sure = vec![-1e4f32; rows * positions * vocab];
        for (i, &t) in targets.iter().enumerate() {
            sure[i * vocab + t as usize] = 1e4;
        }
        assert!(bits_per_byte(&sure, &targets, rows, vocab).unwrap().iter().all(|&b| b < 1e-9));
    }

    #[test]
    fn unnormalised_logits_earn_nothing_and_bad_inputs_are_errors() {
        let targets = vec![1i64, 0];
        let a = bits_per_byte(&[0.0, 1.0, 2.0, 0.0], &targets, 1, 2).unwrap();
        let b = bits_per_byte(&[100.0, 101.0, 102.0, 100.0], &targets, 1, 2).unwrap();
        assert!((a[0] - b[0]).abs() < 1e-9, "a constant shift changes nothing");
        assert!(matches!(bits_per_byte(&[0.0; 3], &targets, 1, 2), Err(LmError::Shape { .. })));
        assert!(matches!(bits_per_byte(&[0.0; 4], &[2, 0], 1, 2), Err(LmError::Target { .. })));
        assert!(matches!(bits_per_byte(&[f32::NAN, 0.0, 0.0, 0.0], &targets, 1, 2), Err(LmError::NonFinite { .. })));
    }

    #[test]
    fn log_softmax_normalises() {
        let mut out = [0.0; 3];
        log_softmax(&[1.0, 2.0, 3.0], &mut out);
        let total: f64 = out.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}
