//! Which files of a leaf the agent may change: the manifest's `mutable` and
//! `frozen` globs resolved to concrete files.
//!
//! Globs are relative to the leaf directory and matched with `/` as a literal
//! separator: `*.py` is the top-level Python files, `**/*.py` all of them. The
//! manifest (`leaf.yaml`) is frozen whatever the globs say, and the lock
//! (`leaf.lock`) is neither: only `lab lock` writes it. The runner uses
//! [`FileSets::is_mutable`] to refuse working-tree changes outside the mutable
//! set. Derived directories (see [`super::discover::is_skipped_dir`]) hold no
//! files of a leaf.

use std::path::Path;

use anyhow::{Context as _, Result};
use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::discover::is_skipped_dir;
use super::lock;
use super::manifest::{self, Files};
use crate::error::LabError;

/// The compiled globs of one leaf.
#[derive(Debug, Clone)]
pub struct FileSets {
    mutable: GlobSet,
    frozen: GlobSet,
    sealed: GlobSet,
    mutable_globs: Vec<(String, GlobMatcher)>,
    frozen_globs: Vec<(String, GlobMatcher)>,
}

/// The role of one file of a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRole {
    /// Relative to the leaf directory, `/`-separated.
    pub path: String,
    pub mutable: bool,
    pub frozen: bool,
}

impl FileRole {
    /// `mutable`, `frozen`, `both` (a manifest error), `lock` or `other`.
    pub fn role(&self) -> &'static str {
        match (self.mutable, self.frozen) {
            (true, true) => "both",
            (true, false) => "mutable",
            (false, true) => "frozen",
            (false, false) if self.path == lock::FILE => "lock",
            (false, false) => "other",
        }
    }
}

/// A leaf's files with their roles, and the globs that matched nothing.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Every file of the leaf, sorted by path.
    pub files: Vec<FileRole>,
    pub unmatched_mutable: Vec<String>,
    pub unmatched_frozen: Vec<String>,
}

impl Resolved {
    pub fn frozen(&self) -> impl Iterator<Item = &str> {
        self.files.iter().filter(|f| f.frozen).map(|f| f.path.as_str())
    }

    pub fn mutable(&self) -> impl Iterator<Item = &str> {
        self.files.iter().filter(|f| f.mutable).map(|f| f.path.as_str())
    }

    /// Files matched by both a mutable and a frozen glob.
    pub fn overlapping(&self) -> impl Iterator<Item = &str> {
        self.files.iter().filter(|f| f.mutable && f.frozen).map(|f| f.path.as_str())
    }
}

fn compile(globs: &[String]) -> Result<(GlobSet, Vec<(String, GlobMatcher)>), LabError> {
    let mut set = GlobSetBuilder::new();
    let mut matchers = Vec::new();
    for pattern in globs {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| LabError::usage(format!("bad glob `{pattern}`: {e}")))?;
        matchers.push((pattern.clone(), glob.compile_matcher()));
        set.add(glob);
    }
    let set = set.build().map_err(|e| LabError::usage(format!("bad globs: {e}")))?;
    Ok((set, matchers))
}

impl FileSets {
    /// `sealed`: the manifest's `sealed.leaf` globs; sealed files are frozen too.
    pub fn new(files: &Files, sealed: &[String]) -> Result<Self, LabError> {
        let (mutable, mutable_globs) = compile(&files.mutable)?;
        let frozen_and_sealed: Vec<String> = files.frozen.iter().chain(sealed).cloned().collect();
        let (frozen, frozen_globs) = compile(&frozen_and_sealed)?;
        let (sealed, _) = compile(sealed)?;
        Ok(Self { mutable, frozen, sealed, mutable_globs, frozen_globs })
    }

    /// Whether only frozen code may read `path` (relative to the leaf directory).
    pub fn is_sealed(&self, path: &Path) -> bool {
        self.sealed.is_match(path)
    }

    /// Whether the agent may change `path` (relative to the leaf directory).
    pub fn is_mutable(&self, path: &Path) -> bool {
        self.mutable.is_match(path)
    }

    /// Whether `path` (relative to the leaf directory) is locked by `leaf.lock`.
    pub fn is_frozen(&self, path: &Path) -> bool {
        path == Path::new(manifest::FILE) || self.frozen.is_match(path)
    }

