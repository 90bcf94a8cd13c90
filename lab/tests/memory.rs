//! End-to-end tests of the research memory: the PraxLab command syntax, the
//! append-only results, bad input that writes nothing, root discovery, and the
//! refusals (newer schema, read-only filesystem).

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

use common::TestLab;
use rusqlite::Connection;
use serde_json::Value;

fn db(lab: &TestLab) -> Connection {
    Connection::open(lab.path(".lab/lab.db")).unwrap()
}

fn count(lab: &TestLab, table: &str) -> i64 {
    db(lab).query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

/// Every row of every table, to prove a failed command wrote nothing.
fn dump(lab: &TestLab) -> String {
    lab.ok(&["export", "--format", "jsonl"]) + &format!("{}", count(lab, "results"))
}

#[test]
fn praxlab_syntax_works_verbatim() {
    let lab = TestLab::new();
    assert_eq!(lab.ok(&["hypothesis", "increase LR", "-m", "faster convergence early"]), "h1\n");
    assert_eq!(lab.ok(&["experiment", "h1"]), "e1\n");
    assert_eq!(
        lab.ok(&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": 0.993}"#, "--mechanism-confirmed"]),
        "keep\n"
    );
    lab.ok(&["hypothesis", "bigger batch", "-m", "less gradient noise", "--predict", "val_bpb -0.01"]);
    lab.ok(&["experiment", "h2"]);
    lab.ok(&[
        "result",
        "e2",
        "-v",
        "discard",
        "--metrics",
        r#"{"val_bpb": 1.01}"#,
        "--mechanism-refuted",
        "--theory-revision",
        "noise is not the bottleneck",
    ]);
    let context = lab.json(&["context"]);
    assert_eq!(context["counts"]["hypotheses"], 2);
    assert_eq!(context["counts"]["keep"], 1);
    assert_eq!(context["counts"]["discard"], 1);
    // Typed by an agent, not run by the harness: reported as such, never a best.
    assert_eq!(context["best"], serde_json::json!([]));
    assert_eq!(
        (context["reported"][0]["metric"].as_str(), context["reported"][0]["source"].as_str()),
        (Some("val_bpb"), Some("agent"))
    );
    assert_eq!(context["failures"]["total"], 1);
    assert_eq!(context["failures"]["latest"][0]["theory_revision"], "noise is not the bottleneck");
    let failures = lab.json(&["failures"]);
    assert_eq!(failures.as_array().unwrap().len(), 1);
    assert_eq!(failures[0]["mechanism"], "less gradient noise");
    assert_eq!(failures[0]["mechanism_verdict"], "refuted");
}

#[test]
fn the_mechanism_flag_not_the_verdict_decides_the_hypothesis() {
    let lab = TestLab::new();
    for (verdict, flag, status) in [
        ("keep", "--mechanism-refuted", "refuted"),
        ("discard", "--mechanism-confirmed", "confirmed"),
        ("keep", "", "open"),
    ] {
        let h = lab.ok(&["hypothesis", "idea", "-m", "why"]);
        let e = lab.ok(&["experiment", h.trim()]);
        let mut args = vec!["result", e.trim(), "-v", verdict];
        if !flag.is_empty() {
            args.push(flag);
        }
        lab.ok(&args);
        let id: i64 = h.trim()[1..].parse().unwrap();
        let got: String =
            db(&lab).query_row("SELECT status FROM hypotheses WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        assert_eq!(got, status, "{verdict} {flag}");
    }
    common::assert_tallies_exact(&db(&lab));
}

#[test]
fn context_counts_and_lists_only_the_hypotheses_no_run_has_tested() {
    let lab = common::lab_with(&["ok"]);
    let tested = lab.ok(&["hypothesis", "tried", "-m", "why"]);
    let waiting = lab.ok(&["hypothesis", "waiting", "-m", "why"]);
    let e = lab.ok(&["experiment", tested.trim()]);
    lab.ok(&["result", e.trim(), "-v", "discard"]);
    lab.ok(&["run", "ok", "--smoke", "-q"]); // filed under the standing hypothesis `lab run` makes
    let context = lab.json(&["context"]);
    let open = &context["open_hypotheses"];
    let ids: Vec<&str> = open.as_array().unwrap().iter().map(|h| h["hypothesis"].as_str().unwrap()).collect();
    assert_eq!(ids, [waiting.trim()], "a tested hypothesis, judged or not, is no longer waiting: {open:#}");
    let counts = &context["counts"];
    assert_eq!((counts["hypotheses"].as_u64(), counts["open"].as_u64()), (Some(3), Some(1)), "{counts:#}");
    let table = lab.ok(&["context"]);
    assert!(table.contains("3: 1 open, 0 confirmed, 0 refuted"), "the summary counts what the list shows:\n{table}");
    assert!(table.contains("open hypotheses not yet tested by a run"));
}

#[test]
fn a_second_result_is_refused_and_an_amendment_keeps_the_first() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "t", "-m", "m"]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": 1.0}"#]);
    let err = lab.fails(&["result", "e1", "-v", "discard"], 3);
    assert!(err.contains("e1 already has a result (keep"), "{err}");
    assert!(err.contains("hint: pass --amend"), "{err}");
    lab.ok(&["result", "e1", "-v", "discard", "--metrics", r#"{"val_bpb": 1.2}"#, "--amend"]);
    assert_eq!(count(&lab, "results"), 2);
    let (verdict, metrics): (String, String) = db(&lab)
        .query_row("SELECT verdict, metrics FROM results WHERE superseded_by IS NOT NULL", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((verdict.as_str(), metrics.as_str()), ("keep", r#"{"val_bpb":1.0}"#));
    let log = lab.json(&["log"]);
    assert_eq!(log[0]["verdict"], "discard");
    assert_eq!(log[0]["metrics"]["val_bpb"], 1.2);
    // The best-of index and the tallies follow the current result only.
    assert_eq!(lab.json(&["context"])["best"], Value::Array(vec![]));
    assert_eq!(
        (lab.json(&["context"])["counts"]["keep"].as_u64(), lab.json(&["context"])["counts"]["discard"].as_u64()),
        (Some(0), Some(1))
    );
    common::assert_tallies_exact(&db(&lab));
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "t", "-m", "m"]);
    lab.ok(&["experiment", "h1"]);
    let before = dump(&lab);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["result", "e1", "-v", "keep", "--metrics", "{val_bpb: 1}"], 2, "malformed metrics JSON"),
        (&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": "low"}"#], 2, "must be a finite number"),
        (&["result", "e1", "-v", "keep", "--metrics", "[1, 2]"], 2, "must be a JSON object"),
        (&["result", "e1", "-v", "keep", "--metrics", r#"{"a": {"b": 1}}"#], 2, "must be a finite number"),
        (&["result", "e1", "-v", "maybe"], 2, "invalid value 'maybe'"),
        (&["result", "e9", "-v", "keep"], 2, "no experiment e9"),
        (&["result", "x9", "-v", "keep"], 2, "malformed experiment id `x9`"),
        (&["experiment", "h7"], 2, "no hypothesis h7"),
        (&["experiment", "e1"], 2, "malformed hypothesis id `e1`"),
        (&["hypothesis", "   ", "-m", "m"], 2, "needs a title"),
        (&["hypothesis", "t"], 2, "--mechanism"),
        (&["result", "e1", "-v", "keep", "--mechanism-confirmed", "--mechanism-refuted"], 2, "cannot be used with"),
        (&["log", "--sort", "val_bpb"], 2, "expected metrics.NAME"),
        (&["log", "--since", "yesterday-ish"], 2, "cannot read --since"),
    ];
    for (args, code, message) in cases {
        let err = lab.fails(args, *code);
        assert!(err.contains(message), "lab {args:?}: expected `{message}` in\n{err}");
        assert_eq!(dump(&lab), before, "lab {args:?} wrote something");
    }
    let out =
        lab.cmd(&[]).arg("hypothesis").arg(OsStr::from_bytes(b"bad \xff utf8")).args(["-m", "m"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid UTF-8"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(dump(&lab), before);
}

#[test]
fn hostile_and_long_text_is_stored_verbatim() {
    let lab = TestLab::new();
    let nasty = "x'); DROP TABLE results; -- \"quoted\" \t tab\nnewline 😀 %s {{}}";
    let long = "long ".repeat(20_000);
    lab.ok(&["hypothesis", nasty, "-m", &long, "--predict", nasty]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "discard", "--theory-revision", nasty]);
    let failures = lab.json(&["failures"]);
    assert_eq!(failures[0]["title"], nasty);
    assert_eq!(failures[0]["mechanism"], long.as_str());
    assert_eq!(failures[0]["theory_revision"], nasty);
    assert_eq!(count(&lab, "results"), 1);
}

#[test]
fn the_root_is_found_from_below_or_given() {
    let lab = TestLab::new();
    std::fs::create_dir_all(lab.path("deep/er")).unwrap();
    assert_eq!(lab.cmd_in(&lab.path("deep/er"), &["hypothesis", "a", "-m", "b"]).output().unwrap().stdout, b"h1\n");
    let elsewhere = TestLab::empty();
    let out = elsewhere.cmd(&["context"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no lab.yaml") && err.contains("hint: run `lab init`"), "{err}");
    let root = lab.root().to_str().unwrap();
    assert_eq!(elsewhere.cmd(&["--root", root, "experiment", "h1"]).output().unwrap().stdout, b"e1\n");
    let out = elsewhere.cmd(&["experiment", "h1"]).env("LAB_ROOT", root).output().unwrap();
    assert_eq!(out.stdout, b"e2\n");
    let err = elsewhere.fails(&["--root", elsewhere.root().to_str().unwrap(), "log"], 2);
    assert!(err.contains("is not a lab root"), "{err}");
}

#[test]
fn the_leaf_is_the_directory_holding_leaf_yaml() {
    let lab = TestLab::new();
    lab.write("leaves/pretrain/leaf.yaml", "not parsed here\n");
    lab.write("leaves/sft/leaf.yaml", "not parsed here\n");
    std::fs::create_dir_all(lab.path("leaves/pretrain/src")).unwrap();
    let h = lab.cmd_in(&lab.path("leaves/pretrain/src"), &["hypothesis", "a", "-m", "b"]).output().unwrap();
    assert_eq!(h.stdout, b"h1\n");
    lab.ok(&["experiment", "h1"]); // from the root: inherits the hypothesis's leaf
    lab.ok(&["hypothesis", "c", "-m", "d", "--leaf", "sft"]);
    let log = lab.json(&["log", "--leaf", "pretrain"]);
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["leaf"], "pretrain");
}

#[test]
fn a_newer_database_is_refused_untouched() {
    let lab = TestLab::new();
    db(&lab).pragma_update(None, "user_version", 99).unwrap();
    let before = std::fs::read(lab.path(".lab/lab.db")).unwrap();
    let err = lab.fails(&["hypothesis", "a", "-m", "b"], 3);
    assert!(err.contains("schema version 99, newer than this lab understands"), "{err}");
    assert!(err.contains("hint: upgrade lab"), "{err}");
    assert_eq!(std::fs::read(lab.path(".lab/lab.db")).unwrap(), before);
}

#[test]
fn a_read_only_filesystem_is_refused() {
    // A private mount namespace (unprivileged via a user namespace) holding a
    // read-only tmpfs with a lab.yaml: the real kernel refusal, no mocks.
    let lab = TestLab::empty();
    let mount = lab.path("ro");
    std::fs::create_dir_all(&mount).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("lab");
    let script = format!(
        "mount -t tmpfs tmpfs {m} && printf 'version: 1\\nname: ro\\n' > {m}/lab.yaml && mount -o remount,ro {m} && cd {m} && exec {bin} hypothesis a -m b",
        m = mount.display(),
        bin = bin.display()
    );
    let out = std::process::Command::new("unshare").args(["-rm", "sh", "-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("read-only filesystem"), "{err}");
}

#[test]
fn git_worktrees_share_one_research_log() {
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    lab.git(&["add", "lab.yaml"]);
    lab.git(&["commit", "-qm", "lab root"]);
    let wt = lab.tmp.path().parent().unwrap().join(format!("{}-wt", lab.root().file_name().unwrap().to_string_lossy()));
    lab.git(&["worktree", "add", "-q", wt.to_str().unwrap()]);
    let out = lab.cmd_in(&wt, &["hypothesis", "from the worktree", "-m", "shared"]).output().unwrap();
    assert_eq!(out.stdout, b"h1\n");
    assert!(!wt.join(".lab/lab.db").exists(), "the worktree must not get its own database");
    lab.ok(&["experiment", "h1"]);
    let log = lab.json(&["log"]);
    assert_eq!(log[0]["title"], "from the worktree");
    assert_eq!(log[0]["commit"].as_str().unwrap().len(), 12);
    std::fs::remove_dir_all(&wt).unwrap();
}

#[test]
fn experiments_record_the_code_they_ran() {
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    lab.write("train.py", "lr = 0.1\n");
    lab.git(&["add", "."]);
    lab.git(&["commit", "-qm", "base"]);
    let head = lab.git(&["rev-parse", "HEAD"]).trim().to_owned();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    lab.ok(&["experiment", "h1"]);
    lab.write("train.py", "lr = 0.2\n");
    lab.ok(&["experiment", "h1"]);
    let rows: Vec<(String, bool, Option<String>)> = db(&lab)
        .prepare("SELECT git_commit, dirty, diff_sha256 FROM experiments ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows[0], (head.clone(), false, None));
    assert_eq!(rows[1].0, head);
    assert!(rows[1].1);
    assert_eq!(rows[1].2.as_ref().map(String::len), Some(64));
}

#[test]
fn untracked_files_mark_the_snapshot_by_path_and_size_without_being_read() {
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    lab.write("train.py", "lr = 0.1\n");
    lab.git(&["add", "."]);
    lab.git(&["commit", "-qm", "base"]);
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    // A 50 MB dataset beside the code (sparse: no disk), as a download leaves it.
    let data = std::fs::File::create(lab.path("data.bin")).unwrap();
    data.set_len(50 << 20).unwrap();
    let first = lab.json(&["experiment", "h1"]);
    assert_eq!(first["dirty"], true, "{first:#}");
    let marked = first["diff_sha256"].as_str().unwrap().to_owned();
    // Other bytes, same size: only the path and size are hashed, so the content was never read.
    data.write_at(b"changed", 1 << 20).unwrap();
    assert_eq!(lab.json(&["experiment", "h1"])["diff_sha256"], marked.as_str());
    data.set_len(51 << 20).unwrap();
    let grown = lab.json(&["experiment", "h1"]);
    assert_ne!(grown["diff_sha256"], marked.as_str(), "a size change marks a new diff: {grown:#}");
    std::fs::remove_file(lab.path("data.bin")).unwrap();
    let clean = lab.json(&["experiment", "h1"]);
    assert_eq!((&clean["dirty"], &clean["diff_sha256"]), (&Value::Bool(false), &Value::Null), "{clean:#}");
}

#[test]
fn stale_runs_show_at_read_time_and_sweep_marks_them() {
    let lab = TestLab::new();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id().to_string();
    child.wait().unwrap();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    lab.ok(&["experiment", "h1", "--pid", &dead]);
    lab.ok(&["experiment", "h1", "--pid", &std::process::id().to_string()]);
    let context = lab.json(&["context"]);
    let states: Vec<&str> =
        context["running"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["running", "stale"]);
    assert_eq!(count(&lab, "results"), 0, "reading must not write");
    let swept = lab.json(&["sweep"]);
    assert_eq!(swept[0]["experiment"], "e1");
    assert_eq!(swept.as_array().unwrap().len(), 1);
    let log = lab.json(&["log"]);
    assert_eq!((log[1]["state"].as_str(), log[1]["verdict"].as_str()), (Some("crashed"), Some("crash")));
    assert_eq!(log[0]["state"], "running");
}

#[test]
fn every_read_format_renders() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a, \"quoted\"", "-m", "b"]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "keep", "--metrics", r#"{"val_bpb": 0.9}"#]);
    for command in ["log", "failures", "context"] {
        for format in ["table", "json", "jsonl", "csv", "tsv", "md"] {
            let out = lab.ok(&[command, "--format", format]);
            match format {
                "json" => drop(serde_json::from_str::<Value>(&out).unwrap()),
                "jsonl" => out.lines().for_each(|l| drop(serde_json::from_str::<Value>(l).unwrap())),
                _ => assert!(command == "failures" || !out.is_empty(), "{command} {format}"),
            }
        }
    }
    let csv = lab.ok(&["log", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!((&row[7], &row[8]), ("agent", "a, \"quoted\""));
    assert!(lab.ok(&["log", "--format", "md"]).starts_with("| experiment |"));
}

#[test]
fn tables_fit_the_width_and_every_other_format_keeps_the_whole_text() {
    let lab = TestLab::new();
    let title = "a long title about learning rate warmup schedules and why they matter ".repeat(3);
    let title = title.trim_end();
    let mechanism = "the mechanism, explained at length over many words ".repeat(4);
    lab.ok(&["hypothesis", title, "-m", &mechanism]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "discard", "--metrics", r#"{"val_bpb": 0.9}"#]);
    lab.ok(&["queue", "add", title, "-m", &mechanism, "--link", &format!("https://example.org/{}", "p/".repeat(60))]);
    let widest = |out: &str| out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    for (command, row) in
        [(&["log"][..], "e1"), (&["failures"], "e1"), (&["context"], "e1"), (&["queue", "list"], "q1")]
    {
        let at_80 = lab.cmd(command).env("COLUMNS", "80").output().unwrap();
        let table = String::from_utf8(at_80.stdout).unwrap();
        assert!(widest(&table) <= 80 && table.contains(row), "{command:?} at COLUMNS=80:\n{table}");
        let piped = lab.cmd(command).env_remove("COLUMNS").output().unwrap();
        let piped = String::from_utf8(piped.stdout).unwrap();
        assert!(widest(&piped) <= 100 && piped.contains(row), "{command:?} into a pipe:\n{piped}");
        let json = lab.ok(&[command, &["--json"]].concat());
        assert!(json.contains(title), "{command:?}: {json}");
        let md = lab.cmd(&[command, &["--format", "md"]].concat()).env("COLUMNS", "80").output().unwrap();
        assert!(String::from_utf8(md.stdout).unwrap().contains(title), "{command:?}: a Markdown cell stays whole");
    }
    let csv = lab.cmd(&["log", "--format", "csv"]).env("COLUMNS", "80").output().unwrap();
    assert!(String::from_utf8(csv.stdout).unwrap().contains(title));
}

#[test]
fn log_filters_and_sorts() {
    let lab = TestLab::new();
    lab.write("lab.yaml", "version: 1\nname: t\nmetrics:\n  accuracy: maximize\n");
    for (i, (verdict, acc)) in [("keep", 0.5), ("discard", 0.9), ("keep", 0.7), ("keep", 0.6)].iter().enumerate() {
        lab.ok(&["hypothesis", &format!("idea {i}"), "-m", "m"]);
        lab.ok(&["experiment", &format!("h{}", i + 1)]);
        lab.ok(&["result", &format!("e{}", i + 1), "-v", verdict, "--metrics", &format!(r#"{{"accuracy": {acc}}}"#)]);
    }
    let ids = |v: Value| {
        v.as_array().unwrap().iter().map(|r| r["experiment"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(ids(lab.json(&["log", "--sort", "metrics.accuracy"])), ["e2", "e3", "e4", "e1"]);
    assert_eq!(ids(lab.json(&["log", "--verdict", "keep", "--limit", "2"])), ["e4", "e3"]);
    assert_eq!(ids(lab.json(&["log", "--since", "1h"])).len(), 4);
    assert_eq!(ids(lab.json(&["log", "--since", "2999-01-01T00:00:00Z"])).len(), 0);
    let best = &lab.json(&["context"])["reported"][0];
    assert_eq!((best["value"].as_f64(), best["goal"].as_str()), (Some(0.7), Some("maximize")));
}
