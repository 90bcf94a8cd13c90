//! `python.requires` checked against the packages a worker would import, before
//! a run records anything: a venv that lacks numpy is the operator's set-up,
//! not an idea that crashed, and recording it as an experiment's crash ("No
//! module named 'numpy'") put a failure in the research log that no edit of
//! the leaf could fix.
//!
//! The check asks the same interpreter the worker gets (the venv's `bin/python`,
//! else the build interpreter's) for each requirement's installed distribution
//! with `importlib.metadata`, in isolated mode (`-I`: no `PYTHONPATH`, as the
//! worker's environment has none). It checks that each distribution is
//! installed, not its version: the specifier grammar needs `packaging`, which
//! a venv need not have. Where no interpreter can be started the check is
//! skipped and the worker reports what it finds. A leaf without
//! `python.requires` costs nothing (no process is started). The versions it
//! finds are recorded with each run (`run_packages`), so a result names the
//! stack it ran on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use super::env::{BUILD_PYTHON_PREFIX, Venv};
use crate::error::LabError;
use crate::leaf::Leaf;

/// The installed version of each package a leaf declares, by distribution name.
pub type Packages = BTreeMap<String, String>;

/// Prints, per requirement (one per argument), `name version`, or the name
/// alone when no distribution is installed.
const PROBE: &str = "import sys, importlib.metadata as m
for name in sys.argv[1:]:
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name)";

/// The installed versions of the packages `leaf` declares in
/// `python.requires` (recorded with each run); refused (exit 3) when one is
/// not installed where its workers would import it, naming each and the fixes.
pub fn require(leaf: &Leaf, venv: Option<&Venv>) -> Result<Packages> {
    let requires = &leaf.manifest.python.requires;
    if requires.is_empty() {
        return Ok(Packages::new());
    }
    let Some(python) = venv.map(Venv::python).or_else(build_python) else { return Ok(Packages::new()) };
    let names: Vec<&str> = requires.iter().map(|r| distribution(r)).filter(|n| !n.is_empty()).collect();
    let Ok(out) = Command::new(&python).arg("-I").arg("-c").arg(PROBE).args(&names).env_clear().output() else {
        return Ok(Packages::new());
    };
    if !out.status.success() {
        // An interpreter that cannot run the probe cannot run a worker either: it says why.
        return Ok(Packages::new());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (mut installed, mut missing) = (Packages::new(), Vec::new());
    for line in stdout.lines() {
        match line.split_once(' ') {
            Some((name, version)) => drop(installed.insert(name.to_owned(), version.to_owned())),
            None => missing.push(line),
        }
    }
    if missing.is_empty() {
        return Ok(installed);
    }
    let wanted: Vec<String> =
        requires.iter().filter(|r| missing.contains(&distribution(r))).map(|r| format!("'{}'", r.trim())).collect();
    let (from, fix) = match venv {
        Some(v) => (
            format!("the venv `{}` (from {})", v.dir.display(), v.source),
            format!("`{} -m pip install {}`", v.python().display(), wanted.join(" ")),
        ),
        None => (
            format!("`{}` (no venv was found: LAB_VENV, <lab root>/.venv, VIRTUAL_ENV)", python.display()),
            "`scripts/setup` makes this repository's .venv".to_owned(),
        ),
    };
    let quoted: Vec<String> = missing.iter().map(|name| format!("`{name}`")).collect();
    Err(LabError::refused(format!(
        "leaf `{}` requires {} (python.requires in leaf.yaml), missing from {from}; nothing was recorded",
        leaf.name(),
        quoted.join(", "),
    ))
    .hint(format!(
        "install them: {fix} (`scripts/setup --leaves` installs every leaf's requirements.txt); or point LAB_VENV \
         at a venv that has them; `lab doctor` shows the interpreter and venv a run gets"
    ))
    .into())
}

/// The build interpreter, whose site-packages a worker imports from when no venv is found.
fn build_python() -> Option<PathBuf> {
    let bin = PathBuf::from(BUILD_PYTHON_PREFIX?).join("bin");
    ["python3", "python"].into_iter().map(|name| bin.join(name)).find(|p| p.exists())
}

/// The distribution a pip requirement names: `torch>=2.2` -> `torch`,
/// `pkg[extra] ; marker` -> `pkg`, `name @ url` -> `name`.
fn distribution(requirement: &str) -> &str {
    let text = requirement.trim();
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::distribution;

    #[test]
    fn a_requirement_names_its_distribution() {
        for (requirement, name) in [
            ("numpy", "numpy"),
            ("torch>=2.2", "torch"),
            (" datamol==0.13.0", "datamol"),
            ("scikit-learn>=1.3", "scikit-learn"),
            ("uvicorn[standard] ; python_version >= '3.8'", "uvicorn"),
            ("pkg @ https://example.com/pkg.whl", "pkg"),
            ("zope.interface~=6.0", "zope.interface"),
        ] {
            assert_eq!(distribution(requirement), name, "{requirement}");
        }
    }
}
