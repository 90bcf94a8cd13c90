//! `lab.memo` end to end, on the `memo` fixture leaf (its `predict` featurizes
//! strings through `lab.memo(featurize, words)`): a warm run gives the very
//! bytes of a cold one and of a `--no-memo` one; a change to the featurizer or
//! a constant it reads misses while a change elsewhere hits; a corrupt entry is
//! computed again; the judged code reaches neither another leaf's memo nor
//! another comparison's, frozen roles get none; and nothing the harness scores
//! or verifies reads it.

mod common;

use common::{TestLab, lab_with};
use serde_json::Value;

/// `lab run memo ARGS --seed 1`: its summary and the `[lab] memo:` lines of its log.
fn run(lab: &TestLab, args: &[&str]) -> (Value, Vec<String>) {
    let s = lab.run(&[&["memo", "--seed", "1"], args].concat(), 0);
    let log = std::fs::read_to_string(s["log"].as_str().unwrap()).unwrap();
    (s, log.lines().filter(|l| l.starts_with("[lab] memo:")).map(str::to_owned).collect())
}

/// The bytes of experiment `e`'s full-tier predictions, per split.
fn predictions(lab: &TestLab, e: &str) -> Vec<Vec<u8>> {
    ["val", "holdout"]
        .iter()
        .map(|s| std::fs::read(lab.path(&format!(".lab/runs/{e}/full/out/{s}.npy"))).unwrap())
        .collect()
}

