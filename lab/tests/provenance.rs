//! Provenance, comparisons and tamper evidence end to end, through the real
//! binary: the attacks issue 10 found (a typed keep as best, a typed keep over
//! a harness discard, an amend that wiped metrics, bests across re-locks, a
//! record edited behind lab's back, a lost database recreated empty) each
//! refused or named. The JSON agents script against is pinned by snapshots.

mod common;

use common::{TestLab, lab_with};
use serde_json::{Value, json};

fn ids(rows: &Value) -> Vec<&str> {
    rows.as_array().unwrap().iter().map(|r| r["experiment"].as_str().unwrap()).collect()
}

/// The rows of `context`'s `best` or `reported` for one metric.
fn of_metric(rows: &Value, metric: &str) -> Value {
    Value::Array(rows.as_array().unwrap().iter().filter(|r| r["metric"] == metric).cloned().collect())
}

/// An experiment of leaf `predictions` whose result an agent types, as PraxLab agents do.
fn typed(lab: &TestLab, verdict: &str, metrics: &str) -> String {
    let h = lab.ok(&["hypothesis", "typed", "-m", "trust me", "--leaf", "predictions"]);
    let e = lab.ok(&["experiment", h.trim()]).trim().to_owned();
    lab.ok(&["result", &e, "-v", verdict, "--metrics", metrics]);
    e
}

