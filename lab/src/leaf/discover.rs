//! Finding leaves: every directory holding a `leaf.yaml` below the lab's leaves
//! directory (`leaves:` in lab.yaml, default `leaves/`).
//!
//! Only that directory is walked, so golden scaffolds and test fixtures elsewhere
//! in a repository are never mistaken for leaves. The walk skips what is never a
//! leaf and can be huge: hidden directories (`.git`, `.lab`, `.venv`), `target`,
//! `node_modules`, `_archive`, `__pycache__`, `venv` and any directory holding a
//! `pyvenv.cfg`. Leaves do not nest: below a `leaf.yaml` the walk stops. A
//! malformed manifest is reported with its path and error; the other leaves are
//! still found.

use std::path::{Path, PathBuf};

use anyhow::Result;
use walkdir::WalkDir;

use super::{Leaf, manifest};
use crate::error::LabError;

/// Directory names never walked into, wherever they appear.
const SKIPPED: &[&str] = &["target", "node_modules", "_archive", "__pycache__", "venv"];

/// Whether a directory is never part of a leaf's files nor holds a leaf.
pub fn is_skipped_dir(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.starts_with('.') || SKIPPED.contains(&name.as_ref()) || path.join("pyvenv.cfg").is_file()
}

/// A directory with a `leaf.yaml`, loaded or not.
#[derive(Debug)]
pub struct Found {
    pub dir: PathBuf,
    /// The leaf, or why its manifest could not be loaded.
    pub leaf: Result<Leaf, String>,
}

impl Found {
    /// The leaf's name: its manifest's, else its directory's.
    pub fn name(&self) -> String {
        match &self.leaf {
            Ok(leaf) => leaf.name().to_owned(),
            Err(_) => dir_name(&self.dir),
        }
    }
}

/// What a walk of the leaves directory found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Sorted by directory.
    pub leaves: Vec<Found>,
    /// Directories directly below the leaves directory with no `leaf.yaml` at or
    /// below them: most likely a leaf whose manifest was forgotten.
    pub strays: Vec<PathBuf>,
}

/// Every leaf below `leaves_dir` (none when it does not exist).
pub fn discover(leaves_dir: &Path) -> Discovery {
    let mut found = Discovery::default();
    if !leaves_dir.is_dir() {
        return found;
    }
    let mut walk = WalkDir::new(leaves_dir).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_dir() || is_skipped_dir(entry.path()) {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        if entry.path().join(manifest::FILE).is_file() {
            found.leaves.push(load(entry.path()));
            walk.skip_current_dir();
        }
    }
    found.strays = strays(leaves_dir, &found.leaves);
    found
}

fn load(dir: &Path) -> Found {
    Found { dir: dir.to_path_buf(), leaf: Leaf::load(dir).map_err(|e| format!("{e:#}")) }
}

fn strays(leaves_dir: &Path, leaves: &[Found]) -> Vec<PathBuf> {
    let Ok(children) = std::fs::read_dir(leaves_dir) else { return Vec::new() };
    let mut strays: Vec<PathBuf> = children
        .filter_map(|c| c.ok().map(|c| c.path()))
        .filter(|p| p.is_dir() && !is_skipped_dir(p) && !leaves.iter().any(|l| l.dir.starts_with(p)))
        .collect();
    strays.sort();
    strays
}

/// The directory of the leaf named `name`: `<leaves_dir>/<name>` when it holds a
/// manifest, else the one directory of that name found by [`discover`].
pub fn find_dir(leaves_dir: &Path, name: &str) -> Option<PathBuf> {
    let direct = leaves_dir.join(name);
    if direct.join(manifest::FILE).is_file() {
        return Some(direct);
    }
    let mut matches = discover(leaves_dir).leaves.into_iter().filter(|f| dir_name(&f.dir) == name);
    let first = matches.next()?;
    matches.next().is_none().then_some(first.dir)
}

/// Refuse a `--leaf` that cannot be a leaf's directory name: empty, a path
/// (`../../etc`, `a/b`), or characters no directory of a leaf has. Looser than
/// [`manifest::validate_name`]: PraxLab task names (`my_task`) stay usable.
pub fn check_component(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    Err(LabError::usage(format!(
        "invalid leaf name `{}`: a leaf is named by one directory name (letters, digits, `-`, `_`, `.`)",
        name.escape_debug()
    )))
}

/// Whether a record may carry leaf `name` (already a valid component): a leaf
/// directory of that name, or one the memory has records of, is known (`Ok(true)`).
/// An unknown name is refused where the lab has leaf directories (a typo would
/// start a phantom leaf); a lab without any keeps PraxLab's free task names
/// (`Ok(false)`: new).
pub fn check_for_record(leaves_dir: &Path, recorded: &[String], name: &str) -> Result<bool, LabError> {
    if recorded.iter().any(|r| r == name) || find_dir(leaves_dir, name).is_some() {
        return Ok(true);
    }
    let dirs: Vec<String> = discover(leaves_dir).leaves.iter().map(|f| dir_name(&f.dir)).collect();
    if dirs.is_empty() {
        return Ok(false);
    }
    let mut known: Vec<String> = dirs.into_iter().chain(recorded.iter().cloned()).collect();
    known.sort();
    known.dedup();
    Err(LabError::usage(format!("no leaf `{name}` in this lab")).hint(format!(
        "known leaves: {}; a new leaf needs its directory first (`lab new {name} --template T`)",
        known.join(", ")
    )))
}

/// The nearest directory at or above `path`, and inside `root`, holding a `leaf.yaml`.
pub fn dir_containing(root: &Path, path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .take_while(|d| d.starts_with(root) && *d != root)
        .find(|d| d.join(manifest::FILE).is_file())
        .map(Path::to_path_buf)
}

/// `path` relative to `root` for messages, or whole when outside it.
pub fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

pub fn dir_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn skips_environments_archives_and_nested_leaves() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for rel in [
            "a/leaf.yaml",
            "a/inner/leaf.yaml",
            "group/b/leaf.yaml",
            "_archive/old/leaf.yaml",
            ".git/x/leaf.yaml",
            "target/y/leaf.yaml",
            "node_modules/z/leaf.yaml",
            "env/pyvenv.cfg",
            "env/lib/leaf.yaml",
        ] {
            touch(root, rel, "not: a manifest\n");
        }
        touch(root, "stray/program.md", "# no manifest\n");
        let found = discover(root);
        let dirs: Vec<_> = found.leaves.iter().map(|f| f.dir.strip_prefix(root).unwrap().to_owned()).collect();
        assert_eq!(dirs, [PathBuf::from("a"), PathBuf::from("group/b")]);
        assert!(found.leaves.iter().all(|f| f.leaf.as_ref().is_err_and(|e| e.contains("leaf.yaml"))));
        assert_eq!(found.strays, [root.join("stray")]);
        assert_eq!(find_dir(root, "b"), Some(root.join("group/b")));
        assert_eq!(find_dir(root, "old"), None);
        assert_eq!(dir_containing(root, &root.join("group/b/src/x.py")), Some(root.join("group/b")));
    }

    #[test]
    fn leaf_names_are_one_directory_name() {
        for good in ["pretrain", "my_task", "a.b", "x1"] {
            assert!(check_component(good).is_ok(), "{good}");
        }
        for bad in ["", "../../etc", "a/b", ".", "..", ".hidden", "-x", "a b", "tab\there", &"x".repeat(65)] {
            assert!(check_component(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_leaves_directory_holds_no_leaves() {
        let found = discover(Path::new("/nonexistent/leaves"));
        assert!(found.leaves.is_empty() && found.strays.is_empty());
    }
}
