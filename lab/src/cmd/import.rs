use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use crate::ctx::Ctx;
use crate::store::transfer::{self, Imported};

/// Import a research log from PraxLab or autoresearch, all rows or none.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// PraxLab's experiments.db (tables hypotheses, experiments, results)
    Praxlab {
        /// Path to experiments.db
        path: PathBuf,
    },
    /// autoresearch's results.tsv (commit val_bpb memory_gb status description)
    ResultsTsv {
        /// Path to results.tsv
        path: PathBuf,
        /// The leaf the rows belong to (default: the leaf containing the working directory)
        #[arg(long)]
        leaf: Option<String>,
    },
}

pub fn run(ctx: &Ctx, command: ImportCommand) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let imported: Imported = match command {
        ImportCommand::Praxlab { path } => store.write(|tx| transfer::import_praxlab(tx, &ctx.cwd.join(&path)))?,
        ImportCommand::ResultsTsv { path, leaf } => {
            let leaf = ctx.leaf(&lab, leaf);
            let file = File::open(ctx.cwd.join(&path)).with_context(|| format!("cannot read `{}`", path.display()))?;
            store.write(|tx| transfer::import_results_tsv(tx, file, leaf.as_deref(), &path.display().to_string()))?
        }
    };
    eprintln!(
        "imported {} hypotheses, {} experiments, {} results",
        imported.hypotheses, imported.experiments, imported.results
    );
    Ok(())
}
