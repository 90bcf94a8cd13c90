//! `lab report` and `lab plot --experiment` end to end: the page holds every
//! leaf's chart with one mark per finished experiment, the leader with the
//! gate's interval, the held-out read as recorded (the report reads none),
//! the table of experiments with the agent's text escaped; curves come from
//! what the code reported; bad output paths are refused.

mod common;

use common::{lab_with, require_venv};

#[test]
fn the_report_shows_the_research_and_escapes_what_agents_typed() {
    require_venv();
    let lab = lab_with(&["exact", "predictions", "crash"]);
    lab.ok(&["run", "exact", "--decide", "--no-smoke", "-q"]);
    lab.ok(&["baseline", "exact", "--repeats", "1", "-q"]);
    lab.edit("leaves/exact/train.py", "RIGHT = 0", "RIGHT = 20");
    lab.ok(&["run", "exact", "--decide", "--no-smoke", "-q"]);
    let h = lab.ok(&["hypothesis", "<script>alert(1)</script>", "-m", "a & b", "--leaf", "exact"]);
    let e = lab.ok(&["experiment", h.trim()]);
    lab.ok(&["result", e.trim(), "-v", "discard", "--metrics", "{}", "--theory-revision", "memory, not depth"]);
    lab.fails(&["run", "crash", "--decide", "--no-smoke", "-q"], 4);
    lab.ok(&["holdout", "exact"]);
    let reads_before: i64 = lab.db().query_row("SELECT count(*) FROM holdout_reads", [], |r| r.get(0)).unwrap();

    let answer = lab.json(&["report"]);
    let path = answer["path"].as_str().unwrap();
    assert!(path.ends_with(".lab/report.html"), "{answer}");
    assert_eq!(answer["leaves"][1], serde_json::json!({ "leaf": "exact", "experiments": 3 }), "{answer}");
    let names: Vec<&str> = answer["leaves"].as_array().unwrap().iter().map(|l| l["leaf"].as_str().unwrap()).collect();
    assert_eq!(names, ["crash", "exact", "predictions"], "every leaf, in name order");
    let html = std::fs::read_to_string(path).unwrap();
    let reads_after: i64 = lab.db().query_row("SELECT count(*) FROM holdout_reads", [], |r| r.get(0)).unwrap();
    assert_eq!(reads_before, reads_after, "the report reads no held-out split");

    let ok = section(&html, "exact");
    assert!(ok.contains(r#"<figure class="progress" data-experiments="3">"#), "{ok}");
    let figure = &ok[ok.find("<figure").unwrap()..ok.find("</figure>").unwrap()];
    assert_eq!(figure.matches("<circle").count(), 2, "two keeps; the typed discard has no loss: a cross");
    assert!(figure.matches("<polygon").count() >= 2, "the leader's held-out read and its legend");
    assert!(ok.contains("e2: loss = 0<br>"), "the leader: {ok}");
    assert!(ok.contains("gain 1 over e1"), "the gate's report on the leader: {ok}");
    assert!(ok.contains("e2: 0\n· transferred (gain 1)"), "the held-out read as recorded: {ok}");
    assert!(ok.contains("read 1 time,"), "{ok}");
    assert!(ok.contains("memory, not depth"), "the theory revision: {ok}");
    let crashed = section(&html, "crash");
    assert!(crashed.contains("exception"), "the crash's reason: {crashed}");
    assert!(!html.contains("<script>alert") && ok.contains("&lt;script&gt;alert(1)"), "titles are escaped");
    assert!(ok.contains("a &amp; b"), "mechanisms are escaped");
    assert!(!html.contains("src=") && !html.contains("href="), "nothing is fetched");
    assert!(section(&html, "predictions").contains("No finished experiment to chart."));

    let only = lab.ok(&["report", "exact", "-o", "ok.html"]);
    assert_eq!(only.trim(), lab.path("ok.html").display().to_string());
    assert!(!std::fs::read_to_string(lab.path("ok.html")).unwrap().contains("data-leaf=\"predictions\""));
    assert!(lab.fails(&["report", "-o", "report.pdf"], 2).contains("lab report writes HTML only"));
    assert!(lab.fails(&["report", "nope"], 2).contains("nope"));
}

#[test]
fn training_curves_come_from_what_the_code_reported() {
    require_venv();
    let lab = lab_with(&["ok"]);
    lab.ok(&["run", "ok", "--decide", "-q"]);
    let out = lab.cmd(&["plot", "--experiment", "e1", "-o", "curves.svg"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let svg = std::fs::read_to_string(lab.path("curves.svg")).unwrap();
    assert!(svg.contains("smoke train") && svg.contains("full train"), "smoke and full apart: {svg}");
    assert!(stderr.contains("2 metric(s) of e1's 2 curve(s)"), "step and loss, smoke and full: {stderr}");
    let h = lab.ok(&["hypothesis", "typed", "-m", "why", "--leaf", "ok"]);
    let e = lab.ok(&["experiment", h.trim()]);
    let err = lab.fails(&["plot", "--experiment", e.trim(), "-o", "none.svg"], 2);
    assert!(err.contains("reported no numeric metric"), "{err}");
    assert!(lab.fails(&["plot", "--experiment", "e99"], 2).contains("no experiment e99"));
}

/// The HTML of one leaf's section.
fn section<'a>(html: &'a str, leaf: &str) -> &'a str {
    let start = html.find(&format!("data-leaf=\"{leaf}\"")).unwrap_or_else(|| panic!("no section for {leaf}"));
    let end = html[start..].find("</section>").unwrap();
    &html[start..start + end]
}
