//! `lab baseline`: measure the leader's run-to-run noise for the scalar gate.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::leaf;
use crate::lifecycle::baseline::{self, BaselineOptions};
use crate::outln;
use crate::output::{self, format_number};

/// Rerun the leader's committed code under new seeds and store the spread of its metric.
///
/// Each rerun is a full run recorded under the leader experiment, with the seed
/// the harness chose (lab.seed()). The spread (n, mean, sd over all the
/// leader's full runs) is stored per leaf and leaf.lock; the gate of `lab run
/// --decide` reads it in in-process (scalar) mode, and without it refuses to
/// call a small gap a win. Refuses (exit 3) when mutable files have
/// uncommitted changes or there is no leader yet. Exit 4 when a rerun crashed.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// How many reruns (default: the manifest's gate.repeats, else 3)
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Override the full budget of each rerun (e.g. 90s, 5m)
    #[arg(long, value_parser = crate::cli::budget, value_name = "DURATION")]
    pub budget: Option<Duration>,
    /// The first rerun's seed; the next ones count up from it (default: random, recorded)
    #[arg(long)]
    pub seed: Option<u64>,
    /// No live progress on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: BaselineArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let leaf_dir = leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?;
    let options =
        BaselineOptions { leaf_dir, repeats: args.repeats, budget: args.budget, quiet: args.quiet, seed: args.seed };
    let s = baseline::baseline(&lab, &mut store, options)?;
    output::answer(args.json, &s, || {
        let seeds: Vec<String> = s.seeds.iter().map(ToString::to_string).collect();
        outln!(
            "{} baseline of leader {}: {} runs, {} mean {} sd {}",
            s.leaf,
            s.leader,
            s.n,
            s.metric,
            format_number(s.mean),
            format_number(s.sd)
        );
        outln!("  new seeds: {}", seeds.join(", "));
        outln!("  log: {}", s.log);
    })?;
    Ok(())
}
