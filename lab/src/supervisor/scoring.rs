//! The harness's scoring: outputs of the code under judgement against targets
//! only the supervisor (and frozen scorers) read, into metrics and per-item scores.
//!
//! Predictions mode scores the **val** split only; holdout predictions are
//! fingerprinted and stored, never read by a keep decision (`lab holdout` scores
//! them). Artifact mode scores val and holdout per item; the holdout metrics
//! are sealed (only `lab holdout` and `lab checkpoint` read them). Outputs are
//! read as `.npy` (any numeric dtype) or JSON, never unpickled: they come from
//! code that may be hostile. Every file the score rests on is fingerprinted.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ndarray::{Array1, ArrayD};
use serde_json::{Map, Value};

use super::outcome::ExitReason;
use super::prepared::{Prepared, SCORED};
use super::protocol::encode_number;
use crate::fingerprint;
use crate::gate::{self, MetricError, MetricKind, Scorer, lm};
use crate::leaf::manifest::MetricSpec;
use crate::store::records::Metrics;
use crate::store::runs::RunFile;

/// Why scoring refused the outputs: recorded as the run's crash.
pub type Failure = (ExitReason, String);

/// What scoring found: val metrics (primary first), sealed holdout metrics, and the fingerprinted files.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    pub metrics: Metrics,
    pub holdout: Option<Metrics>,
    pub files: Vec<RunFile>,
}

/// Predictions mode: `out/val.npy` against the val targets on the primary
/// metric and `metric.also`; every predictions file and the targets
/// fingerprinted; the primary metric's per-sample errors written for the gate.
pub fn score_predictions(
    metric: &MetricSpec,
    prepared: &Prepared,
    out: &Path,
    scores: &Path,
) -> Result<Result<Scored, Failure>> {
    let mut scored = Scored::default();
    for (split, path) in saved_outputs(out) {
        let len = read_flat(&path).ok().map(|a| a.len());
        scored.files.push(file_record("predictions", split, &path, len)?);
    }
    record_targets(prepared, &mut scored)?;
    let labels_path = prepared.targets("val").context("the prepared data has no val targets")?;
    let labels = read_flat(&labels_path).context("cannot read the val targets")?;
    let Ok(predictions) = read_flat(&out.join("val.npy")) else {
        return Ok(Err((ExitReason::InvalidOutput, "no readable predictions for `val`".to_owned())));
    };
    let (y, p) = (labels.as_slice().unwrap_or_default(), predictions.as_slice().unwrap_or_default());
    for name in std::iter::once(metric.kind()).chain(metric.also.iter().map(String::as_str)) {
        let kind: MetricKind = match name.parse() {
            Ok(kind) => kind,
            Err(e) => return Ok(Err((ExitReason::InvalidOutput, format!("{e}")))),
        };
        match gate::score(kind, y, p) {
            Ok(value) => {
                let key = if name == metric.kind() { metric.name.clone() } else { name.to_owned() };
                scored.metrics.insert(key, encode_number(value));
            }
            Err(e) => return Ok(Err(metric_failure(name, "val", &e))),
        }
    }
    let primary: MetricKind = metric.kind().parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Ok(errors) = gate::per_sample_errors(primary, y, p) {
        let path = scores.join("val.npy");
        std::fs::create_dir_all(scores)?;
        ndarray_npy::write_npy(&path, &Array1::from(errors))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        scored.files.push(file_record("errors", "val".to_owned(), &path, Some(y.len()))?);
    }
    Ok(Ok(scored))
}

/// Artifact mode scored by the harness: `scorer` per item on every scored
/// split that has outputs and targets.
pub fn score_outputs(
    metric: &MetricSpec,
    scorer: Scorer,
    prepared: &Prepared,
    out: &Path,
    scores: &Path,
) -> Result<Result<Scored, Failure>> {
    let mut per_split = Vec::new();
    for split in SCORED {
        let Some(targets) = prepared.targets(split) else { continue };
        let output = out.join(format!("{split}.npy"));
        match items(scorer, &output, &targets, split)? {
            Ok(values) => per_split.push((split, Map::from_iter([(metric.name.clone(), values)]))),
            Err(failure) => return Ok(Err(failure)),
        }
    }
    finish(metric, prepared, out, scores, per_split)
}

