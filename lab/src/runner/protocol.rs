//! What the supervisor and a worker say to each other, as plain serde types
//! (no pyo3 here: the supervisor links this, the worker in `python/` speaks it).
//!
//! The supervisor writes one [`WorkerSpec`] as JSON and passes its path to
//! `lab __worker`. The worker appends [`Event`]s as JSON lines to the spec's
//! `events` file, flushing each line; the supervisor tails it. stdout and stderr
//! belong to the leaf's code and go to `run.log`. A worker that ends in order
//! writes [`Event::Done`] last: an exit without it is an `os._exit` or a crash of
//! the interpreter itself. Metric values that JSON cannot carry (NaN, ±inf)
//! travel as the strings `nan`, `inf`, `-inf` (see [`encode_number`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::leaf::inputs::ResolvedInput;
use crate::leaf::manifest::DevicePreference;

/// Everything a worker needs; written by the supervisor, read once at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub phase: Phase,
    /// The worker exits at once if its parent is not this process any more.
    pub supervisor_pid: i32,
    pub leaf: String,
    pub leaf_dir: PathBuf,
    /// `.lab/data/<leaf>/`: a cache the leaf's code may use (`lab.data_dir()`).
    pub data_dir: PathBuf,
    /// `.lab/runs/<experiment>/<tier>/`: predictions and the log land here.
    pub run_dir: PathBuf,
    pub events: PathBuf,
    /// Unix time at which training must be over (`lab.deadline()`).
    pub deadline: f64,
    pub seed: u64,
    pub smoke: bool,
    pub device: DevicePreference,
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// The leaf's declared inputs, resolved (`lab.input(name)`).
    #[serde(default)]
    pub inputs: Vec<ResolvedInput>,
}

/// What a worker does. `module:function` targets are the manifest's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// In-process mode: the mutable `train(lab)`, then the frozen `evaluate(lab, trained)`
    /// and, when the manifest names one, the frozen `holdout(lab, trained)` (sealed metrics).
    Train {
        train: String,
        evaluate: String,
        #[serde(default)]
        holdout: Option<String>,
    },
    /// Predictions mode, first worker: the frozen `data(lab)`; inputs, training
    /// split and labels are written into `out` (see `runner::predictions`).
    Prepare {
        data: String,
        out: PathBuf,
        /// The manifest's `submission.rows`, written as `submission.json`.
        #[serde(default)]
        submission: Option<String>,
    },
    /// Predictions mode, second worker: the mutable `predict(lab, train, inputs)`
    /// given the prepared directory `prepared`, which it reads without labels.
    Predict { predict: String, prepared: PathBuf },
    /// `lab doctor`: report the interpreter and the packages a leaf would see.
    Doctor,
}

/// File names inside a prepared data directory. Label files are read by the
/// supervisor only; the predict worker opens the others.
pub mod prepared {
    pub const TRAIN: &str = "train.pkl";
    pub const COMPLETE: &str = "complete";
    /// The scored splits, in order; holdout predictions are stored, never scored by `lab run`.
    pub const SPLITS: [&str; 2] = ["val", "holdout"];
    /// Inputs with no labels anywhere (a challenge's blinded test set): predicted, never scored.
    pub const SUBMISSION: &str = "submission";
    /// The rows of the submission file: `{"columns", "ids", "inputs"}`.
    pub const SUBMISSION_ROWS: &str = "submission.json";

    pub fn inputs(split: &str) -> String {
        format!("{split}_inputs.pkl")
    }

    pub fn labels(split: &str) -> String {
        format!("{split}_labels.npy")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The interpreter is up and the `lab` module installed.
    Started {
        python: String,
        executable: String,
        prefix: String,
    },
    /// Progress from `lab.report(**metrics)`: shown live, never the result.
    Report {
        metrics: Map<String, Value>,
    },
    /// `lab.device()` resolved (or, at the end, what torch was using).
    Device {
        device: String,
    },
    /// A predictions array written by the worker.
    Prediction {
        name: String,
        path: PathBuf,
        len: usize,
    },
    /// `train` returned: the evaluation window starts now.
    TrainDone,
    /// The frozen held-out function's metrics (in-process mode): sealed, never a decision's input.
    Holdout {
        metrics: Map<String, Value>,
    },
    /// The frozen evaluate's metrics (encoded with [`encode_number`]).
    Final {
        metrics: Map<String, Value>,
    },
    /// The leaf's code raised.
    Exception {
        kind: String,
        message: String,
        traceback: String,
    },
    /// The leaf's code called `sys.exit(code)`.
    SysExit {
        code: Option<i64>,
        message: String,
    },
    /// Something the worker itself could not do (a bad target, a bad return value).
    Refused {
        message: String,
    },
    /// The worker cannot run any leaf here: the wrong libpython was loaded.
    Environment {
        message: String,
    },
    /// `lab doctor`'s findings.
    Info {
        info: Map<String, Value>,
    },
    Done,
}

/// A float as JSON: finite numbers as numbers, the others as strings.
pub fn encode_number(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("nan".into()),
        None if x > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

/// The inverse of [`encode_number`]; `None` for anything else.
pub fn decode_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_including_non_finite() {
        for x in [0.5, -3.0, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(decode_number(&encode_number(x)), Some(x));
        }
        assert!(decode_number(&encode_number(f64::NAN)).unwrap().is_nan());
        assert_eq!(decode_number(&Value::String("x".into())), None);
    }

    #[test]
    fn events_are_tagged_json_lines() {
        let line = serde_json::to_string(&Event::SysExit { code: Some(3), message: String::new() }).unwrap();
        assert_eq!(line, r#"{"event":"sys_exit","code":3,"message":""}"#);
        assert_eq!(serde_json::from_str::<Event>(r#"{"event":"done"}"#).unwrap(), Event::Done);
    }
}
