//! `lab diff eA eB`: two experiments' code and evidence side by side.

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::ExperimentId;
use crate::leaf::{self, Leaf};
use crate::outln;
use crate::output::{self, Format, FormatArgs, Report, Table};
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::gate as records;
use crate::store::queries::{self, HistoryQuery, HistoryRow};
use crate::vcs::{self, CodeAt};

/// The code diff between two experiments of one leaf (each one's commit with
/// its candidate patch on top: the code that ran, kept or not), and their
/// verdicts, metrics, gate evidence and flags side by side. Exit 2 for an
/// unknown experiment, two leaves, or an experiment with no run (a result
/// typed with `lab result` has no code).
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older side (e<N>)
    pub a: ExperimentId,
    /// The newer side (e<N>)
    pub b: ExperimentId,
    #[command(flatten)]
    pub output: FormatArgs,
}

const FIELDS: [&str; 10] =
    ["title", "verdict", "source", "metrics", "improvement", "interval", "prob_better", "n", "flags", "commit"];

pub fn run(ctx: &Ctx, args: DiffArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let (a, b) = (side(&store, args.a)?, side(&store, args.b)?);
    if a.row.leaf != b.row.leaf {
        return Err(LabError::usage(format!(
            "{} ran in `{}` and {} in `{}`: a diff compares experiments of one leaf",
            args.a,
            a.row.leaf.as_deref().unwrap_or("no leaf"),
            args.b,
            b.row.leaf.as_deref().unwrap_or("no leaf")
        ))
        .into());
    }
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, a.row.leaf.as_deref())?)?;
    let diff = vcs::diff_code(&lab.dir, &code(&lab, args.a, &a.row)?, &code(&lab, args.b, &b.row)?, &leaf.dir)?;
    let mut table = Table::new(&["field", &args.a.to_string(), &args.b.to_string()]);
    for field in FIELDS {
        table.push(vec![json!(field), a.fields[field].clone(), b.fields[field].clone()]);
    }
    let format = args.output.format();
    if matches!(format, Format::Json | Format::Jsonl) {
        let json = json!({ "leaf": leaf.name(), "a": a.fields, "b": b.fields, "diff": diff });
        return Ok(Report { json, sections: Vec::new() }.write(format, &mut output::stdout())?);
    }
    table.write(format, &mut output::stdout())?;
    outln!("{}", if diff.is_empty() { "(the same code)".to_owned() } else { diff });
    Ok(())
}

struct Side {
    row: HistoryRow,
    fields: Value,
}

fn side(store: &Store, id: ExperimentId) -> Result<Side> {
    records::experiment_leaf(store.conn(), id)?; // an unknown id is a usage error
    let rows = queries::history(store.conn(), &HistoryQuery { experiment: Some(id), ..HistoryQuery::default() })?;
    let row = rows.into_iter().next().context("the experiment has no history row")?;
    let gate = records::latest_report(store.conn(), id)?;
    let interval = gate.as_ref().map(|g| json!([g.ci_low, g.ci_high]));
    let fields = json!({
        "experiment": row.experiment,
        "title": row.title,
        "verdict": row.shown_verdict(),
        "source": row.provenance(),
        "metrics": row.metrics,
        "improvement": gate.as_ref().map(|g| g.improvement),
        "interval": interval,
        "prob_better": gate.as_ref().map(|g| g.prob_better),
        "n": gate.as_ref().map(|g| g.n),
        "flags": gate.as_ref().map(|g| g.flags.clone()).unwrap_or_default(),
        "commit": row.commit,
    });
    Ok(Side { row, fields })
}

/// The code `id` ran: its commit and its candidate patch.
fn code(lab: &LabRoot, id: ExperimentId, row: &HistoryRow) -> Result<CodeAt> {
    let patch_path = lab.layout().run(id).candidate_patch();
    let (Some(commit), Ok(patch)) = (row.commit.clone(), std::fs::read_to_string(&patch_path)) else {
        return Err(LabError::usage(format!("{id} has no recorded code: only experiments `lab run` ran have one"))
            .hint("a result typed with `lab result` records no code")
            .into());
    };
    Ok(CodeAt { commit, patch })
}
