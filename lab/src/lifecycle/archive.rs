//! The archive of candidates that were not kept: `<leaf>/_archive/<experiment>-<verdict>/`
//! holds the candidate's patch, the tail of its log and its metrics with the
//! gate's note, so a discarded idea can be read or re-applied later.
//!
//! Invariants: nothing here deletes; an existing archive directory is added
//! to, never cleared. The archive is derived data: `_archive/` is skipped by
//! the leaf's file sets and by the integrity check (`leaf::discover`), and it
//! carries its own `.gitignore` (`*`) so it never shows as an untracked change
//! nor gets committed by a keep.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::decide::Decision;
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::store::records::{Metrics, Verdict};
use crate::supervisor::pipeline::TierRun;

pub const DIR: &str = "_archive";

/// Copy what is left of a discarded or crashed candidate into the leaf's archive; returns the directory.
pub fn archive(
    leaf: &Leaf,
    experiment: ExperimentId,
    verdict: Verdict,
    patch: Option<&str>,
    last: &TierRun,
    metrics: &Metrics,
    decision: &Decision,
) -> Result<PathBuf> {
    let root = leaf.dir.join(DIR);
    let dir = root.join(format!("{experiment}-{verdict}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    write(&root.join(".gitignore"), "# lab's archive of discarded candidates: kept on disk, never committed\n*\n")?;
    if let Some(patch) = patch {
        std::fs::copy(patch, dir.join("candidate.patch")).with_context(|| format!("cannot archive `{patch}`"))?;
    }
    write(&dir.join("log_tail.txt"), &last.log_tail)?;
    let record = json!({
        "experiment": experiment.to_string(),
        "verdict": verdict,
        "tier": last.tier,
        "exit_reason": last.outcome.reason.as_str(),
        "detail": last.outcome.detail,
        "metrics": metrics,
        "note": decision.note,
        "gate": decision.judgement,
    });
    write(&dir.join("metrics.json"), &serde_json::to_string_pretty(&record)?)?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
}
