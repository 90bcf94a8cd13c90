//! `--json` on the write commands: one JSON object on stdout with the documented
//! keys, the plain output unchanged without it, and errors that print nothing
//! on stdout (exit codes as without the flag).

mod common;

use std::fs;

use common::{TestLab, lab_with, praxlab_db, repo_root};
use serde_json::{Value, json};

/// `lab ARGS --json` must exit with `code` and print nothing on stdout; returns stderr.
fn fails_quietly(lab: &TestLab, args: &[&str], code: i32) -> String {
    let args = [args, &["--json"]].concat();
    let out = lab.cmd(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "lab {args:?}: expected exit {code}\nstderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "lab {args:?}: stdout on failure");
    stderr
}

fn templates() -> String {
    repo_root().join("templates").display().to_string()
}

#[test]
fn init_json_names_the_root_its_database_and_whether_it_was_created() {
    let lab = TestLab::empty();
    let root = lab.root().canonicalize().unwrap().display().to_string();
    let first = lab.json(&["init", "--name", "demo"]);
    assert_eq!(first["root"], root.as_str());
    assert_eq!(first["name"], "demo");
    assert_eq!(first["database"], format!("{root}/.lab/lab.db"));
    assert!(first["schema_version"].as_u64().is_some_and(|v| v > 0), "{first}");
    assert_eq!(first["created"], true);
    let again = lab.json(&["init"]);
    assert_eq!((again["created"].clone(), again["name"].clone()), (json!(false), json!("demo")));
    assert_eq!(again["schema_version"], first["schema_version"]);
    assert_eq!(lab.ok(&["init"]), format!("{root}\n"), "the plain output is the root alone");
}

#[test]
fn hypothesis_json_echoes_what_was_recorded() {
    let lab = TestLab::new();
    assert_eq!(lab.ok(&["hypothesis", "T", "-m", "M"]), "h1\n");
    let h = lab.json(&["hypothesis", "increase LR", "-m", "faster", "--leaf", "pretrain", "--predict", "bpb down"]);
    assert_eq!(
        h,
        json!({"hypothesis": "h2", "leaf": "pretrain", "title": "increase LR", "mechanism": "faster", "prediction": "bpb down"})
    );
    let bare = lab.json(&["hypothesis", "x", "-m", "y"]);
    assert_eq!(
        (bare["hypothesis"].clone(), bare["leaf"].clone(), bare["prediction"].clone()),
        (json!("h3"), Value::Null, Value::Null)
    );
    fails_quietly(&lab, &["hypothesis", "no mechanism"], 2);
}

#[test]
fn experiment_json_carries_the_code_snapshot() {
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    lab.write("train.py", "lr = 0.1\n");
    lab.git(&["add", "."]);
    lab.git(&["commit", "-qm", "base"]);
    let head = lab.git(&["rev-parse", "HEAD"]).trim().to_owned();
    lab.ok(&["hypothesis", "a", "-m", "b", "--leaf", "pretrain"]);
    assert_eq!(lab.ok(&["experiment", "h1"]), "e1\n");
    let pid = std::process::id();
    let e = lab.json(&["experiment", "h1", "--pid", &pid.to_string(), "--budget", "5m"]);
    assert_eq!(e["experiment"], "e2");
    assert_eq!(e["hypothesis"], "h1");
    assert_eq!(e["leaf"], "pretrain", "the hypothesis's leaf");
    assert_eq!(e["commit"], head.as_str());
    assert_eq!((e["dirty"].clone(), e["diff_sha256"].clone()), (json!(false), Value::Null));
    assert_eq!(
        (e["pid"].clone(), e["watch_pid"].clone(), e["budget_s"].clone()),
        (json!(pid), json!(true), json!(300.0))
    );
    assert!(e["host"].as_str().is_some_and(|h| !h.is_empty()), "{e}");
    assert!(e["started_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    lab.write("train.py", "lr = 0.2\n");
    let dirty = lab.json(&["experiment", "h1", "--leaf", "other"]);
    assert_eq!(
        (dirty["experiment"].clone(), dirty["leaf"].clone(), dirty["dirty"].clone()),
        (json!("e3"), json!("other"), json!(true))
    );
    assert_eq!(dirty["diff_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(dirty["watch_pid"], false, "the calling shell is recorded, unwatched");
    let err = fails_quietly(&lab, &["experiment", "h9"], 2);
    assert!(err.contains("no hypothesis h9"), "{err}");
}

#[test]
fn result_json_says_whether_it_amended() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["experiment", "h1"]);
    assert_eq!(lab.ok(&["result", "e1", "-v", "keep"]), "keep\n");
    let r = lab.json(&[
        "result",
        "e2",
        "-v",
        "discard",
        "--metrics",
        r#"{"val_bpb": 1.01, "mem_gb": 44}"#,
        "--mechanism-refuted",
        "--theory-revision",
        "noise is not it",
    ]);
    assert_eq!(
        r,
        json!({
            "experiment": "e2",
            "verdict": "discard",
            "metrics": {"val_bpb": 1.01, "mem_gb": 44},
            "mechanism": "refuted",
            "theory_revision": "noise is not it",
            "source": "agent",
            "comparison": null,
            "amended": false,
        })
    );
    let err = fails_quietly(&lab, &["result", "e2", "-v", "keep"], 3);
    assert!(err.contains("--amend"), "{err}");
    let amended = lab.json(&["result", "e2", "-v", "keep", "--amend"]);
    assert_eq!((amended["verdict"].clone(), amended["amended"].clone()), (json!("keep"), json!(true)));
    // What the amendment does not replace it keeps.
    assert_eq!(
        (amended["metrics"].clone(), amended["mechanism"].clone()),
        (json!({"val_bpb": 1.01, "mem_gb": 44}), json!("refuted"))
    );
    fails_quietly(&lab, &["result", "e99", "-v", "keep"], 2);
    fails_quietly(&lab, &["result", "e1", "-v", "keep", "--amend", "--metrics", "[1]"], 2);
}

/// The lines of a leaf.lock as path -> sha256.
fn locked(lab: &TestLab, leaf: &str) -> Vec<(String, String)> {
    let text = fs::read_to_string(lab.path(&format!("leaves/{leaf}/leaf.lock"))).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (sha, path) = l.split_once("  ").unwrap();
            (path.to_owned(), sha.to_owned())
        })
        .collect()
}

fn statuses(answer: &Value) -> Vec<(String, String)> {
    let files = answer["files"].as_array().unwrap();
    files.iter().map(|f| (f["path"].as_str().unwrap().to_owned(), f["status"].as_str().unwrap().to_owned())).collect()
}

#[test]
fn lock_json_lists_every_frozen_file_with_its_change_and_sha256() {
    let lab = lab_with(&["ok"]);
    let lock = lab.root().canonicalize().unwrap().join("leaves/ok/leaf.lock").display().to_string();
    let same = lab.json(&["lock", "ok"]);
    assert_eq!((same["lock"].as_str(), same["leaf"].as_str()), (Some(lock.as_str()), Some("ok")));
    assert_eq!((same["written"].clone(), same["changed"].clone()), (json!(false), json!(0)));
    let shas: Vec<(String, String)> = same["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["sha256"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(shas, locked(&lab, "ok"));
    assert!(statuses(&same).iter().all(|(_, s)| s == "unchanged"), "{same}");

    lab.write("leaves/ok/notes.txt", "frozen notes\n");
    let manifest = fs::read_to_string(lab.path("leaves/ok/leaf.yaml")).unwrap();
    lab.write("leaves/ok/leaf.yaml", &manifest.replace(r#"frozen: ["data.py"]"#, r#"frozen: ["data.py", "*.txt"]"#));
    let grown = lab.json(&["lock", "ok"]);
    assert_eq!((grown["written"].clone(), grown["changed"].clone()), (json!(true), json!(2)));
    let expected = [("data.py", "unchanged"), ("leaf.yaml", "changed"), ("notes.txt", "added")];
    assert_eq!(statuses(&grown), expected.map(|(p, s)| (p.to_owned(), s.to_owned())));
    let written = locked(&lab, "ok");
    let shas: Vec<&str> = grown["files"].as_array().unwrap().iter().map(|f| f["sha256"].as_str().unwrap()).collect();
    assert_eq!(shas, written.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), "the sha256 written");

    fs::remove_file(lab.path("leaves/ok/notes.txt")).unwrap();
    let shrunk = lab.json(&["lock", "ok"]);
    let removed = shrunk["files"].as_array().unwrap().iter().find(|f| f["path"] == "notes.txt").unwrap().clone();
    assert_eq!(removed, json!({"path": "notes.txt", "status": "removed", "sha256": null}));
    assert_eq!(locked(&lab, "ok").len(), 2);

    fs::write(lab.path("leaves/ok/data.py"), "tampered\n").unwrap();
    assert_eq!(lab.ok(&["lock", "ok"]), "changed data.py\n", "the plain output is unchanged");
    fails_quietly(&lab, &["lock", "no-such-leaf"], 2);
}

#[test]
fn new_json_gives_the_directory_and_the_plan_with_or_without_dry_run() {
    let lab = TestLab::new();
    let dir = lab.root().canonicalize().unwrap().join("leaves/demo");
    let templates = templates();
    let new = |extra: &[&'static str]| {
        [&["new", "demo", "--template", "minimal", "--templates", &templates][..], extra].concat()
    };
    let plan = lab.json(&new(&["--dry-run"]));
    assert_eq!(plan["dry_run"], true);
    assert_eq!((plan["leaf"].as_str(), plan["template"].as_str()), (Some("demo"), Some("minimal")));
    assert_eq!(plan["dir"], dir.display().to_string());
    let files = plan["files"].as_array().unwrap();
    assert!(files.iter().any(|f| f["path"] == "leaf.yaml"), "{plan}");
    assert!(files.iter().all(|f| f["action"] == "create" && f["bytes"].as_u64().is_some() && f["origin"].is_string()));
    assert!(!dir.exists(), "a dry run writes nothing");

    let created = lab.json(&new(&[]));
    assert_eq!((created["dry_run"].clone(), created["dir"].clone()), (json!(false), plan["dir"].clone()));
    assert_eq!(created["files"], plan["files"]);
    for f in created["files"].as_array().unwrap() {
        assert!(dir.join(f["path"].as_str().unwrap()).is_file(), "{f}");
    }

    fails_quietly(&lab, &new(&[]), 2);
    let replaced = lab.json(&new(&["--force", "--dry-run"]));
    assert!(replaced["files"].as_array().unwrap().iter().all(|f| f["action"] == "replace"), "{replaced}");
    // A refused dry run still shows its plan, as the plain output does; the exit code says no.
    let out = lab.cmd(&new(&["--dry-run", "--json"])).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let refused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(refused["files"].as_array().unwrap().iter().all(|f| f["action"] == "exists"), "{refused}");

    let other = TestLab::new();
    let shown = other.root().canonicalize().unwrap().join("leaves/demo").display().to_string();
    assert_eq!(other.ok(&new(&[])), format!("{shown}\n"), "the plain output is the directory alone");
}

const RESULTS_TSV: &str = "commit\tval_bpb\tmemory_gb\tstatus\tdescription
a1b2c3d\t0.997900\t44.0\tkeep\tbaseline
b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04
c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation
";

#[test]
fn import_json_counts_what_was_imported() {
    let lab = TestLab::new();
    lab.write("results.tsv", RESULTS_TSV);
    let mut tsv = lab.json(&["import", "results-tsv", "results.tsv", "--leaf", "pretrain"]);
    assert_eq!(tsv["sha256"].as_str().map(str::len), Some(64));
    tsv.as_object_mut().unwrap().remove("sha256");
    assert_eq!(
        tsv,
        json!({"source": "results-tsv", "path": "results.tsv", "hypotheses": 3, "experiments": 3, "results": 3,
               "already_imported": null})
    );
    assert_eq!(lab.ok(&["import", "results-tsv", "results.tsv"]), "", "the plain output stays empty");
    let again = lab.json(&["import", "results-tsv", "results.tsv"]);
    assert_eq!((again["results"].as_u64(), again["already_imported"]["results"].as_u64()), (Some(0), Some(3)));

    praxlab_db(&lab.path("experiments.db"));
    let mut praxlab = lab.json(&["import", "praxlab", "experiments.db"]);
    praxlab.as_object_mut().unwrap().remove("sha256");
    assert_eq!(
        praxlab,
        json!({"source": "praxlab", "path": "experiments.db", "hypotheses": 2, "experiments": 3, "results": 2,
               "already_imported": null})
    );

    lab.write("bad.tsv", "commit\tbpb\tstatus\n");
    let err = fails_quietly(&lab, &["import", "results-tsv", "bad.tsv"], 2);
    assert!(err.contains("is not a results.tsv"), "{err}");
}

#[test]
fn queue_json_gives_the_item_its_status_and_the_look_alikes() {
    let lab = TestLab::new();
    assert_eq!(lab.ok(&["queue", "add", "Increase LR to 0.04", "-m", "faster"]), "q1\n");
    let fresh =
        lab.json(&["queue", "add", "tie embeddings", "-m", "fewer params", "--priority", "5", "--leaf", "pretrain"]);
    assert_eq!(
        fresh,
        json!({
            "id": "q2",
            "status": "queued",
            "leaf": "pretrain",
            "title": "tie embeddings",
            "mechanism": "fewer params",
            "priority": 5,
            "link": null,
            "hypothesis": null,
            "look_alikes": [],
        })
    );
    let err = fails_quietly(&lab, &["queue", "add", "increase lr to 0.04!", "-m", "again"], 3);
    assert!(err.contains("looks like q1 (queued)"), "{err}");
    let forced = lab.json(&["queue", "add", "increase lr to 0.04!", "-m", "again", "--force"]);
    assert_eq!(forced["id"], "q3");
    assert_eq!(forced["look_alikes"], json!([{"id": "q1", "title": "Increase LR to 0.04", "status": "queued"}]));

    assert_eq!(
        lab.json(&["queue", "done", "q1", "--note", "became h4"]),
        json!({"id": "q1", "status": "done", "note": "became h4"})
    );
    assert_eq!(lab.json(&["queue", "drop", "q3"]), json!({"id": "q3", "status": "dropped", "note": null}));
    assert_eq!(lab.ok(&["queue", "drop", "q2"]), "q2 dropped\n", "the plain output is unchanged");
    let err = fails_quietly(&lab, &["queue", "done", "q1"], 3);
    assert!(err.contains("q1 is already done"), "{err}");
    fails_quietly(&lab, &["queue", "drop", "q9"], 2);
}
