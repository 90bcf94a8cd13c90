//! Writing a scaffold [`Plan`] so that a failure leaves nothing half written.
//!
//! Every file is first written into a staging directory beside the leaf
//! (`.lab-new-*`, hidden, so discovery skips it), then moved into place: a new
//! leaf (or an empty directory) by one rename of the whole directory; an
//! existing leaf (`--force`) file by file, each rename atomic, the replaced
//! files kept aside and put back if a later move fails. Directories created on
//! the way are removed again on failure; the staging directory always is.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::scaffold::{Plan, Planned};
use crate::error::LabError;

fn occupied(plan: &Plan) -> bool {
    fs::read_dir(&plan.leaf_dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Why `apply` would refuse `plan`: without `force`, a leaf directory that
/// exists and is not empty (exit 2).
pub fn refusal(plan: &Plan, force: bool) -> Option<LabError> {
    if force || !occupied(plan) {
        return None;
    }
    let conflicts: Vec<&str> = plan.files.iter().filter(|f| f.exists).map(|f| f.path.as_str()).collect();
    let detail = if conflicts.is_empty() { String::new() } else { format!(" (it has {})", conflicts.join(", ")) };
    Some(
        LabError::usage(format!("`{}` already exists{detail}", plan.leaf_dir.display()))
            .hint("pick another NAME, or pass --force to replace the template's files (other files are kept)"),
    )
}

/// Write `plan`, unless [`refusal`] says no.
pub fn apply(plan: &Plan, force: bool) -> Result<()> {
    if let Some(refused) = refusal(plan, force) {
        return Err(refused.into());
    }
    let occupied = occupied(plan);
    let parent = plan.leaf_dir.parent().context("the leaf directory has no parent")?;
    let made = create_missing(parent)?;
    let result = stage_and_move(plan, parent, occupied);
    if result.is_err() {
        made.iter().rev().for_each(|d| drop(fs::remove_dir(d)));
    }
    result
}

fn stage_and_move(plan: &Plan, parent: &Path, occupied: bool) -> Result<()> {
    let staging = tempfile::Builder::new()
        .prefix(".lab-new-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in `{}`", parent.display()))?;
    let staged = staging.path().join("leaf");
    write_files(&staged, &plan.files)?;
    if occupied {
        replace_files(&staged, &staging.path().join("replaced"), &plan.leaf_dir, &plan.files)
    } else {
        // rename(2) replaces an empty directory, so an empty leaf_dir is fine.
        fs::rename(&staged, &plan.leaf_dir).with_context(|| format!("cannot create `{}`", plan.leaf_dir.display()))
    }
}

fn write_files(dir: &Path, files: &[Planned]) -> Result<()> {
    fs::create_dir(dir)?;
    for file in files {
        let path = dir.join(&file.path);
        create_missing(path.parent().unwrap_or(dir))?;
        fs::write(&path, &file.bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))?;
    }
    Ok(())
}

/// Move staged files over an existing leaf; on failure put everything back.
fn replace_files(staged: &Path, aside: &Path, leaf_dir: &Path, files: &[Planned]) -> Result<()> {
    let mut moved: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut made = Vec::new();
    let mut attempt = || -> Result<()> {
        for file in files {
            let target = leaf_dir.join(&file.path);
            made.extend(create_missing(target.parent().unwrap_or(leaf_dir))?);
            let kept = if target.symlink_metadata().is_ok() {
                let kept = aside.join(&file.path);
                create_missing(kept.parent().unwrap_or(aside))?;
                fs::rename(&target, &kept).with_context(|| format!("cannot move `{}` aside", target.display()))?;
                Some(kept)
            } else {
                None
            };
            moved.push((target.clone(), kept));
            fs::rename(staged.join(&file.path), &target)
                .with_context(|| format!("cannot write `{}`", target.display()))?;
        }
        Ok(())
    };
    let result = attempt();
    if result.is_err() {
        for (target, kept) in moved.into_iter().rev() {
            let _ = match kept {
                Some(kept) => fs::rename(kept, &target),
                None => fs::remove_file(&target),
            };
        }
        made.iter().rev().for_each(|d| drop(fs::remove_dir(d)));
    }
    result
}

/// Create `dir` and its missing ancestors; returns those created, outermost first.
fn create_missing(dir: &Path) -> Result<Vec<PathBuf>> {
    let missing: Vec<&Path> =
        dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && d.symlink_metadata().is_err()).collect();
    let mut made = Vec::new();
    for d in missing.into_iter().rev() {
        fs::create_dir(d).with_context(|| format!("cannot create `{}`", d.display()))?;
        made.push(d.to_path_buf());
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(path: &str, text: &str, exists: bool) -> Planned {
        Planned { path: path.into(), origin: "test".into(), bytes: text.into(), mode: 0o644, exists }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_leaf_appears_whole_with_its_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf_dir = tmp.path().join("leaves/group/x");
        let plan =
            Plan { leaf_dir: leaf_dir.clone(), template: "t".into(), files: vec![planned("a/b.py", "b", false)] };
        apply(&plan, false).unwrap();
        assert_eq!(fs::read_to_string(leaf_dir.join("a/b.py")).unwrap(), "b");
        assert_eq!(names(&tmp.path().join("leaves/group")), ["x"]);
    }

    #[test]
    fn a_failed_forced_write_puts_every_file_back() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf_dir = tmp.path().join("x");
        fs::create_dir(&leaf_dir).unwrap();
        fs::write(leaf_dir.join("a.txt"), "old").unwrap();
        fs::write(leaf_dir.join("sub"), "a file where a directory must go").unwrap();
        let files =
            vec![planned("a.txt", "new", true), planned("new.txt", "n", false), planned("sub/b.txt", "b", false)];
        let plan = Plan { leaf_dir: leaf_dir.clone(), template: "t".into(), files };
        assert!(apply(&plan, false).unwrap_err().to_string().contains("already exists"));
        apply(&plan, true).unwrap_err();
        assert_eq!(fs::read_to_string(leaf_dir.join("a.txt")).unwrap(), "old");
        assert_eq!(names(&leaf_dir), ["a.txt", "sub"]);
        assert_eq!(names(tmp.path()), ["x"], "the staging directory is gone");
    }

    #[test]
    fn a_failed_new_leaf_leaves_no_parent_behind() {
        let tmp = tempfile::tempdir().unwrap();
        // `a` is a file, so `a/b` cannot be staged: the failure comes after
        // `leaves/` was created for the leaf.
        let files = vec![planned("a", "", false), planned("a/b", "", false)];
        let plan = Plan { leaf_dir: tmp.path().join("leaves/x"), template: "t".into(), files };
        apply(&plan, false).unwrap_err();
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
    }
}