    /// The roles of the files at `paths` (relative to the leaf directory).
    pub fn resolve_paths(&self, paths: impl IntoIterator<Item = String>) -> Resolved {
        let mut files: Vec<FileRole> = paths
            .into_iter()
            .map(|path| {
                let p = Path::new(&path);
                FileRole { mutable: self.is_mutable(p), frozen: self.is_frozen(p), path }
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        let unmatched = |globs: &[(String, GlobMatcher)]| {
            globs
                .iter()
                .filter(|(_, m)| !files.iter().any(|f| m.is_match(&f.path)))
                .map(|(g, _)| g.clone())
                .collect::<Vec<_>>()
        };
        let (unmatched_mutable, unmatched_frozen) = (unmatched(&self.mutable_globs), unmatched(&self.frozen_globs));
        Resolved { files, unmatched_mutable, unmatched_frozen }
    }

    /// The roles of every file in the leaf directory `dir`.
    pub fn resolve(&self, dir: &Path) -> Result<Resolved> {
        Ok(self.resolve_paths(list_files(dir)?))
    }
}

/// Every file below `dir`, relative and `/`-separated, sorted, outside derived
/// directories. Symbolic links count as files and are not followed.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let walk = WalkDir::new(dir).min_depth(1).sort_by_file_name().into_iter();
    for entry in walk.filter_entry(|e| !(e.file_type().is_dir() && is_skipped_dir(e.path()))) {
        let entry = entry.with_context(|| format!("cannot list the files of `{}`", dir.display()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths below its root");
        let rel = rel.to_str().filter(|r| !r.contains('\n')).ok_or_else(|| {
            LabError::usage(format!("file name `{}` is not UTF-8 or holds a newline", entry.path().display()))
        })?;
        files.push(rel.to_owned());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(mutable: &[&str], frozen: &[&str]) -> FileSets {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        FileSets::new(&Files { mutable: owned(mutable), frozen: owned(frozen) }, &[]).unwrap()
    }

    #[test]
    fn star_stays_in_its_directory_and_the_manifest_is_always_frozen() {
        let s = sets(&["*.py", "model/**"], &["evaluate.py", "data/**/*.csv", "program.md"]);
        assert!(s.is_mutable(Path::new("train.py")));
        assert!(!s.is_mutable(Path::new("sub/train.py")));
        assert!(s.is_mutable(Path::new("model/a/b.py")));
        assert!(s.is_frozen(Path::new("data/x/y.csv")));
        assert!(s.is_frozen(Path::new("leaf.yaml")));
        assert!(!s.is_frozen(Path::new("leaf.lock")) && !s.is_mutable(Path::new("leaf.lock")));
    }

    #[test]
    fn resolve_reports_overlaps_and_globs_matching_nothing() {
        let s = sets(&["*.py", "missing/*.py"], &["evaluate.py", "nothing.txt"]);
        let paths = ["train.py", "evaluate.py", "leaf.yaml", "leaf.lock", "README.md"].map(String::from);
        let r = s.resolve_paths(paths);
        assert_eq!(r.overlapping().collect::<Vec<_>>(), ["evaluate.py"]);
        assert_eq!(r.frozen().collect::<Vec<_>>(), ["evaluate.py", "leaf.yaml"]);
        assert_eq!(r.unmatched_mutable, ["missing/*.py"]);
        assert_eq!(r.unmatched_frozen, ["nothing.txt"]);
        let roles: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.role())).collect();
        assert_eq!(
            roles,
            [
                ("README.md", "other"),
                ("evaluate.py", "both"),
                ("leaf.lock", "lock"),
                ("leaf.yaml", "frozen"),
                ("train.py", "mutable")
            ]
        );
    }

    #[test]
    fn listing_skips_caches_and_environments() {
        let tmp = tempfile::tempdir().unwrap();
        for rel in ["a.py", "__pycache__/a.pyc", ".venv/x", "sub/b.py", "env/pyvenv.cfg", "env/y"] {
            let p = tmp.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        assert_eq!(list_files(tmp.path()).unwrap(), ["a.py", "sub/b.py"]);
    }
}
