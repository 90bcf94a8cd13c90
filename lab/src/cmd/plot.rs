//! `lab plot [LEAF] [-o FILE.svg] [--metric NAME]`: the leaf's progress chart.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::leaf::{self, Leaf};
use crate::outfile;
use crate::plot::{self, Point};
use crate::store::queries::{self, HistoryQuery};

/// The leaf's progress as an SVG chart: every finished experiment in order
/// (kept filled, discarded hollow, crashed as a cross on the floor), the
/// running best of the harness's keeps as a step line, kept experiments
/// labelled with their hypothesis titles. Smoke checks are left out. Drawn in
/// Rust, no Python. Exit 2 when the leaf has no finished experiment, or the
/// output is not a `.svg` path.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// Write here (default: `<leaf>-progress.svg` in the working directory)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The metric on y (default: the leaf's primary metric)
    #[arg(long)]
    pub metric: Option<String>,
}

pub fn run(ctx: &Ctx, args: PlotArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
    let metric = args.metric.unwrap_or_else(|| leaf.manifest.metric.name.clone());
    let goal = lab.goal_of(Some(leaf.name()), &metric).ok_or_else(|| {
        LabError::usage(format!("leaf `{}` declares no goal for `{metric}`", leaf.name()))
            .hint("name the primary metric, one in metric.also, or one lab.yaml gives a goal")
    })?;
    let path = ctx.cwd.join(args.output.unwrap_or_else(|| PathBuf::from(format!("{}-progress.svg", leaf.name()))));
    if path.extension().is_none_or(|e| e != "svg") {
        return Err(LabError::usage(format!("`{}`: lab plot writes SVG only", path.display()))
            .hint("name a file ending in .svg")
            .into());
    }
    let query = HistoryQuery { leaf: Some(leaf.name().to_owned()), research_only: true, ..HistoryQuery::default() };
    let mut rows = queries::history(store.conn(), &query)?;
    rows.reverse();
    let points: Vec<Point> = rows
        .into_iter()
        .filter_map(|r| {
            let verdict = r.verdict.clone()?;
            Some(Point {
                value: r.metrics.get(&metric).and_then(serde_json::Value::as_f64),
                harness: r.source.as_deref() == Some("harness"),
                experiment: r.experiment,
                verdict,
                title: r.title,
            })
        })
        .collect();
    if points.is_empty() {
        return Err(LabError::usage(format!("leaf `{}` has no finished experiment to plot", leaf.name()))
            .hint("`lab run --decide` records the first")
            .into());
    }
    let svg = plot::progress_svg(leaf.name(), &metric, goal, &points)?;
    outfile::write(&path, |file| Ok(file.write_all(svg.as_bytes())?))?;
    let without = points.iter().filter(|p| p.value.is_none()).count();
    let note = if without > 0 { format!(" ({without} without `{metric}`, on the floor)") } else { String::new() };
    eprintln!("plotted {} experiments of `{}`{note} to {}", points.len(), leaf.name(), path.display());
    Ok(())
}
