//! `lab doctor`: what a leaf would see, asked from inside a real worker (the
//! same binary, interpreter start and virtual environment as `lab run`), plus
//! where the research memory is.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::leaf::manifest::DevicePreference;
use crate::supervisor::env::{self, BUILD_PYTHON_PREFIX, BUILD_PYTHON_VERSION};
use crate::supervisor::launch::{self, Limits};
use crate::supervisor::outcome::classify;
use crate::supervisor::pipeline::{FILE_CAP, LOG_CAP, log_tail};
use crate::supervisor::progress::Progress;
use crate::supervisor::protocol::{Event, Role, WorkerSpec};

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
    /// What the kernel enforces on a worker (`landlock v7`, `none`).
    pub sandbox: String,
    /// `ok`, or why the worker could not answer.
    pub worker: String,
}

/// Start a worker in a scratch directory (unsandboxed: it runs no leaf code,
/// but asks the kernel what a sandboxed one would get) and ask it.
pub fn diagnose(lab_root: Option<&std::path::Path>) -> Result<Diagnosis> {
    let venv = env::find_venv(lab_root)?;
    let scratch = tempfile::Builder::new().prefix("lab-doctor").tempdir()?;
    let log_path = scratch.path().join("run.log");
    let module_dir = env::write_child_module(&scratch.path().join("python"))?;
    let spec = WorkerSpec {
        role: Role::Doctor,
        leaf: String::new(),
        code_dir: scratch.path().to_path_buf(),
        module_dir,
        seed: 0,
        smoke: false,
        device: DevicePreference::Auto,
        settings: Map::new(),
        inputs: Vec::new(),
        sandbox: Some(crate::sandbox::Policy {
            read_all: true,
            write: vec![scratch.path().to_path_buf()],
            ..Default::default()
        }),
        file_limit: FILE_CAP,
        memo: None,
    };
    let spec_path = scratch.path().join("doctor.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec)?)?;
    let env = env::worker_env(&spec, venv.as_ref(), scratch.path(), None);
    let log = std::fs::File::create(&log_path)?;
    let limits = Limits { budget: BUDGET, log_bytes: LOG_CAP };
    let run = launch::launch(
        &spec_path,
        &env,
        scratch.path(),
        &log,
        limits,
        &mut Progress::new(false, String::new(), BUDGET),
    )?;
    let python = run.events.iter().find_map(|e| match e {
        Event::Info { info } => Some(info.clone()),
        _ => None,
    });
    let sandbox = run.events.iter().find_map(|e| match e {
        Event::Sandbox { status } => Some(status.label()),
        _ => None,
    });
    let outcome = classify(&run, "doctor", "2m");
    let worker = match (&python, outcome.ok()) {
        (Some(_), true) => "ok".to_owned(),
        _ => format!("{}: {}\n{}", outcome.reason.as_str(), outcome.detail, log_tail(&log_path).trim_end()),
    };
    Ok(Diagnosis {
        built_against: format!("{} ({})", BUILD_PYTHON_VERSION.unwrap_or("?"), BUILD_PYTHON_PREFIX.unwrap_or("?")),
        venv: venv.as_ref().map(|v| v.dir.display().to_string()),
        venv_source: venv.map(|v| v.source.to_owned()),
        python: python.unwrap_or_default(),
        sandbox: sandbox.unwrap_or_else(|| "unknown".into()),
        worker,
    })
}
