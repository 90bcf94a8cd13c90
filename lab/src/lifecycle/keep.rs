//! What a decision does to the leaf's files: a keep commits the snapshot of
//! the changed mutable files (the bytes that ran, whatever the working tree
//! holds now), with the chain's head as an anchor; a discard or crash restores
//! them to HEAD, except a file edited while the run went on, which is left as
//! it is. The candidate's diff (HEAD to its snapshot) and its flags (read from
//! the leader's code to the snapshot) are written at launch, so the gate and
//! the archive read what ran.

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

/// `candidate.patch`, the diff from HEAD to the snapshot's mutable files (with
/// the experiment's commit, the code it ran), and `candidate.flags.json`, its
/// flags, written at launch: the text rules of `flags`, and `no-op` for Python
/// rewrites with an unchanged syntax tree (`equivalent`, parsed by `python`
/// when there is one).
///
/// The flags read the diff from `leader_code` (the leader's snapshot,
/// `runs/<leader>/code/`) when there is one, from HEAD otherwise: the gate
/// compares the candidate with the leader, and HEAD is the agent's to commit
/// to. Read from HEAD, a change committed by hand and then reverted beside a
/// new seed would pass a seed-only candidate as a real one, and a real change
/// committed before its run would look like no change at all.
pub fn candidate_patch(
    c: &Candidate<'_>,
    run_dir: &RunDir,
    python: Option<&Path>,
    leader_code: Option<&Path>,
) -> Result<PathBuf> {
    let path = run_dir.candidate_patch();
    let contents = contents(c.checked, c.leaf, c.snapshot);
    let head = vcs::head_contents(&c.checked.workdir, &contents)?;
    let patch = vcs::patch_of_contents(&contents, &head)?;
    let flags = match leader_code {
        Some(dir) => {
            let (changed, old): (Vec<_>, Vec<_>) = against(c, dir)?.into_iter().unzip();
            flags_of(c, &vcs::patch_of_contents(&changed, &old)?, &changed, &old, python)
        }
        None => flags_of(c, &patch, &contents, &head, python),
    };
    std::fs::write(&path, patch).with_context(|| format!("cannot write `{}`", path.display()))?;
    let flags_path = run_dir.candidate_flags();
    std::fs::write(&flags_path, serde_json::to_vec(&flags)?)
        .with_context(|| format!("cannot write `{}`", flags_path.display()))?;
    Ok(path)
}

/// The flags of `patch`, the change from `old` to `contents` (each file's
/// bytes, `None`: absent).
fn flags_of(
    c: &Candidate<'_>,
    patch: &str,
    contents: &[vcs::Content],
    old: &[Option<Vec<u8>>],
    python: Option<&Path>,
) -> Vec<String> {
    let flags = flags::diff_flags(patch, &super::judge::leaf_prefix(c.leaf, &c.checked.workdir));
    if flags.iter().any(|f| f == flags::NO_OP) {
        return flags;
    }
    let changes: Vec<equivalent::Change<'_>> = contents
        .iter()
        .zip(old)
        .map(|(new, old)| equivalent::Change { path: &new.path, old: old.as_deref(), new: new.bytes.as_deref() })
        .collect();
    match python {
        Some(python) if equivalent::python_unchanged(python, &changes) => vec![flags::NO_OP.to_owned()],
        _ => flags,
    }
}

/// The mutable files in which the snapshot differs from the leader's code in
/// `dir`: each as the snapshot has it, beside the leader's bytes (`None`: absent).
fn against(c: &Candidate<'_>, dir: &Path) -> Result<Vec<(vcs::Content, Option<Vec<u8>>)>> {
    let sets = c.leaf.file_sets()?;
    let mut paths: Vec<String> = c.snapshot.mutable().map(|f| f.path.clone()).collect();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.with_context(|| format!("cannot read the leader's code in `{}`", dir.display()))?;
        let rel = entry.path().strip_prefix(dir).expect("below the walked directory");
        if entry.file_type().is_file() && sets.is_mutable(rel) {
            paths.push(rel.to_string_lossy().into_owned());
        }
    }
    paths.sort();
    paths.dedup();
    let prefix = super::judge::leaf_prefix(c.leaf, &c.checked.workdir);
    Ok(paths
        .into_iter()
        .filter_map(|rel| {
            let new = c.snapshot.file(&rel).map(|f| f.bytes.clone());
            let was = std::fs::read(dir.join(&rel)).ok();
            let path = PathBuf::from(format!("{prefix}{rel}"));
            (new != was).then_some((vcs::Content { path, bytes: new, executable: false }, was))
        })
        .collect())
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
