use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::leaf::discover::{self, shown};
use crate::leaf::lock;
use crate::output;
use crate::output::{FormatArgs, Table};
use crate::store::comparisons;
use crate::store::leaves::stats;

/// Every leaf of the lab at a glance: metric and goal, best kept result (the
/// harness's, within the leaf's current comparison), that comparison and what
/// the re-lock that started it changed, experiments, last activity, and whether
/// its frozen files match leaf.lock (ok, changed or missing).
///
/// Leaves are found below the lab's leaves directory (lab.yaml `leaves:`). A
/// leaf whose leaf.yaml cannot be loaded is listed with its error (exit 0).
#[derive(Debug, Args)]
pub struct LeavesArgs {
    #[command(flatten)]
    pub output: FormatArgs,
}

const COLUMNS: [&str; 12] = [
    "leaf",
    "metric",
    "goal",
    "best",
    "best_experiment",
    "comparison",
    "relock",
    "experiments",
    "last_activity",
    "lock",
    "path",
    "error",
];

pub fn run(ctx: &Ctx, args: LeavesArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let found = discover::discover(&lab.leaves_dir());
    let mut table = Table::new(&COLUMNS);
    let mut broken = 0;
    for f in &found.leaves {
        let path = json!(shown(&lab.dir, &f.dir));
        let leaf = match &f.leaf {
            Ok(leaf) => leaf,
            Err(e) => {
                broken += 1;
                let mut row = vec![Value::Null; COLUMNS.len()];
                (row[0], row[10], row[11]) = (json!(f.name()), path, json!(e));
                table.push(row);
                continue;
            }
        };
        // Research records name a leaf by its directory (see `LabRoot::leaf_containing`).
        let name = discover::dir_name(&f.dir);
        let metric = &leaf.manifest.metric;
        let s = stats(store.conn(), &name, &metric.name, metric.goal)?;
        let (lock_state, mut error) = match lock::verify(leaf) {
            Ok(state) => (json!(state.label()), Value::Null),
            Err(e) => (Value::Null, json!(format!("{e:#}"))),
        };
        if leaf.name() != name && error.is_null() {
            error = json!(format!("leaf.yaml names it `{}`: the name must equal the directory name", leaf.name()));
        }
        table.push(vec![
            json!(name),
            json!(metric.name),
            json!(metric.goal.to_string()),
            json!(s.best),
            json!(s.best_experiment),
            json!(s.comparison.as_ref().map(|c| format!("{} ({})", c.number, comparisons::short(&c.comparison.key)))),
            json!(s.comparison.as_ref().and_then(|c| c.relock.as_ref()).map(comparisons::Relock::describe)),
            json!(s.experiments),
            json!(s.last_activity),
            lock_state,
            path,
            error,
        ]);
    }
    table.write(args.output.format(), &mut output::stdout())?;
    if broken > 0 {
        eprintln!(
            "warning: {broken} leaf manifest(s) could not be loaded (see the error column; `lab check --all` lists every problem)"
        );
    }
    for stray in &found.strays {
        eprintln!("warning: `{}` holds no leaf.yaml", shown(&lab.dir, stray));
    }
    if found.leaves.is_empty() {
        eprintln!("no leaves under `{}` (`lab new NAME --template T` makes one)", shown(&lab.dir, &lab.leaves_dir()));
    }
    Ok(())
}
