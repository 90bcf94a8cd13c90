//! The `lab` Python module, implemented in Rust and placed in `sys.modules`
//! before any leaf code runs, so `import lab` finds it without a file on disk.
//!
//! Its functions read the worker's [`State`] (set once, before the interpreter
//! starts) and speak to the supervisor only through [`emit`]: progress and the
//! device become events. Nothing here can produce the result metric: the
//! supervisor scores the outputs after the worker is gone. The functions are
//! exactly `protocol::LAB_FUNCTIONS` (a test checks), the same as the child
//! processes' pure-Python module.

use std::fs::File;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use numpy::{AllowTypeChange, PyArrayLikeDyn};
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use serde_json::{Map, Value};

use crate::leaf::manifest::DevicePreference;
use crate::supervisor::protocol::{Event, Role, WorkerSpec, encode_number};

/// The worker's side of one run.
#[derive(Debug)]
pub(crate) struct State {
    pub spec: WorkerSpec,
    events: Mutex<File>,
    device: OnceLock<String>,
    /// Unix time by which the worker must be done, from the go ([`go`]).
    deadline: OnceLock<f64>,
}

static STATE: OnceLock<State> = OnceLock::new();
/// `lab.inputs()`: the unlabelled inputs handed to `predict` (predictions mode).
static INPUTS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `lab.trained()`, unpickled once.
static TRAINED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// The embedded harness module (`harness.py`).
static HARNESS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
const HARNESS_SOURCE: &std::ffi::CStr = pyo3::ffi::c_str!(include_str!("harness.py"));

pub(crate) fn init_state(spec: WorkerSpec, events: File) {
    let _ = STATE.set(State { spec, events: Mutex::new(events), device: OnceLock::new(), deadline: OnceLock::new() });
}

/// The go: the deadline, set before any leaf code runs, for `lab.deadline()`
/// and, as `LAB_DEADLINE`, for the child processes' `lab` module.
pub(crate) fn go(py: Python<'_>, deadline: f64) -> PyResult<()> {
    let _ = state().deadline.set(deadline);
    py.import("os")?.getattr("environ")?.set_item("LAB_DEADLINE", format!("{deadline:.6}"))
}

pub(crate) fn state() -> &'static State {
    STATE.get().expect("the worker state is set before the interpreter starts")
}

/// The harness module, compiled once per worker.
pub(crate) fn harness(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let module = HARNESS.get_or_try_init(py, || {
        PyModule::from_code(py, HARNESS_SOURCE, c"_lab_harness.py", c"_lab_harness").map(Bound::unbind)
    })?;
    Ok(module.bind(py).clone())
}

/// Append one event line and flush it: the supervisor may be reading, and the
/// process may be killed at any moment after this returns.
pub(crate) fn emit(event: &Event) {
    let Some(state) = STATE.get() else { return };
    let mut line = serde_json::to_string(event).expect("events serialize");
    line.push('\n');
    let mut file = state.events.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
        eprintln!("lab worker: cannot write an event: {e}");
    }
}

