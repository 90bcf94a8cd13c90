//! Import from the formats agents already have, and export to plain tables.
//!
//! - PraxLab's `experiments.db` (tables hypotheses, experiments, results; text ids
//!   like `h1`, `task_id` as the leaf). Old PraxLab databases lack some columns;
//!   those read as NULL.
//! - autoresearch's `results.tsv`: `commit val_bpb memory_gb status description`.
//!
//! An import runs in one IMMEDIATE transaction: all rows land or none do. Export
//! of results-tsv then import gives back the same rows. Imported results are
//! the agent's (`Source::Agent`): no run of this harness stands behind them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OpenFlags, Transaction};
use serde_json::{Map, Value};

use crate::error::LabError;
use crate::ids::HypothesisId;
use crate::store::queries::HistoryRow;
use crate::store::records::{self, Mechanism, NewExperiment, NewHypothesis, NewResult, Source, Verdict};
use crate::vcs::Snapshot;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub hypotheses: usize,
    pub experiments: usize,
    pub results: usize,
}

pub const RESULTS_TSV_HEADER: [&str; 5] = ["commit", "val_bpb", "memory_gb", "status", "description"];

/// Read autoresearch's results.tsv into new hypotheses, experiments and results.
pub fn import_results_tsv(
    tx: &Transaction<'_>,
    input: impl Read,
    leaf: Option<&str>,
    source: &str,
) -> Result<Imported> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b'\t').quoting(false).flexible(false).from_reader(input);
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    if header != RESULTS_TSV_HEADER {
        return Err(LabError::usage(format!(
            "`{source}` is not a results.tsv: its header is `{}`, expected `{}`",
            header.join("\t"),
            RESULTS_TSV_HEADER.join("\t")
        ))
        .into());
    }
    let mut imported = Imported::default();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| LabError::usage(format!("`{source}` line {line}: {e}")))?;
        let number = |col: usize| -> Result<Value, LabError> {
            let text = &record[col];
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .and_then(|v| serde_json::Number::from_f64(v).map(Value::Number))
                .ok_or_else(|| {
                    LabError::usage(format!(
                        "`{source}` line {line}: {} `{text}` is not a number",
                        RESULTS_TSV_HEADER[col]
                    ))
                })
        };
        let metrics: Map<String, Value> =
            [("val_bpb".to_owned(), number(1)?), ("memory_gb".to_owned(), number(2)?)].into_iter().collect();
        let verdict = Verdict::parse(&record[3])
            .map_err(|e| LabError::usage(format!("`{source}` line {line}: {}", e.message)))?;
        let description = record[4].to_owned();
        let hypothesis = records::add_hypothesis(
            tx,
            &NewHypothesis {
                title: description,
                mechanism: String::new(),
                leaf: leaf.map(str::to_owned),
                prediction: None,
                created_at: records::now(),
            },
        )
        .with_context(|| format!("`{source}` line {line}"))?;
        let commit = Some(record[0].to_owned()).filter(|c| !c.is_empty());
        record_imported(
            tx,
            hypothesis,
            leaf.map(str::to_owned),
            commit,
            verdict,
            metrics,
            None,
            None,
            format!("imported from {source}"),
        )?;
        imported.hypotheses += 1;
        imported.experiments += 1;
        imported.results += 1;
    }
    Ok(imported)
}

#[allow(clippy::too_many_arguments)]
fn record_imported(
    tx: &Transaction<'_>,
    hypothesis: HypothesisId,
    leaf: Option<String>,
    commit: Option<String>,
    verdict: Verdict,
    metrics: Map<String, Value>,
    mechanism: Option<Mechanism>,
    theory_revision: Option<String>,
    note: String,
) -> Result<()> {
    let now = records::now();
    let experiment = records::add_experiment(
        tx,
        &NewExperiment {
            hypothesis,
            leaf,
            snapshot: Snapshot { commit, dirty: false, diff_sha256: None },
            host: "import".to_owned(),
            pid: None,
            watch_pid: false,
            budget_s: None,
            started_at: now.clone(),
        },
    )?;
    records::add_result(
        tx,
        &NewResult {
            experiment,
            verdict,
            metrics,
            mechanism,
            theory_revision,
            note: Some(note),
            created_at: now,
            source: Source::Agent,
        },
        false,
    )?;
    Ok(())
}

