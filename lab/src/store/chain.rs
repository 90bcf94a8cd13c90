//! The hash chain over the records (migration 8; `imports` from 10, `gate_sensitivity` from 11, `run_packages` from 13, `holdout_transfers` from 15): which tables and columns it
//! covers, the SQL functions its triggers call, and its head.
//!
//! Every inserted row of a [`CHAINED`] table appends one `chain` entry: the
//! sha256 of a canonical encoding of the row's immutable columns, a short
//! digest per column (to name what changed), and a hash linking it to the
//! entry before. The triggers call `lab_chain_digest` and `lab_chain_link`,
//! which [`register`] adds to every connection the store opens; a writer
//! without them (the `sqlite3` shell) cannot insert a chained row at all, and a
//! row edited afterwards no longer matches its entry. Columns that change
//! legitimately (statuses, `finished_at`, `superseded_by`, the smoke flag set
//! right after insert) are left out. The encoding is SQLite's value, not its
//! text: integers and reals by their bits, so no float formatting can drift.
//!
//! This is evidence, not a lock: whoever can write the database and read this
//! file can recompute a chain. What pins it is its head ([`head`]) written
//! outside the database, as the runner does in keep commits.

use anyhow::Result;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest as _, Sha256};

/// One chained table: how a row is named, which leaf it belongs to (SQL over
/// alias `t`), and the hashed columns in the order the trigger passes them.
#[derive(Debug, Clone, Copy)]
pub struct Chained {
    pub table: &'static str,
    pub key: &'static str,
    pub leaf: &'static str,
    pub columns: &'static [&'static str],
}

const ID: &str = "CAST(t.id AS TEXT)";
const VIA_EXPERIMENT: &str = "(SELECT e.leaf FROM experiments e WHERE e.id = t.experiment_id)";
const VIA_RUN: &str = "(SELECT e.leaf FROM runs u JOIN experiments e ON e.id = u.experiment_id WHERE u.id = t.run_id)";

/// The triggers of migrations 8, 10, 11, 13 and 15 pass exactly these columns (a test compares them).
pub const CHAINED: &[Chained] = &[
    Chained {
        table: "hypotheses",
        key: ID,
        leaf: "t.leaf",
        columns: &["id", "leaf", "title", "mechanism", "prediction", "created_at"],
    },
    Chained {
        table: "experiments",
        key: ID,
        leaf: "t.leaf",
        columns: &[
            "id",
            "hypothesis_id",
            "leaf",
            "git_commit",
            "dirty",
            "diff_sha256",
            "host",
            "pid",
            "watch_pid",
            "budget_s",
            "started_at",
        ],
    },
    Chained {
        table: "results",
        key: ID,
        leaf: "t.leaf",
        columns: &[
            "id",
            "experiment_id",
            "leaf",
            "verdict",
            "metrics",
            "mechanism",
            "theory_revision",
            "note",
            "created_at",
            "source",
            "comparison",
            "amends",
        ],
    },
    Chained {
        table: "runs",
        key: ID,
        leaf: VIA_EXPERIMENT,
        columns: &[
            "id",
            "experiment_id",
            "tier",
            "seed",
            "device",
            "budget_s",
            "wall_s",
            "exit_reason",
            "detail",
            "exit_code",
            "signal",
            "metric_source",
            "frozen_lock_sha256",
            "metrics",
            "log_path",
            "log_tail",
            "started_at",
            "finished_at",
            "sandbox",
            "environment",
            "prepared_sha256",
        ],
    },
    Chained {
        table: "run_files",
        key: "t.run_id || '/' || t.kind || '/' || t.name",
        leaf: VIA_RUN,
        columns: &["run_id", "kind", "name", "path", "sha256", "len"],
    },
    Chained {
        table: "run_inputs",
        key: "t.run_id || '/' || t.name",
        leaf: VIA_RUN,
        columns: &["run_id", "name", "leaf", "file", "experiment_id", "path", "sha256"],
    },
    Chained {
        table: "gate_reports",
        key: ID,
        leaf: "t.leaf",
        columns: &[
            "id",
            "experiment_id",
            "leaf",
            "leader_experiment_id",
            "mode",
            "verdict",
            "improvement",
            "ci_low",
            "ci_high",
            "prob_better",
            "n",
            "reason",
            "flags",
            "min_improvement",
            "confidence",
            "created_at",
        ],
    },
    Chained {
        table: "baselines",
        key: ID,
        leaf: "t.leaf",
        columns: &["id", "leaf", "lock_sha256", "leader_experiment_id", "n", "mean", "sd", "seeds", "created_at"],
    },
    Chained {
        table: "sealed_holdout",
        key: "CAST(t.run_id AS TEXT)",
        leaf: VIA_EXPERIMENT,
        columns: &["run_id", "experiment_id", "metrics"],
    },
    Chained {
        table: "holdout_reads",
        key: ID,
        leaf: "t.leaf",
        columns: &["id", "leaf", "experiments", "purpose", "created_at"],
    },
    Chained {
        table: "archives",
        key: "CAST(t.experiment_id AS TEXT)",
        leaf: VIA_EXPERIMENT,
        columns: &["experiment_id", "verdict", "path"],
    },
    Chained {
        table: "submissions",
        key: ID,
        leaf: "t.leaf",
        columns: &["id", "leaf", "experiment_id", "path", "sha256", "rows", "created_at"],
    },
    Chained {
        table: "comparisons",
        key: ID,
        leaf: "t.leaf",
        columns: &["id", "leaf", "key", "files", "gate", "inputs", "experiment_id", "created_at"],
    },
    Chained {
        table: "imports",
        key: ID,
        leaf: "t.leaf",
        columns: &["id", "format", "sha256", "path", "leaf", "hypotheses", "experiments", "results", "created_at"],
    },
    Chained {
        table: "gate_sensitivity",
        key: "CAST(t.report_id AS TEXT)",
        leaf: "(SELECT g.leaf FROM gate_reports g WHERE g.id = t.report_id)",
        columns: &["report_id", "se", "detectable"],
    },
    Chained {
        table: "run_packages",
        key: "t.run_id || '/' || t.name",
        leaf: VIA_RUN,
        columns: &["run_id", "name", "version"],
    },
    Chained {
        table: "holdout_transfers",
        key: "CAST(t.read_id AS TEXT)",
        leaf: "(SELECT h.leaf FROM holdout_reads h WHERE h.id = t.read_id)",
        columns: &["read_id", "leader_experiment_id", "holdout", "holdout_gain", "verdict"],
    },
];

