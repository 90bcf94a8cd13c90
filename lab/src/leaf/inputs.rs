//! Inputs between leaves: what a leaf declares it takes from another leaf's
//! leader (`inputs:` in leaf.yaml), and the comparability key that makes a
//! result depend on exactly which files it started from.
//!
//! ```yaml
//! inputs:
//!   base: { leaf: pretrain, file: checkpoint.pt }   # required: false (the default)
//! ```
//!
//! The runner resolves each input to a file of the upstream leaf's current
//! leader (`runner::inputs`); this module is the pure part. Invariant: every
//! comparison of results (leader, gate, baselines, held-out transfer,
//! checkpoints, submissions) keys on [`comparability_key`], so results obtained
//! from different upstream files, or from the fallback (sha256 [`FALLBACK`]),
//! are never compared. A leaf without inputs keys on its `leaf.lock` sha256
//! alone, exactly as before inputs existed.
//!
//! Inputs need artifact mode: predictions-mode comparisons (`lab blend`,
//! `lab saturation`) key on the lock alone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::manifest::{self, Manifest};
use crate::fingerprint;

/// The sha256 recorded for an input that had no upstream leader: the leaf ran
/// on its documented fallback.
pub const FALLBACK: &str = "none";

/// One declared input, resolved for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedInput {
    /// The key under `inputs:` (`lab.input(name)`).
    pub name: String,
    pub leaf: String,
    pub file: String,
    /// The upstream leader's file; `None` when there is none (the fallback).
    pub found: Option<Found>,
    /// Why there is no file, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The upstream leader, `e<N>`.
    pub experiment: String,
    pub path: PathBuf,
    pub sha256: String,
}

impl ResolvedInput {
    /// The file's sha256, or [`FALLBACK`].
    pub fn sha256(&self) -> &str {
        self.found.as_ref().map_or(FALLBACK, |f| f.sha256.as_str())
    }
}

/// What a leaf's results are compared under: the sha256 of its `leaf.lock`
/// when it has no inputs, else the sha256 of that and of every input's name,
/// leaf and file sha256 (or [`FALLBACK`]), in name order.
pub fn comparability_key(lock_sha256: &str, inputs: &[ResolvedInput]) -> String {
    if inputs.is_empty() {
        return lock_sha256.to_owned();
    }
    let mut sorted: Vec<&ResolvedInput> = inputs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = format!("lock {lock_sha256}\n");
    for input in sorted {
        text.push_str(&format!("input {} {} {} {}\n", input.name, input.leaf, input.file, input.sha256()));
    }
    fingerprint::sha256_hex(text.as_bytes())
}

