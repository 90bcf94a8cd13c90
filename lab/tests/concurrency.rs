//! Many processes on one database: every write lands, ids stay unique and
//! gap-free, no "database is locked" reaches a user, and SIGKILL in the middle
//! of a write leaves a consistent database.

mod common;

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use common::TestLab;
use rusqlite::Connection;

const WRITERS: usize = 8;
const ROUNDS: usize = 100;

#[test]
fn eight_writers_and_two_readers_at_once() {
    let lab = TestLab::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (lab, stop) = (&lab, stop.clone());
                s.spawn(move || {
                    let mut reads = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        lab.ok(&[if r == 0 { "context" } else { "log" }, "--json"]);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let lab = &lab;
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        let title = format!("w{w} r{round}");
                        let h = lab.ok(&["hypothesis", &title, "-m", "concurrency"]);
                        let e = lab.ok(&["experiment", h.trim()]);
                        let metrics = format!(r#"{{"round": {round}, "writer": {w}}}"#);
                        lab.ok(&["result", e.trim(), "-v", "keep", "--metrics", &metrics]);
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 0);
    });

    let conn = Connection::open(lab.path(".lab/lab.db")).unwrap();
    let total = (WRITERS * ROUNDS) as i64;
    for table in ["hypotheses", "experiments", "results"] {
        let (n, min, max): (i64, i64, i64) = conn
            .query_row(&format!("SELECT COUNT(*), MIN(id), MAX(id) FROM {table}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((n, min, max), (total, 1, total), "{table}: ids must be unique and gap-free");
    }
    // Each experiment belongs to the hypothesis its own writer created, and each
    // result carries that writer's metrics.
    let mismatched: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM results r JOIN experiments e ON e.id = r.experiment_id
             JOIN hypotheses h ON h.id = e.hypothesis_id
             WHERE h.title != 'w' || json_extract(r.metrics, '$.writer') || ' r' || json_extract(r.metrics, '$.round')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mismatched, 0);
    let titles: HashSet<String> = conn
        .prepare("SELECT title FROM hypotheses")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(titles.len(), WRITERS * ROUNDS);
    consistent(&conn);
}

fn consistent(conn: &Connection) {
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let dangling: i64 = conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(dangling, 0);
    let unmirrored: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM results r, json_each(r.metrics) j WHERE r.superseded_by IS NULL
             AND NOT EXISTS (SELECT 1 FROM metrics m WHERE m.result_id = r.id AND m.name = j.key)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unmirrored, 0, "every current result's metrics are indexed");
    common::assert_tallies_exact(conn);
}

#[test]
fn sigkill_during_an_import_leaves_all_rows_or_none() {
    let lab = TestLab::new();
    let rows = 20_000;
    let mut tsv = String::from("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n");
    for i in 0..rows {
        tsv.push_str(&format!("abc{i:04}\t{:.6}\t1.0\tkeep\tidea {i}\n", 1.0 + i as f64 * 1e-6));
    }
    lab.write("results.tsv", &tsv);
    let mut outcomes = HashSet::new();
    for delay_ms in [30, 120, 400] {
        let mut child = lab
            .std_cmd_in(lab.root(), &["import", "results-tsv", "results.tsv"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let conn = Connection::open(lab.path(".lab/lab.db")).unwrap();
        consistent(&conn);
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0)).unwrap();
        assert_eq!(n % rows, 0, "a killed import must land whole or not at all, found {n} rows");
        outcomes.insert(n);
    }
    // The database stays usable afterwards.
    assert!(lab.ok(&["hypothesis", "after the kills", "-m", "m"]).starts_with('h'));
    assert!(outcomes.contains(&0), "at least one kill should land mid-import; outcomes {outcomes:?}");
}

#[test]
fn sigkill_among_single_writes_leaves_a_consistent_database() {
    let lab = TestLab::new();
    let bin = assert_cmd::cargo::cargo_bin("lab");
    let script = format!(
        "while true; do h=$({bin} hypothesis t -m m) && e=$({bin} experiment $h) && {bin} result $e -v keep --metrics '{{\"x\": 1}}' >/dev/null; done",
        bin = bin.display()
    );
    for delay_ms in [200, 500] {
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(lab.root())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .process_group(0)
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(delay_ms));
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL)
            .unwrap();
        child.wait().unwrap();
        consistent(&Connection::open(lab.path(".lab/lab.db")).unwrap());
    }
}
