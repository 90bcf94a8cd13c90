//! The copy of a leaf's files that a run executes, records and (on a keep)
//! commits: taken once at launch, so what the judged code does to the working
//! tree during the run (rewrite itself into an innocent version, edit a frozen
//! file, drop a stale `.pyc`) changes neither what ran nor what is committed.
//!
//! Two copies: `code/` holds every file of the leaf but sealed ones (mutable
//! workers import from it); `frozen/` holds the frozen files only, sealed ones
//! included (frozen-code workers import from it, so no mutable module can
//! shadow a frozen one). Bytecode caches are never copied. A symbolic link
//! among the leaf's files is refused (it could point the snapshot anywhere).
//! The frozen copies are checked against `leaf.lock` after copying, so the
//! lock check and the bytes that run cannot differ.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{Leaf, lock};
use crate::error::LabError;
use crate::fingerprint;

/// One file of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// Relative to the leaf directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub mutable: bool,
    pub frozen: bool,
    pub sealed: bool,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub code: PathBuf,
    pub frozen: PathBuf,
    pub files: Vec<SnapFile>,
}

impl Snapshot {
    pub fn mutable(&self) -> impl Iterator<Item = &SnapFile> {
        self.files.iter().filter(|f| f.mutable)
    }

    pub fn file(&self, path: &str) -> Option<&SnapFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Copy `leaf` into `code` and `frozen` (both created fresh).
pub fn take(leaf: &Leaf, code: &Path, frozen: &Path) -> Result<Snapshot> {
    let sets = leaf.file_sets()?;
    let resolved = sets.resolve(&leaf.dir)?;
    let expected = lock::Lock::read(&leaf.dir)?.unwrap_or_default();
    let mut files = Vec::new();
    for role in &resolved.files {
        let rel = Path::new(&role.path);
        if rel.extension().is_some_and(|e| e == "pyc") {
            continue;
        }
        let source = leaf.dir.join(rel);
        let meta = std::fs::symlink_metadata(&source).with_context(|| format!("cannot read `{}`", source.display()))?;
        if meta.file_type().is_symlink() {
            return Err(LabError::refused(format!(
                "`{}` in leaf `{}` is a symbolic link; a leaf's files must be regular files",
                role.path,
                leaf.name()
            ))
            .hint("replace the link with the file it points to, and commit")
            .into());
        }
        let bytes = std::fs::read(&source).with_context(|| format!("cannot read `{}`", source.display()))?;
        let sha256 = fingerprint::sha256_hex(&bytes);
        let sealed = sets.is_sealed(rel);
        if role.frozen && expected.files.get(&role.path).is_some_and(|locked| *locked != sha256) {
            return Err(LabError::refused(format!(
                "`{}` of leaf `{}` changed while the run started: it no longer matches leaf.lock",
                role.path,
                leaf.name()
            ))
            .into());
        }
        let mut targets = Vec::new();
        if !sealed {
            targets.push(code.join(rel));
        }
        if role.frozen {
            targets.push(frozen.join(rel));
        }
        for target in targets {
            std::fs::create_dir_all(target.parent().expect("below the snapshot root"))?;
            std::fs::write(&target, &bytes).with_context(|| format!("cannot write `{}`", target.display()))?;
        }
        files.push(SnapFile {
            path: role.path.clone(),
            sha256,
            mutable: role.mutable,
            frozen: role.frozen,
            sealed,
            bytes,
        });
    }
    std::fs::create_dir_all(code)?;
    std::fs::create_dir_all(frozen)?;
    Ok(Snapshot { code: code.to_path_buf(), frozen: frozen.to_path_buf(), files })
}
