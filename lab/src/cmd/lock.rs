use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::leaf::discover::shown;
use crate::leaf::lock::{ChangeKind, Lock};
use crate::leaf::{self, Leaf};

/// Rewrite a leaf's leaf.lock from its frozen files, deliberately, and print what changed.
///
/// Lines on stdout: `added PATH` (newly frozen), `changed PATH`, `removed PATH`.
/// Results recorded under the old lock are not comparable with new ones; lock
/// only after reviewing the change. Exit codes: 0 written (or already up to
/// date), 2 an invalid manifest or a file both mutable and frozen.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The leaf: a name or a directory (`.` inside it)
    pub leaf: String,
}

pub fn run(ctx: &Ctx, args: LockArgs) -> Result<()> {
    let lab = ctx.lab()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, Some(&args.leaf))?)?;
    let resolved = leaf.file_sets()?.resolve(&leaf.dir)?;
    let both: Vec<&str> = resolved.overlapping().collect();
    if !both.is_empty() {
        return Err(LabError::usage(format!(
            "cannot lock `{}`: {} both mutable and frozen",
            leaf.name(),
            both.join(", ")
        ))
        .hint("make the mutable and frozen globs of leaf.yaml disjoint")
        .into());
    }
    let recorded = match Lock::read(&leaf.dir) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("warning: replacing an unreadable lock: {e:#}");
            None
        }
    };
    let existed = recorded.is_some();
    let now = Lock::compute(&leaf)?;
    let changes = recorded.unwrap_or_default().diff(&now, |_| false);
    for change in &changes {
        let verb = match change.kind {
            ChangeKind::Modified => "changed",
            ChangeKind::Unlisted => "added",
            ChangeKind::Missing | ChangeKind::Unfrozen => "removed",
        };
        println!("{verb} {}", change.path);
    }
    let at = shown(&lab.dir, &leaf.dir.join(crate::leaf::lock::FILE));
    if changes.is_empty() && existed {
        eprintln!("{at} is up to date ({} frozen files)", now.files.len());
        return Ok(());
    }
    now.write(&leaf.dir)?;
    eprintln!("wrote {at}: {} frozen files, {} changed", now.files.len(), changes.len());
    Ok(())
}
