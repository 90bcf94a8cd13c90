use anyhow::Result;
use clap::Args;
use jiff::Timestamp;

use crate::ctx::Ctx;
use crate::ids::ExperimentId;
use crate::output::{FormatArgs, Table};
use crate::stale;
use crate::store::queries::{self, HistoryQuery};
use crate::store::records::{self, NewResult, Source, Verdict};

/// Mark stale runs crashed: experiments still "running" whose process is gone or
/// that are far past their budget. Reading commands only show them as stale.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Show what would be marked, change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: SweepArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let (now, host) = (Timestamp::now(), stale::host_name());
    let running = queries::history(store.conn(), &HistoryQuery { running: true, ..HistoryQuery::default() })?;
    let stale: Vec<(ExperimentId, String)> = running
        .iter()
        .filter_map(|r| {
            let reason = stale::stale_reason(r, now, &host, lab.manifest.stale_after)?;
            Some((r.experiment.parse().ok()?, reason))
        })
        .collect();
    if !args.dry_run {
        store.write(|tx| {
            for (experiment, reason) in &stale {
                let result = NewResult {
                    experiment: *experiment,
                    verdict: Verdict::Crash,
                    metrics: Default::default(),
                    mechanism: None,
                    theory_revision: None,
                    note: Some(format!("swept: {reason}")),
                    created_at: records::now(),
                    // The harness's own rule decided it, not an agent's word.
                    source: Source::Harness,
                };
                records::add_result(tx, &result, false)?;
            }
            Ok(())
        })?;
    }
    let mut table = Table::new(&["experiment", "reason", "action"]);
    for (experiment, reason) in &stale {
        let action = if args.dry_run { "would mark crashed" } else { "marked crashed" };
        table.push(vec![experiment.to_string().into(), reason.clone().into(), action.into()]);
    }
    table.write(args.output.format(), &mut std::io::stdout().lock())?;
    eprintln!("{} stale of {} running", stale.len(), running.len());
    Ok(())
}
