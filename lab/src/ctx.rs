//! What every command gets: where it runs and how to reach the lab root and its
//! research memory.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::root::LabRoot;
use crate::store::Store;

#[derive(Debug)]
pub struct Ctx {
    pub cwd: PathBuf,
    root_arg: Option<PathBuf>,
    /// The database [`Ctx::open`] opened, so an error from it can name it.
    database: OnceCell<PathBuf>,
}

impl Ctx {
    pub fn new(root_arg: Option<PathBuf>) -> Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        Ok(Self { cwd, root_arg, database: OnceCell::new() })
    }

    pub fn lab(&self) -> Result<LabRoot> {
        LabRoot::discover(self.root_arg.as_deref(), &self.cwd)
    }

    /// The lab root and its database, created on first use (a fresh clone of a
    /// lab repository has `lab.yaml` but no `.lab/`).
    pub fn open(&self) -> Result<(LabRoot, Store)> {
        let lab = self.lab()?;
        let store = lab.open_store()?;
        let _ = self.database.set(store.path().to_path_buf());
        Ok((lab, store))
    }

    /// The research database this command opened, if it opened one.
    pub fn database(&self) -> Option<&Path> {
        self.database.get().map(PathBuf::as_path)
    }

    /// The leaf a command is about: the one named, else the leaf directory that
    /// contains the working directory, else none (the whole lab).
    pub fn leaf(&self, lab: &LabRoot, named: Option<String>) -> Option<String> {
        named.or_else(|| lab.leaf_containing(&self.cwd))
    }
}
