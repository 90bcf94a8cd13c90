//! What a worker does once the interpreter is up, one function per [`Phase`].
//!
//! Targets are imported as real modules (leaf directory on `sys.path`, then
//! `importlib.import_module`), so multiprocessing's spawn can import them again
//! in its children. In predictions mode the two phases run in separate
//! processes: the one that runs the agent's `predict` never holds the labels in
//! memory; it reads only the pickled training split and unlabelled inputs.
//!
//! Residual risk in in-process mode, stated plainly: the agent's `train` runs
//! in the same interpreter as the frozen `evaluate`, so hostile code could
//! patch it at run time. What lab guarantees is that evaluate's file matches
//! the lock, that the function is looked up before training, and that the
//! metric is only what it returns (never what the leaf reports). Leaves where
//! that is not enough use predictions mode, where the harness scores.

use std::path::Path;

use numpy::{AllowTypeChange, PyArrayLikeDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::{Map, Value};

use super::module::{emit, set_inputs, to_json_value, write_predictions};
use crate::leaf::manifest::parse_target;
use crate::runner::protocol::{Event, Phase, prepared};

pub(crate) fn run(py: Python<'_>, lab: &Bound<'_, PyModule>, phase: &Phase) -> PyResult<()> {
    match phase {
        Phase::Train { train, evaluate, holdout } => train_and_evaluate(py, lab, train, evaluate, holdout.as_deref()),
        Phase::Prepare { data, out, submission } => prepare(py, lab, data, out, submission.as_deref()),
        Phase::Predict { predict, prepared } => predict_phase(py, lab, predict, prepared),
        Phase::Doctor => doctor(py),
    }
}

/// `module:function` imported and looked up.
fn target<'py>(py: Python<'py>, spec: &str) -> PyResult<Bound<'py, PyAny>> {
    let (module, function) = parse_target(spec)
        .ok_or_else(|| PyValueError::new_err(format!("bad target `{spec}`: expected module:function")))?;
    let module = py.import("importlib")?.call_method1("import_module", (module,))?;
    module.getattr(function)
}

/// The frozen evaluate is looked up before training so a broken evaluate fails
/// in seconds, not after the whole budget.
fn train_and_evaluate(
    py: Python<'_>,
    lab: &Bound<'_, PyModule>,
    train: &str,
    evaluate: &str,
    holdout: Option<&str>,
) -> PyResult<()> {
    let evaluate = target(py, evaluate)?;
    let holdout = holdout.map(|h| target(py, h)).transpose()?;
    let trained = target(py, train)?.call1((lab,))?;
    emit(&Event::TrainDone);
    let metrics = evaluate.call1((lab, &trained))?;
    let Some(map) = metrics_of(&metrics, "evaluate")? else { return Ok(()) };
    // Held-out metrics go first, so the evaluate's metrics stay the run's final word.
    if let Some(holdout) = holdout {
        let sealed = holdout.call1((lab, &trained))?;
        let Some(sealed) = metrics_of(&sealed, "holdout")? else { return Ok(()) };
        emit(&Event::Holdout { metrics: sealed });
    }
    emit(&Event::Final { metrics: map });
    Ok(())
}

