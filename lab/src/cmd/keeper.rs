//! `lab __keeper SPEC`: the process between the supervisor and one worker that
//! ends the worker's whole process tree (hidden: people never call it). All of
//! it lives in `supervisor::keeper`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;

/// Keep one worker and everything it starts (internal)
#[derive(Debug, Args)]
pub struct KeeperArgs {
    /// The worker spec (JSON) written by the supervisor
    pub spec: PathBuf,
}

pub fn run(_ctx: &Ctx, args: KeeperArgs) -> Result<()> {
    let code = crate::supervisor::keeper::keeper_main(&args.spec)?;
    std::process::exit(code)
}
