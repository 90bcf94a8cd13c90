//! The attack suite: what a reward-hacking agent's code would try, one test per
//! class of attack found against lab (issue "Sealed evaluation"), each asserting
//! that the attack is refused or flagged and that nothing it did became harness
//! truth. The fixtures are hostile leaves (`attack-predict`, `attack-artifact`,
//! `attack-lm`) whose mutable code names its attacks in a constant the tests
//! set, and prints `ATTACK name: blocked: ...` or `ATTACK name: SUCCEEDED` for
//! each; `attack-seed` is deterministic code whose one lucky seed the test
//! commits as a candidate. Where an attack only fails because of the sandbox,
//! the same attack is run once with `LAB_SANDBOX=off` to show that it would
//! have worked: these tests can fail.

mod common;

use std::time::{Duration, Instant};

use common::{TestLab, lab_with};
use serde_json::Value;

/// The lines `ATTACK name: ...` of experiment `e`'s log.
fn attack_lines(lab: &TestLab, e: &str) -> Vec<String> {
    let log = std::fs::read_to_string(lab.path(&format!(".lab/runs/{e}/run.log"))).unwrap();
    log.lines().filter(|l| l.starts_with("ATTACK ")).map(str::to_owned).collect()
}

/// Each named attack was tried and blocked.
fn assert_blocked(lab: &TestLab, e: &str, attacks: &[&str]) {
    let lines = attack_lines(lab, e);
    for attack in attacks {
        let line = lines.iter().find(|l| l.starts_with(&format!("ATTACK {attack}:")));
        let line = line.unwrap_or_else(|| panic!("{attack} was not tried: {lines:#?}"));
        assert!(line.contains(": blocked: "), "{line}");
    }
}

fn set_attacks(lab: &TestLab, leaf: &str, file: &str, attacks: &[&str]) {
    let list: Vec<String> = attacks.iter().map(|a| format!("{a:?}")).collect();
    lab.edit(&format!("leaves/{leaf}/{file}"), "ATTACKS = []", &format!("ATTACKS = [{}]", list.join(", ")));
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Wait up to `limit` for every pid to be gone; the ones still alive.
fn survivors(pids: &[i32], limit: Duration) -> Vec<i32> {
    let until = Instant::now() + limit;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids the chain of experiment `e` wrote so far.
fn chain_pids(lab: &TestLab, e: &str) -> Vec<i32> {
    std::fs::read_dir(lab.path(&format!(".lab/runs/{e}/full/artifact")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("chain-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
        .collect()
}

/// The `lab __keeper` child of the supervisor `pid` for its worker `worker`
/// (`train`, `infer`: an artifact-mode run holds both while it trains).
fn keeper_of(pid: i32, worker: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let child: i32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?).into_owned();
        let spec = format!("/{worker}.json");
        (ppid == pid && cmdline.contains("__keeper") && cmdline.contains(&spec)).then_some(child)
    })
}

/// The processes whose command line names a path under `root`: every keeper
/// and worker of a lab there.
fn processes_under(root: &std::path::Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    let mine = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok() && n != mine))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&root))
        .collect()
}

const READS: &[&str] =
    &["read_targets", "call_data", "read_leaf", "read_package", "read_db", "read_git", "list_runs", "inherited_fds"];
const WRITES: &[&str] =
    &["write_targets", "write_db", "write_leaf", "write_snapshot", "write_tmp", "signal_keeper", "network"];

