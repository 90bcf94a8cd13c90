use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::leaf::discover::shown;
use crate::leaf::lock::{Change, ChangeKind, Lock};
use crate::leaf::{self, Leaf};
use crate::outln;
use crate::output;

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
    /// Print the lock written and every frozen file (path, status, sha256) as JSON
    #[arg(long)]
    pub json: bool,
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
    let path = leaf.dir.join(crate::leaf::lock::FILE);
    let written = !(changes.is_empty() && existed);
    if written {
        now.write(&leaf.dir)?;
    }
    let answer = json!({
        "leaf": leaf.name(),
        "lock": path.display().to_string(),
        "written": written,
        "changed": changes.len(),
        "files": files(&now, &changes),
    });
    output::answer(args.json, &answer, || {
        for change in &changes {
            outln!("{} {}", verb(change.kind), change.path);
        }
    })?;
    let at = shown(&lab.dir, &path);
    if written {
        eprintln!("wrote {at}: {} frozen files, {} changed", now.files.len(), changes.len());
    } else {
        eprintln!("{at} is up to date ({} frozen files)", now.files.len());
    }
    Ok(())
}

fn verb(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Modified => "changed",
        ChangeKind::Unlisted => "added",
        ChangeKind::Missing | ChangeKind::Unfrozen => "removed",
    }
}

/// Every file of the new lock and every one it drops, by path: its status and
/// its sha256 in the new lock (null when removed).
fn files(now: &Lock, changes: &[Change]) -> Vec<Value> {
    let status = |path: &str| changes.iter().find(|c| c.path == path).map_or("unchanged", |c| verb(c.kind));
    let mut files: Vec<(&str, Option<&str>)> =
        now.files.iter().map(|(p, sha)| (p.as_str(), Some(sha.as_str()))).collect();
    files.extend(changes.iter().filter(|c| !now.files.contains_key(&c.path)).map(|c| (c.path.as_str(), None)));
    files.sort_unstable();
    files.into_iter().map(|(path, sha256)| json!({"path": path, "status": status(path), "sha256": sha256})).collect()
}
