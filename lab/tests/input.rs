//! End-to-end tests of bad input that used to get through: where an export may
//! write, manifests too large or too deep to parse, imports that cannot be
//! mapped or were already made, databases that are not lab's, leaf names that
//! name no leaf, control characters in tables, duplicate metric keys, empty
//! budgets, and a stdout that is closed or full.

mod common;

use std::os::unix::fs::symlink;

use common::{TestLab, lab_with, praxlab_db};

#[test]
fn export_writes_only_a_regular_file_or_a_new_path() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    nix::unistd::mkfifo(&lab.path("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    symlink(lab.path("target.jsonl"), lab.path("link")).unwrap();
    std::fs::create_dir(lab.path("dir")).unwrap();
    for (name, what) in [("fifo", "a FIFO"), ("link", "a symbolic link"), ("dir", "a directory")] {
        let err = lab.fails(&["export", "-o", name], 2);
        assert!(err.contains(&format!("{}` is {what}", lab.path(name).display())), "{name}: {err}");
    }
    assert!(lab.path("fifo").exists() && !lab.path("target.jsonl").exists(), "nothing was replaced");
    assert!(std::fs::symlink_metadata(lab.path("link")).unwrap().file_type().is_symlink());
    lab.ok(&["export", "-o", "new.jsonl"]);
    lab.ok(&["export", "-o", "new.jsonl"]);
}

#[test]
fn manifests_too_large_or_too_deep_are_refused_before_parsing() {
    let lab = TestLab::new();
    lab.write("leaves/deep/leaf.yaml", &format!("version: 1\nname: {}\n", "[".repeat(100_000)));
    let err = lab.fails(&["show", "deep"], 2);
    assert!(err.contains("leaves/deep/leaf.yaml` nests deeper than 64 levels at line 2"), "{err}");
    let (table, _) = lab.exits(&["check", "deep"], 1);
    assert!(table.contains("nests deeper than 64 levels"), "{table}");
    lab.write("leaves/big/leaf.yaml", &format!("version: 1\n#{}\n", "x".repeat(1 << 20)));
    let err = lab.fails(&["show", "big"], 2);
    assert!(err.contains("leaves/big/leaf.yaml` is larger than 1024 KiB"), "{err}");
    lab.write("lab.yaml", &format!("version: 1\nname: {}\n", "{a: ".repeat(1000)));
    let err = lab.fails(&["log"], 2);
    assert!(err.contains("lab.yaml` nests deeper than 64 levels"), "{err}");
}

#[test]
fn a_closed_stdout_ends_quietly_and_a_full_one_shows_what_was_recorded() {
    let lab = lab_with(&["ok"]);
    let runs = [&["run", "ok"][..], &["run", "ok", "--decide", "--no-smoke"]];
    for args in [&["hypothesis", "a", "-m", "b"][..], &["context"], &["log", "--format", "jsonl"]].iter().chain(&runs) {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read); // the reader is gone before lab writes: `lab ... | head -0`
        let out = lab.std_cmd_in(lab.root(), args).stdout(write).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "lab {args:?}: {stderr}");
        assert!(!stderr.contains("error") && !stderr.contains("panicked"), "lab {args:?}: {stderr}");
    }
    let log = lab.json(&["log"]);
    let verdicts: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["keep", "discard"], "both runs were recorded, only the decided one kept");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = lab.std_cmd_in(lab.root(), &["hypothesis", "c", "-m", "d", "--json"]).stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout: No space left on device"), "{stderr}");
    assert!(stderr.contains(r#""hypothesis": "h3""#) && !stderr.contains("panicked"), "{stderr}");
    let titles: i64 = lab.db().query_row("SELECT COUNT(*) FROM hypotheses", [], |r| r.get(0)).unwrap();
    assert_eq!(titles, 3, "each hypothesis recorded once (the runs' standing one included)");
}

#[test]
fn the_same_praxlab_database_imports_once() {
    let lab = TestLab::new();
    praxlab_db(&lab.path("experiments.db"));
    lab.ok(&["import", "praxlab", "experiments.db"]);
    let out = lab.cmd(&["import", "praxlab", "experiments.db"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("`experiments.db` was imported already (import 1 of `experiments.db`"), "{stderr}");
    assert!(stderr.contains("nothing imported"), "{stderr}");
    let rows: i64 = lab.db().query_row("SELECT COUNT(*) FROM experiments", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 3, "not doubled");
    let verify = lab.json(&["verify"]);
    assert_eq!(verify["ok"], true, "the import's record is chained: {verify}");
}

#[test]
fn what_cannot_be_mapped_or_is_not_praxlab_is_refused_naming_it() {
    let lab = TestLab::new();
    praxlab_db(&lab.path("renamed.db"));
    lab.db_at("renamed.db").execute_batch("ALTER TABLE results RENAME COLUMN metrics_json TO metrics").unwrap();
    let err = lab.fails(&["import", "praxlab", "renamed.db"], 2);
    assert!(err.contains("PraxLab table `results` in `"), "{err}");
    assert!(err.contains("has no column `metrics_json`, and columns lab cannot map: `metrics`"), "{err}");
    praxlab_db(&lab.path("garbled.db"));
    lab.db_at("garbled.db")
        .execute_batch("UPDATE results SET metrics_json = '{val_bpb: 1' WHERE experiment_id = 'e1'")
        .unwrap();
    let err = lab.fails(&["import", "praxlab", "garbled.db"], 2);
    assert!(err.contains("PraxLab result of `e1`") && err.contains("metrics_json is not JSON"), "{err}");
    let err = lab.fails(&["import", "praxlab", ".lab/lab.db"], 2);
    assert!(err.contains("lab.db` is this lab's own research database, not a PraxLab one"), "{err}");
    std::fs::create_dir(lab.path("dir.db")).unwrap();
    let err = lab.fails(&["import", "praxlab", "dir.db"], 2);
    assert!(err.contains("dir.db` is a directory, not a PraxLab database"), "{err}");
    let err = lab.fails(&["import", "results-tsv", "dir.db"], 2);
    assert!(err.contains("dir.db` is a directory, not a results.tsv"), "{err}");
    assert_eq!(lab.ok(&["export"]), "", "nothing was imported");
}

/// Overwrite the last pages of the lab's database: it still opens, and a later query fails.
fn damage_deep_pages(lab: &TestLab) {
    for i in 0..40 {
        lab.ok(&["hypothesis", &format!("title {i} {}", "x".repeat(300)), "-m", "m"]);
    }
    let path = lab.path(".lab/lab.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[len - 3 * 4096..].fill(0x55);
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn database_errors_name_the_database_and_doctor_says_what_it_is() {
    common::require_venv();
    let lab = TestLab::new();
    damage_deep_pages(&lab);
    let db = lab.path(".lab/lab.db").canonicalize().unwrap();
    let err = lab.fails(&["hypothesis", "a", "-m", "b"], 1);
    assert!(err.contains(&format!("the research database `{}` failed", db.display())), "{err}");
    assert!(err.contains("database disk image is malformed"), "{err}");
    let (stdout, err) = lab.exits(&["doctor"], 1);
    assert!(stdout.contains("lab.db: damaged:"), "{stdout}");
    assert!(err.contains("lab.db` is damaged"), "{err}");

    std::fs::write(lab.path(".lab/lab.db"), "not a database, only text that is long enough to fill a header\n")
        .unwrap();
    let (stdout, _) = lab.exits(&["doctor"], 1);
    assert!(stdout.contains("lab.db: not a SQLite database"), "{stdout}");
    assert!(!stdout.contains("not created yet"), "{stdout}");

    let newer = TestLab::new();
    newer.db().pragma_update(None, "user_version", 99).unwrap();
    let (stdout, _) = newer.exits(&["doctor", "--json"], 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["schema_version"], 99);
    let expected = format!("a newer schema (version 99) than this lab knows ({})", report["schema_latest"]);
    assert_eq!(report["database_problem"], expected.as_str());
}

fn rows(lab: &TestLab, table: &str) -> i64 {
    lab.db().query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

#[test]
fn a_leaf_name_that_names_no_leaf_is_refused_where_the_lab_has_leaves() {
    let lab = TestLab::new();
    lab.write("leaves/pretrain/leaf.yaml", "not parsed here\n");
    lab.write("results.tsv", "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na\t0.9\t1\tkeep\tok\n");
    let err = lab.fails(&["hypothesis", "a", "-m", "b", "--leaf", "../../etc"], 2);
    assert!(err.contains("invalid leaf name `../../etc`"), "{err}");
    for args in [
        &["hypothesis", "a", "-m", "b", "--leaf", "pretrian"][..],
        &["queue", "add", "a", "-m", "b", "--leaf", "pretrian"],
        &["import", "results-tsv", "results.tsv", "--leaf", "pretrian"],
    ] {
        let err = lab.fails(args, 2);
        assert!(err.contains("no leaf `pretrian` in this lab") && err.contains("known leaves: pretrain"), "{err}");
    }
    assert_eq!(rows(&lab, "hypotheses"), 0, "a refused name writes nothing");
    lab.ok(&["hypothesis", "a", "-m", "b", "--leaf", "pretrain"]);
    let err = lab.fails(&["experiment", "h1", "--leaf", "sft"], 2);
    assert!(err.contains("no leaf `sft`"), "{err}");
    lab.ok(&["experiment", "h1", "--leaf", "pretrain"]);
    let err = lab.fails(&["log", "--leaf", "a/b"], 2);
    assert!(err.contains("invalid leaf name `a/b`"), "{err}");

    // Without leaf directories names are PraxLab's free task names; a new one is noted.
    let plain = TestLab::new();
    plain.ok(&["hypothesis", "a", "-m", "b", "--leaf", "my_task"]);
    let out = plain.cmd(&["hypothesis", "c", "-m", "d", "--leaf", "other"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`other` is a new leaf name here (recorded so far: my_task)"), "{stderr}");
}

#[test]
fn tables_show_control_characters_escaped_and_json_keeps_them() {
    let lab = TestLab::new();
    let title = "red \u{1b}[31mtitle\rgone\u{1b}]0;pwned\u{7}";
    lab.ok(&["hypothesis", title, "-m", "m"]);
    lab.ok(&["experiment", "h1"]);
    for format in ["table", "md"] {
        let table = lab.ok(&["log", "--format", format]);
        assert!(!table.contains(['\u{1b}', '\r', '\u{7}']), "{format}: {table:?}");
        assert!(table.contains(r"red \u{1b}[31mtitle\rgone\u{1b}]0;pwned\u{7}"), "{format}: {table}");
    }
    assert_eq!(lab.json(&["log"])[0]["title"], title);
}

#[test]
fn repeated_metric_names_and_empty_budgets_are_refused() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    let err = lab.fails(&["experiment", "h1", "--budget", "0s"], 2);
    assert!(err.contains("a budget must be above zero"), "{err}");
    assert_eq!(rows(&lab, "experiments"), 0);
    lab.ok(&["experiment", "h1", "--budget", "5m"]);
    let err = lab.fails(&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": 0.9, "val_bpb": 1.2}"#], 2);
    assert!(err.contains("metric `val_bpb` is given twice"), "{err}");
    assert_eq!(rows(&lab, "results"), 0);
    lab.ok(&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": 0.9}"#]);
}
