//! The worker: the only place that touches pyo3 and numpy.
//!
//! `lab __worker SPEC` runs [`worker_main`] in a process its keeper started in a
//! process group of its own, with stdout and stderr going to the run's log, the
//! events pipe on fd 3 and an environment built from nothing
//! (`supervisor::env`). Before any leaf code can run, in this order: it asks to
//! die with its keeper, unblocks the signals the supervisor blocks, caps the
//! size of any file it writes, and applies its sandbox (`sandbox::apply`),
//! reporting what the kernel enforced as its first event. Then it checks the
//! interpreter is the one it was built against, installs the `lab` module and
//! compiles the harness. Then it waits for the go (its deadline, on fd 4: the supervisor may start
//! it while an earlier worker of the run still runs), runs its
//! [`Role`](crate::supervisor::protocol::Role) and reports how the leaf's
//! code ended. A user exception or `sys.exit` is reported and the worker ends in
//! order; `os._exit`, a segfault or a kill end it at once, and the supervisor
//! tells those apart by the missing `Done` event.

mod failure;
mod module;
mod roles;

use std::fs::{File, OpenOptions};
use std::io::BufRead as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, Signal};
use pyo3::prelude::*;

use crate::sandbox::{self, Status};
use crate::supervisor::env::{BUILD_PYTHON_PREFIX, BUILD_PYTHON_VERSION};
use crate::supervisor::protocol::{EVENTS_FD, Event, GO_FD, WorkerSpec};

/// Run one worker; returns the process exit status (0: ended in order, 1: the
/// leaf's code failed, 2: the worker could not start).
pub fn worker_main(spec_path: &Path) -> Result<i32> {
    // Without this a killed keeper would leave the worker running.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("cannot ask to die with the keeper")?;
    let keeper: Option<i32> = std::env::var("LAB_KEEPER_PID").ok().and_then(|p| p.parse().ok());
    if keeper.is_some_and(|k| nix::unistd::getppid().as_raw() != k) {
        bail!("the keeper (pid {}) is gone", keeper.unwrap_or_default());
    }
    // The supervisor blocks the signals it waits for; the leaf's code gets defaults.
    let _ = SigSet::all().thread_unblock();
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read the worker spec `{}`", spec_path.display()))?;
    let spec: WorkerSpec = serde_json::from_str(&text).context("malformed worker spec")?;
    let events = OpenOptions::new()
        .append(true)
        .open(format!("/proc/self/fd/{EVENTS_FD}"))
        .context("the worker has no events pipe on fd 3")?;
    let go = File::open(format!("/proc/self/fd/{GO_FD}")).context("the worker has no go pipe on fd 4")?;
    setrlimit(Resource::RLIMIT_FSIZE, spec.file_limit, spec.file_limit).context("cannot cap the size of files")?;
    let policy = spec.sandbox.clone();
    let role = spec.role.clone();
    module::init_state(spec, events);
    // Nothing of the leaf has run yet, so this first event is the worker's own.
    let status = match &policy {
        Some(policy) => match sandbox::apply(policy) {
            Ok(status) => status,
            Err(e) => {
                module::emit(&Event::Environment { message: format!("cannot sandbox the worker: {e:#}") });
                module::emit(&Event::Done);
                return Ok(2);
            }
        },
        None => Status::Disabled,
    };
    module::emit(&Event::Sandbox { status });
    let failed = Python::attach(|py| -> Result<bool> {
        if let Err(message) = check_interpreter(py) {
            module::emit(&Event::Environment { message: message.clone() });
            eprintln!("lab worker: {message}");
            return Ok(true);
        }
        let lab = setup(py).map_err(|e| anyhow::anyhow!("cannot set up the interpreter: {e}"))?;
        // The harness (lab's own code, and the stdlib it imports) is compiled
        // while waiting: a worker started early has it ready at its go.
        module::harness(py).map_err(|e| anyhow::anyhow!("cannot load the harness: {e}"))?;
        let Some(deadline) = wait_for_go(go) else { return Ok(false) };
        module::go(py, deadline).map_err(|e| anyhow::anyhow!("cannot set the deadline: {e}"))?;
        let outcome = roles::run(py, &lab, &role);
        if let Err(err) = &outcome {
            module::emit(&failure::event(py, err));
        }
        module::resolve_device(py, false);
        flush_std_streams(py);
        Ok(outcome.is_err())
    })?;
    module::emit(&Event::Done);
    Ok(i32::from(failed))
}

/// Block until the supervisor lets the leaf's code run: one line on the go
/// pipe, the Unix deadline. `None`: the pipe closed first (the supervisor
/// will not run this worker after all; it is being stopped).
fn wait_for_go(go: File) -> Option<f64> {
    let mut line = String::new();
    std::io::BufReader::new(go).read_line(&mut line).ok()?;
    line.trim().parse().ok()
}

/// The interpreter's version must be the build's: the loader may have found
/// another libpython with the same soname (RUNPATH yields to LD_LIBRARY_PATH).
fn check_interpreter(py: Python<'_>) -> Result<(), String> {
    let sys = py.import("sys").map_err(|e| e.to_string())?;
    let found: (u32, u32, u32) = sys
        .getattr("version_info")
        .and_then(|v| Ok((v.get_item(0)?.extract()?, v.get_item(1)?.extract()?, v.get_item(2)?.extract()?)))
        .map_err(|e| e.to_string())?;
    let found = format!("{}.{}.{}", found.0, found.1, found.2);
    let prefix: String = sys.getattr("base_prefix").and_then(|p| p.extract()).unwrap_or_default();
    if let Some(expected) = BUILD_PYTHON_VERSION
        && expected != found
    {
        return Err(format!(
            "this lab was built against Python {expected} ({}) but loaded Python {found} from `{prefix}`: \
             another libpython was found first (check LD_LIBRARY_PATH), or rebuild lab with PYO3_PYTHON set",
            BUILD_PYTHON_PREFIX.unwrap_or("?")
        ));
    }
    // The right libpython with another installation's standard library (a venv made
    // from another interpreter) fails later and obscurely: refuse it here.
    let same = |a: &str, b: &str| std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok();
    match BUILD_PYTHON_PREFIX {
        Some(built) if !same(built, &prefix) => Err(format!(
            "this lab was built against the Python at `{built}` but the worker's standard library came from \
             `{prefix}`: make the venv from that interpreter (scripts/setup does), or point LAB_VENV at one"
        )),
        _ => Ok(()),
    }
}

/// The `lab` module, faulthandler, the code directory first on `sys.path`. The leaf seeds its
/// own generators from `lab.seed()` (`PYTHONHASHSEED` is set from it too);
/// importing `random` here would cost every run a few milliseconds.
fn setup(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let state = module::state();
    let lab = module::install(py)?;
    py.import("faulthandler")?.call_method0("enable")?;
    let sys = py.import("sys")?;
    let code_dir = state.spec.code_dir.display().to_string();
    sys.getattr("path")?.call_method1("insert", (0, &code_dir))?;
    sys.setattr("argv", vec![code_dir])?;
    let executable: String = sys.getattr("executable")?.extract()?;
    let prefix: String = sys.getattr("prefix")?.extract()?;
    let python: String = sys.getattr("version")?.extract()?;
    module::emit(&Event::Started { python, executable, prefix });
    Ok(lab)
}

/// The interpreter is never finalised (atexit does not run): flush by hand.
fn flush_std_streams(py: Python<'_>) {
    if let Ok(sys) = py.import("sys") {
        for stream in ["stdout", "stderr"] {
            let _ = sys.getattr(stream).and_then(|s| s.call_method0("flush"));
        }
    }
}