/// What is wrong with a manifest's `inputs` (part of `Manifest::problems`).
pub fn problems(m: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    if !m.inputs.is_empty() && m.entry.is_predictions() {
        problems.push("inputs need artifact mode (predictions-mode comparisons key on the lock alone)".into());
    }
    for (name, spec) in &m.inputs {
        if !is_identifier(name) {
            problems.push(format!("inputs.{name}: name it with lowercase letters, digits and `_` (like `base`)"));
        }
        if manifest::validate_name(&spec.leaf).is_err() {
            problems.push(format!("inputs.{name}.leaf `{}` is not a leaf name", spec.leaf));
        } else if spec.leaf == m.name {
            problems.push(format!("inputs.{name}.leaf `{}` is this leaf itself", spec.leaf));
        }
        if !is_plain_file_name(&spec.file) {
            problems.push(format!(
                "inputs.{name}.file `{}` must be a plain file name in the run directory (like `checkpoint.pt`)",
                spec.file
            ));
        }
    }
    problems
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// No directories, no hidden files, nothing a shell or a path would read twice.
fn is_plain_file_name(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 128
        && !file.starts_with('.')
        && file.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn input(name: &str, sha256: Option<&str>) -> ResolvedInput {
        ResolvedInput {
            name: name.into(),
            leaf: "pretrain".into(),
            file: "checkpoint.pt".into(),
            found: sha256.map(|s| Found { experiment: "e1".into(), path: "p".into(), sha256: s.into() }),
            missing: None,
        }
    }

    #[test]
    fn the_key_is_the_lock_without_inputs_and_changes_with_each_input() {
        assert_eq!(comparability_key("L", &[]), "L");
        let a = comparability_key("L", &[input("base", Some("A"))]);
        let fallback = comparability_key("L", &[input("base", None)]);
        for other in [
            comparability_key("M", &[input("base", Some("A"))]),
            comparability_key("L", &[input("base", Some("B"))]),
            comparability_key("L", &[input("other", Some("A"))]),
            fallback.clone(),
        ] {
            assert_ne!(a, other);
        }
        assert_eq!(a.len(), 64);
        let two = [input("x", Some("A")), input("y", None)];
        let swapped = [two[1].clone(), two[0].clone()];
        assert_eq!(comparability_key("L", &two), comparability_key("L", &swapped), "order of declaration is no part");
        assert_eq!(input("base", None).sha256(), FALLBACK);
    }

    fn manifest(inputs: &str, mode: &str) -> Manifest {
        let text = format!(
            "version: 1
name: sft
description: d
metric: {{ name: loss, goal: minimize }}
files: {{ mutable: [train.py], frozen: [prepare.py, evaluate.py] }}
entry: {mode}
budget: {{ full: 1m, smoke: 10s }}
inputs: {inputs}
"
        );
        Manifest::parse_unchecked(&text, Path::new("leaf.yaml")).unwrap()
    }

    const ARTIFACT: &str =
        "{ mode: artifact, data: 'prepare:data', train: 'train:train', infer: 'train:infer', score: 'evaluate:score' }";

    #[test]
    fn good_inputs_have_no_problems_and_round_trip() {
        let m = manifest("{ base: { leaf: pretrain, file: checkpoint.pt, required: true } }", ARTIFACT);
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        assert!(m.inputs["base"].required);
        let again = serde_norway::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(&again, Path::new("x")).unwrap(), m);
    }

    #[test]
    fn bad_inputs_are_each_named() {
        let cases = [
            ("{ Base: { leaf: pretrain, file: checkpoint.pt } }", "inputs.Base: name it"),
            ("{ base: { leaf: ../pretrain, file: checkpoint.pt } }", "is not a leaf name"),
            ("{ base: { leaf: sft, file: checkpoint.pt } }", "is this leaf itself"),
            ("{ base: { leaf: pretrain, file: ../x.pt } }", "must be a plain file name"),
            ("{ base: { leaf: pretrain, file: full/checkpoint.pt } }", "must be a plain file name"),
            ("{ base: { leaf: pretrain, file: .hidden } }", "must be a plain file name"),
            ("{ base: { leaf: pretrain, file: '' } }", "must be a plain file name"),
        ];
        for (inputs, expected) in cases {
            let problems = manifest(inputs, ARTIFACT).problems();
            assert!(problems.len() == 1 && problems[0].contains(expected), "{inputs}: {problems:?}");
        }
        let predictions = manifest(
            "{ base: { leaf: pretrain, file: checkpoint.pt } }",
            "{ mode: predictions, data: 'prepare:data', predict: 'model:predict' }",
        );
        assert!(predictions.problems().iter().any(|p| p.contains("need artifact mode")));
    }

    #[test]
    fn unknown_input_keys_are_refused_with_their_line() {
        let text = "version: 1\nname: sft\ndescription: d\nmetric: { name: loss, goal: minimize }\n\
                    files: { mutable: [train.py], frozen: [prepare.py, evaluate.py] }\n\
                    entry: { mode: artifact, data: 'prepare:data', train: 'train:train', infer: 'train:infer', score: 'evaluate:score' }\n\
                    budget: { full: 1m, smoke: 10s }\ninputs:\n  base: { leaf: pretrain, path: x }\n";
        let err = Manifest::parse(text, Path::new("leaf.yaml")).unwrap_err().message;
        assert!(err.contains("unknown field `path`") && err.contains("line 9"), "{err}");
    }
}
