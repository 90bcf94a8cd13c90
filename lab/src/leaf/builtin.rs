//! Where `lab new` and `lab templates` find templates: the ones compiled into
//! the binary (the source tree's `templates/`, embedded by `lab/build.rs`, so an
//! installed binary has them), with the lab root's own `templates/` adding
//! templates or replacing built-in ones by directory name (`_partials` too), or
//! exactly the directory given with `--templates` / `LAB_TEMPLATES`.
//!
//! The renderer reads templates from one directory (minijinja's loader resolves
//! `{% extends "_partials/..." %}` relative to it), so built-ins are written to a
//! scratch directory first, the lab root's directories copied over them; it
//! lives as long as the [`Templates`] value. That costs a few kilobytes of
//! writes per command and keeps one code path for every source.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tempfile::TempDir;

use super::discover::dir_name;
use super::files::list_files;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The templates a command renders from, in one directory.
#[derive(Debug)]
pub struct Templates {
    pub dir: PathBuf,
    /// What messages call the source: a directory, or the built-ins (and the lab root's).
    pub label: String,
    /// The lab root's template directories copied over the built-ins, by name.
    own: BTreeMap<String, PathBuf>,
    /// Holds the built-ins while the value lives; `None` for `--templates DIR`.
    scratch: Option<TempDir>,
}

impl Templates {
    /// `explicit` (`--templates` or `LAB_TEMPLATES`) alone, else the built-ins
    /// with `templates/` of the lab root `lab_dir` over them.
    pub fn resolve(explicit: Option<&Path>, lab_dir: Option<&Path>) -> Result<Self> {
        if let Some(dir) = explicit {
            let label = format!("`{}`", dir.display());
            return Ok(Self { dir: dir.to_path_buf(), label, own: BTreeMap::new(), scratch: None });
        }
        let scratch = tempfile::Builder::new().prefix("lab-templates").tempdir()?;
        for (rel, mode, bytes) in embedded::FILES {
            write(&scratch.path().join(rel), bytes, *mode)?;
        }
        let mut own = BTreeMap::new();
        let mut label = "the built-in templates".to_owned();
        if let Some(root_templates) = lab_dir.map(|d| d.join("templates")).filter(|d| d.is_dir()) {
            let entries =
                fs::read_dir(&root_templates).with_context(|| format!("cannot read `{}`", root_templates.display()))?;
            for dir in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
                let target = scratch.path().join(dir_name(&dir));
                if target.exists() {
                    fs::remove_dir_all(&target)?;
                }
                copy_tree(&dir, &target)?;
                own.insert(dir_name(&dir), dir);
            }
            label = format!("the built-in templates and `{}`", root_templates.display());
        }
        Ok(Self { dir: scratch.path().to_path_buf(), label, own, scratch: Some(scratch) })
    }

    /// Where the template in `dir` (below [`Self::dir`]) comes from, as `lab
    /// templates` shows it: its directory, or `built-in`.
    pub fn origin(&self, dir: &Path) -> String {
        match (&self.scratch, self.own.get(&dir_name(dir))) {
            (Some(_), None) => "built-in".to_owned(),
            (Some(_), Some(own)) => own.display().to_string(),
            (None, _) => dir.display().to_string(),
        }
    }
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Copy every file of a template directory (caches left out), keeping permission bits.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for rel in list_files(from)? {
        let source = from.join(&rel);
        let mode = fs::metadata(&source)?.permissions().mode();
        let bytes = fs::read(&source).with_context(|| format!("cannot read `{}`", source.display()))?;
        write(&to.join(&rel), &bytes, mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_of_the_source_tree_is_built_in() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        let embedded: Vec<&str> = embedded::FILES.iter().map(|(rel, _, _)| *rel).collect();
        assert_eq!(embedded, list_files(&source).unwrap().iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn a_lab_roots_templates_add_and_replace_by_directory() {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join("templates/minimal/template.yaml"), b"mine", 0o644).unwrap();
        write(&root.path().join("templates/extra/template.yaml"), b"extra", 0o644).unwrap();
        let t = Templates::resolve(None, Some(root.path())).unwrap();
        assert_eq!(fs::read(t.dir.join("minimal/template.yaml")).unwrap(), b"mine");
        assert!(!t.dir.join("minimal/train.py.j2").exists(), "a replaced template keeps none of the built-in's files");
        assert!(t.dir.join("torch/template.yaml").is_file() && t.dir.join("_partials/program.md.j2").is_file());
        assert_eq!(t.origin(&t.dir.join("torch")), "built-in");
        assert_eq!(t.origin(&t.dir.join("extra")), root.path().join("templates/extra").display().to_string());
    }
}
