//! `lab serve [LEAF] [--port N]`: the report, live, on 127.0.0.1.

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::leaf;
use crate::outln;
use crate::serve;

/// The report's page, live: read-only, on 127.0.0.1 only, rendered from the
/// research memory on each request and reloaded in the browser when it
/// changes (server-sent events), with each running experiment's elapsed time
/// and last reported metrics updated every second. `GET /report.json` gives
/// the same data as JSON. Prints the URL on stdout once listening; runs until
/// stopped (Ctrl-C). Exit 1 when the port cannot be bound.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Only this leaf, by name or directory (default: every leaf)
    pub leaf: Option<String>,
    /// The port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 8421)]
    pub port: u16,
}

pub fn run(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    let (lab, _) = ctx.open()?;
    let leaf = args.leaf.as_deref().map(|name| leaf::locate(&lab, &ctx.cwd, Some(name))).transpose()?;
    serve::serve(lab, leaf, args.port, |addr| {
        outln!("http://{addr}/");
        eprintln!("lab serve: read-only, on {addr} only; Ctrl-C stops it");
    })
}
