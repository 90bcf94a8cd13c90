use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::output;
use crate::output::{FormatArgs, Table};
use crate::store::queries::{self, HistoryQuery};

/// Discarded and crashed ideas with their mechanisms and theory revisions, newest
/// first, so they are not tried again blindly.
#[derive(Debug, Args)]
pub struct FailuresArgs {
    /// Only this leaf (default: the leaf containing the working directory, else all)
    #[arg(long)]
    pub leaf: Option<String>,
    /// At most this many (0: all)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: FailuresArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let leaf = ctx.leaf(&lab, args.leaf)?;
    let query = HistoryQuery {
        leaf: leaf.clone(),
        verdicts: vec!["discard", "crash"],
        limit: (args.limit > 0).then_some(args.limit),
        research_only: true,
        ..HistoryQuery::default()
    };
    let rows = queries::history(store.conn(), &query)?;
    let people = args.output.format().for_people();
    let mut table = Table::new(&[
        "experiment",
        "hypothesis",
        "leaf",
        "verdict",
        "reason",
        "source",
        "title",
        "mechanism",
        "mechanism_verdict",
        "theory_revision",
        "metrics",
    ]);
    for r in &rows {
        table.push(vec![
            r.experiment.clone().into(),
            r.hypothesis.clone().into(),
            r.leaf.clone().into(),
            r.verdict.clone().into(),
            output::narrow(r.reason.as_deref(), people).into(),
            r.provenance().into(),
            r.title.clone().into(),
            r.mechanism.clone().into(),
            r.mechanism_verdict.clone().into(),
            r.theory_revision.clone().into(),
            r.metrics.clone(),
        ]);
    }
    table.write(args.output.format(), &mut output::stdout())?;
    let total = queries::count_failures(store.conn(), leaf.as_deref())?;
    if (rows.len() as u64) < total {
        eprintln!("showing {} of {total} failures; --limit 0 shows all", rows.len());
    }
    Ok(())
}