/// One split's per-item scores by the harness's `scorer`, as a JSON list (`lab verify` recomputes them).
pub fn items(scorer: Scorer, output: &Path, targets: &Path, split: &str) -> Result<Result<Value, Failure>> {
    match scorer {
        Scorer::BitsPerByte => bits_per_byte(output, targets, split),
        Scorer::Paired(kind) => paired(kind, output, targets, split),
    }
}

/// The mean of a JSON list of per-item numbers.
pub fn mean_of(list: &Value) -> Option<f64> {
    let values = list.as_array().filter(|a| !a.is_empty())?;
    let sum: Option<f64> = values.iter().map(super::protocol::decode_number).sum();
    sum.map(|s| s / values.len() as f64)
}

/// Artifact mode scored by a frozen `score`: its `<split>.json` files in `from`,
/// each `{metric: [one number per item]}`.
pub fn read_scores(
    metric: &MetricSpec,
    prepared: &Prepared,
    out: &Path,
    from: &Path,
    scores: &Path,
) -> Result<Result<Scored, Failure>> {
    let mut per_split = Vec::new();
    for split in SCORED.into_iter().filter(|s| prepared.targets(s).is_some()) {
        let path = from.join(format!("{split}.json"));
        let Ok(value) = std::fs::read(&path).map_err(anyhow::Error::from).and_then(|b| Ok(serde_json::from_slice(&b)?))
        else {
            return Ok(Err((
                ExitReason::InvalidOutput,
                format!("the frozen score wrote no readable scores for `{split}`"),
            )));
        };
        let Value::Object(lists) = value else {
            return Ok(Err((
                ExitReason::InvalidOutput,
                format!("score must return a dict of per-item lists for `{split}`"),
            )));
        };
        per_split.push((split, lists));
    }
    finish(metric, prepared, out, scores, per_split)
}

