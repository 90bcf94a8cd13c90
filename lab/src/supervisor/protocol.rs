//! What the supervisor, a keeper and a worker say to each other, as plain serde
//! types (no pyo3 here: the supervisor links this, the worker in `python/` speaks it).
//!
//! The supervisor writes one [`WorkerSpec`] as JSON and starts `lab __keeper
//! SPEC`, which starts `lab __worker SPEC`. The deadline is not in the spec:
//! the worker reads it from the go pipe on [`GO_FD`] when the supervisor lets
//! it run the leaf's code (until then it only starts its interpreter). Three
//! pipes the supervisor created for that keeper carry everything back, never a file the judged code could
//! write: the worker's [`Event`]s on file descriptor [`EVENTS_FD`] (progress,
//! how the leaf's code ended; never a metric), the log on stderr (the worker's
//! stdout and stderr), and the keeper's [`KeeperReport`]s on the keeper's
//! stdout, which the worker never holds. Outputs are files in the worker's
//! output directory, read by the supervisor only after every process of the
//! worker is gone. Metric values that JSON cannot carry (NaN, ±inf) travel as
//! the strings `nan`, `inf`, `-inf` (see [`encode_number`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::leaf::inputs::ResolvedInput;
use crate::leaf::manifest::DevicePreference;
use crate::sandbox::{self, Policy};

/// The worker's end of the events pipe.
pub const EVENTS_FD: i32 = 3;
/// The worker's end of the go pipe: one line, the Unix time of its deadline,
/// written when the supervisor lets it run the leaf's code.
pub const GO_FD: i32 = 4;

/// The functions of the `lab` module leaf code imports, in the worker (Rust)
/// and in its child processes (`env::CHILD_MODULE`): tests keep all three equal.
pub const LAB_FUNCTIONS: &[&str] = &[
    "artifact_dir",
    "deadline",
    "device",
    "input",
    "inputs",
    "leaf_dir",
    "log",
    "memo",
    "report",
    "save_predictions",
    "seed",
    "settings",
    "smoke",
    "time_left",
    "trained",
];

/// Everything a worker needs; written by the supervisor, read once at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub role: Role,
    pub leaf: String,
    /// `sys.path[0]`, the working directory and `lab.leaf_dir()`: a snapshot of
    /// the leaf's files (frozen ones only for frozen-code roles).
    pub code_dir: PathBuf,
    /// Where the pure-Python `lab` module for child processes lives.
    pub module_dir: PathBuf,
    pub seed: u64,
    pub smoke: bool,
    pub device: DevicePreference,
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// The leaf's declared inputs, resolved (`lab.input(name)`).
    #[serde(default)]
    pub inputs: Vec<ResolvedInput>,
    /// What the worker may touch; `None`: not sandboxed (`LAB_SANDBOX=off`).
    pub sandbox: Option<Policy>,
    /// The largest file the worker's processes may write, in bytes (RLIMIT_FSIZE).
    pub file_limit: u64,
    /// Where `lab.memo` keeps its entries (mutable-code roles, unless `--no-memo`);
    /// `None`: `lab.memo` computes every item.
    #[serde(default)]
    pub memo: Option<MemoSpec>,
}

/// `lab.memo`'s directory and what every key of this run includes besides the
/// function and the item (see `supervisor::memo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoSpec {
    pub dir: PathBuf,
    pub salt: String,
}

