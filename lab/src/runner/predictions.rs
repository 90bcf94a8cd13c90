//! Predictions mode, the supervisor's half: where prepared data is cached, and
//! scoring predictions against labels the supervisor reads itself.
//!
//! The frozen `data(lab)` runs in a "prepare" worker whose output lands in
//! `.lab/data/<leaf>/<lock>/`, keyed by the leaf.lock fingerprint so it is
//! reused while the frozen files are unchanged and remade when they change. It
//! is written into a temporary directory and renamed into place with a
//! `complete` marker, so a killed preparation never leaves a half cache.
//!
//! Only the **val** split is scored here; holdout predictions are fingerprinted
//! and stored, never read by a keep decision. Residual risk, stated plainly: the
//! labels are files on the same disk, and a hostile `predict` could open them.
//! What the harness guarantees is that the number is computed by the harness,
//! from prediction files it fingerprints, against labels the frozen code made.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ndarray::{Array1, ArrayD};
use serde_json::Map;

use super::outcome::ExitReason;
use super::protocol::prepared;
use crate::fingerprint;
use crate::gate::{self, MetricError, MetricKind};
use crate::leaf::manifest::MetricSpec;
use crate::store::runs::RunFile;

/// `.lab/data/<leaf>/<first 16 hex of the lock fingerprint>/`.
pub fn prepared_dir(leaf_data_dir: &Path, lock_sha256: &str) -> PathBuf {
    leaf_data_dir.join(&lock_sha256[..lock_sha256.len().min(16)])
}

pub fn is_prepared(dir: &Path) -> bool {
    dir.join(prepared::COMPLETE).is_file()
}

