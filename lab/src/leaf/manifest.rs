//! `leaf.yaml`: the contract between a leaf, the runner and the gate.
//!
//! Parsed strictly: an unknown key is an error that names the key and its line
//! (serde's `deny_unknown_fields`, located by serde_norway; `entry` goes through
//! [`RawEntry`] because an internally tagged enum loses the location).
//! [`Manifest::problems`] then checks what types cannot: names, overlapping file
//! sets, a predictions leaf scored on a metric the harness can compute. The
//! manifest itself is always frozen (see `files.rs`): budgets, metric and gate
//! are part of what a result is compared under.
//!
//! ```yaml
//! version: 1
//! name: pretrain
//! description: A small byte-level GPT trained from scratch.
//! metric: { name: val_bpb, goal: minimize, unit: bits/byte }
//! files:
//!   mutable: [train.py]
//!   frozen: [prepare.py, evaluate.py, program.md]
//! entry: { mode: in-process, train: "train:train", evaluate: "evaluate:evaluate" }
//! budget: { full: 5m, smoke: 30s }
//! python: { requires: ["torch>=2.2", numpy] }
//! inputs: { base: { leaf: pretrain, file: checkpoint.pt } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::gate::{Goal, MetricKind};
use crate::root::humantime_serde_compat;

pub const FILE: &str = "leaf.yaml";
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version of this file; only 1 exists.
    pub version: u32,
    /// Lowercase letters, digits and dashes; equals the leaf's directory name.
    pub name: String,
    pub description: String,
    pub metric: MetricSpec,
    pub files: Files,
    pub entry: Entry,
    pub budget: Budget,
    #[serde(default)]
    pub gate: GateSpec,
    #[serde(default)]
    pub device: DevicePreference,
    #[serde(default)]
    pub python: PythonSpec,
    /// Free-form settings handed to the leaf's code as `lab.settings()` (e.g. which
    /// data set the frozen data preparation loads). Part of the frozen manifest.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Predictions mode: a frozen `module:function` returning the rows of a
    /// submission file for the unlabelled `submission` split (`lab submit`).
    #[serde(default)]
    pub submission: Option<SubmissionSpec>,
    /// Files taken from other leaves' leaders, by name (`lab.input(name)`); see `inputs.rs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputSpec>,
}

/// One declared input: the file `file` in the run directory of the current
/// leader of leaf `leaf`. Without a leader the leaf runs on its documented
/// fallback, unless `required`, when `lab run` refuses and names the leaf to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub leaf: String,
    pub file: String,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionSpec {
    /// Returns `{"columns": [id, input, prediction], "ids": [...], "inputs": [...]}`:
    /// row i of the file is `ids[i], inputs[i], prediction[i]`.
    pub rows: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// The primary metric: the one the gate decides on.
    pub name: String,
    pub goal: Goal,
    #[serde(default)]
    pub unit: String,
    /// Reported alongside the primary metric, not gated (predictions mode: computed by the harness).
    #[serde(default)]
    pub also: Vec<String>,
    /// Metrics that must not get worse by more than their tolerance.
    #[serde(default)]
    pub guards: Vec<Guard>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    pub name: String,
    pub goal: Goal,
    /// How much worse than the leader is still acceptable (absolute, in the metric's unit).
    #[serde(default)]
    pub tolerance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// Globs, relative to the leaf, of what the agent may edit.
    pub mutable: Vec<String>,
    /// Globs of what nobody may edit without `lab lock`: evaluation, data preparation, program.md.
    pub frozen: Vec<String>,
}

/// How the runner calls the leaf's code. `module:function` names a function in a
/// Python module of the leaf directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", try_from = "RawEntry")]
pub enum Entry {
    /// The mutable `train` trains; the frozen `evaluate` (in a frozen file)
    /// produces the metrics from what `train` returned. The optional frozen
    /// `holdout` scores the same trained object on the held-out split; its
    /// metrics are sealed (only `lab holdout` and `lab checkpoint` read them).
    InProcess {
        train: String,
        evaluate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holdout: Option<String>,
    },
    /// The frozen `data` function returns the splits with labels; the runner
    /// hands the mutable `predict` the training split and the unlabelled inputs
    /// of the others, and scores its predictions itself.
    Predictions { data: String, predict: String },
}

