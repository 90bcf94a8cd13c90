//! The only module that touches git (through git2).
//!
//! It answers three questions: where the main worktree is (so linked worktrees
//! share one database), what code an experiment ran (commit, dirty flag, hash of
//! the working-tree diff), and, for the runner, how to commit or restore exactly a
//! leaf's mutable files.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use git2::{DiffFormat, DiffOptions, Repository, StatusOptions};
use sha2::{Digest, Sha256};

/// For a directory inside a linked worktree, the same directory in the main
/// worktree. `None` when `dir` is not in a linked worktree (or not in git).
///
/// A `.git` *file* marks a linked worktree (or a submodule); only then is git2
/// asked, which keeps read commands fast in the common case.
pub fn main_worktree_equivalent(dir: &Path) -> Result<Option<PathBuf>> {
    let Some(top) = dir.ancestors().find(|d| d.join(".git").exists()) else {
        return Ok(None);
    };
    if top.join(".git").is_dir() {
        return Ok(None);
    }
    let repo = Repository::open(top).with_context(|| format!("cannot open git worktree `{}`", top.display()))?;
    if !repo.is_worktree() {
        return Ok(None);
    }
    let common = repo.commondir().canonicalize()?;
    let Some(main_top) = common.parent().filter(|_| common.ends_with(".git")) else {
        return Ok(None); // a bare main repository has no worktree to share
    };
    let rel = dir.strip_prefix(top).unwrap_or(Path::new(""));
    Ok(Some(main_top.join(rel)))
}

/// The code an experiment ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub commit: Option<String>,
    pub dirty: bool,
    /// sha256 of the working tree's diff against HEAD (untracked files included);
    /// `None` when clean.
    pub diff_sha256: Option<String>,
}

/// Snapshot the repository containing `dir`; an empty snapshot outside git.
pub fn snapshot(dir: &Path) -> Result<Snapshot> {
    let Ok(repo) = Repository::discover(dir) else {
        return Ok(Snapshot::default());
    };
    if repo.is_bare() {
        return Ok(Snapshot::default());
    }
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let tree = head.as_ref().map(|c| c.tree()).transpose()?;
    let mut opts = DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true);
    let diff = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut opts))?;
    let mut hasher = Sha256::new();
    let mut changed = false;
    diff.print(DiffFormat::Patch, |_, _, line| {
        changed = true;
        if matches!(line.origin(), '+' | '-' | ' ') {
            hasher.update([line.origin() as u8]);
        }
        hasher.update(line.content());
        true
    })?;
    Ok(Snapshot {
        commit: head.map(|c| c.id().to_string()),
        dirty: changed || is_dirty(&repo)?,
        diff_sha256: changed.then(|| format!("{:x}", hasher.finalize())),
    })
}

fn is_dirty(repo: &Repository) -> Result<bool> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).include_ignored(false);
    Ok(!repo.statuses(Some(&mut opts))?.is_empty())
}