/// A returned dict of numbers as encoded metrics; `None` after a refusal was emitted.
fn metrics_of(metrics: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<Map<String, Value>>> {
    let Ok(metrics) = metrics.cast::<PyDict>() else {
        refuse(format!(
            "{what} must return a dict of metrics, got {}",
            metrics.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))?;
        return Ok(None);
    };
    let mut map = Map::new();
    for (name, value) in metrics.iter() {
        let name: String = name.extract().map_err(|_| PyTypeError::new_err("metric names must be strings"))?;
        let Ok(number) = value.extract::<f64>() else {
            refuse(format!("metric `{name}` is not a number: {}", value.repr()?))?;
            return Ok(None);
        };
        map.insert(name, crate::runner::protocol::encode_number(number));
    }
    Ok(Some(map))
}

fn refuse(message: String) -> PyResult<()> {
    emit(&Event::Refused { message });
    Ok(())
}

/// The frozen `data(lab)` returns `{"train": (X, y), "val": (X, y), "holdout": (X, y)}`
/// (holdout optional). Inputs and the training split are pickled; labels are
/// written as float64 .npy for the supervisor alone.
fn prepare(
    py: Python<'_>,
    lab: &Bound<'_, PyModule>,
    data: &str,
    out: &Path,
    submission: Option<&str>,
) -> PyResult<()> {
    let splits = target(py, data)?.call1((lab,))?;
    let Ok(splits) = splits.cast::<PyDict>() else {
        return refuse("data must return a dict of splits: {\"train\": (X, y), \"val\": (X, y), ...}".into());
    };
    let pickle = py.import("pickle")?;
    let dump = |obj: &Bound<'_, PyAny>, file: &str| -> PyResult<()> {
        let bytes = pickle.call_method1("dumps", (obj, pickle.getattr("HIGHEST_PROTOCOL")?))?;
        std::fs::write(out.join(file), bytes.extract::<&[u8]>()?)
            .map_err(|e| PyValueError::new_err(format!("cannot write {file}: {e}")))
    };
    for split in std::iter::once("train").chain(prepared::SPLITS) {
        let Some(pair) = splits.get_item(split)? else {
            if split == "holdout" {
                continue;
            }
            return refuse(format!("data returned no `{split}` split"));
        };
        let Ok(pair) = pair.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() else {
            return refuse(format!("data's `{split}` must be a pair (X, y)"));
        };
        let (x, y) = pair;
        if let (Ok(nx), Ok(ny)) = (x.len(), y.len())
            && nx != ny
        {
            return refuse(format!("data's `{split}` has {nx} inputs but {ny} labels"));
        }
        if split == "train" {
            dump(PyTuple::new(py, [&x, &y])?.as_any(), prepared::TRAIN)?;
            continue;
        }
        dump(&x, &prepared::inputs(split))?;
        let labels: PyArrayLikeDyn<'_, f64, AllowTypeChange> = y.extract()?;
        let labels = labels.as_array().iter().copied().collect::<ndarray::Array1<f64>>();
        ndarray_npy::write_npy(out.join(prepared::labels(split)), &labels)
            .map_err(|e| PyValueError::new_err(format!("cannot write labels of `{split}`: {e}")))?;
    }
    if let Some(pair) = splits.get_item(prepared::SUBMISSION)? {
        let Ok((x, _)) = pair.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>() else {
            return refuse("data's `submission` must be a pair (X, None)".into());
        };
        dump(&x, &prepared::inputs(prepared::SUBMISSION))?;
    }
    if let Some(rows) = submission {
        let rows = target(py, rows)?.call1((lab,))?;
        let text: String = py.import("json")?.call_method1("dumps", (rows,))?.extract()?;
        std::fs::write(out.join(prepared::SUBMISSION_ROWS), text)
            .map_err(|e| PyValueError::new_err(format!("cannot write the submission rows: {e}")))?;
    }
    emit(&Event::Final { metrics: Map::new() });
    Ok(())
}

/// The agent's `predict(lab, train, inputs)` returns `{"val": preds, "holdout": preds}`.
fn predict_phase(py: Python<'_>, lab: &Bound<'_, PyModule>, predict: &str, dir: &Path) -> PyResult<()> {
    let pickle = py.import("pickle")?;
    let load = |file: &str| -> PyResult<Bound<'_, PyAny>> {
        let bytes =
            std::fs::read(dir.join(file)).map_err(|e| PyValueError::new_err(format!("cannot read {file}: {e}")))?;
        pickle.call_method1("loads", (pyo3::types::PyBytes::new(py, &bytes),))
    };
    let train = load(prepared::TRAIN)?;
    let inputs = PyDict::new(py);
    for split in prepared::SPLITS.into_iter().chain([prepared::SUBMISSION]) {
        if dir.join(prepared::inputs(split)).is_file() {
            inputs.set_item(split, load(&prepared::inputs(split))?)?;
        }
    }
    set_inputs(py, inputs.clone().into_any().unbind());
    let predictions = target(py, predict)?.call1((lab, train, &inputs))?;
    emit(&Event::TrainDone);
    let Ok(predictions) = predictions.cast::<PyDict>() else {
        return refuse("predict must return a dict of predictions by split: {\"val\": ..., \"holdout\": ...}".into());
    };
    for (split, _) in inputs.iter() {
        let split: String = split.extract()?;
        let Some(values) = predictions.get_item(&split)? else {
            return refuse(format!("predict returned no predictions for `{split}`"));
        };
        let array: PyArrayLikeDyn<'_, f64, AllowTypeChange> = values
            .extract()
            .map_err(|e| PyTypeError::new_err(format!("predictions for `{split}` are not numeric: {e}")))?;
        write_predictions(&split, &array.as_array().to_owned())?;
    }
    emit(&Event::Final { metrics: Map::new() });
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
    emit(&Event::Final { metrics: Map::new() });
    Ok(())
}