/// Install the module as `sys.modules["lab"]`.
pub(crate) fn install(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let module = PyModule::new(py, "lab")?;
    module.setattr("__doc__", "The lab harness, as seen from a leaf's code (implemented in Rust).")?;
    module.add_function(wrap_pyfunction!(deadline, &module)?)?;
    module.add_function(wrap_pyfunction!(time_left, &module)?)?;
    module.add_function(wrap_pyfunction!(device, &module)?)?;
    module.add_function(wrap_pyfunction!(seed, &module)?)?;
    module.add_function(wrap_pyfunction!(smoke, &module)?)?;
    module.add_function(wrap_pyfunction!(report, &module)?)?;
    module.add_function(wrap_pyfunction!(save_predictions, &module)?)?;
    module.add_function(wrap_pyfunction!(leaf_dir, &module)?)?;
    module.add_function(wrap_pyfunction!(artifact_dir, &module)?)?;
    module.add_function(wrap_pyfunction!(trained, &module)?)?;
    module.add_function(wrap_pyfunction!(inputs, &module)?)?;
    module.add_function(wrap_pyfunction!(set_inputs, &module)?)?;
    module.add_function(wrap_pyfunction!(input, &module)?)?;
    module.add_function(wrap_pyfunction!(settings, &module)?)?;
    module.add_function(wrap_pyfunction!(log, &module)?)?;
    module.add_function(wrap_pyfunction!(memo, &module)?)?;
    py.import("sys")?.getattr("modules")?.set_item("lab", &module)?;
    Ok(module)
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Unix time (seconds) by which training must be over; the run is killed then.
#[pyfunction]
fn deadline() -> f64 {
    state().deadline.get().copied().unwrap_or(0.0)
}

/// Seconds until the deadline (never negative).
#[pyfunction]
fn time_left() -> f64 {
    (deadline() - unix_now()).max(0.0)
}

/// "cuda" when the leaf may use a GPU and torch sees one, else "cpu".
#[pyfunction]
fn device(py: Python<'_>) -> String {
    resolve_device(py, true)
}

/// The device, resolved once. `import_torch` is false at the end of a run: a
/// run that never imported torch ran on the CPU, and importing it then would
/// only cost a second.
pub(crate) fn resolve_device(py: Python<'_>, import_torch: bool) -> String {
    let state = state();
    if let Some(device) = state.device.get() {
        return device.clone();
    }
    let imported =
        || -> bool { py.import("sys").and_then(|s| s.getattr("modules")?.contains("torch")).unwrap_or(false) };
    let device = match state.spec.device {
        DevicePreference::Cpu => "cpu".to_owned(),
        _ if !import_torch && !imported() => "cpu".to_owned(),
        preference => {
            let cuda = py
                .import("torch")
                .and_then(|torch| torch.getattr("cuda")?.call_method0("is_available")?.extract::<bool>())
                .unwrap_or(false);
            if !cuda && preference == DevicePreference::Cuda {
                write_stderr(py, "[lab] leaf.yaml prefers cuda but torch sees no GPU: running on cpu");
            }
            if cuda { "cuda" } else { "cpu" }.to_owned()
        }
    };
    let device = state.device.get_or_init(|| device).clone();
    // Child processes read it from their `lab` module (see runner/env.rs).
    let _ = py.import("os").and_then(|os| os.getattr("environ")?.set_item("LAB_DEVICE", &device));
    emit(&Event::Device { device: device.clone() });
    device
}

/// The run's seed, chosen and recorded by the supervisor.
#[pyfunction]
fn seed() -> u64 {
    state().spec.seed
}

/// True in the smoke tier: a short budget that only checks the code runs.
#[pyfunction]
fn smoke() -> bool {
    state().spec.smoke
}

/// Progress metrics (`lab.report(step=10, loss=0.3)`): shown live by the
/// supervisor, never taken as the result.
#[pyfunction]
#[pyo3(signature = (**metrics))]
fn report(metrics: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    let mut map = Map::new();
    for (key, value) in metrics.into_iter().flat_map(|d| d.iter()) {
        map.insert(key.extract::<String>()?, to_json_value(&value)?);
    }
    emit(&Event::Report { metrics: map });
    Ok(())
}

/// A number as JSON (NaN and infinities encoded), anything else as its `str`.
pub(crate) fn to_json_value(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_instance_of::<PyString>() {
        return Ok(Value::String(value.extract()?));
    }
    match value.extract::<f64>() {
        Ok(x) => Ok(encode_number(x)),
        Err(_) => Ok(Value::String(value.str()?.to_string())),
    }
}

/// Predictions mode: save an array of predictions as `<outputs>/<name>.npy`
/// (what `predict` returns is saved the same way). Returns the path.
#[pyfunction]
fn save_predictions(name: &str, array: PyArrayLikeDyn<'_, f64, AllowTypeChange>) -> PyResult<String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(PyValueError::new_err(format!("invalid predictions name {name:?}: use letters, digits, _ - .")));
    }
    let Role::Predict { out, .. } = &state().spec.role else {
        return Err(PyRuntimeError::new_err("lab.save_predictions works only in predict (predictions mode)"));
    };
    let path = out.join(format!("{name}.npy"));
    ndarray_npy::write_npy(&path, &array.as_array().to_owned())
        .map_err(|e| PyRuntimeError::new_err(format!("cannot write {}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

/// The snapshot of the leaf's files this worker runs from (also the working
/// directory and first on `sys.path`; read-only).
#[pyfunction]
fn leaf_dir() -> String {
    state().spec.code_dir.display().to_string()
}

/// Artifact mode: where `train` leaves what it trained (writable there, read-only in `infer`).
#[pyfunction]
fn artifact_dir() -> PyResult<String> {
    match &state().spec.role {
        Role::Train { artifact, .. } | Role::Infer { artifact, .. } => Ok(artifact.display().to_string()),
        _ => Err(PyRuntimeError::new_err("lab.artifact_dir() exists in train and infer (artifact mode) only")),
    }
}

/// In a mutable `infer`: what `train` returned, unpickled. A frozen `infer`
/// never unpickles what the candidate wrote (it could run any code there); it
/// loads weights safely instead, e.g. `torch.load(path, weights_only=True)`.
#[pyfunction]
fn trained(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let Role::Infer { frozen, artifact, .. } = &state().spec.role else {
        return Err(PyRuntimeError::new_err("lab.trained() exists in infer (artifact mode) only"));
    };
    if *frozen {
        return Err(PyRuntimeError::new_err(
            "a frozen infer never unpickles what the candidate wrote: load the weights from lab.artifact_dir() \
             safely (e.g. torch.load(path, weights_only=True))",
        ));
    }
    let object = TRAINED.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let path = artifact.join("trained.pkl");
        let bytes = std::fs::read(&path).map_err(|e| {
            PyRuntimeError::new_err(format!("train returned nothing to unpickle ({}: {e})", path.display()))
        })?;
        let pickle = py.import("_pickle")?; // `pickle` itself costs 10 ms of imports
        Ok(pickle.call_method1("loads", (pyo3::types::PyBytes::new(py, &bytes),))?.unbind())
    })?;
    Ok(object.clone_ref(py))
}

/// Predictions mode: the unlabelled inputs by split (`{"val": X, "holdout": X}`); else None.
#[pyfunction]
fn inputs(py: Python<'_>) -> Option<Py<PyAny>> {
    INPUTS.get(py).map(|i| i.clone_ref(py))
}

/// The harness hands `predict`'s inputs to `lab.inputs()` (not for leaf code).
#[pyfunction]
#[pyo3(name = "_set_inputs")]
fn set_inputs(py: Python<'_>, inputs: Py<PyAny>) {
    let _ = INPUTS.set(py, inputs);
}

/// A declared input (leaf.yaml `inputs`): `{"name", "leaf", "file", "experiment",
/// "path", "sha256"}` of the upstream leader's file, or None when there is none
/// and the leaf runs on its fallback. An undeclared name is a KeyError.
#[pyfunction]
fn input(py: Python<'_>, name: &str) -> PyResult<Option<Py<PyAny>>> {
    let inputs = &state().spec.inputs;
    let Some(resolved) = inputs.iter().find(|i| i.name == name) else {
        let declared: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(PyKeyError::new_err(format!(
            "leaf.yaml declares no input {name:?} (declared: {})",
            if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
        )));
    };
    let Some(found) = &resolved.found else { return Ok(None) };
    let dict = PyDict::new(py);
    dict.set_item("name", &resolved.name)?;
    dict.set_item("leaf", &resolved.leaf)?;
    dict.set_item("file", &resolved.file)?;
    dict.set_item("experiment", &found.experiment)?;
    dict.set_item("path", found.path.display().to_string())?;
    dict.set_item("sha256", &found.sha256)?;
    Ok(Some(dict.into_any().unbind()))
}

/// The `settings` of leaf.yaml, as a dict.
#[pyfunction]
fn settings(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let text = Value::Object(state().spec.settings.clone()).to_string();
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// `lab.memo(fn, items)`: `[np.asarray(fn(item)) for item in items]`, each
/// read from the leaf's memo when an earlier run of this comparison and tier
/// computed it with the same code (fn's and what it reads of the leaf), the
/// same package versions and the same item (a str or bytes), else computed
/// and written there. Off in frozen roles, `infer`, child processes and under
/// `lab run --no-memo`: every item is computed. The counts go to the log.
#[pyfunction]
fn memo(py: Python<'_>, function: Bound<'_, PyAny>, items: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let spec = &state().spec;
    let (dir, salt) = match &spec.memo {
        Some(memo) => (Some(memo.dir.display().to_string()), memo.salt.as_str()),
        None => (None, ""),
    };
    let leaf = spec.code_dir.display().to_string();
    let found = harness(py)?.call_method1("memo", (function, items, dir.clone(), salt, leaf))?;
    let (values, hits, misses, unreadable): (Py<PyAny>, usize, usize, usize) = found.extract()?;
    let line = match (dir, unreadable) {
        (None, _) => format!("[lab] memo: off, {misses} computed"),
        (Some(_), 0) => format!("[lab] memo: {hits} hits, {misses} misses"),
        (Some(_), bad) => format!("[lab] memo: {hits} hits, {misses} misses, {bad} unreadable (computed again)"),
    };
    write_stderr(py, &line);
    Ok(values)
}

/// A line in the run's log (`run.log`), marked as coming from the leaf.
#[pyfunction]
fn log(py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<()> {
    write_stderr(py, &format!("[lab] {}", msg.str()?));
    Ok(())
}

/// Through Python's `sys.stderr`, so the line lands in order with the leaf's output.
pub(crate) fn write_stderr(py: Python<'_>, line: &str) {
    let written = py.import("sys").and_then(|sys| {
        let err = sys.getattr("stderr")?;
        err.call_method1("write", (format!("{line}\n"),))?;
        err.call_method0("flush").map(drop)
    });
    if written.is_err() {
        eprintln!("{line}");
    }
}