impl Entry {
    pub fn is_predictions(&self) -> bool {
        matches!(self, Entry::Predictions { .. })
    }

    pub fn mode(&self) -> &'static str {
        if self.is_predictions() { "predictions" } else { "in-process" }
    }

    /// The function the agent's code provides (`train` or `predict`), with its key.
    pub fn mutable_target(&self) -> (&'static str, &str) {
        match self {
            Entry::InProcess { train, .. } => ("train", train),
            Entry::Predictions { predict, .. } => ("predict", predict),
        }
    }

    /// The function that must live in a frozen file (`evaluate` or `data`), with its key.
    pub fn frozen_target(&self) -> (&'static str, &str) {
        match self {
            Entry::InProcess { evaluate, .. } => ("evaluate", evaluate),
            Entry::Predictions { data, .. } => ("data", data),
        }
    }
}

/// `entry` as written: a plain struct keeps serde_norway's line numbers for
/// unknown keys, which an internally tagged enum would lose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    mode: Mode,
    train: Option<String>,
    evaluate: Option<String>,
    data: Option<String>,
    predict: Option<String>,
    #[serde(default)]
    holdout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    InProcess,
    Predictions,
}

impl TryFrom<RawEntry> for Entry {
    type Error = String;

    fn try_from(raw: RawEntry) -> Result<Self, String> {
        let (mode, needed, foreign) = match raw.mode {
            Mode::InProcess => (
                "in-process",
                [("train", &raw.train), ("evaluate", &raw.evaluate)],
                [("data", &raw.data), ("predict", &raw.predict)],
            ),
            Mode::Predictions => (
                "predictions",
                [("data", &raw.data), ("predict", &raw.predict)],
                [("train", &raw.train), ("evaluate", &raw.evaluate)],
            ),
        };
        if raw.holdout.is_some() && matches!(raw.mode, Mode::Predictions) {
            return Err(format!("{ENTRY_ERROR}key `holdout` does not belong to mode `{mode}`"));
        }
        if let Some((key, _)) = foreign.iter().find(|(_, v)| v.is_some()) {
            return Err(format!("{ENTRY_ERROR}key `{key}` does not belong to mode `{mode}`"));
        }
        if let Some((key, _)) = needed.iter().find(|(_, v)| v.is_none()) {
            return Err(format!("{ENTRY_ERROR}mode `{mode}` needs `{key}: module:function`"));
        }
        let take = |v: Option<String>| v.unwrap_or_default();
        Ok(match raw.mode {
            Mode::InProcess => {
                Entry::InProcess { train: take(raw.train), evaluate: take(raw.evaluate), holdout: raw.holdout }
            }
            Mode::Predictions => Entry::Predictions { data: take(raw.data), predict: take(raw.predict) },
        })
    }
}

/// Marks errors raised by [`RawEntry`]'s conversion, which serde leaves unlocated.
const ENTRY_ERROR: &str = "entry: ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(with = "humantime_serde_compat")]
    pub full: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub smoke: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSpec {
    /// A keep must beat the leader by more than this (in the metric's unit), at the lower confidence bound.
    pub min_improvement: f64,
    /// Runs per candidate when the gap is within the noise.
    pub repeats: u32,
    /// Confidence of the interval the gate reads.
    pub confidence: f64,
    /// Predictions mode: how many of the latest candidates `lab saturation` compares with the leader.
    pub saturation_window: usize,
    /// Predictions mode: val-prediction correlation with the leader above which a candidate only turned knobs.
    pub saturation_correlation: f64,
}

