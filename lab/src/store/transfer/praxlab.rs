//! PraxLab's `experiments.db`: tables hypotheses, experiments, results, with
//! text ids like `h1` and `task_id` as the leaf.
//!
//! The database is opened read-only and never modified. Every column of the
//! three tables must be one lab maps or one PraxLab has that carries nothing
//! lab keeps ([`TABLES`]): a renamed column (`metrics` for `metrics_json`) is
//! refused naming it, never read as empty. Old PraxLab databases lack some
//! optional columns; those read as NULL. A lab database is refused as such: it
//! is not PraxLab's layout, and importing it would copy a chain's records as
//! an agent's. Errors reading the source are bad input naming its path, never a
//! raw SQLite error that could be taken for the lab's own database.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction};
use serde_json::{Map, Value};

use super::Imported;
use crate::error::LabError;
use crate::ids::ExperimentId;
use crate::store::records::{self, Mechanism, NewExperiment, NewHypothesis, NewResult, Source, Verdict};
use crate::vcs::Snapshot;

/// A PraxLab table: the columns lab requires, those it reads when present, and
/// those it knowingly leaves out.
struct Table {
    name: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    ignored: &'static [&'static str],
}

impl Table {
    fn mapped(&self) -> impl Iterator<Item = &&'static str> {
        self.required.iter().chain(self.optional)
    }
}

/// PraxLab's schema. `status` of hypotheses follows from the results'
/// mechanism flags here; wall time, insight, descriptions and diffs have no
/// place in lab's records.
const TABLES: [Table; 3] = [
    Table {
        name: "hypotheses",
        required: &["id", "title"],
        optional: &["mechanism_explanation", "rationale", "expected_outcome", "created_at"],
        ignored: &["description", "status"],
    },
    Table {
        name: "experiments",
        required: &["id", "hypothesis_id"],
        optional: &["task_id", "created_at"],
        ignored: &["code_diff", "status"],
    },
    Table {
        name: "results",
        required: &["experiment_id", "verdict", "metrics_json"],
        optional: &["mechanism_confirmed", "theory_revision", "interpretation", "created_at"],
        ignored: &["wall_time_seconds", "insight"],
    },
];

/// Import a PraxLab `experiments.db` at `path`; `tick` after each hypothesis and experiment.
pub fn import_praxlab(tx: &Transaction<'_>, path: &Path, tick: super::Tick<'_>) -> Result<Imported> {
    let src = Db::open(path)?;
    src.check_layout(tx)?;
    let mut imported = Imported::default();
    // A PraxLab hypothesis carries no leaf; it takes the task of its first experiment.
    let leaf_of: HashMap<String, String> = src
        .select("experiments", &["hypothesis_id", "task_id"], "ORDER BY created_at DESC")?
        .into_iter()
        .filter_map(|row| Some((row[0].clone()?, row[1].clone()?)))
        .collect();
    let mut new_ids = HashMap::new();
    let hypotheses = src.select(
        "hypotheses",
        &["id", "title", "mechanism_explanation", "rationale", "expected_outcome", "created_at"],
        "ORDER BY created_at, rowid",
    )?;
    for row in hypotheses {
        let old = row[0].clone().unwrap_or_default();
        let id = records::add_hypothesis(
            tx,
            &NewHypothesis {
                title: row[1].clone().unwrap_or_default(),
                mechanism: row[2].clone().or_else(|| row[3].clone()).unwrap_or_default(),
                leaf: leaf_of.get(&old).cloned(),
                prediction: row[4].clone().filter(|p| !p.is_empty()),
                created_at: row[5].clone().unwrap_or_else(records::now),
            },
        )
        .with_context(|| format!("PraxLab hypothesis `{old}`"))?;
        new_ids.insert(old, id);
        imported.hypotheses += 1;
        tick();
    }
    let results: HashMap<String, Vec<Option<String>>> = src
        .select(
            "results",
            &[
                "experiment_id",
                "verdict",
                "metrics_json",
                "mechanism_confirmed",
                "theory_revision",
                "interpretation",
                "created_at",
            ],
            "",
        )?
        .into_iter()
        .filter_map(|row| Some((row[0].clone()?, row)))
        .collect();
    let experiments =
        src.select("experiments", &["id", "hypothesis_id", "task_id", "created_at"], "ORDER BY created_at, rowid")?;
    for row in experiments {
        let old = row[0].clone().unwrap_or_default();
        let hypothesis = *row[1].as_ref().and_then(|h| new_ids.get(h)).ok_or_else(|| {
            LabError::usage(format!("PraxLab experiment `{old}` refers to an unknown hypothesis {:?}", row[1]))
        })?;
        let experiment = records::add_experiment(
            tx,
            &NewExperiment {
                hypothesis,
                leaf: row[2].clone(),
                snapshot: Snapshot::default(),
                host: "import".to_owned(),
                pid: None,
                watch_pid: false,
                budget_s: None,
                started_at: row[3].clone().unwrap_or_else(records::now),
            },
        )?;
        imported.experiments += 1;
        tick();
        let Some(result) = results.get(&old) else { continue };
        records::add_result(tx, &src.result(experiment, &old, result)?, false)?;
        imported.results += 1;
    }
    Ok(imported)
}

