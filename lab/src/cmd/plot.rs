//! `lab plot [LEAF] [-o FILE.svg|.png] [--metric NAME] [--experiment eN]`: the
//! leaf's progress chart, or one experiment's training curves.

use std::path::PathBuf;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::ExperimentId;
use crate::leaf::{self, Leaf};
use crate::plot::{self, Line};
use crate::root::LabRoot;
use crate::supervisor::curve;
use crate::supervisor::protocol::decode_number;
use crate::{outfile, report};
use anyhow::Result;
use clap::Args;

/// The leaf's progress as an SVG chart: every finished experiment in order
/// (kept filled, discarded hollow, crashed as a cross on the floor), the
/// running best of the harness's keeps as a step line, kept experiments
/// labelled with their hypothesis titles, the band around the leader the gate
/// cannot tell from it, and the leader's held-out score where `lab holdout`
/// read it. Smoke checks are left out. With `--experiment`: that
/// experiment's training curves from what its code reported (`lab.report`),
/// one panel per metric, smoke and full tiers as separate lines. Drawn in
/// Rust, no Python (a `.png` is the SVG rasterised by resvg). Exit 2 when
/// there is nothing to plot, or the output is neither a `.svg` nor a `.png` path.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// Write here (default: `<leaf>-progress.svg`, or `<experiment>-curves.svg`, in the working directory)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The metric on y (default: the leaf's primary metric)
    #[arg(long, conflicts_with = "experiment")]
    pub metric: Option<String>,
    /// Draw this experiment's training curves instead
    #[arg(long)]
    pub experiment: Option<ExperimentId>,
}

pub fn run(ctx: &Ctx, args: PlotArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let default = match args.experiment {
        Some(e) => format!("{e}-curves.svg"),
        None => {
            format!("{}-progress.svg", leaf::discover::dir_name(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?))
        }
    };
    let path = ctx.cwd.join(args.output.unwrap_or_else(|| PathBuf::from(default)));
    let png = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => false,
        Some("png") => true,
        _ => {
            return Err(LabError::usage(format!("`{}`: lab plot writes SVG or PNG", path.display()))
                .hint("name a file ending in .svg or .png")
                .into());
        }
    };
    let (svg, said) = match args.experiment {
        Some(e) => curves(&lab, &store, e)?,
        None => {
            let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
            let metric = args.metric.unwrap_or_else(|| leaf.manifest.metric.name.clone());
            let (svg, points) = report::progress_chart(&lab, &store, &leaf, &metric)?;
            let svg = svg.ok_or_else(|| {
                LabError::usage(format!("leaf `{}` has no finished experiment to plot", leaf.name()))
                    .hint("`lab run --decide` records the first")
            })?;
            let without = points.iter().filter(|p| p.value.is_none()).count();
            let note =
                if without > 0 { format!(" ({without} without `{metric}`, on the floor)") } else { String::new() };
            (svg, format!("{} experiments of `{}`{note}", points.len(), leaf.name()))
        }
    };
    let bytes = if png { plot::png_of_svg(&svg)? } else { svg.into_bytes() };
    outfile::write(&path, |file| Ok(file.write_all(&bytes)?))?;
    eprintln!("plotted {said} to {}", path.display());
    Ok(())
}

/// The training curves of `experiment`, and what was plotted in words.
fn curves(lab: &LabRoot, store: &crate::store::Store, experiment: ExperimentId) -> Result<(String, String)> {
    crate::store::gate::experiment_leaf(store.conn(), experiment)?;
    let recorded = curve::read_all(lab.layout().run(experiment).root())?;
    let mut metrics: Vec<(String, Vec<Line>)> = Vec::new();
    for (tier, worker, points) in &recorded {
        let label = format!("{tier} {worker}");
        for p in points {
            for (name, value) in &p.metrics {
                if let Some(y) = decode_number(value) {
                    add(&mut metrics, name, &label, (p.t, y));
                }
            }
        }
    }
    if metrics.is_empty() {
        return Err(LabError::usage(format!("{experiment} reported no numeric metric with `lab.report`"))
            .hint("a leaf's code reports its training curve with lab.report(step=..., loss=...)")
            .into());
    }
    let svg = plot::curves_svg(&experiment.to_string(), &metrics)?;
    Ok((svg, format!("{} metric(s) of {experiment}'s {} curve(s)", metrics.len(), recorded.len())))
}

/// Add a point to `name`'s panel (a new one while there are fewer than
/// [`plot::MAX_PANELS`]), on the line of `label`.
fn add(metrics: &mut Vec<(String, Vec<Line>)>, name: &str, label: &str, point: (f64, f64)) {
    let at = match metrics.iter().position(|m| m.0 == name) {
        Some(at) => at,
        None if metrics.len() < plot::MAX_PANELS => {
            metrics.push((name.to_owned(), Vec::new()));
            metrics.len() - 1
        }
        None => return,
    };
    let lines = &mut metrics[at].1;
    match lines.iter_mut().find(|l| l.0 == label) {
        Some(line) => line.1.push(point),
        None => lines.push((label.to_owned(), vec![point])),
    }
}
