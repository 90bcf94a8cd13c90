//! Prepared data: what the frozen `data(lab)` returned, split by who may read
//! it, cached per leaf, comparability key and tier (see `layout::PreparedDir`).
//!
//! The data worker writes into a fresh staging directory; when it ended in
//! order the supervisor fingerprints every file into `prepared.json` and renames
//! the directory into place, so a killed preparation never leaves half a cache.
//! Every later use re-hashes every file against that manifest first
//! ([`load`]): a label file edited after it was prepared (to make every later
//! candidate look perfect) is refused, never scored against. The manifest's
//! own sha256 is what runs record as their targets' fingerprint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use super::protocol::SplitFile;
use crate::error::LabError;
use crate::fingerprint;
use crate::layout::PreparedDir;

/// The evaluated splits, in order: `val` decides, `holdout` is sealed.
pub const SCORED: [&str; 2] = ["val", "holdout"];
/// Inputs with no labels anywhere (a challenge's blinded test set): predicted, never scored.
pub const SUBMISSION: &str = "submission";

/// `prepared.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every file, relative to the prepared directory, and its sha256.
    pub files: BTreeMap<String, String>,
}

/// A verified prepared directory.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dir: PreparedDir,
    pub manifest: Manifest,
    /// sha256 of `prepared.json`: the fingerprint of these targets.
    pub sha256: String,
}

impl Prepared {
    /// The unlabelled inputs of each evaluated split (and the submission split), in order.
    pub fn eval_inputs(&self) -> Vec<SplitFile> {
        SCORED
            .iter()
            .chain(&[SUBMISSION])
            .filter_map(|split| {
                self.find(&format!("eval/{split}")).map(|path| SplitFile { split: (*split).into(), path })
            })
            .collect()
    }

    /// The targets of a scored split, `.npy` (numbers) or `.json` (strings).
    pub fn targets(&self, split: &str) -> Option<PathBuf> {
        self.find(&format!("targets/{split}"))
    }

    pub fn sha256_of(&self, path: &Path) -> Option<&str> {
        let rel = path.strip_prefix(self.dir.root()).ok()?.to_str()?;
        self.manifest.files.get(rel).map(String::as_str)
    }

    /// The file whose path without extension is `stem`.
    fn find(&self, stem: &str) -> Option<PathBuf> {
        self.manifest
            .files
            .keys()
            .find(|rel| Path::new(rel).with_extension("").to_str() == Some(stem))
            .map(|rel| self.dir.root().join(rel))
    }
}

pub fn is_prepared(dir: &PreparedDir) -> bool {
    dir.manifest().is_file()
}

/// Read the manifest and re-hash every file it lists; refuse (exit 3) any difference.
pub fn load(dir: &PreparedDir) -> Result<Prepared> {
    let path = dir.manifest();
    let text = std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("`{}` is not a prepared-data manifest", path.display()))?;
    for (rel, sha256) in &manifest.files {
        let file = dir.root().join(rel);
        let now = fingerprint::sha256_file(&file).ok();
        if now.as_deref() != Some(sha256.as_str()) {
            let state = if now.is_some() { "changed" } else { "is missing" };
            return Err(LabError::refused(format!(
                "prepared data `{}` {state} since it was prepared (sha256 recorded {sha256})",
                file.display()
            ))
            .hint(format!(
                "nothing is scored against altered labels: delete `{}` and the next run prepares it again",
                dir.root().display()
            ))
            .into());
        }
    }
    Ok(Prepared { dir: dir.clone(), manifest, sha256: fingerprint::sha256_hex(&text) })
}

/// A fresh directory to prepare into, beside `dir`.
pub fn staging(dir: &PreparedDir) -> Result<PathBuf> {
    let parent = dir.root().parent().context("prepared directory has no parent")?;
    std::fs::create_dir_all(parent)?;
    let name = dir.root().file_name().and_then(|n| n.to_str()).unwrap_or("prepared");
    let staging = parent.join(format!(".staging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| format!("cannot create `{}`", staging.display()))?;
    Ok(staging)
}

/// Fingerprint `staging`, write its manifest and move it to `dir`. Another run
/// may have finished first: then its directory stays and ours goes.
pub fn publish(staging: &Path, dir: &PreparedDir) -> Result<Prepared> {
    let mut manifest = Manifest::default();
    for entry in WalkDir::new(staging).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(staging)?.to_string_lossy().into_owned();
            manifest.files.insert(rel, fingerprint::sha256_file(entry.path())?);
        }
    }
    let text = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(staging.join("prepared.json"), &text)?;
    if std::fs::rename(staging, dir.root()).is_err() {
        let _ = std::fs::remove_dir_all(staging);
        if !is_prepared(dir) {
            anyhow::bail!("cannot move prepared data into `{}`", dir.root().display());
        }
    }
    load(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_cache_is_verified_and_an_edited_label_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::layout::Layout::new(tmp.path()).prepared("toy", "abcdef0123456789ff", false);
        let staging = staging(&dir).unwrap();
        std::fs::create_dir_all(staging.join("eval")).unwrap();
        std::fs::create_dir_all(staging.join("targets")).unwrap();
        std::fs::write(staging.join("eval/val.pkl"), "inputs").unwrap();
        std::fs::write(staging.join("targets/val.npy"), "labels").unwrap();
        std::fs::write(staging.join("train.pkl"), "train").unwrap();
        let prepared = publish(&staging, &dir).unwrap();
        assert!(!staging.exists());
        assert_eq!(prepared.eval_inputs(), [SplitFile { split: "val".into(), path: dir.root().join("eval/val.pkl") }]);
        assert_eq!(prepared.targets("val"), Some(dir.root().join("targets/val.npy")));
        assert_eq!(prepared.targets("holdout"), None);
        assert_eq!(load(&dir).unwrap().sha256, prepared.sha256);
        std::fs::write(dir.root().join("targets/val.npy"), "poisoned").unwrap();
        let err = load(&dir).unwrap_err();
        assert!(err.to_string().contains("changed since it was prepared"), "{err}");
    }
}
