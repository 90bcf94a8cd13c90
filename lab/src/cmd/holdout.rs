//! `lab holdout`: the leader on the held-out split, and whether validation gains transferred.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::leaf::{self, Leaf};
use crate::lifecycle::{heldout, inputs};
use crate::output;
use crate::output::{FormatArgs, Report, Table, format_number};

/// Score the leader (and the first baseline) on the held-out split that no
/// keep decision reads, and say whether the validation gain transferred.
///
/// The verdict comes from an interval of the held-out gain (paired on the
/// held-out items, at the leaf's gate.confidence): "transferred" when it lies
/// above zero, "did_not_transfer" when it lies below the validation gain (or
/// there is no validation gain), "not_shown" when it holds both.
///
/// Every call is one counted read of the held-out split (printed: "the
/// held-out split has been read N times"); a split read often is being tuned
/// on. Predictions mode re-hashes the saved holdout predictions and labels
/// first (exit 3 if one changed); artifact mode reads the held-out scores the
/// harness sealed at run time. Exit 3 without a leader.
#[derive(Debug, Args)]
pub struct HoldoutArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: HoldoutArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
    let lock_sha256 = inputs::comparability(&lab, &store, &leaf)?.key;
    let t = heldout::transfer(&mut store, &leaf, &lock_sha256, "lab holdout")?;
    eprintln!("the held-out split of `{}` has been read {}", t.leaf, output::times(t.reads));
    let mut scores = Table::new(&["role", "experiment", "val", "holdout"]);
    scores.push(vec![json!("leader"), json!(t.leader.experiment), json!(t.leader.val), json!(t.leader.holdout)]);
    if let Some(b) = &t.baseline {
        scores.push(vec![json!("first baseline"), json!(b.experiment), json!(b.val), json!(b.holdout)]);
    }
    let mut transfer = Table::new(&[
        "val_gain",
        "holdout_gain",
        "holdout_ci",
        "ratio",
        "tries",
        "val_p_after_tries",
        "verdict",
        "reads",
    ]);
    transfer.push(vec![
        json!(t.val_gain),
        json!(t.holdout_gain),
        json!(t.holdout_ci.map(|[lo, hi]| format!("{}..{}", format_number(lo), format_number(hi)))),
        json!(t.ratio),
        json!(t.selection.map(|s| s.tried)),
        json!(t.selection.map(|s| s.p_selected)),
        json!(t.verdict),
        json!(t.reads),
    ]);
    if let Some(reason) = &t.reason {
        eprintln!("{}: {reason}", t.verdict.unwrap_or_default().replace('_', " "));
    }
    let document: Value = serde_json::to_value(&t)?;
    let report = Report {
        json: document,
        sections: vec![(format!("held-out {}", t.metric), scores), ("transfer".into(), transfer)],
    };
    report.write(args.output.format(), &mut output::stdout())?;
    Ok(())
}