/// What a worker does. `module:function` targets are the manifest's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum Role {
    /// Frozen `data(lab)` -> files in `out` (see `supervisor::prepared`).
    Prepare {
        data: String,
        out: PathBuf,
        /// Predictions mode's `submission.rows`, written as `submission.json`.
        #[serde(default)]
        submission: Option<String>,
    },
    /// Predictions mode: the mutable `predict(lab, train, inputs)`; predictions per split into `out`.
    Predict { predict: String, train: PathBuf, eval: Vec<SplitFile>, out: PathBuf },
    /// Artifact mode: the mutable `train(lab, data)`; its return value and files into `artifact`.
    Train { train: String, data: PathBuf, artifact: PathBuf },
    /// Artifact mode: `infer(lab, inputs)` once per split; outputs into `out`.
    /// `frozen`: the function lives in a frozen file, so `lab.trained()` is refused.
    Infer { infer: String, frozen: bool, eval: Vec<SplitFile>, artifact: PathBuf, out: PathBuf },
    /// Artifact mode: the frozen `score(lab, inputs, outputs, targets)` per split;
    /// per-item metrics as `<split>.json` into `out`.
    Score { score: String, splits: Vec<ScoreSplit>, out: PathBuf },
    /// `lab doctor`: report the interpreter and the packages a leaf would see.
    Doctor,
}

/// One split's file of inputs (`.npy` or `.pkl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitFile {
    pub split: String,
    pub path: PathBuf,
}

/// What a frozen scorer reads for one split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreSplit {
    pub split: String,
    pub inputs: PathBuf,
    pub outputs: PathBuf,
    pub targets: PathBuf,
}

impl Role {
    /// `prepare`, `predict`, `train`, `infer`, `score`, `doctor`: names specs and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Prepare { .. } => "prepare",
            Self::Predict { .. } => "predict",
            Self::Train { .. } => "train",
            Self::Infer { .. } => "infer",
            Self::Score { .. } => "score",
            Self::Doctor => "doctor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Written by the worker's Rust code before the interpreter starts, so the
    /// first one is authentic whatever the leaf writes afterwards.
    Sandbox { status: sandbox::Status },
    /// The interpreter is up and the `lab` module installed.
    Started { python: String, executable: String, prefix: String },
    /// Progress from `lab.report(**metrics)`: shown live, never the result.
    Report { metrics: Map<String, Value> },
    /// `lab.device()` resolved (or, at the end, what torch was using).
    Device { device: String },
    /// The leaf's code raised.
    Exception { kind: String, message: String, traceback: String },
    /// The leaf's code called `sys.exit(code)`.
    SysExit { code: Option<i64>, message: String },
    /// Something the worker itself could not do (a bad target, a bad return value).
    Refused { message: String },
    /// The worker cannot run any leaf here: the wrong libpython was loaded.
    Environment { message: String },
    /// `lab doctor`'s findings.
    Info { info: Map<String, Value> },
    /// The role's function returned and its outputs are written.
    Done,
}

/// What the keeper tells the supervisor, one JSON line each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "keeper", rename_all = "snake_case")]
pub enum KeeperReport {
    /// The worker runs, in its own process group `pid`.
    Spawned { pid: i32 },
    /// The worker and every process it started are gone.
    Ended {
        /// `exited` with `code`, or `signaled` with `signal` (a number).
        how: Termination,
        /// The keeper stopped it (the supervisor asked, or the supervisor died).
        stopped: bool,
        /// From the stop request to the last process reaped.
        #[serde(default)]
        teardown_ms: Option<f64>,
        /// Processes that were still alive after the worker ended and were killed.
        #[serde(default)]
        stragglers: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum Termination {
    Exited { code: i32 },
    Signaled { signal: i32 },
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
    fn events_and_reports_are_tagged_json_lines() {
        let line = serde_json::to_string(&Event::SysExit { code: Some(3), message: String::new() }).unwrap();
        assert_eq!(line, r#"{"event":"sys_exit","code":3,"message":""}"#);
        assert_eq!(serde_json::from_str::<Event>(r#"{"event":"done"}"#).unwrap(), Event::Done);
        let report = KeeperReport::Ended {
            how: Termination::Signaled { signal: 9 },
            stopped: true,
            teardown_ms: Some(2.5),
            stragglers: 1,
        };
        let line = serde_json::to_string(&report).unwrap();
        assert_eq!(
            line,
            r#"{"keeper":"ended","how":{"as":"signaled","signal":9},"stopped":true,"teardown_ms":2.5,"stragglers":1}"#
        );
        assert_eq!(serde_json::from_str::<KeeperReport>(&line).unwrap(), report);
    }
}