#[test]
fn code_under_judgement_cannot_read_its_answers_nor_touch_the_records() {
    let lab = lab_with(&["attack-predict"]);
    let honest = lab.run(&["attack-predict", "--decide", "--no-smoke"], 0);
    assert_eq!(honest["verdict"], "keep", "the baseline: {honest:#}");
    let honest_mae = honest["value"].as_f64().unwrap();

    set_attacks(&lab, "attack-predict", "predict.py", &[READS, WRITES].concat());
    let s = lab.run(&["attack-predict"], 0);
    assert_blocked(&lab, "e2", &[READS, WRITES].concat());
    assert_eq!(s["value"].as_f64(), Some(honest_mae), "no attack reached the answers: {s:#}");
    let (verify, _) = lab.exits(&["verify", "--json"], 0);
    assert_eq!(serde_json::from_str::<Value>(&verify).unwrap()["ok"], true, "the records are intact");

    // The control: without the sandbox the same code reads its answers; the run
    // is recorded as unsandboxed, and never kept.
    lab.git(&["checkout", "-q", "leaves"]);
    set_attacks(&lab, "attack-predict", "predict.py", &["read_targets", "read_leaf", "read_db", "read_git"]);
    let out = lab
        .cmd(&["run", "attack-predict", "--decide", "--no-smoke", "--json", "-q"])
        .env("LAB_SANDBOX", "off")
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((s["value"].as_f64(), s["sandbox"].as_str()), (Some(0.0), Some("disabled")), "{s:#}");
    assert_eq!(s["verdict"], "discard", "an unsandboxed run is never kept: {s:#}");
    assert!(s["note"].as_str().unwrap().contains("the sandbox was disabled"), "{s:#}");
    assert!(attack_lines(&lab, "e3").iter().all(|l| l.ends_with("SUCCEEDED")), "{:#?}", attack_lines(&lab, "e3"));
    let log = lab.ok(&["log", "--leaf", "attack-predict"]);
    assert!(log.contains("unsandboxed (disabled)"), "the run is flagged wherever it is shown:\n{log}");
    let leader = lab.json(&["context", "--leaf", "attack-predict"]);
    assert!(leader.to_string().contains(&honest_mae.to_string()), "the honest keep still leads: {leader:#}");
}

#[test]
fn patching_the_scorer_or_forging_events_changes_no_number() {
    let lab = lab_with(&["attack-artifact"]);
    let honest = lab.run(&["attack-artifact"], 0)["value"].as_f64().unwrap();
    set_attacks(&lab, "attack-artifact", "train.py", &["patch_scorer", "forge_events"]);
    let s = lab.run(&["attack-artifact"], 0);
    // Both "succeed" inside the training process: the scorer never runs there.
    let lines = attack_lines(&lab, "e2");
    assert!(lines.iter().all(|l| l.ends_with("SUCCEEDED")) && lines.len() == 2, "{lines:#?}");
    assert_eq!(s["value"].as_f64(), Some(honest), "the frozen score ran in a process of its own: {s:#}");
    assert!(honest > 0.5, "a real error, not a patched zero: {honest}");
}

