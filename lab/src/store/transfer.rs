//! Import from the formats agents already have, and export to plain tables.
//!
//! - PraxLab's `experiments.db` (tables hypotheses, experiments, results; text ids
//!   like `h1`, `task_id` as the leaf). Old PraxLab databases lack some columns;
//!   those read as NULL.
//! - autoresearch's `results.tsv`: `commit val_bpb memory_gb status description`.
//!
//! An import runs in one IMMEDIATE transaction: all rows land or none do, and
//! its record (`store::imports`) with them, so the same bytes import once.
//! Export of results-tsv then import gives back the same rows. Imported results
//! are the agent's (`Source::Agent`): no run of this harness stands behind them.
//! Errors name the source file.

mod praxlab;

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context as _, Result};
use rusqlite::Transaction;
use serde_json::{Map, Value};

use crate::error::LabError;
use crate::ids::HypothesisId;
use crate::store::queries::HistoryRow;
use crate::store::records::{self, Mechanism, NewExperiment, NewHypothesis, NewResult, Source, Verdict};
use crate::vcs::Snapshot;

pub use praxlab::import_praxlab;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub hypotheses: usize,
    pub experiments: usize,
    pub results: usize,
}

/// The bytes of an import's source, refused (naming it) unless it is a readable
/// regular file: `what` says what it should have been.
pub fn read_source(path: &Path, what: &str) -> Result<Vec<u8>, LabError> {
    let cannot = |e: std::io::Error| LabError::usage(format!("cannot read `{}`: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(LabError::usage(format!("`{}` is {kind}, not {what}", path.display())));
    }
    std::fs::read(path).map_err(cannot)
}

pub const RESULTS_TSV_HEADER: [&str; 5] = ["commit", "val_bpb", "memory_gb", "status", "description"];

/// Read autoresearch's results.tsv into new hypotheses, experiments and results.
/// Called once per row an import records (the command's progress bar).
pub type Tick<'a> = &'a dyn Fn();

pub fn import_results_tsv(
    tx: &Transaction<'_>,
    input: impl Read,
    leaf: Option<&str>,
    source: &str,
    tick: Tick<'_>,
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
        tick();
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
