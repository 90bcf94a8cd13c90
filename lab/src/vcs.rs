//! The only module that touches git (through git2).
//!
//! It answers three questions: where the main worktree is (so linked worktrees
//! share one database), what code an experiment ran (commit, dirty flag, hash of
//! the working-tree diff), and, for the runner, how to commit or restore exactly a
//! leaf's mutable files; for `lab diff`, the diff between two experiments' code.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use git2::{DiffFormat, DiffOptions, Repository, StatusOptions};
use sha2::{Digest, Sha256};

use crate::error::LabError;

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

/// Whether `dir` lies in a git working tree (`lab init` and `lab new` say what to run next).
pub fn in_worktree(dir: &Path) -> bool {
    Repository::discover(dir).is_ok_and(|r| !r.is_bare())
}

/// The code an experiment ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub commit: Option<String>,
    pub dirty: bool,
    /// sha256 of the tracked files' diff against HEAD and of each untracked
    /// file's path and size; `None` when clean.
    pub diff_sha256: Option<String>,
}

/// Tries of the tracked diff before a file that keeps changing under it is reported.
const SNAPSHOT_TRIES: usize = 3;

/// Snapshot the repository containing `dir`; an empty snapshot outside git.
///
/// Untracked files are only stat'ed, never read: a diff that showed their
/// content read every one in full into memory (a 300 MB dataset beside the
/// code: 10 s and 773 MB), and failed when a file grew while it was read (a
/// log being written). Their path and size still mark the diff. A tracked file
/// that changes while its diff is read is retried, then reported.
pub fn snapshot(dir: &Path) -> Result<Snapshot> {
    let Ok(repo) = Repository::discover(dir) else {
        return Ok(Snapshot::default());
    };
    if repo.is_bare() {
        return Ok(Snapshot::default());
    }
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let tree = head.as_ref().map(|c| c.tree()).transpose()?;
    let mut tried = 0;
    let (mut hasher, mut changed) = loop {
        tried += 1;
        match tracked_diff(&repo, tree.as_ref()) {
            Ok(hashed) => break hashed,
            Err(_) if tried < SNAPSHOT_TRIES => {}
            Err(e) => {
                return Err(LabError::failure(format!(
                    "cannot snapshot the working tree: {e} (tried {SNAPSHOT_TRIES} times)"
                ))
                .hint("a tracked file kept changing while it was read; run again once it is written")
                .into());
            }
        }
    };
    let workdir = repo.workdir().context("the repository is bare")?.to_path_buf();
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    for entry in statuses.iter().filter(|e| e.status() == git2::Status::WT_NEW) {
        let path = entry.path_bytes();
        // Gone since git listed it: nothing to mark.
        let Ok(meta) = std::fs::symlink_metadata(workdir.join(std::ffi::OsStr::from_bytes(path))) else { continue };
        changed = true;
        hasher.update(b"untracked ");
        hasher.update(path);
        hasher.update([0]);
        hasher.update(meta.len().to_le_bytes());
    }
    Ok(Snapshot {
        commit: head.map(|c| c.id().to_string()),
        dirty: changed || !statuses.is_empty(),
        diff_sha256: changed.then(|| format!("{:x}", hasher.finalize())),
    })
}

/// The patch of the tracked files against `tree` (index and working tree),
/// hashed line by line; whether it had any line.
fn tracked_diff(repo: &Repository, tree: Option<&git2::Tree<'_>>) -> Result<(Sha256, bool), git2::Error> {
    let diff = repo.diff_tree_to_workdir_with_index(tree, Some(&mut DiffOptions::new()))?;
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
    Ok((hasher, changed))
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
    pub paths: Vec<Changed>,
}

/// One path that differs from HEAD; `untracked` when git has never seen it
/// (the refusal's advice differs: `git add` it, or ignore it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Changed {
    pub path: PathBuf,
    pub untracked: bool,
}

/// Every path that differs from HEAD in the index or the working tree,
/// untracked files included and ignored ones not. Errors outside git.
pub fn changed_paths(dir: &Path) -> Result<Changes> {
    let (repo, workdir) = open_workdir(dir)?;
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false).exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    let mut paths = statuses
        .iter()
        .map(|s| {
            let untracked = s.status() == git2::Status::WT_NEW;
            s.path().map(|p| Changed { path: PathBuf::from(p), untracked })
        })
        .collect::<Result<Vec<_>, _>>()?;
    paths.sort();
    paths.dedup();
    Ok(Changes { workdir, paths })
}

/// Whether HEAD holds `path` (relative to the working directory): false before the first commit.
pub fn committed(dir: &Path, path: &Path) -> Result<bool> {
    let (repo, _) = open_workdir(dir)?;
    let Some(tree) = repo.head().ok().and_then(|h| h.peel_to_tree().ok()) else {
        return Ok(false);
    };
    Ok(tree.get_path(path).is_ok())
}

/// One file as a commit or a patch should have it: `None` deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Relative to the repository's working directory.
    pub path: PathBuf,
    pub bytes: Option<Vec<u8>>,
    pub executable: bool,
}