/// A fresh directory to prepare into, beside `dir`.
pub fn staging_dir(dir: &Path) -> Result<PathBuf> {
    let parent = dir.parent().context("prepared directory has no parent")?;
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(format!(".staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| format!("cannot create `{}`", staging.display()))?;
    Ok(staging)
}

/// Mark `staging` complete and move it to `dir`. Another run may have finished
/// first: then its directory stays and ours goes.
pub fn publish(staging: &Path, dir: &Path) -> Result<()> {
    std::fs::write(staging.join(prepared::COMPLETE), "")?;
    if std::fs::rename(staging, dir).is_err() && is_prepared(dir) {
        let _ = std::fs::remove_dir_all(staging);
        return Ok(());
    }
    if !is_prepared(dir) {
        anyhow::bail!("cannot move prepared data into `{}`", dir.display());
    }
    Ok(())
}

/// What scoring found: metrics (primary first) and the fingerprinted files.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    pub metrics: Map<String, serde_json::Value>,
    pub files: Vec<RunFile>,
}

pub type Failure = (ExitReason, String);

/// Score `run_dir/predictions/val.npy` against the prepared val labels on the
/// primary metric and `metric.also`; fingerprint every predictions file and the
/// labels; write the primary metric's per-sample errors for the gate.
pub fn score(metric: &MetricSpec, prepared: &Path, run_dir: &Path) -> Result<Result<Scored, Failure>> {
    let mut scored = Scored::default();
    let predictions_dir = run_dir.join("predictions");
    let mut saved: Vec<PathBuf> =
        std::fs::read_dir(&predictions_dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    saved.sort();
    for path in saved {
        if path.extension().is_some_and(|e| e == "npy") {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let len = read_flat(&path).ok().map(|a| a.len());
            scored.files.push(file_record("predictions", name, &path, len)?);
        }
    }
    for split in prepared::SPLITS {
        let path = prepared.join(prepared::labels(split));
        if path.is_file() {
            let len = read_flat(&path).ok().map(|a| a.len());
            scored.files.push(file_record("labels", split.to_owned(), &path, len)?);
        }
    }
    let labels = read_flat(&prepared.join(prepared::labels("val"))).context("cannot read the val labels")?;
    let Ok(predictions) = read_flat(&predictions_dir.join("val.npy")) else {
        return Ok(Err((ExitReason::InvalidOutput, "no readable predictions for `val`".to_owned())));
    };
    let (y, p) = (labels.as_slice().unwrap_or_default(), predictions.as_slice().unwrap_or_default());
    for name in std::iter::once(&metric.name).chain(&metric.also) {
        let kind: MetricKind = match name.parse() {
            Ok(kind) => kind,
            Err(e) => return Ok(Err((ExitReason::InvalidOutput, format!("{e}")))),
        };
        match gate::score(kind, y, p) {
            Ok(value) => {
                scored.metrics.insert(name.clone(), super::protocol::encode_number(value));
            }
            Err(e) => return Ok(Err(metric_failure(name, &e))),
        }
    }
    let primary: MetricKind = metric.name.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Ok(errors) = gate::per_sample_errors(primary, y, p) {
        let path = run_dir.join("errors").join("val.npy");
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        ndarray_npy::write_npy(&path, &Array1::from(errors))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        scored.files.push(file_record("errors", "val".to_owned(), &path, Some(y.len()))?);
    }
    Ok(Ok(scored))
}

fn metric_failure(name: &str, e: &MetricError) -> Failure {
    let reason = match e {
        MetricError::NonFinite { .. } => ExitReason::NonFiniteMetric,
        _ => ExitReason::InvalidOutput,
    };
    (reason, format!("cannot score `{name}` on val: {e}"))
}

/// A .npy array as a flat float64 vector; shapes `(n,)` and `(n, 1)` only.
pub fn read_flat(path: &Path) -> Result<Array1<f64>> {
    let array: ArrayD<f64> =
        ndarray_npy::read_npy(path).with_context(|| format!("cannot read `{}` as float64 .npy", path.display()))?;
    let shape = array.shape().to_vec();
    match shape.as_slice() {
        [_] | [_, 1] => Ok(array.iter().copied().collect()),
        other => anyhow::bail!("`{}` has shape {other:?}; expected one value per item", path.display()),
    }
}

fn file_record(kind: &'static str, name: String, path: &Path, len: Option<usize>) -> Result<RunFile> {
    let sha256 = fingerprint::sha256_file(path).with_context(|| format!("cannot fingerprint `{}`", path.display()))?;
    Ok(RunFile { kind, name, path: path.display().to_string(), sha256, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Goal;

    fn spec(name: &str, also: &[&str]) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            goal: Goal::Minimize,
            unit: String::new(),
            also: also.iter().map(|s| (*s).to_owned()).collect(),
            guards: Vec::new(),
        }
    }

    fn setup(labels: &[f64], predictions: &[f64]) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let (prepared, run) = (tmp.path().join("prep"), tmp.path().join("run"));
        std::fs::create_dir_all(run.join("predictions")).unwrap();
        std::fs::create_dir_all(&prepared).unwrap();
        ndarray_npy::write_npy(prepared.join("val_labels.npy"), &Array1::from(labels.to_vec())).unwrap();
        ndarray_npy::write_npy(run.join("predictions/val.npy"), &Array1::from(predictions.to_vec())).unwrap();
        (tmp, prepared, run)
    }

    #[test]
    fn val_predictions_are_scored_with_errors_and_fingerprints() {
        let (_tmp, prepared, run) = setup(&[1.0, 2.0, 3.0, 4.0], &[1.5, 2.0, 2.0, 4.0]);
        let scored = score(&spec("mae", &["rmse"]), &prepared, &run).unwrap().unwrap();
        assert_eq!(scored.metrics.get("mae").unwrap().as_f64(), Some(0.375));
        assert!(scored.metrics.contains_key("rmse"));
        let kinds: Vec<_> = scored.files.iter().map(|f| (f.kind, f.name.as_str(), f.len)).collect();
        assert_eq!(kinds, [("predictions", "val", Some(4)), ("labels", "val", Some(4)), ("errors", "val", Some(4))]);
        assert!(scored.files.iter().all(|f| f.sha256.len() == 64));
    }

    #[test]
    fn bad_predictions_are_a_recorded_failure_not_an_error() {
        let (_tmp, prepared, run) = setup(&[1.0, 2.0, 3.0], &[1.0, f64::NAN, 3.0]);
        let (reason, detail) = score(&spec("mae", &[]), &prepared, &run).unwrap().unwrap_err();
        assert_eq!(reason, ExitReason::NonFiniteMetric, "{detail}");
        let (_tmp, prepared, run) = setup(&[1.0, 2.0, 3.0], &[1.0, 2.0]);
        let (reason, detail) = score(&spec("mae", &[]), &prepared, &run).unwrap().unwrap_err();
        assert_eq!(reason, ExitReason::InvalidOutput);
        assert!(detail.contains("3 labels but 2 predictions"), "{detail}");
    }
}