/// Per-item lists per split -> checked means, files written and fingerprinted.
fn finish(
    metric: &MetricSpec,
    prepared: &Prepared,
    out: &Path,
    scores: &Path,
    per_split: Vec<(&str, Map<String, Value>)>,
) -> Result<Result<Scored, Failure>> {
    let mut scored = Scored::default();
    for (split, path) in saved_outputs(out) {
        scored.files.push(file_record("outputs", split, &path, None)?);
    }
    record_targets(prepared, &mut scored)?;
    std::fs::create_dir_all(scores)?;
    let reference = reference(prepared);
    for (split, lists) in per_split {
        let means = match means(&lists, &metric.name, split) {
            Ok(means) => means,
            Err(failure) => return Ok(Err(failure)),
        };
        let n = lists.get(&metric.name).and_then(Value::as_array).map(Vec::len);
        let path = scores.join(format!("{split}.json"));
        std::fs::write(&path, serde_json::to_vec(&Value::Object(lists))?)?;
        scored.files.push(file_record("scores", split.to_owned(), &path, n)?);
        let mut metrics = means;
        if let Some(Value::Object(extra)) = reference.get(split) {
            for (k, v) in extra {
                metrics.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if split == "val" { scored.metrics = metrics } else { scored.holdout = Some(metrics) }
    }
    if scored.metrics.is_empty() {
        return Ok(Err((ExitReason::InvalidOutput, "the prepared data has no val targets to score".to_owned())));
    }
    Ok(Ok(scored))
}

/// Each list's mean, the primary metric first; every value must be a finite number.
fn means(lists: &Map<String, Value>, primary: &str, split: &str) -> Result<Metrics, Failure> {
    let Some(first) = lists.get(primary) else {
        let got: Vec<&str> = lists.keys().map(String::as_str).collect();
        let got = if got.is_empty() { "none".to_owned() } else { got.join(", ") };
        return Err((ExitReason::MissingMetric, format!("no `{primary}` was scored on {split} (scored: {got})")));
    };
    let mut metrics = Metrics::new();
    for (name, list) in std::iter::once((primary, first))
        .chain(lists.iter().filter(|(k, _)| *k != primary).map(|(k, v)| (k.as_str(), v)))
    {
        let Some(values) = list.as_array().filter(|a| !a.is_empty()) else {
            return Err((ExitReason::InvalidOutput, format!("`{name}` on {split} is not a non-empty list of numbers")));
        };
        let mut sum = 0.0;
        for (i, v) in values.iter().enumerate() {
            match super::protocol::decode_number(v) {
                Some(x) if x.is_finite() => sum += x,
                Some(x) => {
                    return Err((ExitReason::NonFiniteMetric, format!("`{name}` on {split} is {x} at item {i}")));
                }
                None => {
                    return Err((
                        ExitReason::InvalidOutput,
                        format!("`{name}` on {split} is not a number at item {i}: {v}"),
                    ));
                }
            }
        }
        metrics.insert(name.to_owned(), encode_number(sum / values.len() as f64));
    }
    Ok(metrics)
}

fn bits_per_byte(output: &Path, targets: &Path, split: &str) -> Result<Result<Value, Failure>> {
    let Ok(logits) = read_logits(output) else {
        return Ok(Err((
            ExitReason::InvalidOutput,
            format!("no readable float logits for `{split}` (an .npy of shape (N, T, V))"),
        )));
    };
    let targets: ArrayD<f64> = read_array(targets).context("cannot read the targets")?;
    let (shape, t_shape) = (logits.shape().to_vec(), targets.shape().to_vec());
    if shape.len() != 3 || t_shape.len() != 2 || shape[..2] != t_shape[..] {
        return Ok(Err((
            ExitReason::InvalidOutput,
            format!(
                "logits for `{split}` have shape {shape:?}; targets are {t_shape:?}, so (N, T, V) with N, T = {t_shape:?} was expected"
            ),
        )));
    }
    let ids: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let flat: Vec<f32> = logits.iter().copied().collect();
    match lm::bits_per_byte(&flat, &ids, shape[0], shape[2]) {
        Ok(bits) => Ok(Ok(Value::Array(bits.into_iter().map(encode_number).collect()))),
        Err(e) => Ok(Err((
            if matches!(e, lm::LmError::NonFinite { .. }) {
                ExitReason::NonFiniteMetric
            } else {
                ExitReason::InvalidOutput
            },
            format!("cannot score `{split}`: {e}"),
        ))),
    }
}

/// A paired metric per item where it decomposes (else the whole-sample value for every item).
fn paired(kind: MetricKind, output: &Path, targets: &Path, split: &str) -> Result<Result<Value, Failure>> {
    let Ok(p) = read_flat(output) else {
        return Ok(Err((
            ExitReason::InvalidOutput,
            format!("no readable outputs for `{split}` (one number per item)"),
        )));
    };
    let y = read_flat(targets).context("cannot read the targets")?;
    let (y, p) = (y.as_slice().unwrap_or_default(), p.as_slice().unwrap_or_default());
    let whole = match gate::score(kind, y, p) {
        Ok(v) => v,
        Err(e) => return Ok(Err(metric_failure(kind.name(), split, &e))),
    };
    // Items whose mean is the metric (mae, mse, accuracy); the rest keep the whole-sample value.
    let items = if Scorer::Paired(kind).is_item_mean() {
        gate::per_sample_errors(kind, y, p)
            .map(|e| if kind == MetricKind::Accuracy { e.iter().map(|x| 1.0 - x).collect() } else { e })
            .unwrap_or_else(|_| vec![whole; y.len()])
    } else {
        vec![whole; y.len()]
    };
    Ok(Ok(Value::Array(items.into_iter().map(encode_number).collect())))
}

fn metric_failure(name: &str, split: &str, e: &MetricError) -> Failure {
    let reason = match e {
        MetricError::NonFinite { .. } => ExitReason::NonFiniteMetric,
        _ => ExitReason::InvalidOutput,
    };
    (reason, format!("cannot score `{name}` on {split}: {e}"))
}

/// `reference.json` of the prepared data: constant figures per split.
fn reference(prepared: &Prepared) -> Map<String, Value> {
    std::fs::read(prepared.dir.reference())
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// The targets of every scored split, as fingerprinted when prepared.
fn record_targets(prepared: &Prepared, scored: &mut Scored) -> Result<()> {
    for split in SCORED {
        if let Some(path) = prepared.targets(split) {
            let sha256 = prepared.sha256_of(&path).context("targets outside the prepared manifest")?.to_owned();
            scored.files.push(RunFile {
                kind: "labels",
                name: split.to_owned(),
                path: path.display().to_string(),
                sha256,
                len: None,
            });
        }
    }
    Ok(())
}

/// `(split, path)` of every output file in `out`, sorted.
fn saved_outputs(out: &Path) -> Vec<(String, PathBuf)> {
    let mut saved: Vec<(String, PathBuf)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "npy" || e == "json"))
        .map(|p| (p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), p))
        .collect();
    saved.sort();
    saved
}

/// A `.npy` array of any numeric dtype, as float64.
pub fn read_array(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    array_from_bytes(&bytes).with_context(|| format!("`{}`", path.display()))
}

