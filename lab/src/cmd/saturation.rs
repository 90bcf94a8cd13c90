//! `lab saturation`: whether the latest candidates only turned knobs around the leader.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::analysis::saturation::{self, Saturation};
use crate::ctx::Ctx;
use crate::leaf::{self, Leaf};
use crate::lifecycle::inputs;
use crate::output;
use crate::output::{FormatArgs, Report, Table};

/// Correlation of each recent candidate's val predictions with the leader's, and the verdict.
///
/// Predictions-mode leaves only. The leaf is saturated when the last
/// gate.saturation_window candidates (default 5) under the current leaf.lock all
/// correlate above gate.saturation_correlation (default 0.98) with the leader
/// and none was kept: new ideas must then change the model family or the data,
/// not the knobs. Every prediction file is checked against its recorded sha256
/// first. Exit codes: 0 reported (saturated or not), 2 not a predictions-mode
/// leaf or no such leaf, 3 a prediction file changed since it was scored or a
/// frozen file differs from leaf.lock.
#[derive(Debug, Args)]
pub struct SaturationArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: SaturationArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
    let lock_sha256 = inputs::comparability(&lab, &store, &leaf)?.key;
    let report = saturation::assess(&store, &leaf, &lock_sha256)?;
    let sections = sections(&report);
    Report { json: json!(report), sections }.write(args.output.format(), &mut output::stdout())?;
    Ok(())
}

/// The candidates table and the verdict; `lab context` shows the same.
pub fn sections(s: &Saturation) -> Vec<(String, Table)> {
    let leader = s.leader.as_deref().unwrap_or("none");
    let mut candidates = Table::new(&["experiment", "verdict", "correlation", "above"]);
    for c in &s.candidates {
        candidates.push(vec![
            c.experiment.clone().into(),
            c.verdict.clone().into(),
            c.correlation.map(|r| (r * 1e4).round() / 1e4).into(),
            c.above.into(),
        ]);
    }
    let mut verdict = Table::new(&["leaf", "leader", "window", "threshold", "saturated", "reason", "advice"]);
    verdict.push(vec![
        s.leaf.clone().into(),
        leader.into(),
        s.window.into(),
        s.threshold.into(),
        s.saturated.into(),
        s.reason.clone().into(),
        s.advice.clone().into(),
    ]);
    vec![
        (format!("val-prediction correlation with the leader {leader}, newest first"), candidates),
        ("saturation".to_owned(), verdict),
    ]
}
