//! What a decision does to the leaf's files: a keep commits the snapshot of
//! the changed mutable files (the bytes that ran, whatever the working tree
//! holds now), with the chain's head as an anchor; a discard or crash restores
//! them to HEAD, except a file edited while the run went on, which is left as
//! it is. The candidate's diff (HEAD to its snapshot) and its flags are written
//! at launch, so the gate and the archive read what ran.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::decide::Decision;
use super::integrity::Checked;
use super::{equivalent, flags};
use crate::ids::ExperimentId;
use crate::layout::RunDir;
use crate::leaf::Leaf;
use crate::leaf::snapshot::Snapshot;
use crate::store::records::Verdict;
use crate::supervisor::outcome::ExitReason;
use crate::supervisor::pipeline::TierRun;
use crate::vcs;

/// The candidate a run judges: the leaf, its changed mutable files and their snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub leaf: &'a Leaf,
    pub checked: &'a Checked,
    pub snapshot: &'a Snapshot,
    pub experiment: ExperimentId,
    /// The hypothesis's title, for the commit message.
    pub title: &'a str,
}

/// The snapshot's content of each changed mutable file (`None`: deleted),
/// repository-relative, for the keep commit and the candidate patch.
fn contents(checked: &Checked, leaf: &Leaf, snapshot: &Snapshot) -> Vec<vcs::Content> {
    let prefix = super::judge::leaf_prefix(leaf, &checked.workdir);
    checked
        .mutable_changes
        .iter()
        .map(|path| {
            let rel = path.to_string_lossy();
            let inside = rel.strip_prefix(&prefix).unwrap_or(&rel);
            let file = snapshot.file(inside);
            let executable = std::fs::metadata(checked.workdir.join(path))
                .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
            vcs::Content { path: path.clone(), bytes: file.map(|f| f.bytes.clone()), executable }
        })
        .collect()
}

/// `candidate.patch`, the diff from HEAD to the snapshot's mutable files, and
/// `candidate.flags.json`, its flags, written at launch: the text rules of
/// `flags`, and `no-op` for Python rewrites with an unchanged syntax tree
/// (`equivalent`, parsed by `python` when there is one).
pub fn candidate_patch(c: &Candidate<'_>, run_dir: &RunDir, python: Option<&Path>) -> Result<PathBuf> {
    let path = run_dir.candidate_patch();
    let contents = contents(c.checked, c.leaf, c.snapshot);
    let old = vcs::head_contents(&c.checked.workdir, &contents)?;
    let patch = vcs::patch_of_contents(&contents, &old)?;
    let mut flags = flags::diff_flags(&patch, &super::judge::leaf_prefix(c.leaf, &c.checked.workdir));
    if !flags.iter().any(|f| f == flags::NO_OP)
        && let Some(python) = python
    {
        let changes: Vec<equivalent::Change<'_>> = contents
            .iter()
            .zip(&old)
            .map(|(new, old)| equivalent::Change { path: &new.path, old: old.as_deref(), new: new.bytes.as_deref() })
            .collect();
        if equivalent::python_unchanged(python, &changes) {
            flags = vec![flags::NO_OP.to_owned()];
        }
    }
    std::fs::write(&path, patch).with_context(|| format!("cannot write `{}`", path.display()))?;
    let flags_path = run_dir.candidate_flags();
    std::fs::write(&flags_path, serde_json::to_vec(&flags)?)
        .with_context(|| format!("cannot write `{}`", flags_path.display()))?;
    Ok(path)
}

/// Keep: commit the snapshot of the changed mutable files, with the chain's
/// head as an anchor. Discard or crash:
/// restore each of them to HEAD, unless it changed during the run (an agent
/// already editing the next candidate), which is left as it is. Only with
/// `--decide`, and never after an environment failure: the candidate did not
/// run at all. Returns the commit, and whether the files were restored.
pub fn apply(
    c: &Candidate<'_>,
    decided: bool,
    decision: &Decision,
    last: &TierRun,
    (seq, head): (i64, String),
) -> Result<(Option<String>, bool)> {
    let (leaf, checked, experiment) = (c.leaf, c.checked, c.experiment);
    if !decided || checked.mutable_changes.is_empty() || last.outcome.reason == ExitReason::Environment {
        return Ok((None, false));
    }
    let contents = contents(checked, leaf, c.snapshot);
    if decision.verdict == Verdict::Keep {
        let metric = &leaf.manifest.metric.name;
        let value = last.metrics.get(metric).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        // The chain's head goes into the commit: a rebuilt chain no longer has it (`lab verify`).
        let anchor = super::verify::ANCHOR;
        let message = format!("lab: keep {experiment} {metric}={value} ({})\n\n{anchor}: {seq} {head}", c.title);
        return Ok((Some(vcs::commit_contents(&checked.workdir, &contents, &message)?), false));
    }
    let (unchanged, edited): (Vec<&vcs::Content>, Vec<&vcs::Content>) =
        contents.iter().partition(|c| std::fs::read(checked.workdir.join(&c.path)).ok() == c.bytes);
    for content in &edited {
        eprintln!("lab: left `{}` as it is: it changed while {experiment} ran", content.path.display());
    }
    let paths: Vec<PathBuf> = unchanged.iter().map(|c| c.path.clone()).collect();
    vcs::restore_paths(&checked.workdir, &paths)?;
    Ok((None, true))
}
