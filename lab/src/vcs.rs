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

/// The repository holding `dir`, and its working directory (canonical).
fn open_workdir(dir: &Path) -> Result<(Repository, PathBuf)> {
    let repo = Repository::discover(dir).with_context(|| format!("`{}` is not in a git repository", dir.display()))?;
    let workdir = repo.workdir().context("the repository is bare")?;
    let workdir = workdir.canonicalize().unwrap_or_else(|_| workdir.to_path_buf());
    Ok((repo, workdir))
}

/// Paths that differ from HEAD, relative to the working directory `workdir`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub workdir: PathBuf,
    pub paths: Vec<PathBuf>,
}

/// Every path that differs from HEAD in the index or the working tree,
/// untracked files included and ignored ones not. Errors outside git.
pub fn changed_paths(dir: &Path) -> Result<Changes> {
    let (repo, workdir) = open_workdir(dir)?;
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false).exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    let mut paths = statuses.iter().map(|s| s.path().map(PathBuf::from)).collect::<Result<Vec<_>, _>>()?;
    paths.sort();
    paths.dedup();
    Ok(Changes { workdir, paths })
}

/// Commit exactly `paths` (relative to the working directory), as they are in
/// the working tree, on top of HEAD; nothing else the index holds goes in.
/// Returns the new commit's id.
pub fn commit_paths(dir: &Path, paths: &[PathBuf], message: &str) -> Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let (repo, workdir) = open_workdir(dir)?;
    let head = repo.head()?.peel_to_commit().context("HEAD has no commit to build on")?;
    let mut tree_index = git2::Index::new()?;
    tree_index.read_tree(&head.tree()?)?;
    for path in paths {
        let abs = workdir.join(path);
        match std::fs::metadata(&abs) {
            Ok(meta) => {
                let mode = if meta.permissions().mode() & 0o111 != 0 { 0o100755 } else { 0o100644 };
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode,
                    uid: 0,
                    gid: 0,
                    file_size: meta.len() as u32,
                    id: repo.blob_path(&abs)?,
                    flags: 0,
                    flags_extended: 0,
                    path: path.to_string_lossy().into_owned().into_bytes(),
                };
                tree_index.add(&entry)?;
            }
            // Deleted in the working tree (absent from HEAD too is fine).
            Err(_) => {
                let _ = tree_index.remove(path, 0);
            }
        }
    }
    let tree = repo.find_tree(tree_index.write_tree_to(&repo)?)?;
    let signature = repo.signature().or_else(|_| git2::Signature::now("lab", "lab@localhost"))?;
    let id = repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[&head])?;
    // The real index follows for these paths only, so `git status` shows them clean.
    let mut index = repo.index()?;
    for path in paths {
        if workdir.join(path).exists() { index.add_path(path)? } else { index.remove_path(path)? }
    }
    index.write()?;
    Ok(id.to_string())
}

/// The patch from HEAD to the working tree for `paths` (new files included),
/// in `git diff` format, ready for `git apply`.
pub fn patch_of(dir: &Path, paths: &[PathBuf]) -> Result<String> {
    let (repo, _) = open_workdir(dir)?;
    let tree = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut opts = DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true);
    opts.disable_pathspec_match(true);
    for path in paths {
        opts.pathspec(path);
    }
    let diff = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut opts))?;
    let mut patch = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            patch.push(line.origin() as u8);
        }
        patch.extend_from_slice(line.content());
        true
    })?;
    Ok(String::from_utf8_lossy(&patch).into_owned())
}

/// Put `paths` back as HEAD has them, in the working tree and the index: files
/// HEAD has are checked out with force; files it does not have are removed.
/// Nothing outside `paths` is touched.
pub fn restore_paths(dir: &Path, paths: &[PathBuf]) -> Result<()> {
    let (repo, workdir) = open_workdir(dir)?;
    let tree = repo.head()?.peel_to_tree()?;
    let (tracked, new): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| tree.get_path(p).is_ok());
    if !new.is_empty() {
        let mut index = repo.index()?;
        for path in new {
            let abs = workdir.join(path);
            if abs.exists() {
                std::fs::remove_file(&abs).with_context(|| format!("cannot remove `{}`", abs.display()))?;
            }
            let _ = index.remove_path(path);
        }
        index.write()?;
    }
    if !tracked.is_empty() {
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force().disable_pathspec_match(true);
        for path in tracked {
            checkout.path(path);
        }
        repo.checkout_head(Some(&mut checkout))?;
    }
    Ok(())
}