impl Default for GateSpec {
    fn default() -> Self {
        Self { min_improvement: 0.0, repeats: 3, confidence: 0.95, saturation_window: 5, saturation_correlation: 0.98 }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicePreference {
    /// CUDA when torch sees a GPU, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonSpec {
    /// pip requirement strings the leaf needs (e.g. `torch>=2.2`).
    pub requires: Vec<String>,
}

impl Manifest {
    /// Parse and validate; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, LabError> {
        let manifest = Self::parse_unchecked(text, origin)?;
        let problems = manifest.problems();
        if !problems.is_empty() {
            return Err(LabError::usage(format!("invalid `{}`: {}", origin.display(), problems.join("; "))));
        }
        Ok(manifest)
    }

    /// Parse without [`Manifest::problems`]: for `lab check`, which lists those
    /// one by one. Syntax and type errors name the key and its line.
    pub fn parse_unchecked(text: &str, origin: &Path) -> Result<Self, LabError> {
        serde_norway::from_str(text).map_err(|e| {
            let mut message = e.to_string();
            if message.starts_with(ENTRY_ERROR) && !message.contains(" at line ") {
                if let Some(line) = text.lines().position(|l| l.starts_with("entry:")) {
                    message.push_str(&format!(" at line {}", line + 1));
                }
            }
            LabError::usage(format!("invalid `{}`: {message}", origin.display()))
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LabError::usage(format!("cannot read leaf manifest `{}`: {e}", path.display())))?;
        Ok(Self::parse(&text, path)?)
    }

    /// Everything wrong with a parsed manifest, not just the first thing.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.version != SCHEMA_VERSION {
            problems.push(format!("version {} is not supported (expected {SCHEMA_VERSION})", self.version));
        }
        if let Err(e) = validate_name(&self.name) {
            problems.push(e.message);
        }
        if self.description.trim().is_empty() {
            problems.push("description is empty".into());
        }
        if self.files.mutable.is_empty() {
            problems.push("files.mutable is empty: the agent must be allowed to edit something".into());
        }
        if self.files.frozen.is_empty() {
            problems.push("files.frozen is empty: the evaluation must be frozen".into());
        }
        for glob in self.files.mutable.iter().chain(&self.files.frozen) {
            if let Err(e) = globset::Glob::new(glob) {
                problems.push(format!("bad glob `{glob}`: {e}"));
            }
            if glob.starts_with('/') || glob.split('/').any(|part| part == "..") {
                problems.push(format!("glob `{glob}` must stay inside the leaf"));
            }
        }
        for overlap in self.files.mutable.iter().filter(|g| self.files.frozen.contains(g)) {
            problems.push(format!("`{overlap}` is both mutable and frozen"));
        }
        let (first, second) = match &self.entry {
            Entry::InProcess { train, evaluate, .. } => (("entry.train", train), ("entry.evaluate", evaluate)),
            Entry::Predictions { data, predict } => (("entry.data", data), ("entry.predict", predict)),
        };
        for (key, target) in [first, second] {
            if parse_target(target).is_none() {
                problems.push(format!("{key} `{target}` must be `module:function`"));
            }
        }
        if self.entry.is_predictions() {
            for name in std::iter::once(&self.metric.name).chain(&self.metric.also) {
                if name.parse::<MetricKind>().is_err() {
                    problems.push(format!("metric `{name}` cannot be computed by the harness in predictions mode"));
                }
            }
        }
        if let Entry::InProcess { holdout: Some(holdout), .. } = &self.entry
            && parse_target(holdout).is_none()
        {
            problems.push(format!("entry.holdout `{holdout}` must be `module:function`"));
        }
        if let Some(submission) = &self.submission {
            if !self.entry.is_predictions() {
                problems.push("submission needs predictions mode".into());
            }
            if parse_target(&submission.rows).is_none() {
                problems.push(format!("submission.rows `{}` must be `module:function`", submission.rows));
            }
        }
        problems.extend(super::inputs::problems(self));
        if self.budget.smoke.is_zero() || self.budget.full.is_zero() {
            problems.push("budgets must be longer than zero".into());
        }
        if self.budget.smoke > self.budget.full {
            problems.push("budget.smoke is longer than budget.full".into());
        }
        if !(0.5..1.0).contains(&self.gate.confidence) {
            problems.push(format!("gate.confidence {} must be in [0.5, 1)", self.gate.confidence));
        }
        if self.gate.repeats == 0 {
            problems.push("gate.repeats must be at least 1".into());
        }
        if self.gate.saturation_window == 0 {
            problems.push("gate.saturation_window must be at least 1".into());
        }
        if !(-1.0..=1.0).contains(&self.gate.saturation_correlation) {
            let threshold = self.gate.saturation_correlation;
            problems.push(format!("gate.saturation_correlation {threshold} must be in [-1, 1]"));
        }
        problems
    }
}

