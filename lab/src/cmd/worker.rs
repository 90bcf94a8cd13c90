//! `lab __worker SPEC`: the process the supervisor spawns to run a leaf's Python
//! code (hidden: people never call it). All of it lives in `python/`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;

/// Run one phase of a leaf in an embedded interpreter (internal)
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The worker spec (JSON) written by the supervisor
    pub spec: PathBuf,
}

pub fn run(_ctx: &Ctx, args: WorkerArgs) -> Result<()> {
    let code = crate::python::worker_main(&args.spec)?;
    // Exit now: finalising an interpreter that user code may have left with
    // running threads can hang, and nothing after this would be heard.
    std::process::exit(code)
}