/// Every entry of the leaf's memo.
fn entries(lab: &TestLab) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = walkdir::WalkDir::new(lab.path(".lab/memo/memo"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    found.sort();
    found
}

#[test]
fn a_warm_run_is_byte_identical_to_a_cold_one_and_to_one_without_the_memo() {
    let lab = lab_with(&["memo"]);
    let (cold, lines) = run(&lab, &[]);
    let first = ["[lab] memo: off, 3 computed", "[lab] memo: 0 hits, 90 misses"];
    assert_eq!(lines, first, "the frozen data step has no memo; the first predict computes every word");
    let n = entries(&lab).len();
    assert_eq!(n, 90, "one entry per word");
    let (warm, lines) = run(&lab, &[]);
    assert_eq!(lines, ["[lab] memo: 90 hits, 0 misses"]);
    let (off, lines) = run(&lab, &["--no-memo"]);
    assert_eq!(lines, ["[lab] memo: off, 90 computed"]);
    assert_eq!(predictions(&lab, "e1"), predictions(&lab, "e2"), "warm predictions are the cold run's bytes");
    assert_eq!(predictions(&lab, "e1"), predictions(&lab, "e3"), "and those of a run without the memo");
    assert_eq!(cold["metrics"], warm["metrics"]);
    assert_eq!(cold["metrics"], off["metrics"]);
    assert_eq!(entries(&lab).len(), n, "--no-memo writes nothing");

    // A corrupt entry is computed again (and rewritten), never a crash or a changed prediction.
    for entry in entries(&lab).iter().take(5) {
        std::fs::write(entry, b"\x93NUMPY garbage").unwrap();
    }
    let (_, lines) = run(&lab, &[]);
    assert_eq!(lines, ["[lab] memo: 85 hits, 0 misses, 5 unreadable (computed again)"]);
    assert_eq!(predictions(&lab, "e1"), predictions(&lab, "e4"));
    let (_, lines) = run(&lab, &[]);
    assert_eq!(lines, ["[lab] memo: 90 hits, 0 misses"], "the recomputed entries were written back");
}

#[test]
fn the_key_is_the_featurizer_and_what_it_reads_not_the_rest_of_the_code() {
    let lab = lab_with(&["memo"]);
    run(&lab, &[]);
    // Another mutable file, and a constant of the featurizer's file that it never reads: hits.
    lab.edit("leaves/memo/predict.py", "RIDGE = 1e-6", "RIDGE = 1e-3");
    lab.edit("leaves/memo/features.py", "UNUSED = 0", "UNUSED = 1");
    let (_, lines) = run(&lab, &[]);
    assert_eq!(lines, ["[lab] memo: 90 hits, 0 misses"]);
    // A constant the featurizer reads, a helper it calls, its own code: each a new key.
    for (from, to) in [
        ("SCALE = 1.0", "SCALE = 2.0"),
        ("return float(word.count(letter))", "return float(word.count(letter)) + 0.0"),
        ("+ [len(word)]", "+ [len(word) + 0]"),
    ] {
        lab.edit("leaves/memo/features.py", from, to);
        let (_, lines) = run(&lab, &[]);
        assert_eq!(lines, ["[lab] memo: 0 hits, 90 misses"], "after `{to}`");
    }
    // The smoke tier has a memo of its own (its inputs are another prepared set).
    let (_, lines) = run(&lab, &["--smoke"]);
    assert!(lines.iter().any(|l| l.ends_with(" 0 hits, 45 misses")), "{lines:?}");
}

#[test]
fn judged_code_reaches_no_other_leaf_nor_comparison_and_frozen_roles_get_no_memo() {
    let lab = lab_with(&["memo"]);
    for planted in ["victim/k/entry.npy", "memo/0000000000000000/k/entry.npy"] {
        lab.write(&format!(".lab/memo/{planted}"), "another leaf's or comparison's entry");
    }
    lab.edit(
        "leaves/memo/predict.py",
        "ATTACKS = []",
        r#"ATTACKS = ["read-other-leaf", "read-other-key", "write-other-leaf"]"#,
    );
    run(&lab, &[]);
    let log = std::fs::read_to_string(lab.path(".lab/runs/e1/run.log")).unwrap();
    let attacks: Vec<&str> = log.lines().filter(|l| l.starts_with("ATTACK ")).collect();
    assert_eq!(attacks.len(), 3, "{log}");
    assert!(attacks.iter().all(|l| l.contains(": blocked: ")), "{attacks:#?}");
    assert!(!lab.path(".lab/memo/victim/planted.npy").exists());
    assert!(log.contains("[lab] memo: off, 3 computed"), "the frozen data step has no memo:\n{log}");
    // What the kernel was asked to let each worker write.
    let spec = |worker: &str| -> Value {
        serde_json::from_slice(&std::fs::read(lab.path(&format!(".lab/runs/e1/full/{worker}.json"))).unwrap()).unwrap()
    };
    let writes = |spec: &Value| spec["sandbox"]["write"].to_string();
    let (prepare, predict) = (spec("prepare"), spec("predict"));
    assert!(prepare["memo"].is_null() && !writes(&prepare).contains(".lab/memo"), "{prepare:#}");
    let dir = predict["memo"]["dir"].as_str().unwrap();
    assert!(dir.contains(".lab/memo/memo/") && !dir.ends_with("-smoke"), "{dir}");
    assert!(writes(&predict).contains(dir), "{predict:#}");

    // The control: without the sandbox the same code reads and writes them.
    let out = lab.cmd(&["run", "memo", "--json", "-q"]).env("LAB_SANDBOX", "off").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(lab.path(".lab/runs/e2/run.log")).unwrap();
    let attacks: Vec<&str> = log.lines().filter(|l| l.starts_with("ATTACK ")).collect();
    assert!(attacks.len() == 3 && attacks.iter().all(|l| l.ends_with("SUCCEEDED")), "{attacks:#?}");
}

#[test]
fn a_poisoned_memo_moves_only_the_runs_that_read_it_and_the_harness_never_reads_it() {
    let lab = lab_with(&["memo"]);
    let keep = lab.run(&["memo", "--decide", "--seed", "1"], 0);
    assert_eq!(keep["verdict"], "keep", "{keep:#}");
    // Judged code may write anything into its own memo: every entry a zero vector.
    let honest = std::fs::read(&entries(&lab)[0]).unwrap();
    let header = honest.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut zero_entry = honest[..header].to_vec();
    zero_entry.resize(honest.len(), 0);
    for entry in entries(&lab) {
        std::fs::write(entry, &zero_entry).unwrap();
    }
    let (poisoned, lines) = run(&lab, &[]);
    assert_eq!(lines, ["[lab] memo: 90 hits, 0 misses"]);
    assert_ne!(poisoned["value"], keep["value"], "the run that read the poison predicts from it");
    let (cold, lines) = run(&lab, &["--no-memo"]);
    assert_eq!(lines, ["[lab] memo: off, 90 computed"]);
    assert_eq!(cold["value"], keep["value"], "a cold rerun gives the honest figure back");
    // The keep's records and scores stand without the memo: verify never reads it.
    std::fs::remove_dir_all(lab.path(".lab/memo")).unwrap();
    let (verify, _) = lab.exits(&["verify", "--json"], 0);
    assert_eq!(serde_json::from_str::<Value>(&verify).unwrap()["ok"], true, "{verify}");
}
