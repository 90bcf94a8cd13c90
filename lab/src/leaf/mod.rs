//! Leaf workspaces: a directory with a `leaf.yaml` manifest, a `program.md` for
//! the agent, mutable training code and frozen evaluation locked by `leaf.lock`.
//!
//! A leaf's name is its directory's name (`lab check` enforces it), so research
//! records, which name leaves, find their directory again by name.
//!
//! Layout: `manifest` (the leaf.yaml schema), `files` (globs to files), `lock`
//! (fingerprints of frozen files), `inputs` (files taken from other leaves' leaders
//! and the comparability key), `discover` (walking the leaves directory),
//! `check` (every problem of a contributed leaf), `template`, `builtin` (the
//! templates compiled in, under the lab root's own) and `scaffold` (`lab new`), `program` (the sections every program.md has), `snapshot` (the
//! copy of the leaf's files a run executes and a keep commits).

pub mod builtin;
pub mod check;
pub mod discover;
pub mod files;
pub mod inputs;
pub mod lock;
pub mod manifest;
pub mod program;
pub mod scaffold;
pub mod snapshot;
pub mod stage;
pub mod template;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::LabError;
use crate::gate::Goal;
use crate::root::LabRoot;
pub use files::FileSets;
pub use manifest::Manifest;

/// A leaf on disk: its directory and its parsed manifest.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Leaf {
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = Manifest::load(&dir.join(manifest::FILE))?;
        Ok(Self { dir: dir.to_path_buf(), manifest })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The compiled mutable, frozen and sealed globs.
    pub fn file_sets(&self) -> Result<FileSets, LabError> {
        FileSets::new(&self.manifest.files, &self.manifest.sealed.leaf)
    }
}

impl Manifest {
    /// The goal of `metric` in this leaf: the primary metric's or a guard's as
    /// declared, else, for a metric listed in `also` that the harness computes
    /// (`mae`, `spearman`, ...), that metric's own direction.
    pub fn goal_of(&self, metric: &str) -> Option<Goal> {
        if self.metric.name == metric {
            return Some(self.metric.goal);
        }
        let guard = self.metric.guards.iter().find(|g| g.name == metric).map(|g| g.goal);
        let known =
            || self.metric.also.iter().any(|a| a == metric).then(|| metric.parse::<crate::gate::MetricKind>().ok())?;
        guard.or_else(|| known().map(crate::gate::MetricKind::goal))
    }
}

/// The directory of the leaf a command names: `arg` as a path to a directory
/// holding a `leaf.yaml`, else as a leaf name; with no `arg`, the leaf
/// containing `cwd`. The manifest is not loaded, so a malformed one can be reported.
pub fn locate(lab: &LabRoot, cwd: &Path, arg: Option<&str>) -> Result<PathBuf, LabError> {
    let leaves_dir = lab.leaves_dir();
    let Some(arg) = arg else {
        let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
        return discover::dir_containing(&lab.dir, &cwd).ok_or_else(|| {
            LabError::usage(format!("`{}` is not inside a leaf", cwd.display()))
                .hint("name the leaf (`lab leaves` lists them), or run inside its directory")
        });
    };
    let as_path = cwd.join(arg);
    if as_path.join(manifest::FILE).is_file() {
        return Ok(as_path.canonicalize().unwrap_or(as_path));
    }
    discover::find_dir(&leaves_dir, arg).ok_or_else(|| {
        LabError::usage(format!("no leaf `{arg}` under `{}`", leaves_dir.display()))
            .hint("`lab leaves` lists the leaves; `lab new NAME --template T` makes one")
    })
}
