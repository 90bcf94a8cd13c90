//! The environment a worker starts in: which virtual environment's packages the
//! embedded interpreter uses, and the variables set before it starts.
//!
//! The venv is, in order: `$LAB_VENV`; `<lab root>/.venv`; the caller's
//! `$VIRTUAL_ENV`; else none (the interpreter's own site-packages). It is made
//! effective with `PYTHONEXECUTABLE=<venv>/bin/python`, the one variable the
//! embedded interpreter honours for this (`VIRTUAL_ENV` is ignored at run time,
//! `PYTHONHOME` breaks it). Child processes of a run (multiprocessing spawn,
//! DataLoader workers) are plain `python` processes: they find a small
//! pure-Python `lab` module on `PYTHONPATH` that reads the run's facts from
//! `LAB_*` variables.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};

use crate::error::LabError;
use crate::runner::protocol::WorkerSpec;

/// The interpreter this binary was built against (see `lab/build.rs`).
pub const BUILD_PYTHON_VERSION: Option<&str> = option_env!("LAB_PYTHON_BUILD_VERSION");
pub const BUILD_PYTHON_PREFIX: Option<&str> = option_env!("LAB_PYTHON_BUILD_PREFIX");

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

/// The module child processes import as `lab` (the worker itself has the Rust one).
const CHILD_MODULE: &str = r#""""The `lab` module as child processes of a run see it (multiprocessing spawn,
DataLoader workers): the run's facts, read from LAB_* variables. Progress and
predictions go through the main worker process only. Written by lab."""
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


def data_dir():
    return _os.environ["LAB_DATA_DIR"]


def settings():
    return _json.loads(_os.environ.get("LAB_SETTINGS", "{}"))


def inputs():
    return None


def log(msg):
    print(f"[lab] {msg}", file=_sys.stderr, flush=True)


def report(**metrics):
    """Ignored outside the main worker process."""


def save_predictions(name, array):
    raise RuntimeError("lab.save_predictions works only in the main worker process")
"#;

/// Write the child module under `<data dir>/python/` (when missing or stale); returns its directory.
pub fn child_module_dir(data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("python");
    let path = dir.join("lab.py");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(CHILD_MODULE) {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        std::fs::write(&path, CHILD_MODULE).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(dir)
}

/// `lab __worker SPEC` in the leaf directory, in its own process group, with
/// stdout and stderr appended to `log`.
pub fn worker_command(
    spec_path: &Path,
    spec: &WorkerSpec,
    venv: Option<&Venv>,
    module_dir: &Path,
    log: &File,
) -> Result<Command> {
    let exe = std::env::current_exe().context("cannot find the lab binary to start a worker")?;
    let mut cmd = Command::new(exe);
    cmd.arg("__worker").arg(spec_path).current_dir(&spec.leaf_dir).process_group(0);
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
    if let Some(venv) = venv {
        cmd.env("PYTHONEXECUTABLE", venv.python());
    }
    let mut path = OsString::from(module_dir);
    if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(existing);
    }
    cmd.env("PYTHONPATH", path)
        .env("PYTHONUNBUFFERED", "1")
        // No __pycache__ in the leaf: it would show as an untracked change.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", (spec.seed % (1 << 32)).to_string())
        .env("LAB_DEADLINE", format!("{:.6}", spec.deadline))
        .env("LAB_SEED", spec.seed.to_string())
        .env("LAB_SMOKE", if spec.smoke { "1" } else { "0" })
        .env("LAB_LEAF_DIR", &spec.leaf_dir)
        .env("LAB_DATA_DIR", &spec.data_dir)
        .env("LAB_SETTINGS", serde_json::Value::Object(spec.settings.clone()).to_string())
        .env_remove("LAB_DEVICE");
    Ok(cmd)
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
}
