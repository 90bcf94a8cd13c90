//! The checks before a run: frozen files match `leaf.lock`, no file of the leaf
//! is a symbolic link, and the working tree differs from the leader (HEAD) only
//! in the leaf's mutable files.
//!
//! Both refuse with exit 3 and name every offending file. Untracked files count
//! (a new helper module the mutable code imports must be mutable too, or a keep
//! would commit code that does not run); ignored files do not, and neither do
//! derived directories inside the leaf (`__pycache__`, hidden directories,
//! environments: see `leaf::discover::is_skipped_dir`), which hold no files of a
//! leaf.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::LabError;
use crate::leaf::{Leaf, discover, lock};
use crate::vcs;

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
        LabError::refused(format!("cannot run leaf `{}`: {e:#}", leaf.name()))
            .hint("lab run keeps or discards through git: run `git init` and commit the leaf first")
    })?;
    let leaf_dir = leaf.dir.canonicalize().unwrap_or_else(|_| leaf.dir.clone());
    let leaf_rel = leaf_dir.strip_prefix(&changes.workdir).unwrap_or(Path::new("")).to_path_buf();
    let mut mutable = Vec::new();
    let mut violations = Vec::new();
    for path in changes.paths {
        match path.strip_prefix(&leaf_rel) {
            Ok(inside) if is_derived(&leaf_dir, inside) => {}
            Ok(inside) if sets.is_mutable(inside) => mutable.push(path),
            _ => violations.push(path),
        }
    }
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(|p| format!("`{}`", p.display())).collect();
        return Err(LabError::refused(format!(
            "changes outside the mutable files of leaf `{}`: {}",
            leaf.name(),
            list.join(", ")
        ))
        .hint(format!(
            "only files matching files.mutable ({}) may differ from the last commit: commit or restore the others",
            leaf.manifest.files.mutable.join(", ")
        ))
        .into());
    }
    Ok(Checked { workdir: changes.workdir, mutable_changes: mutable })
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
