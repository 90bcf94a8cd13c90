//! The featurization memo (`lab.memo(fn, items)`): a per-leaf directory the
//! mutable-code workers (`predict`, `train`) read and write, so a featurizer a
//! later run calls again on the same molecules costs a file read instead of a
//! recomputation.
//!
//! It is scoped like the prepared data: `.lab/memo/<leaf>/<key>[-smoke]/`,
//! one directory per comparability key and tier (`Layout::memo`). Every run
//! that can read a directory got exactly the inputs of every run that wrote
//! it (the same prepared data, the same upstream files), so the memo holds
//! nothing its reader could not have computed from its own inputs: a re-lock
//! that moves training molecules into val starts an empty directory instead
//! of handing the new val molecules the old training labels.
//!
//! The memo is not evidence: judged code writes it (it may write anything
//! there), judged code reads it, and nothing the harness records, scores or
//! verifies reads it. The harness only bounds it: each file by RLIMIT_FSIZE,
//! the whole leaf's memo by [`CAP`] bytes, pruned oldest first ([`prune`], by
//! modification time: a hit touches its entry) after each worker that could
//! write it, from outside the sandbox, reading no file's contents.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::requires::Packages;

/// The most a leaf's memo may hold after a run, in bytes.
pub const CAP: u64 = 2 << 30;

/// What every key of a run's memo includes besides the function and the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memo {
    /// The installed versions of the leaf's `python.requires`: a new RDKit is a new key.
    pub salt: String,
}

impl Memo {
    pub fn new(packages: &Packages) -> Self {
        let salt = packages.iter().map(|(name, version)| format!("{name}=={version}")).collect::<Vec<_>>().join(";");
        Self { salt }
    }
}

/// What [`prune`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub files: usize,
    pub bytes: u64,
}

/// Remove the oldest entries under `root` until what is left fits in `cap`
/// bytes; anything that is not a regular file or a directory (a link the
/// judged code made) is removed too, and emptied directories with it. Links
/// are never followed.
pub fn prune(root: &Path, cap: u64) -> Pruned {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    let mut pruned = Pruned::default();
    for entry in walkdir::WalkDir::new(root).min_depth(1).into_iter().flatten() {
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !kind.is_file() {
            if std::fs::remove_file(entry.path()).is_ok() {
                pruned.files += 1;
            }
            continue;
        }
        files.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), entry.into_path()));
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= cap {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            pruned.files += 1;
            pruned.bytes += len;
        }
    }
    // Deepest first, so a directory emptied of its entries goes too (a non-empty one stays).
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
    pruned
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn prune_removes_the_oldest_until_the_rest_fits_and_links_always() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("memo");
        let now = SystemTime::now();
        for (i, name) in ["k/a/old", "k/b/mid", "k/a/new"].iter().enumerate() {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, [0u8; 100]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(now - Duration::from_secs(100 - 10 * i as u64)).unwrap();
        }
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "kept").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("k/link")).unwrap();
        assert_eq!(prune(&root, 250), Pruned { files: 2, bytes: 100 });
        assert!(!root.join("k/a/old").exists() && !root.join("k/link").exists());
        assert!(root.join("k/b/mid").exists() && root.join("k/a/new").exists());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "kept", "a link is removed, never followed");
        assert_eq!(prune(&root, 100), Pruned { files: 1, bytes: 100 });
        assert!(!root.join("k/b").exists(), "an emptied directory goes with its last entry");
        assert!(root.join("k/a/new").exists());
        assert_eq!(prune(&tmp.path().join("absent"), 0), Pruned::default());
    }

    #[test]
    fn the_salt_names_every_package_version() {
        let packages: Packages = [("rdkit", "2024.3.5"), ("numpy", "2.1.0")].map(|(a, b)| (a.into(), b.into())).into();
        assert_eq!(Memo::new(&packages).salt, "numpy==2.1.0;rdkit==2024.3.5");
    }
}
