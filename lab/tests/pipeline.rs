//! Inputs between leaves end to end: a downstream leaf takes a file of the
//! upstream leaf's leader (`inputs:` in leaf.yaml, `lab.input` in Python),
//! records which file (sha256) each run started from, runs on its fallback
//! when there is no leader, and never compares results across upstream files.
//!
//! Fixtures: `upstream` (loss = W, a mutable constant; its train writes
//! `model.txt` with W into its artifact) and `downstream` (loss = the base's W,
//! or 1.0 on the fallback, plus DELTA).

mod common;

use common::{TestLab, lab_with, repo_root};
use rusqlite::Connection;
use serde_json::Value;

fn run(lab: &TestLab, args: &[&str], code: i32) -> (Value, String) {
    let args = [&["run"], args, &["--json"]].concat();
    let out = lab.cmd(&args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(code), "lab {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    let summary = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (summary, stderr)
}

/// (input name, upstream experiment id, sha256) recorded for every run of experiment `e`.
fn recorded_inputs(lab: &TestLab, e: i64) -> Vec<(String, Option<i64>, String)> {
    let conn = Connection::open(lab.path(".lab/lab.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT i.name, i.experiment_id, i.sha256 FROM run_inputs i JOIN runs r ON r.id = i.run_id
             WHERE r.experiment_id = ?1 ORDER BY r.id",
        )
        .unwrap();
    stmt.query_map([e], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

fn keys(lab: &TestLab, e: i64) -> Vec<String> {
    let conn = Connection::open(lab.path(".lab/lab.db")).unwrap();
    let mut stmt = conn.prepare("SELECT frozen_lock_sha256 FROM runs WHERE experiment_id = ?1 ORDER BY id").unwrap();
    stmt.query_map([e], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn sha256_of(lab: &TestLab, rel: &str) -> String {
    lab::fingerprint::sha256_file(&lab.path(rel)).unwrap()
}

fn edit(lab: &TestLab, rel: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(lab.path(rel)).unwrap();
    assert!(text.contains(from), "{rel} has no `{from}`");
    lab.write(rel, &text.replacen(from, to, 1));
}

#[test]
fn the_downstream_starts_from_the_upstream_leader_and_records_its_sha256() {
    let lab = lab_with(&["upstream", "downstream"]);
    let (s, _) = run(&lab, &["upstream", "--decide", "--no-smoke"], 0);
    assert_eq!(s["verdict"], "keep", "{s:#}");
    let sha = sha256_of(&lab, ".lab/runs/e1/full/artifact/model.txt");

    let (s, stderr) = run(&lab, &["downstream", "--decide", "--no-smoke"], 0);
    assert_eq!((s["verdict"].as_str(), s["value"].as_f64()), (Some("keep"), Some(0.5)), "{s:#}");
    let input = &s["inputs"][0];
    assert_eq!((input["name"].as_str(), input["leaf"].as_str()), (Some("base"), Some("upstream")), "{s:#}");
    assert_eq!((input["found"]["experiment"].as_str(), input["found"]["sha256"].as_str()), (Some("e1"), Some(&*sha)));
    assert!(!stderr.contains("fallback"), "{stderr}");
    assert_eq!(recorded_inputs(&lab, 2), [("base".to_owned(), Some(1), sha.clone())]);
    // The key is the lock hashed with the input, not the lock itself.
    let lock = lab::leaf::lock::Lock::sha256(&lab.path("leaves/downstream")).unwrap();
    assert_eq!(keys(&lab, 1).len(), 1);
    assert_ne!(keys(&lab, 2), [lock]);
    let log = std::fs::read_to_string(lab.path(".lab/runs/e2/run.log")).unwrap();
    assert!(log.contains(&format!("base: upstream e1 {sha}")), "{log}");
}

#[test]
fn without_an_upstream_leader_the_downstream_runs_on_its_fallback() {
    // Alone in its lab, as CI's smoke runs copy each leaf.
    let alone = lab_with(&["downstream"]);
    let (s, stderr) = run(&alone, &["downstream", "--decide", "--no-smoke"], 0);
    assert_eq!((s["verdict"].as_str(), s["value"].as_f64()), (Some("keep"), Some(1.0)), "{s:#}");
    assert!(s["inputs"][0]["found"].is_null(), "{s:#}");
    assert!(
        stderr.contains("input `base` of `downstream`: there is no leaf `upstream` in this lab")
            && stderr.contains("running on the leaf's fallback (recorded as sha256 `none`"),
        "{stderr}"
    );
    assert_eq!(recorded_inputs(&alone, 1), [("base".to_owned(), None, "none".to_owned())]);

    // The upstream leaf is there but has kept nothing yet.
    let lab = lab_with(&["upstream", "downstream"]);
    let (_, stderr) = run(&lab, &["downstream", "--smoke"], 0);
    assert!(stderr.contains("leaf `upstream` has no leader yet"), "{stderr}");
    assert_eq!(recorded_inputs(&lab, 1), [("base".to_owned(), None, "none".to_owned())]);
}

#[test]
fn a_new_upstream_leader_starts_a_new_comparison_downstream() {
    let lab = lab_with(&["upstream", "downstream"]);
    run(&lab, &["downstream", "--decide", "--no-smoke"], 0); // e1: on the fallback, loss 1.0
    run(&lab, &["upstream", "--decide", "--no-smoke"], 0); // e2: upstream W 0.5
    // On the real base nothing leads yet, so a candidate would be kept for free as
    // the baseline: refused, the baseline is the committed code.
    edit(&lab, "leaves/downstream/train.py", "DELTA = 0.0", "DELTA = 0.6");
    let (_, stderr) = run(&lab, &["downstream", "--decide", "--no-smoke"], 3);
    assert!(
        stderr.contains("no leader under its current leaf.lock and inputs") && stderr.contains("committed code"),
        "{stderr}"
    );
    lab.git(&["stash", "-q"]);
    let (s, _) = run(&lab, &["downstream", "--decide", "--no-smoke"], 0); // e3: 0.5, the baseline on the real base
    assert_eq!((s["verdict"].as_str(), &s["leader"]), (Some("keep"), &Value::Null), "{s:#}");
    assert!(s["note"].as_str().unwrap().contains("the baseline"), "{s:#}");
    lab.git(&["stash", "pop", "-q"]);
    let (s, _) = run(&lab, &["downstream", "--decide", "--no-smoke"], 0); // e4: 1.1, against e3
    assert_eq!((s["verdict"].as_str(), s["leader"]["experiment"].as_str()), (Some("discard"), Some("e3")), "{s:#}");

    // A better upstream leader: the downstream's leader e3 no longer counts.
    lab.ok(&["baseline", "upstream", "-q"]);
    edit(&lab, "leaves/upstream/train.py", "W = 0.5", "W = 0.25");
    let (s, _) = run(&lab, &["upstream", "--decide", "--no-smoke"], 0); // e5
    assert_eq!(s["verdict"], "keep", "{s:#}");
    let gate = lab.json(&["gate", "e3"]);
    assert!(gate["leader"].is_null(), "e3 was judged under the old base, e5's is another comparison: {gate:#}");
    let (s, _) = run(&lab, &["downstream", "--decide", "--no-smoke"], 0); // e6: the committed code on the new base
    assert_eq!((s["verdict"].as_str(), &s["leader"]), (Some("keep"), &Value::Null), "{s:#}");
    assert_eq!(s["inputs"][0]["found"]["experiment"], "e5", "{s:#}");
    let (e1, e3, e6) = (keys(&lab, 1), keys(&lab, 3), keys(&lab, 6));
    assert!(e1 != e3 && e3 != e6 && e1 != e6, "three bases, three keys: {e1:?} {e3:?} {e6:?}");
}

#[test]
fn a_required_input_without_a_leader_is_refused_naming_the_leaf_to_run() {
    let lab = lab_with(&["upstream", "downstream"]);
    edit(&lab, "leaves/downstream/leaf.yaml", "file: model.txt }", "file: model.txt, required: true }");
    lab.ok(&["lock", "downstream"]);
    lab.git(&["commit", "-qam", "required"]);
    let (_, stderr) = run(&lab, &["downstream", "--smoke"], 3);
    assert!(
        stderr.contains("leaf `downstream` needs input `base` (model.txt of leaf `upstream`'s leader)"),
        "{stderr}"
    );
    assert!(stderr.contains("run `lab run upstream --decide` first"), "{stderr}");
    let experiments: i64 = Connection::open(lab.path(".lab/lab.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM experiments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(experiments, 0, "a refusal leaves no trace");
    run(&lab, &["upstream", "--decide", "--no-smoke"], 0);
    run(&lab, &["downstream", "--smoke"], 0);
}

#[test]
fn bad_inputs_are_refused_by_the_manifest_and_cycles_by_the_runner() {
    let lab = lab_with(&["upstream", "downstream"]);
    edit(&lab, "leaves/downstream/leaf.yaml", "file: model.txt", "file: ../e1/model.txt");
    let stderr = lab.fails(&["run", "downstream", "--smoke"], 2);
    assert!(stderr.contains("inputs.base.file `../e1/model.txt` must be a plain file name"), "{stderr}");
    let out = lab.cmd(&["check", "downstream"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("must be a plain file name"), "{out:?}");

    let lab = lab_with(&["upstream", "downstream"]);
    edit(&lab, "leaves/upstream/leaf.yaml", "device: cpu", "device: cpu\ninputs: { x: { leaf: downstream, file: a } }");
    lab.ok(&["lock", "upstream"]);
    lab.git(&["commit", "-qam", "cycle"]);
    let stderr = lab.fails(&["run", "downstream", "--smoke"], 2);
    assert!(stderr.contains("form a cycle: downstream -> upstream -> downstream"), "{stderr}");
}

#[test]
fn sft_and_rl_share_their_frozen_task_base_and_evaluation() {
    // Both leaves are copied alone into a lab by CI, so each carries the files;
    // they must stay the same files, or rl's reward would not read against sft's.
    let leaves = repo_root().join("leaves");
    for file in ["prepare.py", "base.py", "evaluate.py"] {
        let (sft, rl) = (leaves.join("sft").join(file), leaves.join("rl").join(file));
        assert_eq!(std::fs::read(&sft).unwrap(), std::fs::read(&rl).unwrap(), "{file} differs between sft and rl");
    }
}

#[test]
fn admet_blend_and_admet_pxr_share_their_frozen_data_preparation() {
    // admet-pxr is admet-blend on the PXR data it ships: one prepare.py (the
    // split and its hashes) and one package list, or their figures would not compare.
    let leaves = repo_root().join("leaves");
    for file in ["prepare.py", "requirements.txt"] {
        let (blend, pxr) = (leaves.join("admet-blend").join(file), leaves.join("admet-pxr").join(file));
        assert_eq!(std::fs::read(&blend).unwrap(), std::fs::read(&pxr).unwrap(), "{file} differs between the leaves");
    }
}
