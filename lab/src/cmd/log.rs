use anyhow::Result;
use clap::Args;
use jiff::Timestamp;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::output;
use crate::output::{FormatArgs, Table};
use crate::stale;
use crate::store::comparisons;
use crate::store::queries::{self, HistoryQuery};
use crate::store::records::Verdict;

/// The history of experiments as a table, newest first (or best first with --sort).
///
/// Each row says who recorded its result (`harness`, or `agent` for one typed
/// with `lab result`) and the comparison it was recorded under (the first 12
/// digits of its key); when a leaf in view was re-locked, a note on stderr says
/// which comparison is current and what the re-lock changed.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this leaf (default: the leaf containing the working directory, else all)
    #[arg(long)]
    pub leaf: Option<String>,
    /// Only results with this verdict
    #[arg(long, value_enum)]
    pub verdict: Option<Verdict>,
    /// Only experiments started since this time (RFC 3339, e.g. 2026-11-22T08:00:00Z) or this long ago (e.g. 2h)
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many rows (0: all)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Sort best first by a metric, e.g. metrics.val_bpb (its goal from lab.yaml or the leaf; default minimize)
    #[arg(long, value_name = "metrics.NAME")]
    pub sort: Option<String>,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: LogArgs) -> Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let (lab, store) = ctx.open()?;
    let leaf = ctx.leaf(&lab, args.leaf)?;
    let sort = match &args.sort {
        Some(key) => {
            let metric = key.strip_prefix("metrics.").filter(|m| !m.is_empty()).ok_or_else(|| {
                LabError::usage(format!("cannot sort by `{key}`: expected metrics.NAME, like metrics.val_bpb"))
            })?;
            let goal = lab.goal_of(leaf.as_deref(), metric).unwrap_or(crate::gate::Goal::Minimize);
            Some((metric.to_owned(), goal))
        }
        None => None,
    };
    let query = HistoryQuery {
        leaf,
        verdicts: args.verdict.map(Verdict::as_str).into_iter().collect(),
        since,
        sort,
        limit: (args.limit > 0).then_some(args.limit),
        ..HistoryQuery::default()
    };
    let rows = queries::history(store.conn(), &query)?;
    let (now, host) = (Timestamp::now(), stale::host_name());
    let people = args.output.format().for_people();
    let mut table = Table::new(&[
        "experiment",
        "hypothesis",
        "leaf",
        "state",
        "verdict",
        "check",
        "reason",
        "source",
        "title",
        "metrics",
        "mechanism",
        "commit",
        "comparison",
        "started_at",
        "archive",
    ]);
    for r in &rows {
        table.push(vec![
            r.experiment.clone().into(),
            r.hypothesis.clone().into(),
            r.leaf.clone().into(),
            stale::shown_state(r, now, &host, lab.manifest.stale_after).into(),
            r.verdict.clone().into(),
            r.check.clone().into(),
            output::narrow(r.reason.as_deref(), people).into(),
            r.provenance().into(),
            r.title.clone().into(),
            r.metrics.clone(),
            r.mechanism_verdict.clone().into(),
            r.commit.as_deref().map(|c| c.chars().take(12).collect::<String>()).into(),
            r.comparison.as_deref().map(comparisons::short).into(),
            r.started_at.clone().into(),
            archive(store.conn(), &r.experiment)?.into(),
        ]);
    }
    table.write(args.output.format(), &mut output::stdout())?;
    let compared = match &query.leaf {
        Some(leaf) => comparisons::current(store.conn(), leaf)?.into_iter().collect(),
        None => comparisons::all_current(store.conn())?,
    };
    for c in compared.iter().filter(|c| c.relock.is_some()) {
        eprintln!("note: leaf `{}` is on {}", c.leaf, c.describe());
    }
    Ok(())
}

/// Where a discarded or crashed candidate was archived (`<leaf>/_archive/<e>-<verdict>`).
fn archive(conn: &rusqlite::Connection, experiment: &str) -> Result<Option<String>> {
    let Ok(id) = experiment.parse() else { return Ok(None) };
    crate::store::gate::archive_of(conn, id)
}

/// An RFC 3339 time, or a duration meaning "this long ago".
fn parse_since(text: &str) -> Result<String, LabError> {
    let at = match text.parse::<Timestamp>() {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                LabError::usage(format!(
                    "cannot read --since `{text}`: give a time like 2026-11-22T08:00:00Z or a duration like 2h"
                ))
            })?;
            let ago = jiff::SignedDuration::try_from(ago).map_err(|e| LabError::usage(e.to_string()))?;
            Timestamp::now().checked_sub(ago).map_err(|e| LabError::usage(e.to_string()))?
        }
    };
    Ok(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}