/// `module:function` split in two, both Python identifiers (module may be dotted).
pub fn parse_target(target: &str) -> Option<(&str, &str)> {
    let (module, function) = target.split_once(':')?;
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (module.split('.').all(ident) && ident(function)).then_some((module, function))
}

/// Leaf names: lowercase letters, digits and dashes, starting with a letter.
pub fn validate_name(name: &str) -> Result<(), LabError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(LabError::usage(format!(
            "invalid leaf name `{name}`: use lowercase letters, digits and dashes, starting with a letter (like `my-leaf`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: 1
name: pretrain
description: A small GPT.
metric: { name: val_bpb, goal: minimize, unit: bits/byte }
files:
  mutable: [train.py]
  frozen: [evaluate.py, program.md]
entry:
  mode: in-process
  train: train:train
  evaluate: evaluate:evaluate
budget: { full: 5m, smoke: 30s }
python: { requires: [numpy] }
";

    fn error(text: &str) -> String {
        Manifest::parse(text, Path::new("leaf.yaml")).unwrap_err().message
    }

    #[test]
    fn the_documented_shape_parses() {
        let m = Manifest::parse(GOOD, Path::new("leaf.yaml")).unwrap();
        assert_eq!(m.entry.mutable_target(), ("train", "train:train"));
        assert_eq!(m.entry.frozen_target(), ("evaluate", "evaluate:evaluate"));
        assert_eq!(m.budget.smoke, Duration::from_secs(30));
        assert_eq!(m.gate, GateSpec::default());
        let again = serde_norway::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(&again, Path::new("x")).unwrap(), m, "{again}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let top = error(&GOOD.replace("python:", "pyhton:"));
        assert!(top.contains("unknown field `pyhton`") && top.contains("line 13"), "{top}");
        let nested =
            error(&GOOD.replace("  evaluate: evaluate:evaluate", "  evaluate: evaluate:evaluate\n  module: x"));
        assert!(nested.contains("unknown field `module`") && nested.contains("line 12"), "{nested}");
        let budget = error(&GOOD.replace("smoke: 30s", "smoke: 30s, total: 1h"));
        assert!(budget.contains("unknown field `total`") && budget.contains("line 12"), "{budget}");
    }

    #[test]
    fn wrong_types_and_mode_mixups_are_named() {
        let version = error(&GOOD.replace("version: 1", "version: one"));
        assert!(version.contains("version: invalid type") && version.contains("line 1"), "{version}");
        let goal = error(&GOOD.replace("goal: minimize", "goal: lower"));
        assert!(goal.contains("unknown variant `lower`"), "{goal}");
        let duration = error(&GOOD.replace("full: 5m", "full: five"));
        assert!(duration.contains("invalid duration `five`"), "{duration}");
        let mixed = error(&GOOD.replace("  train: train:train", "  data: prepare:data"));
        assert!(mixed.contains("`data` does not belong to mode `in-process`") && mixed.contains("line 8"), "{mixed}");
        let missing = error(&GOOD.replace("  train: train:train\n", ""));
        assert!(missing.contains("needs `train: module:function`"), "{missing}");
    }

    #[test]
    fn every_validation_problem_is_listed() {
        let text = GOOD
            .replace("name: pretrain", "name: Pre_Train")
            .replace("frozen: [evaluate.py, program.md]", "frozen: [train.py, ../x]")
            .replace("smoke: 30s", "smoke: 10m");
        let m = Manifest::parse_unchecked(&text, Path::new("leaf.yaml")).unwrap();
        let problems = m.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(Manifest::parse(&text, Path::new("leaf.yaml")).is_err());
    }

    #[test]
    fn names_refuse_paths_and_capitals() {
        for bad in ["../../x", "/tmp/x", "Bad_Name", "x-", "", "9lives", "a/b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("my-leaf-2").unwrap();
    }
}
