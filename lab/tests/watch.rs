//! `lab watch` end to end: it follows a running experiment to its end and
//! prints its result, quietly when piped; refusals when nothing runs.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{lab_with, require_venv};

#[test]
fn watch_follows_a_run_to_its_end_quietly_when_piped() {
    require_venv();
    let lab = lab_with(&["slow"]);
    assert!(lab.fails(&["watch"], 2).contains("no experiment is running"));
    let mut run = lab.std_cmd_in(lab.root(), &["run", "slow", "--decide", "--no-smoke", "-q"]);
    let mut run = run.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    let running = || {
        lab.db()
            .query_row("SELECT count(*) FROM experiments WHERE status = 'running'", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    while running() == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(running(), 1, "the run started");
    let out = lab.cmd(&["watch"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(run.try_wait().unwrap().is_some() || running() == 0, "watch returned once the run ended");
    assert_eq!(stdout.trim(), "e1: crash", "the verdict of the run it followed: {stdout}");
    assert!(stderr.is_empty(), "quiet when piped: {stderr}");
    run.wait().unwrap();
    let json = lab.json(&["watch", "e1"]);
    assert_eq!(json["verdict"], "crash", "a finished experiment answers at once: {json}");
    assert!(lab.fails(&["watch", "e9"], 2).contains("no experiment e9"));
}
