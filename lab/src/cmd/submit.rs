use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::leaf::{self, Leaf};
use crate::outln;
use crate::output;
use crate::submit::{self, Outcome};

/// Write the leader's predictions for the leaf's submission inputs in its declared
/// format; records the file's sha256 and the leader it came from.
///
/// With --if-idle, re-issues only when no new keep happened within that window: a
/// defensive submission that keeps a leaderboard slot alive.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// Only when the last keep is older than this (e.g. 6h)
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub if_idle: Option<Duration>,
    /// Where to write (default: .lab/submissions/<leaf>/<time>-<experiment>.csv)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print the record as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: SubmitArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
    let output = args.output.map(|p| ctx.cwd.join(p));
    match submit::submit(&lab, &mut store, &leaf, args.if_idle, output)? {
        Outcome::Written(s) => output::answer(args.json, &s, || {
            outln!("{}", s.path);
            eprintln!("{} rows from leader {} (sha256 {})", s.rows, s.experiment, s.sha256);
        })?,
        Outcome::Skipped { experiment, kept_at } => {
            if args.json {
                outln!("{}", serde_json::json!({ "skipped": true, "last_keep": experiment, "kept_at": kept_at }));
            }
            eprintln!("not re-issued: {experiment} was kept at {kept_at}, within the --if-idle window");
        }
    }
    Ok(())
}