#[test]
fn the_code_that_ran_is_the_snapshot_whatever_the_tree_holds() {
    let lab = lab_with(&["attack-artifact"]);
    let honest = lab.run(&["attack-artifact", "--decide", "--no-smoke"], 0)["value"].as_f64().unwrap();

    // A stale bytecode file of the frozen scorer, forged to score zero, with the
    // real source's mtime and size in its header: never loaded.
    let pyc = r#"
import importlib.util, os, py_compile, shutil, sys, tempfile
leaf = sys.argv[1]
real = os.path.join(leaf, "evaluate.py")
fake = os.path.join(tempfile.mkdtemp(), "evaluate.py")
open(fake, "w").write("def score(lab, inputs, outputs, targets):\n    return {'loss': [0.0] * len(outputs)}\n")
st = os.stat(real)
os.utime(fake, (st.st_atime, st.st_mtime))
target = importlib.util.cache_from_source(real)
os.makedirs(os.path.dirname(target), exist_ok=True)
py_compile.compile(fake, cfile=target)
data = bytearray(open(target, "rb").read())
data[8:12] = int(st.st_mtime).to_bytes(4, "little")
data[12:16] = st.st_size.to_bytes(4, "little")
open(target, "wb").write(bytes(data))
"#;
    let python = common::repo_root().join(".venv/bin/python");
    let forged =
        std::process::Command::new(&python).args(["-c", pyc]).arg(lab.path("leaves/attack-artifact")).status().unwrap();
    assert!(forged.success());
    assert!(lab.path("leaves/attack-artifact/__pycache__").is_dir());
    let s = lab.run(&["attack-artifact"], 0);
    assert_eq!(s["value"].as_f64(), Some(honest), "the forged bytecode was never loaded: {s:#}");

    // A run keeps what it snapshotted at launch: the tree rewritten during the
    // run (into an innocent version) is neither what ran nor what is committed.
    lab.edit(
        "leaves/attack-artifact/train.py",
        "    return {\"mean\": sum(data) / len(data)}",
        "    time.sleep(2)\n    return {\"mean\": 0.0}",
    );
    let ran = std::fs::read_to_string(lab.path("leaves/attack-artifact/train.py")).unwrap();
    let mut cmd = lab.std_cmd_in(lab.root(), &["run", "attack-artifact", "--decide", "--no-smoke", "--json", "-q"]);
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    lab.write("leaves/attack-artifact/train.py", "# an innocent file\n");
    let out = child.wait_with_output().unwrap();
    let s: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    // Scalar mode without a noise estimate: a discard, whose patch is what ran,
    // and which leaves the file as it was edited during the run.
    assert_eq!(s["verdict"], "discard", "{s:#}");
    let snapshot = std::fs::read_to_string(lab.path(".lab/runs/e3/code/train.py")).unwrap();
    assert_eq!(snapshot, ran, "the snapshot is what ran");
    let patch = std::fs::read_to_string(s["patch"].as_str().unwrap()).unwrap();
    assert!(patch.contains("+    time.sleep(2)") && !patch.contains("innocent"), "{patch}");
    assert_eq!(std::fs::read_to_string(lab.path("leaves/attack-artifact/train.py")).unwrap(), "# an innocent file\n");
    assert!(lab.git(&["show", "HEAD:leaves/attack-artifact/train.py"]).contains("sum(data) / len(data)"));
    lab.git(&["checkout", "-q", "leaves"]);

    // A symbolic link among the leaf's files could point the snapshot anywhere.
    std::os::unix::fs::symlink("/etc/hostname", lab.path("leaves/attack-artifact/helper.py")).unwrap();
    let err = lab.fails(&["run", "attack-artifact", "-q"], 3);
    assert!(err.contains("symbolic link") && err.contains("helper.py"), "{err}");
}

#[test]
fn the_agents_environment_never_reaches_the_worker() {
    // Debian's libpython (same soname as the build's) first on the loader path,
    // and a sitecustomize on PYTHONPATH: a worker's environment is built from
    // nothing, so neither loads before the sandbox.
    let lab = lab_with(&["ok"]);
    let inject = tempfile::tempdir().unwrap();
    let sitecustomize = inject.path().join("sitecustomize.py");
    std::fs::write(&sitecustomize, "raise SystemExit('sitecustomize ran in the worker')\n").unwrap();
    let out = lab
        .cmd(&["run", "ok", "--json", "-q"])
        .env("LD_LIBRARY_PATH", "/usr/lib/x86_64-linux-gnu")
        .env("LD_PRELOAD", inject.path().join("missing.so"))
        .env("PYTHONPATH", inject.path())
        .env("PYTHONSTARTUP", &sitecustomize)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((s["exit_reason"].as_str(), s["value"].as_f64()), (Some("ok"), Some(0.25)), "{s:#}");
    let env: String = lab.db().query_row("SELECT environment FROM runs", [], |r| r.get(0)).unwrap();
    let env: Value = serde_json::from_str(&env).unwrap();
    for name in ["LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONSTARTUP"] {
        assert!(env.get(name).is_none(), "{name}: {env:#}");
    }
    assert!(!env["PYTHONPATH"].as_str().unwrap().contains(&inject.path().display().to_string()), "{env:#}");
}