/// Commit exactly `files` with the given contents (a run's snapshot, not
/// whatever the working tree holds now) on top of HEAD; nothing else the index
/// holds goes in. Returns the new commit's id. The real index follows for files
/// whose working-tree content is the committed one, so `git status` shows them
/// clean; a file edited since the snapshot stays modified.
pub fn commit_contents(dir: &Path, files: &[Content], message: &str) -> Result<String> {
    let (repo, workdir) = open_workdir(dir)?;
    let head = repo.head()?.peel_to_commit().context("HEAD has no commit to build on")?;
    let mut tree_index = git2::Index::new()?;
    tree_index.read_tree(&head.tree()?)?;
    for file in files {
        match &file.bytes {
            Some(bytes) => {
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: if file.executable { 0o100755 } else { 0o100644 },
                    uid: 0,
                    gid: 0,
                    file_size: bytes.len() as u32,
                    id: repo.blob(bytes)?,
                    flags: 0,
                    flags_extended: 0,
                    path: file.path.to_string_lossy().into_owned().into_bytes(),
                };
                tree_index.add(&entry)?;
            }
            // Deleted (absent from HEAD too is fine).
            None => {
                let _ = tree_index.remove(&file.path, 0);
            }
        }
    }
    let tree = repo.find_tree(tree_index.write_tree_to(&repo)?)?;
    let signature = repo.signature().or_else(|_| git2::Signature::now("lab", "lab@localhost"))?;
    let id = repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[&head])?;
    let mut index = repo.index()?;
    for file in files.iter().filter(|f| std::fs::read(workdir.join(&f.path)).ok() == f.bytes) {
        if file.bytes.is_some() { index.add_path(&file.path)? } else { index.remove_path(&file.path)? }
    }
    index.write()?;
    Ok(id.to_string())
}

/// The bytes each of `files` has at HEAD (`None`: not in HEAD's tree).
pub fn head_contents(dir: &Path, files: &[Content]) -> Result<Vec<Option<Vec<u8>>>> {
    let (repo, _) = open_workdir(dir)?;
    let tree = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    Ok(files
        .iter()
        .map(|file| {
            let entry = tree.as_ref()?.get_path(&file.path).ok()?;
            Some(repo.find_blob(entry.id()).ok()?.content().to_vec())
        })
        .collect())
}

/// The patch from `old` (each file's bytes at HEAD, `head_contents`) to
/// `files` (new files included), in `git diff` format, ready for `git apply`.
pub fn patch_of_contents(files: &[Content], old: &[Option<Vec<u8>>]) -> Result<String> {
    let mut text = Vec::new();
    for (file, old) in files.iter().zip(old) {
        let path = file.path.as_path();
        let (old_path, new_path) = (old.as_ref().map(|_| path), file.bytes.as_ref().map(|_| path));
        let mut patch = git2::Patch::from_buffers(
            old.as_deref().unwrap_or_default(),
            old_path,
            file.bytes.as_deref().unwrap_or_default(),
            new_path,
            None,
        )?;
        text.extend_from_slice(&patch.to_buf()?);
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The code one experiment ran: the commit it started from and the patch of
/// its mutable files on top (`candidate.patch`; empty when it changed nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeAt {
    pub commit: String,
    pub patch: String,
}

/// The diff from the code of `a` to the code of `b` under the directory
/// `under` (a leaf's), in `git diff` format. Read-only: the trees
/// the patches make are built in memory (a mempack backend takes every object
/// written through this handle), so the repository gains no object.
pub fn diff_code(dir: &Path, a: &CodeAt, b: &CodeAt, under: &Path) -> Result<String> {
    let (repo, workdir) = open_workdir(dir)?;
    let under = under.canonicalize().unwrap_or_else(|_| under.to_path_buf());
    let under = under.strip_prefix(&workdir).unwrap_or(Path::new("")).to_path_buf();
    let _memory = repo.odb()?.add_new_mempack_backend(1000)?;
    let tree = |code: &CodeAt| -> Result<git2::Tree<'_>> {
        let commit = repo
            .find_commit(git2::Oid::from_str(&code.commit)?)
            .with_context(|| format!("commit {} is not in this repository", code.commit))?;
        let tree = commit.tree()?;
        if code.patch.is_empty() {
            return Ok(tree);
        }
        let patch = git2::Diff::from_buffer(code.patch.as_bytes()).context("a candidate.patch does not parse")?;
        let mut index = repo.apply_to_tree(&tree, &patch, None).context("a candidate.patch does not apply")?;
        Ok(repo.find_tree(index.write_tree_to(&repo)?)?)
    };
    let (old, new) = (tree(a)?, tree(b)?);
    let mut opts = DiffOptions::new();
    opts.pathspec(under);
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))?;
    let mut text = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin() as u8);
        }
        text.extend_from_slice(line.content());
        true
    })?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The value of every `key: value` trailer line in the messages of HEAD's
/// history, newest first, with its commit's id.
pub fn trailers(dir: &Path, key: &str) -> Result<Vec<(String, String)>> {
    let (repo, _) = open_workdir(dir)?;
    let mut walk = repo.revwalk()?;
    if walk.push_head().is_err() {
        return Ok(Vec::new()); // no commit yet
    }
    let prefix = format!("{key}: ");
    let mut found = Vec::new();
    for id in walk {
        let commit = repo.find_commit(id?)?;
        for line in commit.message().unwrap_or_default().lines() {
            if let Some(value) = line.strip_prefix(&prefix) {
                found.push((commit.id().to_string(), value.trim().to_owned()));
            }
        }
    }
    Ok(found)
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
