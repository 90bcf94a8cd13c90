use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::json;

use crate::ctx::Ctx;
use crate::output;
use crate::store::transfer::{self, Imported};

/// Import a research log from PraxLab or autoresearch, all rows or none.
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
    let (source, path, as_json, imported): (_, _, _, Imported) = match command {
        ImportCommand::Praxlab { path, json: as_json } => {
            let imported = store.write(|tx| transfer::import_praxlab(tx, &ctx.cwd.join(&path)))?;
            ("praxlab", path, as_json, imported)
        }
        ImportCommand::ResultsTsv { path, leaf, json: as_json } => {
            let leaf = ctx.leaf(&lab, leaf);
            let file = File::open(ctx.cwd.join(&path)).with_context(|| format!("cannot read `{}`", path.display()))?;
            let imported = store
                .write(|tx| transfer::import_results_tsv(tx, file, leaf.as_deref(), &path.display().to_string()))?;
            ("results-tsv", path, as_json, imported)
        }
    };
    eprintln!(
        "imported {} hypotheses, {} experiments, {} results",
        imported.hypotheses, imported.experiments, imported.results
    );
    let answer = json!({
        "source": source,
        "path": path.display().to_string(),
        "hypotheses": imported.hypotheses,
        "experiments": imported.experiments,
        "results": imported.results,
    });
    output::answer(as_json, &answer, || {})?;
    Ok(())
}
