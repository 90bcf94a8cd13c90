use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::ctx::Ctx;
use crate::fingerprint;
use crate::output;
use crate::store::imports::{self, Outcome};
use crate::store::transfer::{self, Imported};

/// Import a research log from PraxLab or autoresearch, all rows or none.
///
/// The same file (the same bytes, in the same format) imports once: a second
/// import is a no-op that says when the first was made.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// PraxLab's experiments.db (tables hypotheses, experiments, results)
    Praxlab {
        /// Path to experiments.db
        path: PathBuf,
        /// Print the counts imported as JSON
        #[arg(long)]
        json: bool,
    },
    /// autoresearch's results.tsv (commit val_bpb memory_gb status description)
    ResultsTsv {
        /// Path to results.tsv
        path: PathBuf,
        /// The leaf the rows belong to (default: the leaf containing the working directory)
        #[arg(long)]
        leaf: Option<String>,
        /// Print the counts imported as JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, command: ImportCommand) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let (format, path, leaf, as_json) = match command {
        ImportCommand::Praxlab { path, json } => ("praxlab", path, None, json),
        ImportCommand::ResultsTsv { path, leaf, json } => {
            ("results-tsv", path, ctx.leaf_to_record(&lab, &store, leaf)?, json)
        }
    };
    let full = ctx.cwd.join(&path);
    let shown = path.display().to_string();
    let what = if format == "praxlab" { "a PraxLab database" } else { "a results.tsv" };
    let bytes = transfer::read_source(&full, what)?;
    let sha256 = fingerprint::sha256_hex(&bytes);
    let source = imports::Source { format, path: &shown, sha256: &sha256, leaf: leaf.as_deref() };
    // Progress on a terminal only (indicatif hides a bar whose stderr is not one).
    let bar = if format == "praxlab" {
        ProgressBar::new_spinner().with_style(style("{spinner} importing: {pos} hypotheses and experiments"))
    } else {
        let rows = bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1);
        ProgressBar::new(rows as u64).with_style(style("importing {bar:40} {pos}/{len} rows"))
    };
    let tick = || bar.inc(1);
    let outcome = store.write(|tx| {
        imports::once(tx, &source, |tx| match format {
            "praxlab" => transfer::import_praxlab(tx, &full, &tick),
            _ => transfer::import_results_tsv(tx, bytes.as_slice(), leaf.as_deref(), &shown, &tick),
        })
    })?;
    bar.finish_and_clear();
    let (imported, earlier) = match outcome {
        Outcome::Imported(imported) => {
            eprintln!(
                "imported {} hypotheses, {} experiments, {} results",
                imported.hypotheses, imported.experiments, imported.results
            );
            (imported, None)
        }
        Outcome::Already(earlier) => {
            eprintln!(
                "`{shown}` was imported already (import {} of `{}` at {}: {} hypotheses, {} experiments, {} results): \
                 nothing imported",
                earlier.id, earlier.path, earlier.created_at, earlier.hypotheses, earlier.experiments, earlier.results
            );
            (Imported::default(), Some(earlier))
        }
    };
    let answer = json!({
        "source": format,
        "path": shown,
        "sha256": sha256,
        "hypotheses": imported.hypotheses,
        "experiments": imported.experiments,
        "results": imported.results,
        "already_imported": earlier,
    });
    output::answer(as_json, &answer, || {})?;
    Ok(())
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}
