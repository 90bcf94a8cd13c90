//! Leaf workspaces: a directory with a `leaf.yaml` manifest, a `program.md` for
//! the agent, mutable training code and frozen evaluation.

pub mod manifest;

use std::path::{Path, PathBuf};

use anyhow::Result;

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
}
