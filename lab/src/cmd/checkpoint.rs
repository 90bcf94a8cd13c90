//! `lab checkpoint NAME`: the leaf's state and a red team, written once.

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::leaf::{self, Leaf};
use crate::lifecycle::checkpoint;
use crate::outln;
use crate::output;

/// Write `.lab/checkpoints/NAME.md`: the leader and its metric, the noise
/// estimate, the held-out score (a counted read of the held-out split), the
/// queue length, counts, the sha256 of the leader's prediction files and of
/// every frozen file; and a red team: for each checkable claim (leader
/// reproducible, frozen files unchanged, prediction files unchanged since
/// scoring, validation gain transferred to held-out, improvement larger than
/// noise) the attack, the evidence and the verdict (holds, fails, unknown).
///
/// Prints the path (with --json, the same content as JSON). Exit 3 if NAME
/// exists (never overwritten); exit 2 for an invalid NAME.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Lowercase letters, digits and dashes
    pub name: String,
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// Print the checkpoint as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: CheckpointArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
    let c = checkpoint::checkpoint(&lab, &mut store, &leaf, &args.name)?;
    output::answer(args.json, &c, || outln!("{}", c.path))?;
    Ok(())
}
