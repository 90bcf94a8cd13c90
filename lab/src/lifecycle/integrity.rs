//! The checks before a run: frozen files match `leaf.lock`, no file of the leaf
//! is a symbolic link, and the leaf's files differ from the leader (HEAD) only
//! in its mutable files.
//!
//! Each refuses with exit 3, names every offending file and gives the git
//! command that clears it. Only the leaf's directory counts: a run executes a
//! snapshot of the leaf (and its declared inputs, upstream leaders' recorded
//! files, keyed by sha256), so a change elsewhere in the repository (`notes.txt`,
//! another leaf) cannot move its metric, and a keep commits only the leaf's
//! mutable files. Inside the leaf untracked files count (a new helper module the
//! mutable code imports must be mutable too, or a keep would commit code that
//! does not run); ignored files do not, and neither do derived directories
//! (`__pycache__`, hidden directories, environments: see
//! `leaf::discover::is_skipped_dir`), which hold no files of a leaf.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::LabError;
use crate::leaf::{Leaf, discover, lock};
use crate::vcs::{self, Changed};

/// The leaf's changed mutable files, relative to the repository's working
/// directory (what keep commits and discard restores).
#[derive(Debug, Clone)]
pub struct Checked {
    pub workdir: PathBuf,
    pub mutable_changes: Vec<PathBuf>,
}

pub fn check(leaf: &Leaf) -> Result<Checked> {
    lock::ensure_unchanged(leaf)?;
    refuse_symlinks(leaf)?;
    let sets = leaf.file_sets()?;
    let changes = vcs::changed_paths(&leaf.dir).map_err(|e| {
        LabError::refused(format!("cannot run leaf `{}`: {e:#}", leaf.name())).hint(format!(
            "lab run keeps or discards through git: make the lab root a repository and commit it first \
             (`git init && git add -A && git commit -m \"Add leaf {}\"`)",
            leaf.name()
        ))
    })?;
    let leaf_dir = leaf.dir.canonicalize().unwrap_or_else(|_| leaf.dir.clone());
    let leaf_rel = leaf_dir.strip_prefix(&changes.workdir).unwrap_or(Path::new("")).to_path_buf();
    let mut mutable = Vec::new();
    let mut violations = Vec::new();
    for change in changes.paths {
        // Outside the leaf: nothing the run reads (see the module comment).
        let Ok(inside) = change.path.strip_prefix(&leaf_rel) else { continue };
        if is_derived(&leaf_dir, inside) {
            continue;
        }
        if sets.is_mutable(inside) {
            mutable.push(change.path);
        } else {
            violations.push(change);
        }
    }
    if !violations.is_empty() {
        return Err(refusal(leaf, &changes.workdir, &leaf_rel, &violations)?.into());
    }
    Ok(Checked { workdir: changes.workdir, mutable_changes: mutable })
}

/// The refusal for files of the leaf that differ from HEAD outside its mutable
/// set, with the git command that commits them (or the whole leaf, when it was
/// never committed: the first run after `lab new`).
fn refusal(leaf: &Leaf, workdir: &Path, leaf_rel: &Path, violations: &[Changed]) -> Result<LabError> {
    let git = git_in(workdir);
    if !vcs::committed(workdir, &leaf_rel.join("leaf.yaml"))? {
        let dir = leaf_rel.display();
        return Ok(LabError::refused(format!(
            "leaf `{}` is not committed yet: lab run keeps or discards against the last commit",
            leaf.name()
        ))
        .hint(format!("commit it first: `{git}add -- {dir} && {git}commit -m \"Add leaf {}\"`", leaf.name())));
    }
    let quoted: Vec<String> = violations.iter().map(|c| format!("`{}`", c.path.display())).collect();
    let args: Vec<String> = violations.iter().map(|c| c.path.display().to_string()).collect();
    let args = args.join(" ");
    let mut hint = format!(
        "only files matching files.mutable ({}) may differ from the last commit; to make the others part of \
         the leaf, commit them: `{git}add -- {args} && {git}commit -m \"{}: ...\"`",
        leaf.manifest.files.mutable.join(", "),
        leaf.name()
    );
    if violations.iter().any(|c| c.untracked) {
        hint.push_str(&format!("; to set them aside instead: `{git}stash push --include-untracked -- {args}`"));
    } else {
        hint.push_str(&format!("; to undo them instead: `{git}restore --staged --worktree -- {args}`"));
    }
    Ok(LabError::refused(format!("changes outside the mutable files of leaf `{}`: {}", leaf.name(), quoted.join(", ")))
        .hint(hint))
}

/// `git ` when the working directory is the repository's top (where the paths
/// named are relative to), else `git -C <top> `.
pub(super) fn git_in(workdir: &Path) -> String {
    let here = std::env::current_dir().ok().and_then(|d| d.canonicalize().ok());
    if here.as_deref() == Some(workdir) { "git ".to_owned() } else { format!("git -C {} ", workdir.display()) }
}

/// A symbolic link among a leaf's files could point its snapshot (and a keep
/// commit) anywhere: refused, naming each one.
fn refuse_symlinks(leaf: &Leaf) -> Result<()> {
    let links: Vec<String> = crate::leaf::files::list_files(&leaf.dir)?
        .into_iter()
        .filter(|rel| std::fs::symlink_metadata(leaf.dir.join(rel)).is_ok_and(|m| m.file_type().is_symlink()))
        .map(|rel| format!("`{rel}`"))
        .collect();
    if links.is_empty() {
        return Ok(());
    }
    Err(LabError::refused(format!("symbolic links among the files of leaf `{}`: {}", leaf.name(), links.join(", ")))
        .hint("a leaf's files must be regular files: replace each link with the file it points to")
        .into())
}

/// Inside a derived directory of the leaf (a cache, an environment, a hidden dir).
fn is_derived(leaf_dir: &Path, inside: &Path) -> bool {
    let mut dir = leaf_dir.to_path_buf();
    let parents: Vec<_> = inside.parent().map(|p| p.components().collect()).unwrap_or_default();
    parents.into_iter().any(|part| {
        dir.push(part);
        discover::is_skipped_dir(&dir)
    })
}
