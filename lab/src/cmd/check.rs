use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::leaf::discover::{self, shown};
use crate::leaf::{self, check};
use crate::output;
use crate::output::{FormatArgs, Table};

/// Check leaves the way CI does before anyone reviews a pull request: the
/// manifest, the required files, program.md's sections, the lock, disjoint
/// non-empty mutable and frozen sets, declared requirements.
///
/// Prints every problem (not just the first): one row per problem, or one `ok`
/// row per passing leaf. Exit codes: 0 every leaf passes, 1 problems were
/// found, 2 bad usage (no such leaf, no lab root).
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The leaf: a name or a directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// Every leaf below the lab's leaves directory, and any directory there without a leaf.yaml
    #[arg(long, conflicts_with = "leaf")]
    pub all: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: CheckArgs) -> Result<()> {
    let lab = ctx.lab()?;
    let mut checked: Vec<(String, String, Vec<String>)> = Vec::new();
    if args.all {
        let found = discover::discover(&lab.leaves_dir());
        for f in &found.leaves {
            checked.push((f.name(), shown(&lab.dir, &f.dir), check::check(&f.dir)));
        }
        for stray in &found.strays {
            let problem =
                "no leaf.yaml here: add one (`lab new` scaffolds a leaf) or move the directory out".to_owned();
            checked.push((discover::dir_name(stray), shown(&lab.dir, stray), vec![problem]));
        }
    } else {
        let dir = leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?;
        checked.push((discover::dir_name(&dir), shown(&lab.dir, &dir), check::check(&dir)));
    }

    let mut table = Table::new(&["leaf", "path", "status", "problem"]);
    for (name, path, problems) in &checked {
        if problems.is_empty() {
            table.push(vec![json!(name), json!(path), json!("ok"), Value::Null]);
        }
        for problem in problems {
            table.push(vec![json!(name), json!(path), json!("failed"), json!(problem)]);
        }
    }
    table.write(args.output.format(), &mut output::stdout())?;
    let failed = checked.iter().filter(|(_, _, p)| !p.is_empty()).count();
    let problems: usize = checked.iter().map(|(_, _, p)| p.len()).sum();
    if failed > 0 {
        return Err(LabError::failure(format!(
            "check failed: {problems} problem(s) in {failed} of {} leaves",
            checked.len()
        ))
        .into());
    }
    match checked.len() {
        0 => eprintln!("no leaves under `{}`", shown(&lab.dir, &lab.leaves_dir())),
        n => eprintln!("{n} leaves checked: all pass"),
    }
    Ok(())
}
