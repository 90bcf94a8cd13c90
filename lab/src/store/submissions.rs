//! Submissions written by `lab submit`: the file, its sha256 and the leader it
//! came from. Append-only.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::ids::ExperimentId;

#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub leaf: String,
    pub experiment: String,
    pub path: String,
    pub sha256: String,
    pub rows: usize,
    pub created_at: String,
}

pub fn add(tx: &Transaction<'_>, s: &Submission, experiment: ExperimentId) -> Result<()> {
    tx.execute(
        "INSERT INTO submissions (leaf, experiment_id, path, sha256, rows, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![s.leaf, experiment.0, s.path, s.sha256, s.rows as i64, s.created_at],
    )?;
    Ok(())
}

/// When the leaf last got a new keep: `(experiment, created_at)` of the harness's newest current keep.
pub fn last_keep(conn: &Connection, leaf: &str) -> Result<Option<(String, String)>> {
    let row = conn
        .query_row(
            "SELECT experiment_id, created_at FROM results
             WHERE leaf = ?1 AND verdict = 'keep' AND source = 'harness' AND superseded_by IS NULL
             ORDER BY id DESC LIMIT 1",
            [leaf],
            |r| Ok((ExperimentId(r.get(0)?).to_string(), r.get(1)?)),
        )
        .optional()?;
    Ok(row)
}
