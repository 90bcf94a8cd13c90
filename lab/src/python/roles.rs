//! What a worker does once the interpreter is up: one call into the embedded
//! harness module (`harness.py`) per [`Role`], which calls the leaf's function
//! and writes what it returned where the supervisor reads it.
//!
//! Targets are imported as real modules (the code directory first on
//! `sys.path`, then `importlib.import_module`), so multiprocessing's spawn can
//! import them again in its children. Only `lab doctor` is answered here in Rust.

use pyo3::prelude::*;
use pyo3::types::PyModule;
use serde_json::{Map, Value};

use super::module::{emit, to_json_value};
use crate::supervisor::protocol::{Event, Role};

pub(crate) fn run(py: Python<'_>, lab: &Bound<'_, PyModule>, role: &Role) -> PyResult<()> {
    let harness = super::module::harness(py)?;
    let path = |p: &std::path::Path| p.display().to_string();
    match role {
        Role::Prepare { data, out, submission } => {
            harness.call_method1("prepare", (lab, data, path(out), submission.clone()))?;
        }
        Role::Predict { predict, train, eval, out } => {
            let eval: Vec<(String, String)> = eval.iter().map(|f| (f.split.clone(), path(&f.path))).collect();
            harness.call_method1("predict", (lab, predict, path(train), eval, path(out)))?;
        }
        Role::Train { train, data, artifact } => {
            harness.call_method1("train", (lab, train, path(data), path(artifact)))?;
        }
        Role::Infer { infer, eval, out, .. } => {
            let eval: Vec<(String, String)> = eval.iter().map(|f| (f.split.clone(), path(&f.path))).collect();
            harness.call_method1("infer", (lab, infer, eval, path(out)))?;
        }
        Role::Score { score, splits, out } => {
            let splits: Vec<(String, String, String, String)> =
                splits.iter().map(|s| (s.split.clone(), path(&s.inputs), path(&s.outputs), path(&s.targets))).collect();
            harness.call_method1("score", (lab, score, splits, path(out)))?;
        }
        Role::Doctor => doctor(py)?,
    }
    Ok(())
}

/// What a leaf would see: the interpreter, numpy, torch and CUDA.
fn doctor(py: Python<'_>) -> PyResult<()> {
    let sys = py.import("sys")?;
    let mut info = Map::new();
    for (key, attr) in [("version", "version"), ("executable", "executable"), ("prefix", "prefix")] {
        info.insert(key.into(), to_json_value(&sys.getattr(attr)?)?);
    }
    info.insert("base_prefix".into(), to_json_value(&sys.getattr("base_prefix")?)?);
    let version = |module: &str| -> Value {
        match py.import(module) {
            Ok(m) => m.getattr("__version__").and_then(|v| to_json_value(&v)).unwrap_or(Value::Null),
            Err(e) => Value::String(format!("not installed ({})", e.value(py))),
        }
    };
    info.insert("numpy".into(), version("numpy"));
    info.insert("torch".into(), version("torch"));
    let cuda = py.import("torch").and_then(|torch| {
        let cuda = torch.getattr("cuda")?;
        if !cuda.call_method0("is_available")?.extract::<bool>()? {
            return Ok(Value::Bool(false));
        }
        let name = cuda.call_method1("get_device_name", (0,))?;
        Ok(Value::String(name.extract()?))
    });
    info.insert("cuda".into(), cuda.unwrap_or(Value::Bool(false)));
    emit(&Event::Info { info });
    Ok(())
}
