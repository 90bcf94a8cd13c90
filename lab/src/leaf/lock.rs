//! `leaf.lock`: the sha256 of every frozen file of a leaf, the manifest included.
//!
//! Written only deliberately (`lab lock`, and `lab new` for a fresh leaf); every
//! other reader compares and reports exactly which file differs. The format is
//! `sha256sum`'s, sorted by path, under one comment line, so a lock is diffable
//! and checkable without lab:
//!
//! ```text
//! # leaf.lock: sha256 of every frozen file. Written by `lab lock`; do not edit.
//! 3a7bd3e2...  evaluate.py
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::Leaf;
use crate::error::LabError;
use crate::fingerprint;

pub const FILE: &str = "leaf.lock";
const HEADER: &str = "# leaf.lock: sha256 of every frozen file. Written by `lab lock`; do not edit.";

/// Frozen file (relative, `/`-separated) -> sha256 hex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    pub files: BTreeMap<String, String>,
}

/// How one frozen file differs from the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Its content differs from the locked sha256.
    Modified,
    /// Locked, but no longer on disk.
    Missing,
    /// Locked, still on disk, but no frozen glob matches it any more.
    Unfrozen,
    /// Frozen, but not in the lock.
    Unlisted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ChangeKind::Modified => "changed since the lock",
            ChangeKind::Missing => "is locked but missing",
            ChangeKind::Unfrozen => "is locked but no longer frozen",
            ChangeKind::Unlisted => "is frozen but not in the lock",
        };
        write!(f, "`{}` {what}", self.path)
    }
}

/// A leaf's lock status, as `lab leaves` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Ok,
    Changed(Vec<Change>),
    /// No `leaf.lock` at all.
    Missing,
}

impl LockState {
    pub fn label(&self) -> &'static str {
        match self {
            LockState::Ok => "ok",
            LockState::Changed(_) => "changed",
            LockState::Missing => "missing",
        }
    }
}