/// The source database, and its path for messages.
struct Db<'a> {
    conn: Connection,
    path: &'a Path,
}

impl<'a> Db<'a> {
    fn open(path: &'a Path) -> Result<Self, LabError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| LabError::usage(format!("cannot open PraxLab database `{}`: {e}", path.display())))?;
        Ok(Self { conn, path })
    }

    /// A source error as bad input naming the file.
    fn error(&self, e: rusqlite::Error) -> LabError {
        let path = self.path.display();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => LabError::usage(format!("`{path}` is not a SQLite database: {e}")),
            _ => LabError::usage(format!("cannot read PraxLab database `{path}`: {e}")),
        }
    }

    fn tables(&self) -> Result<Vec<String>, LabError> {
        let read = || -> rusqlite::Result<Vec<String>> {
            self.conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                .query_map([], |r| r.get(0))?
                .collect()
        };
        read().map_err(|e| self.error(e))
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, LabError> {
        let read = || -> rusqlite::Result<Vec<String>> {
            self.conn.prepare(&format!("PRAGMA table_info({table})"))?.query_map([], |r| r.get(1))?.collect()
        };
        read().map_err(|e| self.error(e))
    }

    /// Refuse a lab database, a missing table, and a column lab cannot map.
    fn check_layout(&self, tx: &Transaction<'_>) -> Result<(), LabError> {
        let path = self.path.display();
        let tables = self.tables()?;
        if tables.iter().any(|t| t == "chain" || t == "tallies") {
            let own = tx.path().and_then(|p| Path::new(p).canonicalize().ok()) == self.path.canonicalize().ok();
            let which = if own { "this lab's own research database" } else { "a lab research database" };
            return Err(LabError::usage(format!("`{path}` is {which}, not a PraxLab one")).hint(
                "lab imports PraxLab's experiments.db and autoresearch's results.tsv; to carry results over \
                 from another lab, `lab export --format results-tsv` there and `lab import results-tsv` here",
            ));
        }
        if let Some(table) = TABLES.iter().find(|table| !tables.iter().any(|t| t == table.name)) {
            return Err(LabError::usage(format!("`{path}` is not a PraxLab database: no `{}` table", table.name)));
        }
        for table in &TABLES {
            let columns = self.columns(table.name)?;
            let known = |c: &String| table.mapped().chain(table.ignored).any(|k| *k == c.as_str());
            let unknown: Vec<&str> = columns.iter().filter(|c| !known(c)).map(String::as_str).collect();
            let missing = table.required.iter().find(|r| !columns.iter().any(|c| c.as_str() == **r));
            let problem = match (missing, unknown.is_empty()) {
                (None, true) => continue,
                (Some(m), true) => format!("has no column `{m}`"),
                (Some(m), false) => {
                    format!("has no column `{m}`, and columns lab cannot map: `{}`", unknown.join("`, `"))
                }
                (None, false) => format!("has columns lab cannot map: `{}`", unknown.join("`, `")),
            };
            let mapped: Vec<&str> = table.mapped().copied().collect();
            return Err(LabError::usage(format!("PraxLab table `{}` in `{path}` {problem}", table.name)).hint(
                format!(
                    "lab reads {} columns {} (and leaves out {}); rename or drop the others in a copy and import that",
                    table.name,
                    mapped.join(", "),
                    table.ignored.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// `SELECT` the named columns as text, reading an optional column the table lacks as NULL.
    fn select(&self, table: &str, columns: &[&str], tail: &str) -> Result<Vec<Vec<Option<String>>>, LabError> {
        let present = self.columns(table)?;
        let list: Vec<String> = columns
            .iter()
            .map(|c| if present.iter().any(|p| p == c) { format!("CAST({c} AS TEXT)") } else { "NULL".to_owned() })
            .collect();
        // `created_at` orders rows where the table has it; rowid alone otherwise.
        let tail = if present.iter().any(|p| p == "created_at") { tail.to_owned() } else { order_by_rowid(tail) };
        let read = || -> rusqlite::Result<Vec<Vec<Option<String>>>> {
            let mut stmt = self.conn.prepare(&format!("SELECT {} FROM {table} {tail}", list.join(", ")))?;
            let rows = stmt.query_map([], |r| (0..columns.len()).map(|i| r.get(i)).collect())?;
            rows.collect()
        };
        read().map_err(|e| self.error(e))
    }

    /// The lab result for PraxLab result `row` of experiment `old`.
    fn result(&self, experiment: ExperimentId, old: &str, row: &[Option<String>]) -> Result<NewResult> {
        let verdict = Verdict::parse(row[1].as_deref().unwrap_or(""))
            .map_err(|e| LabError::usage(format!("PraxLab result of `{old}`: {}", e.message)))?;
        let (metrics, dropped) = numeric_metrics(row[2].as_deref().unwrap_or("{}")).map_err(|e| {
            LabError::usage(format!("PraxLab result of `{old}` in `{}`: metrics_json {e}", self.path.display()))
        })?;
        let mut note = format!("imported from PraxLab {} (experiment {old})", self.path.display());
        if !dropped.is_empty() {
            note.push_str(&format!("; non-numeric metrics left out: {}", dropped.join(", ")));
        }
        if let Some(interpretation) = row[5].as_deref().filter(|i| !i.is_empty()) {
            note.push_str(&format!("; interpretation: {interpretation}"));
        }
        let mechanism = match row[3].as_deref() {
            Some("1") => Some(Mechanism::Confirmed),
            Some("0") => Some(Mechanism::Refuted),
            _ => None,
        };
        Ok(NewResult {
            experiment,
            verdict,
            metrics,
            mechanism,
            theory_revision: row[4].clone(),
            note: Some(note),
            created_at: row[6].clone().unwrap_or_else(records::now),
            source: Source::Agent,
        })
    }
}

/// An `ORDER BY` on `created_at` as the same order on `rowid` (an old table that lacks it).
fn order_by_rowid(tail: &str) -> String {
    tail.replace("created_at, rowid", "rowid").replace("created_at", "rowid")
}

/// The numbers of a metrics JSON object, and the names of the values that are not.
fn numeric_metrics(text: &str) -> Result<(Map<String, Value>, Vec<String>), String> {
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(other) => return Err(format!("is not a JSON object: {other}")),
        Err(e) => return Err(format!("is not JSON: {e}")),
    };
    let (numeric, other): (Map<String, Value>, Map<String, Value>) =
        map.into_iter().partition(|(_, v)| v.as_f64().is_some_and(f64::is_finite));
    Ok((numeric, other.into_iter().map(|(k, _)| k).collect()))
}
