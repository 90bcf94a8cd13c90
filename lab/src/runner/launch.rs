//! Starting one worker for one phase: write its spec, start it under the
//! supervisor, return what happened.
//!
//! The deadline handed to the worker and the one the supervisor enforces come
//! from the same instant, taken just before the spawn, so start-up counts
//! against the budget and both sides agree on it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use serde_json::{Map, Value};

use super::env::{self, Venv};
use super::progress::Progress;
use super::protocol::{Phase, WorkerSpec};
use super::supervise::{self, Limits, Supervised};
use crate::leaf::inputs::ResolvedInput;
use crate::leaf::manifest::DevicePreference;

/// What every worker of one `lab run` (or `lab doctor`) shares.
#[derive(Debug)]
pub struct Host {
    pub venv: Option<Venv>,
    /// Where the pure-Python `lab` module for child processes lives.
    pub module_dir: PathBuf,
    pub quiet: bool,
    pub leaf: String,
    pub leaf_dir: PathBuf,
    pub data_dir: PathBuf,
    pub seed: u64,
    pub device: DevicePreference,
    pub settings: Map<String, Value>,
    /// The leaf's inputs, resolved once for the whole run.
    pub inputs: Vec<ResolvedInput>,
    /// The run's log: the workers' stdout and stderr are appended to it.
    pub log: File,
}

/// One phase to run.
#[derive(Debug)]
pub struct Launch<'a> {
    pub phase: Phase,
    /// `train`, `prepare`, `predict`, `doctor`: names the spec and events files.
    pub name: &'a str,
    /// The tier's directory: spec, events and predictions go here.
    pub dir: &'a Path,
    pub budget: Duration,
    pub smoke: bool,
    /// Shown before elapsed / budget in the progress line.
    pub label: String,
}

pub fn launch(host: &Host, launch: Launch<'_>) -> Result<Supervised> {
    std::fs::create_dir_all(launch.dir).with_context(|| format!("cannot create `{}`", launch.dir.display()))?;
    let spec_path = launch.dir.join(format!("{}.json", launch.name));
    let events = launch.dir.join(format!("{}-events.jsonl", launch.name));
    let (now, clock) = (Instant::now(), SystemTime::now());
    let unix = clock.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let spec = WorkerSpec {
        phase: launch.phase,
        supervisor_pid: std::process::id() as i32,
        leaf: host.leaf.clone(),
        leaf_dir: host.leaf_dir.clone(),
        data_dir: host.data_dir.clone(),
        run_dir: launch.dir.to_path_buf(),
        events: events.clone(),
        deadline: unix + launch.budget.as_secs_f64(),
        seed: host.seed,
        smoke: launch.smoke,
        device: host.device,
        settings: host.settings.clone(),
        inputs: host.inputs.clone(),
    };
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("cannot write `{}`", spec_path.display()))?;
    let cmd = env::worker_command(&spec_path, &spec, host.venv.as_ref(), &host.module_dir, &host.log)?;
    let mut progress = Progress::new(!host.quiet, launch.label, launch.budget);
    let limits = Limits { deadline: now + launch.budget, eval_window: launch.budget };
    let supervised = supervise::supervise(cmd, &events, limits, &mut progress);
    progress.finish();
    supervised
}
