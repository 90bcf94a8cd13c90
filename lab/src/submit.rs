//! Submissions: the leader's predictions for the unlabelled `submission` split,
//! written in the leaf's declared format (`submission.rows` in leaf.yaml).
//!
//! Only the leader's fingerprinted prediction file is used: its sha256 is
//! checked against the run record before a row is written, and the file written
//! is fingerprinted and recorded with the experiment it came from. The file is
//! written atomically (a complete file or none).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use serde::Deserialize;
use tempfile::NamedTempFile;

use crate::error::LabError;
use crate::evidence;
use crate::fingerprint;
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::lifecycle::{inputs, judge};
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::records;
use crate::store::runs;
use crate::store::submissions::{self, Submission};
use crate::supervisor::prepared::{self, SUBMISSION};

/// What the frozen `submission.rows` function returned.
#[derive(Debug, Deserialize)]
struct Rows {
    columns: Vec<String>,
    ids: Vec<serde_json::Value>,
    inputs: Vec<serde_json::Value>,
}

/// Why `--if-idle` did not re-issue.
#[derive(Debug)]
pub enum Outcome {
    Written(Submission),
    Skipped { experiment: String, kept_at: String },
}

pub fn submit(
    lab: &LabRoot,
    store: &mut Store,
    leaf: &Leaf,
    if_idle: Option<Duration>,
    output: Option<PathBuf>,
) -> Result<Outcome> {
    if leaf.manifest.submission.is_none() {
        return Err(LabError::usage(format!("leaf `{}` declares no submission in leaf.yaml", leaf.name())).into());
    }
    if let Some(window) = if_idle
        && let Some((experiment, kept_at)) = submissions::last_keep(store.conn(), leaf.name())?
    {
        let age = kept_at.parse::<Timestamp>().map(|t| Timestamp::now().duration_since(t).unsigned_abs());
        if age.is_ok_and(|age| age < window) {
            return Ok(Outcome::Skipped { experiment, kept_at });
        }
    }
    let metric = &leaf.manifest.metric;
    let lock_sha256 = inputs::comparability(lab, store, leaf)?.key;
    let leader =
        runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, &lock_sha256)?.ok_or_else(|| {
            LabError::refused(format!("leaf `{}` has no leader under its current leaf.lock", leaf.name()))
                .hint("run `lab run --decide` first")
        })?;
    let experiment: ExperimentId = leader.experiment.parse()?;
    let predictions = leader_predictions(store, experiment)?;
    // Verified like every prepared file: the rows are frozen code's output.
    let prepared = prepared::load(&lab.layout().prepared(leaf.name(), &lock_sha256, false))?;
    let rows_path = prepared.dir.submission_rows();
    let rows: Option<Rows> = serde_json::from_str(
        &std::fs::read_to_string(&rows_path).with_context(|| format!("cannot read `{}`", rows_path.display()))?,
    )
    .with_context(|| format!("`{}` is not what submission.rows returns", rows_path.display()))?;
    let rows = rows.ok_or_else(|| {
        LabError::usage(format!("leaf `{}` has no submission inputs with its current settings", leaf.name()))
            .hint("submission.rows returned None: the data set in leaf.yaml's settings has no blinded test set")
    })?;
    if rows.columns.len() != 3 || rows.ids.len() != rows.inputs.len() || rows.ids.len() != predictions.len() {
        return Err(LabError::refused(format!(
            "the submission has {} ids, {} inputs and {} predictions under {} columns; they must agree (3 columns)",
            rows.ids.len(),
            rows.inputs.len(),
            predictions.len(),
            rows.columns.len()
        ))
        .into());
    }
    let created_at = records::now();
    let path = output.unwrap_or_else(|| {
        let stamp = created_at.replace([':', '-'], "");
        lab.layout().submissions(leaf.name()).join(format!("{stamp}-{}.csv", leader.experiment))
    });
    write_csv(&path, &rows, &predictions)?;
    let submission = Submission {
        leaf: leaf.name().to_owned(),
        experiment: leader.experiment.clone(),
        path: path.display().to_string(),
        sha256: fingerprint::sha256_file(&path)?,
        rows: predictions.len(),
        created_at,
    };
    store.write(|tx| submissions::add(tx, &submission, experiment))?;
    Ok(Outcome::Written(submission))
}

/// The `submission` predictions of the leader's last full run (a smoke run
/// predicts only a slice), after checking their fingerprint.
fn leader_predictions(store: &Store, experiment: ExperimentId) -> Result<Vec<f64>> {
    let files = judge::last_full_files(store, experiment)?;
    let file = evidence::find(&files, "predictions", SUBMISSION)
        .ok_or_else(|| LabError::refused(format!("the leader {experiment} saved no `submission` predictions")))?;
    evidence::values(experiment, file)
}

fn write_csv(path: &Path, rows: &Rows, predictions: &[f64]) -> Result<()> {
    let dir = path.parent().context("submission path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut file = NamedTempFile::new_in(dir)?;
    {
        let mut writer = csv::Writer::from_writer(file.as_file_mut());
        writer.write_record(&rows.columns)?;
        for ((id, input), prediction) in rows.ids.iter().zip(&rows.inputs).zip(predictions) {
            writer.write_record([
                crate::output::cell_text(id),
                crate::output::cell_text(input),
                prediction.to_string(),
            ])?;
        }
        writer.flush()?;
    }
    file.as_file().sync_all()?;
    file.persist(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