#[test]
fn an_agent_typed_keep_never_becomes_best() {
    let lab = lab_with(&["predictions"]);
    let kept = lab.run(&["predictions", "--decide", "--no-smoke", "--seed", "1"], 0);
    assert_eq!((kept["experiment"].as_str(), kept["verdict"].as_str()), (Some("e1"), Some("keep")));
    let e2 = typed(&lab, "keep", r#"{"mae": 0.0001}"#);
    let context = lab.json(&["context"]);
    let (best, reported) = (of_metric(&context["best"], "mae"), of_metric(&context["reported"], "mae"));
    assert_eq!((ids(&best), best[0]["source"].as_str()), (vec!["e1"], Some("harness")), "{context:#}");
    assert_eq!((ids(&reported), reported[0]["source"].as_str()), (vec![e2.as_str()], Some("agent")));
    let leaves = lab.json(&["leaves"]);
    assert_eq!(leaves[0]["best_experiment"], "e1");
    let log = lab.json(&["log"]);
    let sources: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["agent", "harness"]);
    assert!(lab.ok(&["log"]).contains("agent"), "the table marks it too");
    // The runner's leader is not fooled either: the next candidate is judged against e1.
    let next = lab.run(&["predictions", "--decide", "--no-smoke", "--seed", "2"], 0);
    assert_eq!(next["leader"]["experiment"], "e1", "{next:#}");
    // Scores are the fixture's, not the contract: the keys and their meaning are.
    let mut settings = lab.redactions();
    settings.add_filter(r#""(mae|rmse|spearman|value)": -?[0-9.e-]+"#, r#""$1": [NUMBER]"#);
    settings.bind(|| insta::assert_snapshot!("context_json", lab.ok(&["context", "--json"])));
}

#[test]
fn a_typed_keep_over_a_harness_discard_is_refused_and_stays_a_failure() {
    let lab = lab_with(&["predictions"]);
    // Without --decide the harness records a discard that touched nothing.
    let discard = lab.run(&["predictions", "--seed", "1"], 0);
    assert_eq!(discard["verdict"], "discard");
    let (before, _) = lab.exits(&["export", "--format", "jsonl"], 0);
    let attempts: &[&[&str]] = &[
        &["result", "e1", "-v", "keep", "--metrics", r#"{"mae": 0.0}"#, "--amend"],
        &["result", "e1", "-v", "keep", "--amend"],
        &["result", "e1", "--metrics", r#"{"mae": 0.0}"#, "--amend"],
        &["result", "e1", "-v", "keep"],
    ];
    for args in attempts {
        let err = lab.fails(args, 3);
        assert!(err.contains("by the harness") && err.contains("hint:"), "{args:?}: {err}");
        assert_eq!(lab.exits(&["export", "--format", "jsonl"], 0).0, before, "{args:?} wrote something");
    }
    let err = lab.fails(attempts[0], 3);
    assert!(err.contains("cannot set or change them") && err.contains("--mechanism-refuted"), "{err}");
    let failures = lab.json(&["failures"]);
    assert_eq!((ids(&failures), failures[0]["source"].as_str()), (vec!["e1"], Some("harness")));
    // The agent's annotations are its own to amend; the harness's verdict, metrics and source stay.
    let amended = lab.json(&["result", "e1", "--amend", "--mechanism-refuted", "--theory-revision", "not this"]);
    assert_eq!((amended["verdict"].as_str(), amended["source"].as_str()), (Some("discard"), Some("harness")));
    assert_eq!(amended["metrics"], discard["metrics"]);
    assert_eq!(ids(&lab.json(&["failures"])), ["e1"]);
    assert_eq!(lab.json(&["context"])["best"], json!([]));
    let mut settings = lab.redactions();
    settings.add_filter(r#""(mae|rmse|spearman)": -?[0-9.e-]+"#, r#""$1": [NUMBER]"#);
    settings.bind(|| {
        insta::assert_snapshot!("result_json_harness_amended", serde_json::to_string_pretty(&amended).unwrap())
    });
}

#[test]
fn an_amend_that_only_refutes_keeps_the_metrics() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "increase LR", "-m", "faster convergence early"]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": 0.993}"#, "--mechanism-confirmed"]);
    let amended = lab.json(&["result", "e1", "--amend", "--mechanism-refuted"]);
    let pretty = serde_json::to_string_pretty(&amended).unwrap();
    lab.redactions().bind(|| insta::assert_snapshot!("result_json_agent_amended", pretty));
    let log = lab.json(&["log"]);
    assert_eq!((log[0]["metrics"].clone(), log[0]["mechanism"].as_str()), (json!({"val_bpb": 0.993}), Some("refuted")));
    let err = lab.fails(&["result", "e1"], 2);
    assert!(err.contains("--verdict"), "without --amend a verdict is required: {err}");
}

#[test]
fn a_relock_starts_a_new_comparison_that_every_view_shows() {
    let lab = lab_with(&["predictions"]);
    assert_eq!(lab.run(&["predictions", "--decide", "--no-smoke", "--seed", "1"], 0)["verdict"], "keep");
    // Re-lock fishing: a looser gate and a changed frozen file, locked and committed.
    lab.edit("leaves/predictions/leaf.yaml", "device: cpu", "device: cpu\ngate: { min_improvement: 0.5 }");
    lab.edit("leaves/predictions/data.py", "import numpy as np", "import numpy as np  # re-locked");
    lab.ok(&["lock", "predictions"]);
    lab.git(&["commit", "-qam", "relock"]);
    let second = lab.run(&["predictions", "--decide", "--no-smoke", "--seed", "1"], 0);
    assert!(second["leader"].is_null(), "no leader in a new comparison: {second:#}");
    let context = lab.json(&["context"]);
    let relock = &context["comparisons"][0]["relock"];
    assert_eq!(context["comparisons"][0]["number"], 2);
    assert_eq!(
        relock["files"],
        json!([{"path": "data.py", "change": "changed"}, {"path": "leaf.yaml", "change": "changed"}])
    );
    assert_eq!(relock["gate"], json!([{"name": "min_improvement", "from": 0.0, "to": 0.5}]));
    assert_eq!(ids(&of_metric(&context["best"], "mae")), ["e2"], "bests never rank across comparisons");
    let leaves = lab.json(&["leaves"]);
    let described = leaves[0]["relock"].as_str().unwrap();
    assert!(described.contains("a re-lock started a new comparison"), "{described}");
    assert!(
        described.contains("`data.py` changed, `leaf.yaml` changed")
            && described.contains("gate min_improvement 0.0 -> 0.5")
    );
    assert_eq!(leaves[0]["best_experiment"], "e2");
    let (log, note) = lab.exits(&["log", "--json"], 0);
    let log: Value = serde_json::from_str(&log).unwrap();
    assert_ne!(log[0]["comparison"], log[1]["comparison"], "each row names its comparison");
    assert!(
        note.contains("note: leaf `predictions` is on comparison 2") && note.contains("gate min_improvement"),
        "{note}"
    );
    let checkpoint = lab.json(&["checkpoint", "after-relock", "predictions"]);
    assert_eq!(checkpoint["state"]["comparison"]["relock"]["gate"][0]["name"], "min_improvement");
    let markdown = std::fs::read_to_string(checkpoint["path"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("- comparison: comparison 2") && markdown.contains("re-lock"), "{markdown}");
}

#[test]
fn a_record_edited_behind_labs_back_is_named_by_verify() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "discard", "--metrics", r#"{"val_bpb": 1.2}"#]);
    let clean = lab.ok(&["verify", "--json"]);
    lab.redactions().bind(|| insta::assert_snapshot!("verify_json_holds", clean));
    // As an attacker with a shell would: raw SQL, no lab.
    let db = lab.db();
    db.execute("UPDATE results SET verdict = 'keep', metrics = '{\"val_bpb\": 0.1}' WHERE id = 1", []).unwrap();
    let inserted = db.execute("INSERT INTO results (experiment_id, verdict, created_at) VALUES (1, 'keep', 't')", []);
    assert!(inserted.unwrap_err().to_string().contains("no such function: lab_chain_digest"), "no insert without lab");
    let (report, err) = lab.exits(&["verify", "--json"], 3);
    assert!(err.contains("rows: results 1: verdict, metrics changed since it was recorded"), "{err}");
    lab.redactions().bind(|| insta::assert_snapshot!("verify_json_fails", report));
    lab.fails(&["verify"], 3);
    assert!(lab.ok(&["verify", "other-leaf"]).contains("holds"), "another leaf's rows are not this one's");
}

#[test]
fn a_lost_database_is_refused_not_recreated() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    let db = lab.path(".lab/lab.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    for args in [&["context"][..], &["hypothesis", "x", "-m", "y"], &["init"]] {
        let err = lab.fails(args, 3);
        assert!(err.contains(&db.display().to_string()) && err.contains("is missing"), "{args:?}: {err}");
        assert!(err.contains("hint: restore it from a backup; or run `lab init --force`"), "{err}");
        assert!(!db.exists(), "{args:?} recreated it");
    }
    std::fs::write(&db, "").unwrap();
    assert!(lab.fails(&["log"], 3).contains("is empty"));
    std::fs::write(&db, "not a database, but someone's file").unwrap();
    let err = lab.fails(&["log"], 1);
    assert!(err.contains(&db.display().to_string()) && err.contains("not a database"), "{err}");
    std::fs::remove_file(&db).unwrap();
    assert_eq!(lab.json(&["init", "--force"])["database"], db.display().to_string());
    assert_eq!(lab.ok(&["hypothesis", "again", "-m", "from nothing"]), "h1\n");
}
