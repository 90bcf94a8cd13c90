use anyhow::Result;
use clap::Args;
use jiff::Timestamp;

use crate::ctx::Ctx;
use crate::ids::ExperimentId;
use crate::output;
use crate::output::{FormatArgs, Table};
use crate::stale;
use crate::store::queries::{self, HistoryQuery};
use crate::store::records::{self, NewResult, Source, Verdict};

/// Mark stale runs crashed: experiments still "running" whose process is gone or
/// that are far past their budget, and end what is left of their processes (a
/// supervisor killed together with its keeper leaves the leaf's code running).
/// Reading commands only show them as stale.
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
    let mut ended = Vec::new();
    if !args.dry_run {
        for (experiment, _) in &stale {
            ended.push(crate::supervisor::keeper::end_leftovers(lab.layout().run(*experiment).root()));
        }
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
    for (i, (experiment, reason)) in stale.iter().enumerate() {
        let action = match ended.get(i) {
            None => "would mark crashed".to_owned(),
            Some(0) => "marked crashed".to_owned(),
            Some(n) => format!("marked crashed, ended {n} process(es)"),
        };
        table.push(vec![experiment.to_string().into(), reason.clone().into(), action.into()]);
    }
    table.write(args.output.format(), &mut output::stdout())?;
    eprintln!("{} stale of {} running", stale.len(), running.len());
    Ok(())
}
