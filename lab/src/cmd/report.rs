//! `lab report [LEAF | --all] [-o FILE.html]`: the research as one HTML file.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::leaf::{self, Leaf};
use crate::output;
use crate::{outfile, outln, report};

/// One self-contained HTML file (inline SVG and CSS, nothing fetched): per
/// leaf the progress chart, the leader with the gate's interval, the noise,
/// the held-out transfer as last read (the report reads no held-out split),
/// what the gate can detect, saturation, blend weights, checkpoints, and the
/// table of experiments (hypothesis, mechanism, verdict, metric, mechanism
/// verdict, theory revision, crash reason, flags, provenance). Prints the
/// path. Exit 2 when the output is not an `.html` path.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory, else every leaf)
    #[arg(conflicts_with = "all")]
    pub leaf: Option<String>,
    /// Every leaf of the lab, even from inside one
    #[arg(long)]
    pub all: bool,
    /// Write here (default: `.lab/report.html` of the lab root)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print the path and what the report holds as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: ReportArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let path = args.output.map_or_else(|| lab.layout().dir().join("report.html"), |p| ctx.cwd.join(p));
    if path.extension().is_none_or(|e| e != "html") {
        return Err(LabError::usage(format!("`{}`: lab report writes HTML only", path.display()))
            .hint("name a file ending in .html")
            .into());
    }
    let leaf = match (args.all, args.leaf.as_deref(), lab.leaf_containing(&ctx.cwd)) {
        (true, ..) | (false, None, None) => None,
        (false, named, _) => Some(Leaf::load(&leaf::locate(&lab, &ctx.cwd, named)?)?),
    };
    let views = report::views(&lab, &store, leaf.as_ref())?;
    let html = report::render(&lab.manifest.name, &views, false)?;
    outfile::write(&path, |file| Ok(file.write_all(html.as_bytes())?))?;
    let leaves: Vec<_> = views.iter().map(|v| json!({ "leaf": v.name, "experiments": v.total_rows })).collect();
    let answer = json!({ "path": path.display().to_string(), "leaves": leaves });
    output::answer(args.json, &answer, || outln!("{}", path.display()))?;
    Ok(())
}
