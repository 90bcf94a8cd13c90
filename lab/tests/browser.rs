//! `lab report` and `lab serve` in a real headless browser: lab/tests/browser/check_page.py
//! opens the page in Debian's `chromium-headless-shell` (installed by
//! `scripts/setup-browser`), collects console errors, and counts each chart's
//! marks in a screenshot. The page loads clean, every chart is drawn, and the
//! marks of each kind are as many as the lab's own records say (`lab log`);
//! the checker fails a page that throws, logs an error, loads a missing file,
//! lacks a drawn mark or has a chart with no area. A missing browser is a
//! failure naming the set-up command, never a skip.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestLab, lab_with, repo_root};
use serde_json::{Value, json};

#[test]
fn the_report_and_the_dashboard_load_clean_and_draw_one_mark_per_experiment() {
    let lab = research();
    let report = lab.json(&["report"]);
    assert_page_shows_the_records(&lab, &file_url(Path::new(report["path"].as_str().unwrap())));
    let server = common::Server::start(&lab);
    assert_page_shows_the_records(&lab, &format!("http://{}/", server.addr));
    let expected = marks_recorded(&lab);
    assert_eq!(expected["exact"], BTreeMap::from([("crashed", 1), ("discarded", 1), ("kept", 3)]), "{expected:?}");
    assert_eq!(expected["crash"], BTreeMap::from([("crashed", 1), ("discarded", 1), ("kept", 1)]), "{expected:?}");
}

/// The page at `url` loads without a console error and each chart's marks are the lab's records.
fn assert_page_shows_the_records(lab: &TestLab, url: &str) {
    let (code, page, stderr) = check_page(url);
    assert_eq!(code, Some(0), "{url}: {stderr}\n{page:#}");
    assert_eq!(page["console_errors"], json!([]), "{page:#}");
    let expected = marks_recorded(lab);
    let figures = page["figures"].as_array().unwrap();
    assert_eq!(figures.len(), expected.len(), "a chart per leaf: {page:#}");
    for figure in figures {
        let leaf = figure["leaf"].as_str().unwrap();
        let marks = &expected[leaf];
        let finished: u64 = marks.values().sum();
        assert_eq!(figure["drawn"], true, "{leaf}: {page:#}");
        assert_eq!(figure["experiments"], finished, "{leaf}: the page's own count is the lab's: {page:#}");
        assert_eq!(figure["marks"], json!(marks), "{leaf}: the picture's marks are the lab's records: {page:#}");
    }
}

