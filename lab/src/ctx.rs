//! What every command gets: where it runs and how to reach the lab root and its
//! research memory.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::leaf::discover;
use crate::root::LabRoot;
use crate::store::{Store, leaves};

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

    /// The leaf a command is about: the one named (a valid leaf name), else the
    /// leaf directory that contains the working directory, else none (the whole lab).
    pub fn leaf(&self, lab: &LabRoot, named: Option<String>) -> Result<Option<String>> {
        if let Some(name) = &named {
            discover::check_component(name)?;
        }
        Ok(named.or_else(|| lab.leaf_containing(&self.cwd)))
    }

    /// [`Ctx::leaf`] for a command that records rows under it: a name that is no
    /// leaf of this lab is refused where the lab has leaf directories
    /// ([`discover::check_for_record`]); where it has none, a new name is noted.
    pub fn leaf_to_record(&self, lab: &LabRoot, store: &Store, named: Option<String>) -> Result<Option<String>> {
        let Some(name) = named else { return self.leaf(lab, None) };
        discover::check_component(&name)?;
        let recorded = leaves::recorded(store.conn())?;
        if !discover::check_for_record(&lab.leaves_dir(), &recorded, &name)? && !recorded.is_empty() {
            eprintln!("note: `{name}` is a new leaf name here (recorded so far: {})", recorded.join(", "));
        }
        Ok(Some(name))
    }
}
