//! The environment a worker starts in: which virtual environment's packages the
//! embedded interpreter uses, and every variable it gets (no other).
//!
//! The venv is, in order: `$LAB_VENV`; `<lab root>/.venv`; the caller's
//! `$VIRTUAL_ENV`; else none (the interpreter's own site-packages). It is made
//! effective with `PYTHONEXECUTABLE=<venv>/bin/python`, the one variable the
//! embedded interpreter honours for this (`VIRTUAL_ENV` is ignored at run time,
//! `PYTHONHOME` breaks it).
//!
//! The worker's environment is built from nothing ([`worker_env`]): an agent's
//! `PYTHONPATH` with a `sitecustomize.py`, `LD_PRELOAD` or `LD_LIBRARY_PATH`
//! (loaded before the sandbox exists) never reach it; only
//! `CUDA_VISIBLE_DEVICES` passes through. The list is recorded with the run.
//! Child processes of a run (multiprocessing spawn, DataLoader workers) are
//! plain `python` processes: they find a small pure-Python `lab` module
//! ([`CHILD_MODULE`]) on `PYTHONPATH` that reads the run's facts from `LAB_*`
//! variables.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::protocol::WorkerSpec;
use crate::error::LabError;

/// The interpreter this binary was built against (see `lab/build.rs`).
pub const BUILD_PYTHON_VERSION: Option<&str> = option_env!("LAB_PYTHON_BUILD_VERSION");
pub const BUILD_PYTHON_PREFIX: Option<&str> = option_env!("LAB_PYTHON_BUILD_PREFIX");

/// Variables a worker inherits from the supervisor (operator settings, not the leaf's).
const PASSED_THROUGH: &[&str] = &["CUDA_VISIBLE_DEVICES"];

/// A virtual environment and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    pub dir: PathBuf,
    /// `LAB_VENV`, `lab root` or `VIRTUAL_ENV`.
    pub source: &'static str,
}

impl Venv {
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// `<venv>/lib/python3.X/site-packages`, where sealed package paths are resolved.
    pub fn site_packages(&self) -> Option<PathBuf> {
        let lib = std::fs::read_dir(self.dir.join("lib")).ok()?;
        lib.flatten()
            .map(|e| e.path().join("site-packages"))
            .find(|p| p.is_dir() && p.parent().is_some_and(|d| d.to_string_lossy().contains("python3")))
    }
}

/// The venv a worker uses (see the module docs for the order).
pub fn find_venv(lab_root: Option<&Path>) -> Result<Option<Venv>> {
    find_venv_in(lab_root, std::env::var_os("LAB_VENV"), std::env::var_os("VIRTUAL_ENV"))
}

fn find_venv_in(
    lab_root: Option<&Path>,
    lab_venv: Option<OsString>,
    virtual_env: Option<OsString>,
) -> Result<Option<Venv>> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(lab_venv) {
        let venv = Venv { dir, source: "LAB_VENV" };
        if !venv.python().exists() {
            return Err(LabError::usage(format!("LAB_VENV is `{}`, which has no bin/python", venv.dir.display()))
                .hint("create it with `python3 -m venv DIR` (scripts/setup does), or unset LAB_VENV")
                .into());
        }
        return Ok(Some(venv));
    }
    if let Some(root) = lab_root {
        let venv = Venv { dir: root.join(".venv"), source: "lab root" };
        if venv.python().exists() {
            return Ok(Some(venv));
        }
    }
    Ok(set(virtual_env).map(|dir| Venv { dir, source: "VIRTUAL_ENV" }).filter(|v| v.python().exists()))
}

