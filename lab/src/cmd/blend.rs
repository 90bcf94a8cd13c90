//! `lab blend`: blend recorded models' predictions and submit the blend through the gate.

use anyhow::Result;
use clap::Args;

use crate::analysis::blend::{self, BlendOptions, BlendSummary};
use crate::ctx::Ctx;
use crate::ids::ExperimentId;
use crate::leaf;
use crate::outln;
use crate::output;
use crate::output::format_number;
use crate::output::{Format, Table};

/// Blend kept models' val predictions with non-negative weights and submit the blend as a candidate.
///
/// Predictions-mode leaves only. Components: every kept experiment under the
/// current leaf.lock, or those named with --components. Prints the components'
/// error-correlation matrix (errors that move together do not cancel), then
/// searches weights that are multiples of 0.05, non-negative and summing to 1,
/// for the best primary metric on val (every grid point for up to 4
/// components, greedy forward selection beyond). The blend is recorded as a
/// new experiment (hypothesis "blend of e3+e7", mechanism "uncorrelated errors
/// cancel") whose blended val, holdout and submission predictions are scored by
/// the harness and judged by the gate against the leader. The val predictions
/// the gate reads are cross-fitted (5 folds: each item blended with weights
/// searched on the other folds), so the search's optimism never reaches the
/// decision; holdout and submission use the weights of all of val, which go into
/// the result's metrics (weight.e3) and note. A kept blend commits nothing (no
/// code changed) but becomes the leader, and `lab submit` then writes its
/// predictions. Exit codes: 0 a result was recorded (keep or discard), 2 fewer
/// than 2 components, an in-process leaf or bad input, 3 a component scored
/// under another leaf.lock, a changed prediction file or changed frozen files.
#[derive(Debug, Args)]
pub struct BlendArgs {
    /// The leaf, by name or directory
    pub leaf: String,
    /// The experiments to blend (default: every kept one under the current leaf.lock)
    #[arg(long, value_delimiter = ',', value_name = "e3,e7,...")]
    pub components: Option<Vec<ExperimentId>>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: BlendArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let leaf_dir = leaf::locate(&lab, &ctx.cwd, Some(&args.leaf))?;
    let summary = blend::blend(&lab, &mut store, BlendOptions { leaf_dir, components: args.components })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary)?;
    }
    Ok(())
}

fn print_summary(s: &BlendSummary) -> Result<()> {
    let mut columns = vec!["component", "weight", s.metric.as_str()];
    columns.extend(s.components.iter().map(String::as_str));
    let mut table = Table::new(&columns);
    for (i, c) in s.components.iter().enumerate() {
        let mut row = vec![c.clone().into(), s.weights[i].into(), format_number(s.component_scores[i]).into()];
        row.extend(s.error_correlation[i].iter().map(|r| r.map(|r| format!("{r:.3}")).into()));
        table.push(row);
    }
    outln!("# error correlation on val (residuals y - p), weights ({}) and each component alone", s.method);
    table.write(Format::Table, &mut output::stdout())?;
    outln!(
        "{} {}  {}={}  (blend of {}, metric from harness)",
        s.experiment,
        s.verdict,
        s.metric,
        format_number(s.value),
        s.components.join("+")
    );
    outln!("  {}", s.note);
    Ok(())
}
