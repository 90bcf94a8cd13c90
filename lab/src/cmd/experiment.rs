use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::ids::HypothesisId;
use crate::outln;
use crate::output;
use crate::stale;
use crate::store::records::{self, NewExperiment};
use crate::vcs;

/// Start an experiment under a hypothesis; prints its id (e<N>).
///
/// Records the leaf, the code (git commit, dirty flag, sha256 of the working-tree
/// diff), the host, the process and the start time.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The hypothesis it tests (h<N>)
    pub hypothesis: HypothesisId,
    /// The leaf it runs in (default: the leaf containing the working directory, else the hypothesis's)
    #[arg(long)]
    pub leaf: Option<String>,
    /// The process doing the work: when it dies without a result, the run shows as stale
    /// (default: record the calling shell, unwatched)
    #[arg(long)]
    pub pid: Option<u32>,
    /// Its wall-clock budget (e.g. 5m): twice this plus 5 minutes without a result makes it stale
    #[arg(long, value_parser = crate::cli::budget)]
    pub budget: Option<Duration>,
    /// Print the experiment as recorded (id, hypothesis, leaf, code snapshot, host, pid, start) as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: ExperimentArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let snapshot = vcs::snapshot(&ctx.cwd)?;
    let leaf = ctx.leaf_to_record(&lab, &store, args.leaf)?;
    let (id, e) = store.write(|tx| {
        // Also refuses an unknown hypothesis before anything is written.
        let leaf = leaf.or(records::hypothesis_leaf(tx, args.hypothesis)?);
        let experiment = NewExperiment {
            hypothesis: args.hypothesis,
            leaf,
            snapshot,
            host: stale::host_name(),
            pid: Some(i64::from(args.pid.unwrap_or_else(|| nix::unistd::getppid().as_raw() as u32))),
            watch_pid: args.pid.is_some(),
            budget_s: args.budget.map(|b| b.as_secs_f64()),
            started_at: records::now(),
        };
        Ok((records::add_experiment(tx, &experiment)?, experiment))
    })?;
    let answer = json!({
        "experiment": id.to_string(),
        "hypothesis": e.hypothesis.to_string(),
        "leaf": e.leaf,
        "commit": e.snapshot.commit,
        "dirty": e.snapshot.dirty,
        "diff_sha256": e.snapshot.diff_sha256,
        "host": e.host,
        "pid": e.pid,
        "watch_pid": e.watch_pid,
        "budget_s": e.budget_s,
        "started_at": e.started_at,
    });
    output::answer(args.json, &answer, || outln!("{id}"))?;
    Ok(())
}