/// An `.npy` file's bytes as a float64 array, whatever its numeric dtype.
pub fn array_from_bytes(bytes: &[u8]) -> Result<ArrayD<f64>> {
    use ndarray_npy::ReadNpyExt as _;
    if let Ok(a) = ArrayD::<f64>::read_npy(bytes) {
        return Ok(a);
    }
    if let Ok(a) = ArrayD::<f32>::read_npy(bytes) {
        return Ok(a.mapv(f64::from));
    }
    if let Ok(a) = ArrayD::<i64>::read_npy(bytes) {
        return Ok(a.mapv(|x| x as f64));
    }
    if let Ok(a) = ArrayD::<i32>::read_npy(bytes) {
        return Ok(a.mapv(f64::from));
    }
    ArrayD::<u8>::read_npy(bytes).map(|a| a.mapv(f64::from)).context("not a numeric .npy array")
}

/// Logits as float32, read from a float32 or float64 `.npy`.
fn read_logits(path: &Path) -> Result<ArrayD<f32>> {
    if let Ok(a) = ndarray_npy::read_npy::<_, ArrayD<f32>>(path) {
        return Ok(a);
    }
    Ok(ndarray_npy::read_npy::<_, ArrayD<f64>>(path)?.mapv(|x| x as f32))
}

/// A `.npy` array as a flat float64 vector; shapes `(n,)` and `(n, 1)` only.
pub fn read_flat(path: &Path) -> Result<Array1<f64>> {
    flat(read_array(path)?, &path.display().to_string())
}

