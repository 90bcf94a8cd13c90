//! `lab run` and `lab doctor` end to end: the real binary, a real embedded
//! interpreter with the project's venv (`LAB_VENV`, set by the harness to
//! `<repo>/.venv`), real git repositories and SQLite files. Fixture leaves under
//! `tests/fixtures/leaves/` stand in for training scripts, one per way a run ends.

mod common;

use std::path::{Path, PathBuf};

use common::{TestLab, copy_dir, lab_with, repo_root, require_venv};
use rusqlite::Connection;
use serde_json::Value;

/// `lab run ARGS --json -q`, requiring exit `code`; the parsed summary.
fn run(lab: &TestLab, args: &[&str], code: i32) -> Value {
    let mut args = [&["run"], args, &["--json", "-q"]].concat();
    args.retain(|a| !a.is_empty());
    let out = lab.cmd(&args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "lab {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

fn db(lab: &TestLab) -> Connection {
    Connection::open(lab.path(".lab/lab.db")).unwrap()
}

fn query<T: rusqlite::types::FromSql>(lab: &TestLab, sql: &str) -> T {
    db(lab).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

#[test]
fn a_run_records_experiment_run_and_result_with_the_metric_the_harness_scored() {
    let lab = lab_with(&["ok"]);
    let s = run(&lab, &["ok", "--seed", "7"], 0);
    assert_eq!((s["verdict"].as_str(), s["exit_reason"].as_str()), (Some("discard"), Some("ok")), "{s:#}");
    assert_eq!((s["value"].as_f64(), s["metric_source"].as_str()), (Some(0.25), Some("harness")));
    assert!(s["sandbox"].as_str().unwrap().starts_with("landlock v"), "this kernel has Landlock: {s:#}");
    assert_eq!(
        (s["device"].as_str(), s["seed"].as_u64(), s["hypothesis"].as_str()),
        (Some("cpu"), Some(7), Some("h1"))
    );
    assert!(read(s["log"].as_str().unwrap()).contains("training on cpu with seed 7 full"));
    let title: String = query(&lab, "SELECT title FROM hypotheses WHERE id = 1");
    assert_eq!(title, "baseline");
    let run_row: (String, i64, String, String) = db(&lab)
        .query_row("SELECT tier, seed, exit_reason, metric_source FROM runs WHERE experiment_id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(run_row, ("full".into(), 7, "ok".into(), "harness".into()));
    let result: (String, f64) = db(&lab)
        .query_row("SELECT verdict, json_extract(metrics, '$.loss') FROM results WHERE experiment_id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(result, ("discard".into(), 0.25));
}

#[test]
fn every_way_of_failing_is_a_recorded_crash_with_its_reason() {
    let cases = [
        ("crash", "exception", "ValueError: learning rate must be positive"),
        ("sysexit", "sys_exit", "sys.exit(3)"),
        ("osexit", "os_exit", "status 7"),
        ("segfault", "signal", "SIGSEGV"),
        ("nan", "non_finite_metric", "predictions[0] is NaN"),
        ("nometric", "missing_metric", "no `loss` was scored on val (scored: accuracy)"),
        ("slow", "budget", "budget 2s exceeded"),
    ];
    let lab = lab_with(&cases.map(|c| c.0));
    for (i, (leaf, reason, detail)) in cases.iter().enumerate() {
        let s = run(&lab, &[leaf], 4);
        assert_eq!((s["verdict"].as_str(), s["exit_reason"].as_str()), (Some("crash"), Some(*reason)), "{leaf}: {s:#}");
        assert!(s["detail"].as_str().unwrap().contains(detail), "{leaf}: {s:#}");
        let sql = format!(
            "SELECT r.verdict || ' ' || u.exit_reason FROM results r JOIN runs u USING (experiment_id) WHERE experiment_id = {}",
            i + 1
        );
        assert_eq!(query::<String>(&lab, &sql), format!("crash {reason}"));
    }
    let crash_log = read(lab.path(".lab/runs/e1/run.log"));
    assert!(crash_log.contains("train.py\", line 5, in train"), "the traceback is in the log:\n{crash_log}");
    let segfault_log = read(lab.path(".lab/runs/e4/run.log"));
    assert!(segfault_log.contains("Segmentation fault") && segfault_log.contains("string_at"), "{segfault_log}");
    let tail: String = query(&lab, "SELECT log_tail FROM runs WHERE experiment_id = 1");
    assert!(tail.contains("ValueError: learning rate must be positive"), "{tail}");

    // Why each crashed, in full where machines read it and cut short in tables;
    // `lab context` shows the latest five failures.
    for (command, listed) in [("log", 7), ("failures", 7), ("context", 5)] {
        let json = lab.json(&[command]);
        let rows = if command == "context" { &json["failures"]["latest"] } else { &json };
        let reasons: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
        assert_eq!(reasons.len(), listed, "{command}: {json:#}");
        for ((_, reason, detail), shown) in cases.iter().rev().zip(&reasons) {
            assert!(shown.starts_with(&format!("{reason}: ")) && shown.contains(detail), "{command}: {shown}");
        }
        let table = lab.ok(&[command, "--leaf", "nometric"]);
        assert!(
            table.contains("reason") && table.contains("missing_metric: no `loss` was scored on val (scored: accura…"),
            "{table}"
        );
    }
}

#[test]
fn nothing_of_a_run_killed_at_the_deadline_survives() {
    let lab = lab_with(&["grandchild"]);
    let s = run(&lab, &["grandchild"], 4);
    assert_eq!(s["exit_reason"], "budget", "{s:#}");
    let pid: i32 = read(lab.path(".lab/runs/e1/full/artifact/grandchild.pid")).trim().parse().unwrap();
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    assert_eq!(alive, Err(nix::errno::Errno::ESRCH), "the grandchild `sleep` (pid {pid}) outlived the run");
}

#[test]
fn a_script_that_watches_the_deadline_finishes_and_is_evaluated() {
    let lab = lab_with(&["timely"]);
    let s = run(&lab, &["timely"], 0);
    assert_eq!(s["exit_reason"], "ok", "{s:#}");
    let loss = s["value"].as_f64().unwrap();
    assert!(loss > 0.0 && loss < 1.0, "1 / steps, with more than one step: {s:#}");
}

#[test]
fn predictions_are_scored_by_the_harness_on_val_and_fingerprinted() {
    let lab = lab_with(&["predictions"]);
    let s = run(&lab, &["predictions"], 0);
    assert_eq!((s["exit_reason"].as_str(), s["metric_source"].as_str()), (Some("ok"), Some("harness")), "{s:#}");
    let files = s["files"].as_array().unwrap();
    let file = |kind: &str, name: &str| -> PathBuf {
        let f = files
            .iter()
            .find(|f| f["kind"] == kind && f["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}: {s:#}"));
        let path = PathBuf::from(f["path"].as_str().unwrap());
        assert_eq!(f["sha256"].as_str().unwrap(), lab::fingerprint::sha256_file(&path).unwrap());
        path
    };
    let (labels, predictions) = (file("labels", "val"), file("predictions", "val"));
    file("predictions", "holdout");
    file("errors", "val");
    let y = lab::supervisor::scoring::read_flat(&labels).unwrap();
    let p = lab::supervisor::scoring::read_flat(&predictions).unwrap();
    let mae = y.iter().zip(&p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64;
    assert!((s["metrics"]["mae"].as_f64().unwrap() - mae).abs() < 1e-12, "{s:#}");
    assert!(s["metrics"]["rmse"].is_number() && s["metrics"]["spearman"].is_number());
    // The prepared data is cached by leaf.lock: a second run does not prepare again.
    run(&lab, &["predictions"], 0);
    let log = read(lab.path(".lab/runs/e2/run.log"));
    assert!(log.contains("predict (budget") && !log.contains("prepare (budget"), "{log}");
}

#[test]
fn decide_keeps_a_baseline_then_only_improvements_and_restores_the_rest() {
    let lab = lab_with(&["ok"]);
    let s = run(&lab, &["ok", "--decide"], 0);
    assert_eq!((s["verdict"].as_str(), s["commit"].as_str()), (Some("keep"), None), "baseline on a clean tree: {s:#}");
    let tiers: String =
        query(&lab, "SELECT group_concat(tier, ',') FROM (SELECT tier FROM runs WHERE experiment_id = 1 ORDER BY id)");
    assert_eq!(tiers, "smoke,full");
    // The gate judges a gap against measured noise: measure it (a deterministic leaf: sd 0).
    lab.ok(&["baseline", "ok", "-q"]);

    let train = lab.path("leaves/ok/train.py");
    std::fs::write(&train, read(&train).replace("\"w\": 0.25", "\"w\": 0.2")).unwrap();
    let s = run(&lab, &["ok", "--decide", "-m", "smaller w"], 0);
    assert_eq!(s["verdict"], "keep", "{s:#}");
    assert_eq!(lab.git(&["log", "-1", "--format=%s"]).trim(), "lab: keep e2 loss=0.2 (smaller w)");
    assert_eq!(lab.git(&["show", "--name-only", "--format=", "HEAD"]).trim(), "leaves/ok/train.py");
    assert_eq!(lab.git(&["status", "--porcelain"]), "");

    let kept = read(&train);
    std::fs::write(&train, kept.replace("\"w\": 0.2", "\"w\": 0.3")).unwrap();
    let s = run(&lab, &["ok", "--decide", "--no-smoke"], 0);
    assert_eq!((s["verdict"].as_str(), s["leader"]["experiment"].as_str()), (Some("discard"), Some("e2")), "{s:#}");
    assert_eq!(read(&train), kept, "a discard restores the mutable files");
    assert!(read(s["patch"].as_str().unwrap()).contains("+    return {\"w\": 0.3}"));
    assert_eq!(lab.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_crash_under_decide_restores_only_mutable_files() {
    let lab = lab_with(&["ok"]);
    run(&lab, &["ok", "--decide"], 0);
    lab.write(".gitignore", "*.ckpt\n");
    lab.git(&["add", ".gitignore"]);
    lab.git(&["commit", "-qm", "ignore checkpoints"]);
    lab.write("leaves/ok/model.ckpt", "weights");
    let train = lab.path("leaves/ok/train.py");
    let original = read(&train);
    std::fs::write(&train, original.replace("return {\"w\": 0.25}", "raise RuntimeError('diverged')")).unwrap();
    let s = run(&lab, &["ok", "--decide"], 4);
    assert_eq!((s["verdict"].as_str(), s["tier"].as_str()), (Some("crash"), Some("smoke")), "{s:#}");
    assert_eq!(read(&train), original);
    assert_eq!(read(lab.path("leaves/ok/model.ckpt")), "weights", "ignored files are never touched");
    assert!(read(s["patch"].as_str().unwrap()).contains("diverged"));
}

#[test]
fn a_failed_smoke_run_stops_before_the_full_run() {
    let lab = lab_with(&["slow"]);
    let s = run(&lab, &["slow", "--decide"], 4);
    assert_eq!((s["tier"].as_str(), s["exit_reason"].as_str()), (Some("smoke"), Some("budget")), "{s:#}");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM runs"), 1);
}

#[test]
fn smoke_runs_are_marked_and_never_kept() {
    let lab = lab_with(&["ok"]);
    let s = run(&lab, &["ok", "--smoke"], 0);
    assert_eq!((s["verdict"].as_str(), s["tier"].as_str()), (Some("discard"), Some("smoke")), "{s:#}");
    assert!(read(s["log"].as_str().unwrap()).contains(" smoke\n"));
    assert_eq!(query::<i64>(&lab, "SELECT smoke FROM experiments WHERE id = 1"), 1);
    assert_eq!(query::<f64>(&lab, "SELECT budget_s FROM runs"), 10.0);
}

#[test]
fn smoke_checks_are_not_failures_of_an_idea() {
    let lab = lab_with(&["ok", "crash"]);
    run(&lab, &["ok", "--smoke"], 0);
    run(&lab, &["crash", "--smoke"], 4);
    run(&lab, &["crash", "--decide", "--no-smoke"], 4);
    let failures = lab.json(&["failures"]);
    let shown: Vec<&str> = failures.as_array().unwrap().iter().map(|r| r["experiment"].as_str().unwrap()).collect();
    assert_eq!(shown, ["e3"], "only the full run's crash is a failure: {failures:#}");
    let context = lab.json(&["context"]);
    let counts = &context["counts"];
    assert_eq!(
        (counts["discard"].as_u64(), counts["crash"].as_u64(), counts["checks"].as_u64()),
        (Some(0), Some(1), Some(2))
    );
    let log = lab.json(&["log"]);
    let verdicts: Vec<(&str, Option<&str>)> =
        log.as_array().unwrap().iter().map(|r| (r["verdict"].as_str().unwrap(), r["check"].as_str())).collect();
    assert_eq!(verdicts, [("crash", None), ("crash", Some("smoke")), ("discard", Some("smoke"))]);
    let table = lab.ok(&["context", "--leaf", "crash"]);
    assert!(table.contains("smoke check failed"), "{table}");
    let titles: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["baseline", "smoke check", "smoke check"], "never under the baseline's hypothesis");
    let open = &lab.json(&["context"])["open_hypotheses"];
    assert_eq!(open.as_array().map(Vec::len), Some(0), "standing hypotheses are not ideas waiting: {open:#}");
    run(&lab, &["ok", "--smoke", "-m", "an idea"], 0);
    let open = &lab.json(&["context"])["open_hypotheses"];
    assert_eq!(open[0]["title"], "an idea", "a smoke check does not test the idea: {open:#}");
}

#[test]
fn changed_frozen_files_and_stray_files_in_the_leaf_are_refused_but_not_files_elsewhere() {
    let lab = lab_with(&["ok"]);
    let data = lab.path("leaves/ok/data.py");
    let original = read(&data);
    std::fs::write(&data, format!("{original}# tuned\n")).unwrap();
    let err = lab.fails(&["run", "ok", "-q"], 3);
    assert!(err.contains("`data.py` changed since the lock"), "{err}");
    std::fs::write(&data, original).unwrap();

    lab.write("leaves/ok/helper.py", "x = 1\n");
    lab.write("notes.txt", "outside the leaf\n");
    let err = lab.fails(&["run", "ok", "-q"], 3);
    assert!(err.contains("`leaves/ok/helper.py`") && !err.contains("notes.txt"), "{err}");
    assert!(err.contains("git add -- leaves/ok/helper.py && git commit -m"), "the refusal says what to run: {err}");
    assert!(err.contains("git stash push --include-untracked -- leaves/ok/helper.py"), "{err}");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM experiments"), 0, "a refusal records nothing");

    std::fs::remove_file(lab.path("leaves/ok/helper.py")).unwrap();
    run(&lab, &["ok", "--smoke"], 0);
}

#[test]
fn a_keep_commits_only_the_leaf_whatever_else_is_dirty() {
    let lab = lab_with(&["ok"]);
    lab.write("README.md", "committed\n");
    lab.git(&["add", "README.md"]);
    lab.git(&["commit", "-qm", "readme"]);
    run(&lab, &["ok", "--decide"], 0);
    lab.ok(&["baseline", "ok", "-q"]);
    lab.write("README.md", "edited, not committed\n");
    lab.write("notes.txt", "untracked\n");
    lab.git(&["add", "README.md"]);
    lab.edit("leaves/ok/train.py", "\"w\": 0.25", "\"w\": 0.2");
    let s = run(&lab, &["ok", "--decide", "-m", "smaller w"], 0);
    assert_eq!(s["verdict"], "keep", "{s:#}");
    assert_eq!(lab.git(&["show", "--name-only", "--format=", "HEAD"]).trim(), "leaves/ok/train.py");
    assert_eq!(lab.git(&["status", "--porcelain"]), "M  README.md\n?? notes.txt\n", "the rest is left as it was");
}

#[test]
fn a_leaf_never_committed_is_refused_with_the_commit_to_make() {
    let lab = lab_with(&[]);
    copy_dir(&repo_root().join("lab/tests/fixtures/leaves/ok"), &lab.path("leaves/ok"));
    let err = lab.fails(&["run", "ok", "-q"], 3);
    assert!(err.contains("leaf `ok` is not committed yet"), "{err}");
    assert!(err.contains("`git add -- leaves/ok && git commit -m \"Add leaf ok\"`"), "{err}");
    lab.git(&["add", "--", "leaves/ok"]);
    lab.git(&["commit", "-qm", "Add leaf ok"]);
    run(&lab, &["ok", "--smoke"], 0);
}

#[test]
fn a_package_the_leaf_requires_that_the_venv_lacks_is_refused_before_anything_is_recorded() {
    let lab = lab_with(&["requires"]);
    for args in [
        &["run", "requires", "-q"][..],
        &["run", "requires", "--smoke", "-q"],
        &["run", "requires", "--decide"],
        &["baseline", "requires", "-q"],
    ] {
        let err = lab.fails(args, 3);
        assert!(err.contains("requires `lab-fixture-no-such-package`") && !err.contains("`numpy`"), "{err}");
        assert!(err.contains("scripts/setup") && err.contains("LAB_VENV") && err.contains("lab doctor"), "{err}");
    }
    let no_venv = lab.cmd(&["run", "requires", "-q"]).env("LAB_VENV", "").output().unwrap();
    let err = String::from_utf8_lossy(&no_venv.stderr);
    assert_eq!(no_venv.status.code(), Some(3), "{err}");
    assert!(err.contains("no venv was found") && err.contains("`scripts/setup`"), "{err}");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM experiments"), 0, "a refusal records nothing");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM hypotheses"), 0);
}

#[test]
fn hypotheses_are_given_made_from_a_message_or_standing() {
    let lab = lab_with(&["ok"]);
    lab.ok(&["hypothesis", "lower w", "-m", "smaller weights"]);
    assert_eq!(run(&lab, &["ok", "--hypothesis", "h1"], 0)["hypothesis"], "h1");
    assert_eq!(run(&lab, &["ok", "-m", "try again"], 0)["hypothesis"], "h2");
    assert_eq!(run(&lab, &["ok"], 0)["hypothesis"], "h3");
    assert_eq!(run(&lab, &["ok"], 0)["hypothesis"], "h3", "the standing hypothesis is reused");
    let inside = lab.cmd_in(&lab.path("leaves/ok"), &["run", "--json", "-q"]).output().unwrap();
    let s: Value = serde_json::from_slice(&inside.stdout).unwrap();
    assert_eq!((s["leaf"].as_str(), s["hypothesis"].as_str()), (Some("ok"), Some("h3")), "run from inside the leaf");
    let err = lab.fails(&["run", "ok", "--hypothesis", "h9", "-q"], 2);
    assert!(err.contains("no hypothesis h9"), "{err}");
}

#[test]
fn doctor_reports_the_interpreter_packages_and_database() {
    require_venv();
    let lab = TestLab::new();
    let out = lab.cmd(&["doctor", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}\n{}", String::from_utf8_lossy(&out.stderr));
    let python = &report["python"];
    assert!(python["version"].as_str().unwrap().starts_with("3."), "{report:#}");
    assert!(python["executable"].as_str().unwrap().ends_with(".venv/bin/python"), "{report:#}");
    assert!(!python["numpy"].as_str().unwrap().starts_with("not installed"), "{report:#}");
    assert!(python["torch"].is_string(), "a version or `not installed (...)`: {report:#}");
    assert_eq!(report["venv_source"], "LAB_VENV");
    assert_eq!(report["schema_version"], report["schema_latest"]);
    assert!(report["database"].as_str().unwrap().ends_with(".lab/lab.db"));
}

#[test]
fn a_spawn_pool_imports_the_train_module_and_lab_in_its_children() {
    let lab = lab_with(&["spawn"]);
    let s = run(&lab, &["spawn", "--seed", "5"], 0);
    assert_eq!((s["exit_reason"].as_str(), s["value"].as_f64()), (Some("ok"), Some(14.0)), "{s:#}");
}

#[test]
fn a_stopped_supervisor_kills_its_run_and_records_it() {
    let lab = lab_with(&["grandchild"]);
    let args = ["run", "grandchild", "--budget", "60s", "-q", "--json"];
    let mut cmd = lab.std_cmd_in(lab.root(), &args);
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid_file = lab.path(".lab/runs/e1/full/artifact/grandchild.pid");
    let waiting = std::time::Instant::now();
    let grandchild = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse::<i32>().ok()) {
            break pid;
        }
        assert!(waiting.elapsed().as_secs() < 60, "the fixture never started its grandchild");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let supervisor = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(supervisor, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["exit_reason"], "interrupted", "{s:#}");
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(grandchild), None);
    assert_eq!(alive, Err(nix::errno::Errno::ESRCH), "the grandchild outlived the stopped run");
    assert_eq!(query::<String>(&lab, "SELECT verdict FROM results WHERE experiment_id = 1"), "crash");
}

#[test]
fn each_run_records_the_versions_of_the_packages_its_leaf_declares() {
    let lab = lab_with(&["ok"]);
    let manifest = read(lab.path("leaves/ok/leaf.yaml"));
    lab.write("leaves/ok/leaf.yaml", &format!("{manifest}python: {{ requires: [\"numpy>=1.20\"] }}\n"));
    lab.ok(&["lock", "ok"]);
    lab.git(&["commit", "-qam", "ok declares numpy"]);
    run(&lab, &["ok", "--smoke"], 0);
    let venv = common::repo_root().join(".venv/bin/python");
    let out = std::process::Command::new(venv).args(["-c", "import numpy; print(numpy.__version__)"]).output().unwrap();
    let installed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let recorded: String = query(&lab, "SELECT name || '==' || version FROM run_packages WHERE run_id = 1");
    assert_eq!(recorded, format!("numpy=={installed}"), "the version the worker imports, not the specifier");
    let report = lab.json(&["verify"]);
    assert_eq!(report["ok"], true, "chained like every record: {report:#}");
}