impl Lock {
    /// The lock of files given by content, e.g. a scaffold not yet written.
    pub fn of_contents<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        Self { files: files.into_iter().map(|(p, b)| (p.to_owned(), fingerprint::sha256_hex(b))).collect() }
    }

    /// The lock the frozen files of `leaf` have now.
    pub fn compute(leaf: &Leaf) -> Result<Self> {
        let resolved = leaf.file_sets()?.resolve(&leaf.dir)?;
        let mut files = BTreeMap::new();
        for rel in resolved.frozen() {
            let path = leaf.dir.join(rel);
            let sha = fingerprint::sha256_file(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
            files.insert(rel.to_owned(), sha);
        }
        Ok(Self { files })
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Self, LabError> {
        let mut files = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = line.split_once("  ").filter(|(sha, path)| {
                sha.len() == 64
                    && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    && !path.is_empty()
            });
            let Some((sha, path)) = entry else {
                return Err(LabError::usage(format!(
                    "invalid `{}` at line {}: expected `<sha256>  <path>`",
                    origin.display(),
                    n + 1
                ))
                .hint("rewrite it with `lab lock LEAF`"));
            };
            files.insert(path.to_owned(), sha.to_owned());
        }
        Ok(Self { files })
    }

    pub fn render(&self) -> String {
        let mut text = format!("{HEADER}\n");
        for (path, sha) in &self.files {
            let _ = writeln!(text, "{sha}  {path}");
        }
        text
    }

    /// The lock recorded in `leaf_dir`, if there is one.
    /// The sha256 of the leaf's lock as written: what runs compare by (only runs
    /// under the same lock are comparable).
    pub fn sha256(leaf_dir: &Path) -> Result<String> {
        let lock = Self::read(leaf_dir)?.ok_or_else(|| {
            LabError::usage(format!("`{}` has no leaf.lock", leaf_dir.display())).hint("run `lab lock`")
        })?;
        Ok(fingerprint::sha256_hex(lock.render().as_bytes()))
    }

    pub fn read(leaf_dir: &Path) -> Result<Option<Self>> {
        let path = leaf_dir.join(FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Self::parse(&text, &path)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }

    /// Replace `leaf_dir/leaf.lock` atomically (a temp file renamed over it).
    pub fn write(&self, leaf_dir: &Path) -> Result<()> {
        let path = leaf_dir.join(FILE);
        let mut tmp = tempfile::NamedTempFile::new_in(leaf_dir)
            .with_context(|| format!("cannot write in `{}`", leaf_dir.display()))?;
        std::io::Write::write_all(&mut tmp, self.render().as_bytes())?;
        // A temp file is private (0600); a lock is as readable as the leaf.
        tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        tmp.persist(&path).with_context(|| format!("cannot write `{}`", path.display()))?;
        Ok(())
    }

    /// How `now` (the files on disk) differs from this recorded lock. `exists`
    /// tells a file that is gone from one that is merely no longer frozen.
    pub fn diff(&self, now: &Lock, exists: impl Fn(&str) -> bool) -> Vec<Change> {
        let mut changes = Vec::new();
        for (path, sha) in &self.files {
            let kind = match now.files.get(path) {
                Some(current) if current == sha => continue,
                Some(_) => ChangeKind::Modified,
                None if exists(path) => ChangeKind::Unfrozen,
                None => ChangeKind::Missing,
            };
            changes.push(Change { path: path.clone(), kind });
        }
        for path in now.files.keys().filter(|p| !self.files.contains_key(*p)) {
            changes.push(Change { path: path.clone(), kind: ChangeKind::Unlisted });
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
    }
}

/// Compare the frozen files of `leaf` with its `leaf.lock`.
pub fn verify(leaf: &Leaf) -> Result<LockState> {
    let Some(recorded) = Lock::read(&leaf.dir)? else { return Ok(LockState::Missing) };
    let changes = recorded.diff(&Lock::compute(leaf)?, |p| leaf.dir.join(p).exists());
    Ok(if changes.is_empty() { LockState::Ok } else { LockState::Changed(changes) })
}

/// Refuse (exit 3) unless every frozen file of `leaf` matches its lock: results
/// obtained under different frozen files are not comparable.
pub fn ensure_unchanged(leaf: &Leaf) -> Result<()> {
    match verify(leaf)? {
        LockState::Ok => Ok(()),
        LockState::Missing => Err(LabError::refused(format!("leaf `{}` has no {FILE}", leaf.name()))
            .hint(format!("review its frozen files, then run `lab lock {}`", leaf.name()))
            .into()),
        LockState::Changed(changes) => {
            let list: Vec<String> = changes.iter().map(Change::to_string).collect();
            Err(LabError::refused(format!(
                "frozen files of leaf `{}` differ from {FILE}: {}",
                leaf.name(),
                list.join("; ")
            ))
            .hint(format!("restore them (git checkout), or relock deliberately with `lab lock {}`", leaf.name()))
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_parse_round_trip_sorted() {
        let lock = Lock::of_contents([("b.py", b"b".as_slice()), ("a/x.py", b"a".as_slice())]);
        let text = lock.render();
        assert!(text.starts_with("# leaf.lock"));
        assert!(text.lines().nth(1).unwrap().ends_with("  a/x.py"), "{text}");
        assert_eq!(Lock::parse(&text, Path::new("leaf.lock")).unwrap(), lock);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let err = Lock::parse("# c\nabc  x.py\n", Path::new("leaf.lock")).unwrap_err();
        assert!(err.message.contains("at line 2"), "{}", err.message);
    }

    #[test]
    fn diff_names_every_kind_of_change() {
        let recorded = Lock::of_contents([
            ("same", b"1".as_slice()),
            ("edited", b"1".as_slice()),
            ("gone", b"1".as_slice()),
            ("thawed", b"1".as_slice()),
        ]);
        let now = Lock::of_contents([("same", b"1".as_slice()), ("edited", b"2".as_slice()), ("new", b"1".as_slice())]);
        let changes = recorded.diff(&now, |p| p == "thawed");
        let kinds: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("edited", ChangeKind::Modified),
                ("gone", ChangeKind::Missing),
                ("new", ChangeKind::Unlisted),
                ("thawed", ChangeKind::Unfrozen)
            ]
        );
    }
}