/// One value per item: shapes `(n,)` and `(n, 1)` only; `origin` names the file in the error.
pub fn flat(array: ArrayD<f64>, origin: &str) -> Result<Array1<f64>> {
    match array.shape() {
        [_] | [_, 1] => Ok(array.iter().copied().collect()),
        other => anyhow::bail!("`{origin}` has shape {other:?}; expected one value per item"),
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
    use crate::layout::Layout;

    fn spec(name: &str, kind: Option<&str>, also: &[&str]) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            goal: Goal::Minimize,
            unit: String::new(),
            kind: kind.map(str::to_owned),
            also: also.iter().map(|s| (*s).to_owned()).collect(),
            guards: Vec::new(),
        }
    }

    /// A published prepared directory holding `targets` per split (and `reference.json`).
    fn prepared(tmp: &Path, targets: &[(&str, ArrayD<f64>)], reference: Option<&str>) -> Prepared {
        let dir = Layout::new(tmp).prepared("toy", "0123456789abcdef", false);
        let staging = super::super::prepared::staging(&dir).unwrap();
        std::fs::create_dir_all(staging.join("targets")).unwrap();
        std::fs::create_dir_all(staging.join("eval")).unwrap();
        for (split, y) in targets {
            ndarray_npy::write_npy(staging.join(format!("targets/{split}.npy")), y).unwrap();
        }
        if let Some(text) = reference {
            std::fs::write(staging.join("reference.json"), text).unwrap();
        }
        super::super::prepared::publish(&staging, &dir).unwrap()
    }

    fn write(path: &Path, a: &ArrayD<f64>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        ndarray_npy::write_npy(path, a).unwrap();
    }

    fn flat(values: &[f64]) -> ArrayD<f64> {
        Array1::from(values.to_vec()).into_dyn()
    }

    #[test]
    fn predictions_are_scored_on_val_with_errors_and_fingerprints() {
        let tmp = tempfile::tempdir().unwrap();
        let prepared =
            prepared(tmp.path(), &[("val", flat(&[1.0, 2.0, 3.0, 4.0])), ("holdout", flat(&[0.0, 0.0]))], None);
        let (out, scores) = (tmp.path().join("out"), tmp.path().join("scores"));
        write(&out.join("val.npy"), &flat(&[1.5, 2.0, 2.0, 4.0]));
        write(&out.join("holdout.npy"), &flat(&[9.0, 9.0]));
        let scored = score_predictions(&spec("mae", None, &["rmse"]), &prepared, &out, &scores).unwrap().unwrap();
        assert_eq!(scored.metrics.get("mae").unwrap().as_f64(), Some(0.375));
        assert!(scored.metrics.contains_key("rmse") && scored.holdout.is_none(), "holdout is never scored here");
        let kinds: Vec<_> = scored.files.iter().map(|f| (f.kind, f.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("predictions", "holdout"),
                ("predictions", "val"),
                ("labels", "val"),
                ("labels", "holdout"),
                ("errors", "val")
            ]
        );
        assert!(scored.files.iter().all(|f| f.sha256.len() == 64));
        write(&out.join("val.npy"), &flat(&[1.0, f64::NAN, 3.0, 4.0]));
        let (reason, _) = score_predictions(&spec("mae", None, &[]), &prepared, &out, &scores).unwrap().unwrap_err();
        assert_eq!(reason, ExitReason::NonFiniteMetric);
        write(&out.join("val.npy"), &flat(&[1.0, 2.0]));
        let (reason, detail) =
            score_predictions(&spec("mae", None, &[]), &prepared, &out, &scores).unwrap().unwrap_err();
        assert_eq!(reason, ExitReason::InvalidOutput, "{detail}");
        assert!(detail.contains("4 labels but 2 predictions"), "{detail}");
    }

    #[test]
    fn outputs_are_scored_per_item_with_holdout_sealed_and_references_beside() {
        let tmp = tempfile::tempdir().unwrap();
        let targets = ndarray::Array2::<f64>::zeros((2, 3)).into_dyn();
        let reference = r#"{"val": {"xz_bpb": 2.5}, "holdout": {"xz_bpb": 2.6}}"#;
        let prepared = prepared(tmp.path(), &[("val", targets.clone()), ("holdout", targets)], Some(reference));
        let (out, scores) = (tmp.path().join("out"), tmp.path().join("scores"));
        // Uniform logits over 4 tokens: 2 bits per byte for every item.
        let logits = ndarray::Array3::<f32>::zeros((2, 3, 4)).into_dyn();
        for split in ["val", "holdout"] {
            std::fs::create_dir_all(&out).unwrap();
            ndarray_npy::write_npy(out.join(format!("{split}.npy")), &logits).unwrap();
        }
        let metric = spec("val_bpb", Some("bits_per_byte"), &["xz_bpb"]);
        let scored = score_outputs(&metric, Scorer::BitsPerByte, &prepared, &out, &scores).unwrap().unwrap();
        assert!((scored.metrics["val_bpb"].as_f64().unwrap() - 2.0).abs() < 1e-9, "{:?}", scored.metrics);
        assert_eq!(scored.metrics["xz_bpb"].as_f64(), Some(2.5));
        let holdout = scored.holdout.unwrap();
        assert_eq!(holdout["xz_bpb"].as_f64(), Some(2.6));
        let items: Value = serde_json::from_slice(&std::fs::read(scores.join("val.json")).unwrap()).unwrap();
        assert_eq!(items["val_bpb"].as_array().unwrap().len(), 2, "one score per item");
        // Logits of the wrong shape are the run's failure, not the harness's.
        ndarray_npy::write_npy(out.join("val.npy"), &ndarray::Array2::<f32>::zeros((2, 3)).into_dyn()).unwrap();
        let (reason, _) = score_outputs(&metric, Scorer::BitsPerByte, &prepared, &out, &scores).unwrap().unwrap_err();
        assert_eq!(reason, ExitReason::InvalidOutput);
    }

    #[test]
    fn a_frozen_scorers_lists_are_checked_before_they_count() {
        let lists = |text: &str| serde_json::from_str::<Value>(text).unwrap().as_object().unwrap().clone();
        let ok = means(&lists(r#"{"acc": [1, 0], "loss": [0.5, 1.5]}"#), "loss", "val").unwrap();
        assert_eq!(ok.keys().collect::<Vec<_>>(), ["loss", "acc"], "the primary first");
        assert_eq!(ok["loss"].as_f64(), Some(1.0));
        let cases = [
            (r#"{"acc": [1]}"#, ExitReason::MissingMetric, "no `loss` was scored on val (scored: acc)"),
            (r#"{"loss": [0.5, "nan"]}"#, ExitReason::NonFiniteMetric, "is NaN at item 1"),
            (r#"{"loss": []}"#, ExitReason::InvalidOutput, "not a non-empty list"),
            (r#"{"loss": [0.5, "x"]}"#, ExitReason::InvalidOutput, "not a number at item 1"),
        ];
        for (text, reason, detail) in cases {
            let (got, message) = means(&lists(text), "loss", "val").unwrap_err();
            assert_eq!(got, reason, "{text}: {message}");
            assert!(message.contains(detail), "{text}: {message}");
        }
    }
}
