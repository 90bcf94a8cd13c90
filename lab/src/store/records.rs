//! Writes to the research memory, each inside a caller's IMMEDIATE transaction.
//!
//! Invariants: a result is never overwritten (an amendment appends a row and the
//! old one points at it); a hypothesis is confirmed or refuted by the mechanism
//! flag of a result, never by its verdict; the `metrics` table mirrors exactly
//! the current results' numeric metrics.

use std::fmt;

use anyhow::Result;
use clap::ValueEnum;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::LabError;
use crate::ids::{ExperimentId, HypothesisId};
use crate::vcs::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Keep,
    Discard,
    Crash,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Discard => "discard",
            Self::Crash => "crash",
        }
    }

    pub fn parse(s: &str) -> Result<Self, LabError> {
        <Self as ValueEnum>::from_str(s, false)
            .map_err(|_| LabError::usage(format!("unknown verdict `{s}`: expected keep, discard or crash")))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    Confirmed,
    Refuted,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Refuted => "refuted",
        }
    }
}

/// Metrics as given: a JSON object of finite numbers, key order kept.
pub type Metrics = Map<String, Value>;

/// Parse `--metrics` JSON: an object whose values are all numbers.
pub fn parse_metrics(text: &str) -> Result<Metrics, LabError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        LabError::usage(format!("malformed metrics JSON: {e}")).hint(r#"for example --metrics '{"val_bpb": 0.993}'"#)
    })?;
    let Value::Object(map) = value else {
        return Err(LabError::usage("metrics must be a JSON object of numbers, like {\"val_bpb\": 0.993}"));
    };
    for (name, value) in &map {
        if name.trim().is_empty() {
            return Err(LabError::usage("metric names must not be empty"));
        }
        if !value.as_f64().is_some_and(f64::is_finite) {
            return Err(LabError::usage(format!("metric `{name}` must be a finite number, got {value}")));
        }
    }
    Ok(map)
}

pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[derive(Debug, Clone)]
pub struct NewHypothesis {
    pub title: String,
    pub mechanism: String,
    pub leaf: Option<String>,
    pub prediction: Option<String>,
    pub created_at: String,
}

pub fn add_hypothesis(tx: &Transaction<'_>, h: &NewHypothesis) -> Result<HypothesisId> {
    if h.title.trim().is_empty() {
        return Err(LabError::usage("a hypothesis needs a title").into());
    }
    tx.execute(
        "INSERT INTO hypotheses (title, mechanism, leaf, prediction, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![h.title, h.mechanism, h.leaf, h.prediction, h.created_at],
    )?;
    Ok(HypothesisId(tx.last_insert_rowid()))
}

#[derive(Debug, Clone)]
pub struct NewExperiment {
    pub hypothesis: HypothesisId,
    pub leaf: Option<String>,
    pub snapshot: Snapshot,
    pub host: String,
    pub pid: Option<i64>,
    /// Whether `pid` is the process doing the work, so its death means a crash.
    pub watch_pid: bool,
    pub budget_s: Option<f64>,
    pub started_at: String,
}

/// The leaf of a hypothesis; errors if the hypothesis does not exist.
pub fn hypothesis_leaf(tx: &Transaction<'_>, id: HypothesisId) -> Result<Option<String>> {
    tx.query_row("SELECT leaf FROM hypotheses WHERE id = ?1", [id.0], |r| r.get(0)).optional()?.ok_or_else(|| {
        LabError::usage(format!("no hypothesis {id}")).hint("`lab log` or `lab context` lists them").into()
    })
}

pub fn add_experiment(tx: &Transaction<'_>, e: &NewExperiment) -> Result<ExperimentId> {
    tx.execute(
        "INSERT INTO experiments (hypothesis_id, leaf, git_commit, dirty, diff_sha256, host, pid, watch_pid,
                                  budget_s, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.hypothesis.0,
            e.leaf,
            e.snapshot.commit,
            e.snapshot.dirty,
            e.snapshot.diff_sha256,
            e.host,
            e.pid,
            e.watch_pid,
            e.budget_s,
            e.started_at
        ],
    )?;
    Ok(ExperimentId(tx.last_insert_rowid()))
}

#[derive(Debug, Clone)]
pub struct NewResult {
    pub experiment: ExperimentId,
    pub verdict: Verdict,
    pub metrics: Metrics,
    pub mechanism: Option<Mechanism>,
    pub theory_revision: Option<String>,
    pub note: Option<String>,
    pub created_at: String,
}

/// A result as recorded: its row id, and whether it superseded an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub id: i64,
    pub amended: bool,
}

/// Record a result. A second result for the same experiment is refused unless
/// `amend`; an amendment appends and supersedes, keeping the earlier record.
pub fn add_result(tx: &Transaction<'_>, r: &NewResult, amend: bool) -> Result<Recorded> {
    let (leaf, hypothesis): (Option<String>, i64) = tx
        .query_row("SELECT leaf, hypothesis_id FROM experiments WHERE id = ?1", [r.experiment.0], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
        .ok_or_else(|| LabError::usage(format!("no experiment {}", r.experiment)))?;
    let previous: Option<(i64, String, String)> = tx
        .query_row(
            "SELECT id, verdict, created_at FROM results WHERE experiment_id = ?1 AND superseded_by IS NULL",
            [r.experiment.0],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM results", [], |row| row.get(0))?;
    if let Some((old, verdict, at)) = &previous {
        if !amend {
            return Err(LabError::refused(format!("{} already has a result ({verdict}, recorded {at})", r.experiment))
                .hint("pass --amend to record a correction; the earlier result is kept")
                .into());
        }
        // The foreign key is deferred: the new row exists by commit time.
        tx.execute("UPDATE results SET superseded_by = ?1 WHERE id = ?2", params![id, old])?;
        tx.execute("DELETE FROM metrics WHERE result_id = ?1", [old])?;
    }
    tx.execute(
        "INSERT INTO results (id, experiment_id, leaf, verdict, metrics, mechanism, theory_revision, note, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            r.experiment.0,
            leaf,
            r.verdict.as_str(),
            Value::Object(r.metrics.clone()).to_string(),
            r.mechanism.map(Mechanism::as_str),
            r.theory_revision,
            r.note,
            r.created_at
        ],
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO metrics (result_id, experiment_id, leaf, verdict, name, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (name, value) in &r.metrics {
        insert.execute(params![id, r.experiment.0, leaf, r.verdict.as_str(), name, value.as_f64()])?;
    }
    let status = if r.verdict == Verdict::Crash { "crashed" } else { "finished" };
    tx.execute(
        "UPDATE experiments SET status = ?1, finished_at = COALESCE(finished_at, ?2) WHERE id = ?3",
        params![status, r.created_at, r.experiment.0],
    )?;
    if let Some(mechanism) = r.mechanism {
        tx.execute("UPDATE hypotheses SET status = ?1 WHERE id = ?2", params![mechanism.as_str(), hypothesis])?;
    }
    Ok(Recorded { id, amended: previous.is_some() })
}