/// The module child processes import as `lab`. The worker itself has the Rust
/// one (`python/module.rs`); a test keeps their function names the same.
pub const CHILD_MODULE: &str = r#""""The `lab` module as child processes of a run see it (multiprocessing spawn,
DataLoader workers): the run's facts, read from LAB_* variables. Progress,
predictions and the trained object go through the main worker process only.
Written by lab."""
import json as _json
import os as _os
import sys as _sys
import time as _time


def deadline():
    return float(_os.environ["LAB_DEADLINE"])


def time_left():
    return max(0.0, deadline() - _time.time())


def seed():
    return int(_os.environ["LAB_SEED"])


def smoke():
    return _os.environ.get("LAB_SMOKE") == "1"


def device():
    return _os.environ.get("LAB_DEVICE", "cpu")


def leaf_dir():
    return _os.environ["LAB_LEAF_DIR"]


def artifact_dir():
    return _os.environ["LAB_ARTIFACT_DIR"]


def settings():
    return _json.loads(_os.environ.get("LAB_SETTINGS", "{}"))


def input(name):
    found = _json.loads(_os.environ.get("LAB_INPUTS", "{}"))
    if name not in found:
        raise KeyError(f"leaf.yaml declares no input {name!r} (declared: {', '.join(found) or 'none'})")
    return found[name]


def inputs():
    return None


def trained():
    raise RuntimeError("lab.trained() works only in the main worker process")


def log(msg):
    print(f"[lab] {msg}", file=_sys.stderr, flush=True)


def report(**metrics):
    """Ignored outside the main worker process."""


def save_predictions(name, array):
    raise RuntimeError("lab.save_predictions works only in the main worker process")


def memo(fn, items):
    """No memo outside the main worker process: every item is computed."""
    import numpy

    return [numpy.asarray(fn(item)) for item in items]
"#;

/// Write the child module into `dir`; returns `dir`.
pub fn write_child_module(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join("lab.py");
    std::fs::write(&path, CHILD_MODULE).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(dir.to_path_buf())
}

/// The interpreter workers run: the venv's, else the one this binary was built against.
pub fn python_of(venv: Option<&Venv>) -> Option<PathBuf> {
    venv.map(Venv::python).or_else(build_python)
}

/// The interpreter this binary was built against, when it is still there.
fn build_python() -> Option<PathBuf> {
    let bin = Path::new(BUILD_PYTHON_PREFIX?).join("bin");
    let version = BUILD_PYTHON_VERSION?.rsplit_once('.').map(|(minor, _)| minor.to_owned())?;
    [format!("python{version}"), "python3".to_owned()].iter().map(|n| bin.join(n)).find(|p| p.is_file())
}

/// Every variable of a worker (and its keeper), built from nothing.
pub fn worker_env(
    spec: &WorkerSpec,
    venv: Option<&Venv>,
    scratch: &Path,
    artifact: Option<&Path>,
) -> Vec<(String, String)> {
    let mut path = String::new();
    if let Some(venv) = venv {
        path.push_str(&format!("{}:", venv.dir.join("bin").display()));
    }
    path.push_str("/usr/local/bin:/usr/bin:/bin");
    let inputs: serde_json::Map<String, serde_json::Value> = spec
        .inputs
        .iter()
        .map(|i| {
            let value = i.found.as_ref().map_or(serde_json::Value::Null, |f| {
                serde_json::json!({"name": i.name, "leaf": i.leaf, "file": i.file, "experiment": f.experiment,
                                   "path": f.path, "sha256": f.sha256})
            });
            (i.name.clone(), value)
        })
        .collect();
    let mut env = vec![
        ("PATH".to_owned(), path),
        ("HOME".to_owned(), scratch.display().to_string()),
        ("TMPDIR".to_owned(), scratch.display().to_string()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("PYTHONPATH".to_owned(), spec.module_dir.display().to_string()),
        ("PYTHONNOUSERSITE".to_owned(), "1".to_owned()),
        ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
        // The code runs from a fresh snapshot (read-only in the sandbox): no bytecode next to it.
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ("PYTHONHASHSEED".to_owned(), (spec.seed % (1 << 32)).to_string()),
        ("LAB_SEED".to_owned(), spec.seed.to_string()),
        ("LAB_SMOKE".to_owned(), if spec.smoke { "1" } else { "0" }.to_owned()),
        ("LAB_LEAF_DIR".to_owned(), spec.code_dir.display().to_string()),
        ("LAB_SETTINGS".to_owned(), serde_json::Value::Object(spec.settings.clone()).to_string()),
        ("LAB_INPUTS".to_owned(), serde_json::Value::Object(inputs).to_string()),
    ];
    // The interpreter finds its prefix from this executable: the venv's, else the build's own.
    let executable = python_of(venv);
    if let Some(executable) = executable {
        env.push(("PYTHONEXECUTABLE".to_owned(), executable.display().to_string()));
    }
    if let Some(artifact) = artifact {
        env.push(("LAB_ARTIFACT_DIR".to_owned(), artifact.display().to_string()));
    }
    for name in PASSED_THROUGH {
        if let Ok(value) = std::env::var(name) {
            env.push(((*name).to_owned(), value));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_venv(dir: &Path) {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/python"), "").unwrap();
    }

    #[test]
    fn lab_venv_wins_then_the_lab_root_then_virtual_env() {
        let tmp = tempfile::tempdir().unwrap();
        let (explicit, root, active) = (tmp.path().join("x"), tmp.path().join("root"), tmp.path().join("active"));
        for dir in [&explicit, &root.join(".venv"), &active] {
            fake_venv(dir);
        }
        let pick = |lab: Option<&Path>, a: Option<&Path>, b: Option<&Path>| {
            find_venv_in(lab, a.map(Into::into), b.map(Into::into)).unwrap().map(|v| (v.dir, v.source))
        };
        assert_eq!(pick(Some(&root), Some(&explicit), Some(&active)), Some((explicit.clone(), "LAB_VENV")));
        assert_eq!(pick(Some(&root), None, Some(&active)), Some((root.join(".venv"), "lab root")));
        assert_eq!(pick(None, None, Some(&active)), Some((active.clone(), "VIRTUAL_ENV")));
        assert_eq!(pick(None, None, None), None);
        let err = find_venv_in(None, Some(tmp.path().join("nope").into()), None).unwrap_err();
        assert!(err.to_string().contains("has no bin/python"), "{err}");
    }

    #[test]
    fn the_child_module_offers_what_the_worker_module_offers() {
        let defined: Vec<&str> =
            CHILD_MODULE.lines().filter_map(|l| l.strip_prefix("def ")).filter_map(|l| l.split('(').next()).collect();
        let mut defined = defined;
        defined.sort_unstable();
        let mut offered = super::super::protocol::LAB_FUNCTIONS.to_vec();
        offered.sort_unstable();
        assert_eq!(defined, offered);
    }
}
