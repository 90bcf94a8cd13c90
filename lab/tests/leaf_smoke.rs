//! Every real leaf of the tree (`leaves/*`) runs its smoke tier through `lab run
//! --smoke` in a scratch lab: the code trains on its real data, the frozen
//! evaluation or the harness produces a finite metric, within the smoke budget.
//!
//! Needs each leaf's packages in .venv (`scripts/setup --leaves`); a missing
//! package is a failure that names the fix, never a skip.

mod common;

use std::path::PathBuf;

use common::{TestLab, copy_dir, repo_root, require_venv};
use serde_json::Value;

/// The directories under `leaves/` holding a leaf.yaml, sorted.
fn real_leaves() -> Vec<PathBuf> {
    let mut leaves: Vec<PathBuf> = std::fs::read_dir(repo_root().join("leaves"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("leaf.yaml").is_file())
        .collect();
    leaves.sort();
    leaves
}

/// One leaf's smoke run in its own scratch lab; `Err` says what went wrong.
fn smoke(leaf: &std::path::Path) -> Result<Value, String> {
    let name = leaf.file_name().unwrap().to_str().unwrap();
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    copy_dir(leaf, &lab.path(&format!("leaves/{name}")));
    lab.git(&["add", "-A"]);
    lab.git(&["commit", "-qm", name]);
    let check = lab.cmd(&["check", name]).output().unwrap();
    if !check.status.success() {
        return Err(format!("{name}: lab check failed\n{}", String::from_utf8_lossy(&check.stdout)));
    }
    let out = lab.cmd(&["run", name, "--smoke", "--json", "-q"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&stdout).map_err(|e| format!("{name}: not JSON ({e})\n{stderr}"))?;
    let value = summary["value"].as_f64();
    if out.status.code() != Some(0) || !value.is_some_and(f64::is_finite) {
        return Err(format!(
            "{name}: exit {:?}, value {value:?}: {}\n{}\nhint: the leaves' packages come from `scripts/setup --leaves`",
            out.status.code(),
            summary["detail"],
            summary["traceback"].as_str().unwrap_or_default()
        ));
    }
    if summary["tier"] != "smoke" {
        return Err(format!("{name}: not a smoke run: {summary:#}"));
    }
    Ok(summary)
}

#[test]
fn every_real_leaf_passes_its_smoke_tier() {
    require_venv();
    let leaves = real_leaves();
    assert!(leaves.len() >= 2, "the tree ships real leaves: {leaves:?}");
    let mut failures = Vec::new();
    for leaf in &leaves {
        match smoke(leaf) {
            Ok(s) => {
                eprintln!("{}: {} = {} in {:.1}s on {}", s["leaf"], s["metric"], s["value"], s["wall_s"], s["device"])
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// admet-pxr ships the challenge's labelled training file in the leaf: model
/// code that goes looking for it (by the leaf directory, by the lab root, or
/// in its own copy of the leaf) finds nothing to read, and the run that tried
/// is recorded as the crash it is, never a score.
#[test]
fn the_pxr_labels_shipped_in_the_leaf_are_out_of_the_model_code_s_reach() {
    require_venv();
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    copy_dir(&repo_root().join("leaves/admet-pxr"), &lab.path("leaves/admet-pxr"));
    let cheat = r#"
import csv, os
from pathlib import Path

def predict(lab, train, inputs):
    here = Path(__file__).resolve().parent
    assert not (here / "data" / "pxr-challenge_TRAIN.csv").exists(), "the code's copy holds the labels"
    root = here.parents[3]  # <root>/.lab/runs/eN/code: the lab root, where the leaf really lives
    refused = []
    for path in (Path(lab.leaf_dir()) / "data" / "pxr-challenge_TRAIN.csv",
                 root / "leaves" / "admet-pxr" / "data" / "pxr-challenge_TRAIN.csv"):
        try:
            with open(path) as f:
                rows = {r["SMILES"]: float(r["pEC50"]) for r in csv.DictReader(f)}
            return {s: [rows[m] for m in x] for s, x in inputs.items()}
        except OSError as e:
            refused.append(f"{path}: {type(e).__name__}")
    raise RuntimeError("refused: " + "; ".join(refused))
"#;
    std::fs::write(lab.path("leaves/admet-pxr/model.py"), cheat).unwrap();
    lab.git(&["add", "-A"]);
    lab.git(&["commit", "-qm", "a model that reads the answers"]);
    let out = lab.cmd(&["run", "admet-pxr", "--smoke", "--json", "-q"]).output().unwrap();
    let summary: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(out.status.code(), Some(4), "the read is refused and the run crashes: {summary:#}");
    let traceback = summary["traceback"].as_str().unwrap_or_default();
    let leaf = lab.path("leaves/admet-pxr/data/pxr-challenge_TRAIN.csv").canonicalize().unwrap();
    assert!(traceback.contains(&format!("{}: PermissionError", leaf.display())), "the real file: {summary:#}");
    assert!(!traceback.contains("the code's copy holds the labels"), "{summary:#}");
}
