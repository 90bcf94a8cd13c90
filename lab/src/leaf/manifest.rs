//! `leaf.yaml`: the contract between a leaf, the runner and the gate.
//!
//! Parsed strictly: an unknown key is an error that names the key and its line
//! (serde's `deny_unknown_fields`, located by serde_norway). [`Manifest::validate`]
//! then checks what types cannot: names, overlapping file sets, a predictions
//! leaf scored on a metric the harness can compute.
//!
//! ```yaml
//! version: 1
//! name: pretrain
//! description: A small byte-level GPT trained from scratch.
//! metric: { name: val_bpb, goal: minimize, unit: bits/byte }
//! files:
//!   mutable: [train.py]
//!   frozen: [prepare.py, evaluate.py, program.md]
//! entry: { mode: in-process, module: train, function: train, evaluate: "evaluate:evaluate" }
//! budget: { full: 5m, smoke: 30s }
//! ```

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
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Entry {
    /// The mutable `train` trains; the frozen `evaluate` (in a frozen file)
    /// produces the metrics from what `train` returned.
    InProcess { train: String, evaluate: String },
    /// The frozen `data` function returns the splits with labels; the runner
    /// hands the mutable `predict` the training split and the unlabelled inputs
    /// of the others, and scores its predictions itself.
    Predictions { data: String, predict: String },
}

impl Entry {
    pub fn is_predictions(&self) -> bool {
        matches!(self, Entry::Predictions { .. })
    }
}

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
}

impl Default for GateSpec {
    fn default() -> Self {
        Self { min_improvement: 0.0, repeats: 3, confidence: 0.95 }
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
        let manifest: Self = serde_norway::from_str(text)
            .map_err(|e| LabError::usage(format!("invalid `{}`: {e}", origin.display())))?;
        let problems = manifest.problems();
        if !problems.is_empty() {
            return Err(LabError::usage(format!("invalid `{}`: {}", origin.display(), problems.join("; "))));
        }
        Ok(manifest)
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
            Entry::InProcess { train, evaluate } => (("entry.train", train), ("entry.evaluate", evaluate)),
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
