//! `lab export`: the history as results.tsv, CSV or JSON lines, on stdout or
//! into a file (written by `outfile`: atomically, never over a non-file).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::ctx::Ctx;
use crate::outfile;
use crate::output;
use crate::output::{Format, Table};
use crate::store::queries::{self, HistoryQuery};
use crate::store::transfer;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// autoresearch's results.tsv; `lab import results-tsv` reads it back
    ResultsTsv,
    Csv,
    Jsonl,
}

/// Export the history, oldest first: every experiment with its hypothesis and current result.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Only this leaf (default: all leaves)
    #[arg(long)]
    pub leaf: Option<String>,
    /// Write here (atomically: a complete file or none) instead of stdout
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<()> {
    let (_, store) = ctx.open()?;
    let mut rows = queries::history(store.conn(), &HistoryQuery { leaf: args.leaf, ..HistoryQuery::default() })?;
    rows.reverse();
    let write = |out: &mut dyn Write| -> Result<()> {
        match args.format {
            ExportFormat::ResultsTsv => transfer::export_results_tsv(&rows, &mut &mut *out),
            ExportFormat::Jsonl => rows.iter().try_for_each(|r| Ok(writeln!(out, "{}", serde_json::to_string(r)?)?)),
            ExportFormat::Csv => {
                let value = serde_json::to_value(&rows)?;
                let columns: Vec<&str> = value
                    .get(0)
                    .and_then(|v| v.as_object())
                    .map_or_else(Vec::new, |o| o.keys().map(String::as_str).collect());
                let mut table = Table::new(&columns);
                for row in value.as_array().into_iter().flatten() {
                    table.push(columns.iter().map(|c| row[*c].clone()).collect());
                }
                Ok(table.write(Format::Csv, &mut &mut *out)?)
            }
        }
    };
    match &args.output {
        None => write(&mut output::stdout()),
        Some(path) => {
            let path = ctx.cwd.join(path);
            outfile::write(&path, |file| write(file))?;
            eprintln!("exported {} experiments to {}", rows.len(), path.display());
            Ok(())
        }
    }
}