/// What came before the first entry.
pub const GENESIS: &str = "";

/// A row's digest: the sha256 of all its hashed values, and 8 hex digits per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDigest {
    pub row: String,
    pub columns: Vec<String>,
}

impl RowDigest {
    pub fn of<'a>(values: impl IntoIterator<Item = ValueRef<'a>>) -> Self {
        let (mut all, mut columns) = (Vec::new(), Vec::new());
        for value in values {
            let start = all.len();
            encode(value, &mut all);
            columns.push(hex(&Sha256::digest(&all[start..])[..4]));
        }
        Self { row: hex(&Sha256::digest(&all)), columns }
    }

    /// The column digests as the chain stores them.
    pub fn columns_text(&self) -> String {
        self.columns.join(" ")
    }
}

/// Type tag, then the value: integers and reals by their bits, text and blobs with their length.
fn encode(value: ValueRef<'_>, out: &mut Vec<u8>) {
    match value {
        ValueRef::Null => out.push(b'N'),
        ValueRef::Integer(i) => {
            out.push(b'I');
            out.extend(i.to_be_bytes());
        }
        ValueRef::Real(f) => {
            out.push(b'R');
            out.extend(f.to_bits().to_be_bytes());
        }
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            out.push(if matches!(value, ValueRef::Text(_)) { b'T' } else { b'B' });
            out.extend((bytes.len() as u64).to_be_bytes());
            out.extend(bytes);
        }
    }
}

/// The hash of an entry: its predecessor's hash, the row's name and its digest.
pub fn link(prev: &str, table: &str, row: &str, row_sha256: &str) -> String {
    hex(&Sha256::digest(format!("{prev}\n{table}\n{row}\n{row_sha256}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Add the chain's functions to `conn` (again is harmless: it replaces them).
pub fn register(conn: &Connection) -> Result<()> {
    // Innocuous: pure functions of their arguments, safe in triggers whatever `trusted_schema` says.
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("lab_chain_digest", -1, flags, |ctx: &Context<'_>| {
        let digest = RowDigest::of((0..ctx.len()).map(|i| ctx.get_raw(i)));
        Ok(format!("{} {}", digest.row, digest.columns_text()))
    })?;
    conn.create_scalar_function("lab_chain_link", 4, flags, |ctx: &Context<'_>| {
        let text = |i| ctx.get::<String>(i);
        Ok(link(&text(0)?, &text(1)?, &text(2)?, &text(3)?))
    })?;
    Ok(())
}

/// The latest entry: `(seq, hash)`, or `(0, GENESIS)` before the first. The
/// runner writes it into keep commits, so a chain recomputed later no longer
/// matches what git recorded.
pub fn head(conn: &Connection) -> Result<(i64, String)> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(head.unwrap_or((0, GENESIS.to_owned())))
}

/// The hash of entry `seq`, to check an anchor written earlier; `None` if there is no such entry.
pub fn hash_at(conn: &Connection, seq: i64) -> Result<Option<String>> {
    Ok(conn.prepare_cached("SELECT hash FROM chain WHERE seq = ?1")?.query_row([seq], |r| r.get(0)).optional()?)
}

#[cfg(test)]
mod tests;
