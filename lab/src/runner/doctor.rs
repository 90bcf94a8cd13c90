//! `lab doctor`: what a leaf would see, asked from inside a real worker (the
//! same binary, interpreter start and virtual environment as `lab run`), plus
//! where the research memory is.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::{Map, Value};

use super::env::{self, BUILD_PYTHON_PREFIX, BUILD_PYTHON_VERSION};
use super::launch::{Host, Launch, launch};
use super::outcome::classify;
use super::protocol::{Event, Phase};
use super::tier::log_tail;
use crate::leaf::manifest::DevicePreference;

/// Importing torch cold and waking a GPU can take a while; this is a cap.
const BUDGET: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// `3.11.7 (/root/.pyenv/versions/3.11.7)`: what the binary links against.
    pub built_against: String,
    pub venv: Option<String>,
    pub venv_source: Option<String>,
    /// From the worker: version, executable, prefix, base_prefix, numpy, torch, cuda.
    pub python: Map<String, Value>,
    /// `ok`, or why the worker could not answer.
    pub worker: String,
}

/// Start a worker in a scratch directory and ask it.
pub fn diagnose(lab_root: Option<&std::path::Path>) -> Result<Diagnosis> {
    let venv = env::find_venv(lab_root)?;
    let scratch = tempfile::Builder::new().prefix("lab-doctor").tempdir()?;
    let log_path = scratch.path().join("run.log");
    let host = Host {
        venv: venv.clone(),
        module_dir: env::child_module_dir(scratch.path())?,
        quiet: true,
        leaf: String::new(),
        leaf_dir: scratch.path().to_path_buf(),
        data_dir: scratch.path().join("data"),
        seed: 0,
        device: DevicePreference::Auto,
        settings: Map::new(),
        inputs: Vec::new(),
        log: std::fs::File::create(&log_path)?,
    };
    let phase = Phase::Doctor;
    let run = launch(
        &host,
        Launch { phase, name: "doctor", dir: scratch.path(), budget: BUDGET, smoke: false, label: String::new() },
    )?;
    let python = run.events.iter().find_map(|e| match e {
        Event::Info { info } => Some(info.clone()),
        _ => None,
    });
    let outcome = classify(&run, None, "2m");
    let worker = match (&python, outcome.ok()) {
        (Some(_), true) => "ok".to_owned(),
        _ => format!("{}: {}\n{}", outcome.reason.as_str(), outcome.detail, log_tail(&log_path).trim_end()),
    };
    Ok(Diagnosis {
        built_against: format!("{} ({})", BUILD_PYTHON_VERSION.unwrap_or("?"), BUILD_PYTHON_PREFIX.unwrap_or("?")),
        venv: venv.as_ref().map(|v| v.dir.display().to_string()),
        venv_source: venv.map(|v| v.source.to_owned()),
        python: python.unwrap_or_default(),
        worker,
    })
}