/// Write experiments with a current result as autoresearch's results.tsv.
pub fn export_results_tsv(rows: &[HistoryRow], out: &mut impl Write) -> Result<()> {
    writeln!(out, "{}", RESULTS_TSV_HEADER.join("\t"))?;
    for r in rows.iter().filter(|r| r.verdict.is_some()) {
        let metric = |name: &str| r.metrics.get(name).and_then(Value::as_f64).unwrap_or(0.0);
        let commit: String = r.commit.as_deref().unwrap_or("").chars().take(7).collect();
        let description = r.title.replace(['\t', '\n', '\r'], " ");
        writeln!(
            out,
            "{commit}\t{:.6}\t{:.1}\t{}\t{description}",
            metric("val_bpb"),
            metric("memory_gb"),
            r.verdict.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Import a PraxLab `experiments.db` (opened read-only; never modified).
pub fn import_praxlab(tx: &Transaction<'_>, path: &Path) -> Result<Imported> {
    let src = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open PraxLab database `{}`", path.display()))?;
    for table in ["hypotheses", "experiments", "results"] {
        let found: bool = src
            .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
                r.get(0)
            })
            .map_err(|e| LabError::usage(format!("`{}` is not a SQLite database: {e}", path.display())))?;
        if !found {
            return Err(
                LabError::usage(format!("`{}` is not a PraxLab database: no `{table}` table", path.display())).into()
            );
        }
    }
    let mut imported = Imported::default();
    // A PraxLab hypothesis carries no leaf; it takes the task of its first experiment.
    let leaf_of: HashMap<String, String> =
        select(&src, "experiments", &["hypothesis_id", "task_id"], "ORDER BY created_at DESC")?
            .into_iter()
            .filter_map(|row| Some((row[0].clone()?, row[1].clone()?)))
            .collect();
    let mut new_ids = HashMap::new();
    let hypotheses = select(
        &src,
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
    }
    let results: HashMap<String, Vec<Option<String>>> = select(
        &src,
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
    for row in
        select(&src, "experiments", &["id", "hypothesis_id", "task_id", "created_at"], "ORDER BY created_at, rowid")?
    {
        let old = row[0].clone().unwrap_or_default();
        let hypothesis = *row[1].as_ref().and_then(|h| new_ids.get(h)).ok_or_else(|| {
            LabError::usage(format!("PraxLab experiment `{old}` refers to an unknown hypothesis {:?}", row[1]))
        })?;
        let started_at = row[3].clone().unwrap_or_else(records::now);
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
                started_at,
            },
        )?;
        imported.experiments += 1;
        let Some(result) = results.get(&old) else { continue };
        let verdict = Verdict::parse(result[1].as_deref().unwrap_or(""))
            .map_err(|e| LabError::usage(format!("PraxLab result of `{old}`: {}", e.message)))?;
        let (metrics, dropped) = numeric_metrics(result[2].as_deref().unwrap_or("{}"));
        let mut note = format!("imported from PraxLab {} (experiment {old})", path.display());
        if !dropped.is_empty() {
            note.push_str(&format!("; non-numeric metrics left out: {}", dropped.join(", ")));
        }
        if let Some(interpretation) = result[5].as_deref().filter(|i| !i.is_empty()) {
            note.push_str(&format!("; interpretation: {interpretation}"));
        }
        let mechanism = match result[3].as_deref() {
            Some("1") => Some(Mechanism::Confirmed),
            Some("0") => Some(Mechanism::Refuted),
            _ => None,
        };
        let created_at = result[6].clone().unwrap_or_else(records::now);
        records::add_result(
            tx,
            &NewResult {
                experiment,
                verdict,
                metrics,
                mechanism,
                theory_revision: result[4].clone(),
                note: Some(note),
                created_at,
                source: Source::Agent,
            },
            false,
        )?;
        imported.results += 1;
    }
    Ok(imported)
}

/// `SELECT` the named columns as text, reading a column the table lacks as NULL.
fn select(src: &Connection, table: &str, columns: &[&str], tail: &str) -> Result<Vec<Vec<Option<String>>>> {
    let present: Vec<String> =
        src.prepare(&format!("PRAGMA table_info({table})"))?.query_map([], |r| r.get(1))?.collect::<Result<_, _>>()?;
    let list: Vec<String> = columns
        .iter()
        .map(|c| if present.iter().any(|p| p == c) { format!("CAST({c} AS TEXT)") } else { "NULL".to_owned() })
        .collect();
    let mut stmt = src.prepare(&format!("SELECT {} FROM {table} {tail}", list.join(", ")))?;
    let rows = stmt.query_map([], |r| (0..columns.len()).map(|i| r.get(i)).collect())?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn numeric_metrics(text: &str) -> (Map<String, Value>, Vec<String>) {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return (Map::new(), vec!["(unreadable JSON)".to_owned()]);
    };
    let (numeric, other): (Map<String, Value>, Map<String, Value>) =
        map.into_iter().partition(|(_, v)| v.as_f64().is_some_and(f64::is_finite));
    (numeric, other.into_iter().map(|(k, _)| k).collect())
}