#[test]
fn typing_the_number_never_beats_the_harness() {
    let lab = lab_with(&["ok"]);
    lab.run(&["ok", "--decide", "--no-smoke"], 0);
    lab.edit("leaves/ok/train.py", "\"w\": 0.25", "\"w\": 0.5");
    let s = lab.run(&["ok", "--decide", "--no-smoke"], 0);
    assert_eq!(s["verdict"], "discard", "{s:#}");
    let err = lab.fails(&["result", "e2", "-v", "keep", "--metrics", r#"{"loss": 0.0001}"#, "--amend"], 3);
    assert!(err.contains("the harness"), "{err}");
    // A typed keep with no run at all is shown as typed, never as best.
    lab.ok(&["hypothesis", "typed", "-m", "trust me", "--leaf", "ok"]);
    lab.ok(&["experiment", "h3", "--leaf", "ok"]);
    lab.ok(&["result", "e3", "-v", "keep", "--metrics", r#"{"loss": 0.0}"#]);
    let context = lab.json(&["context", "--leaf", "ok"]);
    let best = context["best"].to_string();
    assert!(best.contains("0.25") && !best.contains("0.0,") && !best.contains(":0.0}"), "{context:#}");
    let failures = lab.ok(&["failures", "--leaf", "ok"]);
    assert!(failures.contains("e2"), "the harness discard stays a failure: {failures}");
}

#[test]
fn a_relock_starts_a_new_comparison_with_no_free_keep() {
    let lab = lab_with(&["ok"]);
    lab.run(&["ok", "--decide", "--no-smoke"], 0);
    // Whitespace in a frozen file, a relock, and a worse candidate in the same commit.
    lab.edit("leaves/ok/data.py", "\"\"\"Frozen:", "\"\"\"Frozen: ");
    lab.ok(&["lock", "ok"]);
    lab.git(&["commit", "-qam", "relock"]);
    lab.edit("leaves/ok/train.py", "\"w\": 0.25", "\"w\": 9.0");
    let err = lab.fails(&["run", "ok", "--decide", "--no-smoke", "-q"], 3);
    assert!(err.contains("no leader under its current leaf.lock") && err.contains("committed code"), "{err}");
    lab.git(&["checkout", "-q", "leaves"]);
    let s = lab.run(&["ok", "--decide", "--no-smoke"], 0);
    assert!(s["note"].as_str().unwrap().contains("the baseline"), "{s:#}");
    let context = lab.ok(&["context", "--leaf", "ok"]);
    assert!(context.contains("data.py"), "the view names what the relock changed:\n{context}");
}

#[test]
fn fishing_for_a_lucky_seed_in_deterministic_code_is_never_kept() {
    let lab = lab_with(&["attack-seed"]);
    assert_eq!(lab.run(&["attack-seed", "--decide", "--seed", "1"], 0)["verdict"], "keep");
    let b = lab.json(&["baseline", "attack-seed", "--repeats", "1", "-q"]);
    assert_eq!(b["sd"].as_f64(), Some(0.0), "reruns agree exactly: {b:#}");
    // The seed that suits the val items: right on every one of them, so the
    // gate's interval clears; a rerun would repeat it exactly and prove nothing.
    lab.edit("leaves/attack-seed/train.py", "SEED = 0", "SEED = 7");
    let s = lab.run(&["attack-seed", "--decide", "--no-smoke"], 0);
    assert_eq!(s["verdict"], "discard", "{s:#}");
    let note = s["note"].as_str().unwrap();
    assert!(note.contains("clears the minimum"), "the evidence alone would keep it: {note}");
    assert!(
        note.contains("flagged seed-only and its code is deterministic (its runs agree exactly)")
            && note.contains("never kept"),
        "{note}"
    );
    let e = s["experiment"].as_str().unwrap();
    let g = lab.json(&["gate", e]);
    assert_eq!((g["decided"]["verdict"].as_str(), g["flags"][0].as_str()), (Some("fail"), Some("seed-only")), "{g:#}");
    assert_eq!(g["n"].as_u64(), Some(1), "no rerun asked of code whose reruns agree exactly: {g:#}");
    // The same gain as a change of behaviour is no seed pick: judged on its items, and kept.
    lab.edit("leaves/attack-seed/train.py", "RIGHT = 20 if SEED == 7 else 0", "RIGHT = 20");
    assert_eq!(lab.run(&["attack-seed", "--decide", "--no-smoke"], 0)["verdict"], "keep");
}

#[test]
fn escaping_the_budget_or_flooding_the_log_is_a_crash() {
    let lab = lab_with(&["attack-artifact"]);
    lab.edit("leaves/attack-artifact/train.py", "LAZY_OUTPUTS = False", "LAZY_OUTPUTS = True");
    let s = lab.run(&["attack-artifact"], 4);
    assert_eq!(s["exit_reason"], "budget", "outputs are materialised inside infer's budget: {s:#}");
    assert!(s["detail"].as_str().unwrap().contains("infer was still running"), "{s:#}");
    lab.git(&["checkout", "-q", "leaves"]);

    lab.edit("leaves/attack-artifact/train.py", "FLOOD_LOG = False", "FLOOD_LOG = True");
    let s = lab.run(&["attack-artifact"], 4);
    assert_eq!(s["exit_reason"], "log_limit", "{s:#}");
    let size = std::fs::metadata(lab.path(".lab/runs/e2/run.log")).unwrap().len();
    assert!(size <= lab::supervisor::pipeline::LOG_CAP + 4096, "the log is capped: {size} bytes");
}

#[test]
fn the_infer_worker_started_early_runs_nothing_of_the_leaf_before_train_ends() {
    // infer's interpreter starts while train runs (the runner's overhead), and
    // gets its go only once train is gone: its import of the leaf's module comes
    // after train's last line, however long train takes.
    let lab = lab_with(&["attack-artifact"]);
    lab.edit("leaves/attack-artifact/train.py", "TRAIN_SECONDS = 0.0", "TRAIN_SECONDS = 1.0");
    lab.git(&["commit", "-qam", "a slow train"]);
    lab.run(&["attack-artifact", "--decide", "--no-smoke"], 0);
    let log = std::fs::read_to_string(lab.path(".lab/runs/e1/run.log")).unwrap();
    let times = |tag: &str| -> Vec<f64> {
        log.lines().filter_map(|l| l.strip_prefix(tag)).map(|t| t.trim().parse().unwrap()).collect()
    };
    let (imported, trained) = (times("IMPORTED "), times("TRAINED "));
    assert_eq!((imported.len(), trained.len()), (2, 1), "{log}");
    assert!(imported[0] < trained[0] && trained[0] <= imported[1], "infer imported the leaf during train: {log}");

    // A train that fails cancels the waiting infer worker: nothing of it is left.
    lab.edit("leaves/attack-artifact/train.py", "FLOOD_LOG = False", "FLOOD_LOG = True");
    let s = lab.run(&["attack-artifact", "--decide", "--no-smoke"], 4);
    assert_eq!(s["exit_reason"], "log_limit", "{s:#}");
    let log = std::fs::read_to_string(lab.path(".lab/runs/e2/run.log")).unwrap();
    assert_eq!(log.matches("IMPORTED ").count(), 1, "only train imported the leaf");
    assert_eq!(processes_under(lab.root()), Vec::<String>::new(), "a cancelled worker was left running");
}

#[test]
fn nothing_the_judged_code_starts_outlives_its_run() {
    let lab = lab_with(&["attack-artifact"]);
    // Fifteen nested processes, each in a session of its own.
    lab.edit("leaves/attack-artifact/train.py", "CHAIN = 0", "CHAIN = 15");
    lab.run(&["attack-artifact"], 0);
    let pids: Vec<i32> = (1..=15)
        .map(|i| std::fs::read_to_string(lab.path(&format!(".lab/runs/e1/full/artifact/chain-{i}.pid"))).unwrap())
        .map(|t| t.trim().parse().unwrap())
        .collect();
    assert_eq!(survivors(&pids, Duration::from_secs(2)), Vec::<i32>::new(), "the chain outlived the run");

    // The supervisor itself killed with SIGKILL: its keeper ends the run.
    let mut cmd = lab.std_cmd_in(lab.root(), &["run", "attack-artifact", "--budget", "60s", "-q"]);
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let first = lab.path(".lab/runs/e2/full/artifact/chain-15.pid");
    let waiting = Instant::now();
    while !first.is_file() {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the chain never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pids = chain_pids(&lab, "e2");
    assert!(!pids.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(survivors(&pids, Duration::from_secs(5)), Vec::<i32>::new(), "processes outlived a killed supervisor");
    // Its experiment is stale, and `lab sweep` closes it.
    lab.ok(&["sweep"]);
    let verdict: String =
        lab.db().query_row("SELECT verdict FROM results WHERE experiment_id = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(verdict, "crash");

    // The supervisor and its keeper killed together: `lab sweep` ends what is left.
    let mut cmd = lab.std_cmd_in(lab.root(), &["run", "attack-artifact", "--budget", "60s", "-q"]);
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let chain = lab.path(".lab/runs/e3/full/artifact");
    let waiting = Instant::now();
    while std::fs::read_dir(&chain).map_or(0, |d| d.count()) < 15 {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the chain never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let keeper = keeper_of(child.id() as i32, "train").expect("the run has a keeper");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keeper), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let pids = chain_pids(&lab, "e3");
    assert_eq!(pids.len(), 15);
    assert!(!survivors(&pids, Duration::from_millis(300)).is_empty(), "with no keeper the chain survives, until swept");
    let swept = lab.ok(&["sweep"]);
    assert!(swept.contains("ended"), "{swept}");
    assert_eq!(survivors(&pids, Duration::from_secs(5)), Vec::<i32>::new(), "lab sweep left processes running");
}

#[test]
fn a_language_model_that_reads_ahead_is_refused() {
    let lab = lab_with(&["attack-lm"]);
    let honest = lab.run(&["attack-lm"], 0);
    assert!(honest["value"].as_f64().unwrap() > 0.5, "{honest:#}");
    lab.edit("leaves/attack-lm/train.py", "PEEK = False", "PEEK = True");
    let s = lab.run(&["attack-lm"], 4);
    assert_eq!(s["exit_reason"], "not_causal", "{s:#}");
    assert!(s["detail"].as_str().unwrap().contains("is not causal"), "{s:#}");
    assert!(s["metrics"].as_object().unwrap().is_empty(), "no metric of a refused model: {s:#}");
    // Causal when probed (the probe batch has another size), reading ahead otherwise.
    lab.git(&["checkout", "-q", "leaves"]);
    lab.edit("leaves/attack-lm/train.py", "PEEK_UNPROBED = False", "PEEK_UNPROBED = True");
    let s = lab.run(&["attack-lm"], 4);
    assert_eq!(s["exit_reason"], "not_causal", "{s:#}");
    assert!(s["detail"].as_str().unwrap().contains("differ between two runs of infer"), "{s:#}");
}

#[test]
fn tampering_after_the_fact_is_named_by_verify() {
    let lab = lab_with(&["attack-artifact", "predictions"]);
    lab.run(&["attack-artifact", "--decide", "--no-smoke"], 0);
    lab.run(&["predictions", "--decide", "--no-smoke"], 0);
    let (out, _) = lab.exits(&["verify", "--json"], 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    let scores = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "scores").unwrap();
    assert_eq!((scores["verdict"].as_str(), scores["checked"].as_u64()), (Some("holds"), Some(2)), "{report:#}");

    // A kept run's outputs edited, with its sha256 rewritten in the database too.
    let outputs = lab.path(".lab/runs/e1/full/out/val.npy");
    let mut bytes = std::fs::read(&outputs).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&outputs, bytes).unwrap();
    let sha = lab::fingerprint::sha256_file(&outputs).unwrap();
    lab.db()
        .execute(
            "UPDATE run_files SET sha256 = ?1 WHERE kind = 'outputs' AND name = 'val' AND path = ?2",
            rusqlite::params![sha, outputs.display().to_string()],
        )
        .unwrap();
    let (out, _) = lab.exits(&["verify", "--json"], 3);
    let report: Value = serde_json::from_str(&out).unwrap();
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fails")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"rows"), "the edited row no longer matches its chain entry: {report:#}");

    // A kept prediction file edited on disk only.
    let lab = lab_with(&["predictions"]);
    lab.run(&["predictions", "--decide", "--no-smoke"], 0);
    let val = lab.path(".lab/runs/e1/full/out/val.npy");
    let mut bytes = std::fs::read(&val).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&val, bytes).unwrap();
    let (_, err) = lab.exits(&["verify"], 3);
    assert!(
        err.contains("files: run_files e1 predictions val") && err.contains("changed since it was scored"),
        "{err}"
    );
}
