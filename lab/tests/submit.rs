//! `lab submit`: the leader's predictions for the unlabelled submission split, in
//! the leaf's declared format, fingerprinted and traced to the leader.

mod common;

use common::{TestLab, lab_with};

fn run_decide(lab: &TestLab) {
    let out = lab.cmd(&["run", "submission", "--decide", "--no-smoke", "-q"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_leaders_predictions_are_written_in_the_declared_format() {
    let lab = lab_with(&["submission"]);
    let err = lab.fails(&["submit", "submission"], 3);
    assert!(err.contains("has no leader"), "{err}");
    run_decide(&lab);
    let record = lab.json(&["submit", "submission", "-o", "out/sub.csv"]);
    let text = std::fs::read_to_string(lab.path("out/sub.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["Molecule Name", "SMILES", "pEC50"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 20);
    assert_eq!(&rows[3][0], "M-3");
    // The model is close to the truth y = a - b on these inputs.
    for row in &rows {
        let (a, b) = row[1].split_once('|').unwrap();
        let truth = a.parse::<f64>().unwrap() - b.parse::<f64>().unwrap();
        assert!((row[2].parse::<f64>().unwrap() - truth).abs() < 0.1, "{row:?}");
    }
    assert_eq!(record["experiment"], "e1");
    assert_eq!(record["sha256"].as_str().unwrap(), lab_sha256(&lab.path("out/sub.csv")));
    // A keep just happened: a defensive re-issue within the window is skipped.
    let skipped = lab.json(&["submit", "submission", "--if-idle", "1h"]);
    assert_eq!(skipped["skipped"], true);
    let reissued = lab.json(&["submit", "submission", "--if-idle", "0s"]);
    assert!(reissued["path"].as_str().unwrap().contains(".lab/submissions/submission/"));
}

#[test]
fn a_prediction_file_changed_after_scoring_is_refused() {
    let lab = lab_with(&["submission"]);
    run_decide(&lab);
    let path = walkdir::WalkDir::new(lab.path(".lab/runs/e1"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.ends_with("out/submission.npy"))
        .expect("the run saved submission predictions");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let err = lab.fails(&["submit", "submission"], 3);
    assert!(err.contains("changed since it was scored"), "{err}");
}

#[test]
fn a_leaf_without_a_submission_is_a_usage_error() {
    let lab = lab_with(&["predictions"]);
    let err = lab.fails(&["submit", "predictions"], 2);
    assert!(err.contains("declares no submission"), "{err}");
}

fn lab_sha256(path: &std::path::Path) -> String {
    lab::fingerprint::sha256_file(path).unwrap()
}