#[test]
fn the_checker_fails_a_broken_page() {
    let lab = research();
    let report = lab.json(&["report"]);
    let html = std::fs::read_to_string(report["path"].as_str().unwrap()).unwrap();
    // The first kept mark of the `exact` chart removed from the picture (its
    // figure still says how many experiments it holds), a script that logs an
    // error and throws, a missing image, and a chart with no area.
    let exact = html.find(r#"data-leaf="exact""#).unwrap();
    let circle = exact + html[exact..].find(r##"<circle"##).unwrap();
    let end = circle + html[circle..].find("/>").unwrap() + 2;
    assert!(html[circle..end].contains(r##"fill="#1B9E4B""##), "a kept mark: {}", &html[circle..end]);
    let broken = format!(
        "{}{}",
        &html[..circle],
        html[end..].replacen(
            "</body>",
            r#"<img src="missing.png" alt="">
<figure class="progress" data-experiments="1"><svg width="0" height="0"></svg></figure>
<script>console.error("lab-broken-page"); throw new Error("lab-broken-script");</script></body>"#,
            1,
        )
    );
    lab.write("broken.html", &broken);
    let (code, page, stderr) = check_page(&file_url(&lab.path("broken.html")));
    assert_eq!(code, Some(1), "the broken page fails the check:\n{stderr}\n{page:#}");
    let errors = page["console_errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect::<Vec<_>>();
    assert!(errors.iter().any(|e| e.starts_with("console.error: lab-broken-page")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("Error: lab-broken-script")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("missing.png")), "{errors:?}");
    let figures = page["figures"].as_array().unwrap();
    let exact = figures.iter().find(|f| f["leaf"] == "exact").unwrap();
    assert_eq!((&exact["drawn"], &exact["experiments"], &exact["marks"]["kept"]), (&json!(true), &json!(5), &json!(2)));
    assert!(stderr.contains("the figure of exact: 4 marks drawn"), "{stderr}");
    assert_eq!(figures.last().unwrap()["drawn"], false, "{page:#}");
    assert!(stderr.contains("figure 3: its chart is not drawn"), "{stderr}");
    let crash = figures.iter().find(|f| f["leaf"] == "crash").unwrap();
    assert_eq!(crash["marks"], json!({ "kept": 1, "discarded": 1, "crashed": 1 }), "untouched: {page:#}");
}

#[test]
fn a_missing_browser_names_the_set_up_command() {
    let out = checker().args(["--browser", "no-such-browser", "file:///nowhere.html"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no no-such-browser on PATH: run scripts/setup-browser"), "{stderr}");
}

/// Two leaves with every kind of mark: harness keeps and discards (a smoke
/// check, which is not charted), a crash, typed keeps and discards, a typed
/// discard with no value (a cross), the leader's band and its held-out read.
fn research() -> TestLab {
    let lab = lab_with(&["exact", "crash"]);
    lab.ok(&["run", "exact", "--decide", "-q"]);
    lab.ok(&["baseline", "exact", "--repeats", "1", "-q"]);
    lab.edit("leaves/exact/train.py", "RIGHT = 0", "RIGHT = 20");
    lab.ok(&["run", "exact", "--decide", "--no-smoke", "-q"]);
    lab.edit("leaves/exact/train.py", "RIGHT = 20", "RIGHT = 5");
    lab.ok(&["run", "exact", "--decide", "--no-smoke", "-q"]);
    lab.ok(&["holdout", "exact"]);
    typed(&lab, "exact", "keep", r#"{"loss": 0.4}"#);
    typed(&lab, "exact", "discard", "{}");
    lab.fails(&["run", "crash", "--decide", "--no-smoke", "-q"], 4);
    typed(&lab, "crash", "keep", r#"{"loss": 0.5}"#);
    typed(&lab, "crash", "discard", r#"{"loss": 0.9}"#);
    lab
}

/// A result typed by an agent for a new experiment of `leaf`.
fn typed(lab: &TestLab, leaf: &str, verdict: &str, metrics: &str) {
    let h = lab.ok(&["hypothesis", &format!("typed {verdict}"), "-m", "why", "--leaf", leaf]);
    let e = lab.ok(&["experiment", h.trim()]);
    lab.ok(&["result", e.trim(), "-v", verdict, "--metrics", metrics]);
}

/// The marks each leaf's chart should hold, from `lab log`: a finished
/// experiment (smoke checks left out) with a loss is a kept or discarded
/// circle, a crash or a result without a loss a cross.
fn marks_recorded(lab: &TestLab) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
    let log: Value = serde_json::from_str(&lab.ok(&["log", "--limit", "0", "--format", "json"])).unwrap();
    let mut marks: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    for row in log.as_array().unwrap().iter().filter(|r| r["check"].is_null()) {
        let kind = match (row["verdict"].as_str(), row["metrics"]["loss"].as_f64()) {
            (None, _) => continue,
            (Some("crash"), _) | (_, None) => "crashed",
            (Some("keep"), _) => "kept",
            (Some(_), _) => "discarded",
        };
        let leaf = marks.entry(row["leaf"].as_str().unwrap().to_owned()).or_default();
        for name in ["kept", "discarded", "crashed"] {
            leaf.entry(name).or_default();
        }
        *leaf.get_mut(kind).unwrap() += 1;
    }
    marks
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// The checker's exit code, its JSON report (null when it printed none) and its stderr.
fn check_page(url: &str) -> (Option<i32>, Value, String) {
    let out = checker().arg(url).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

/// lab/tests/browser/check_page.py under the venv's Python (it needs numpy).
fn checker() -> std::process::Command {
    common::require_venv();
    let mut cmd = std::process::Command::new(repo_root().join(".venv/bin/python"));
    cmd.arg(repo_root().join("lab/tests/browser/check_page.py"));
    cmd
}
