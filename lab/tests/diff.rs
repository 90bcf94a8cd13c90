//! `lab diff` end to end: the code two experiments ran (a keep's commit, a
//! discarded candidate's patch on its commit), their evidence side by side,
//! nothing written to the repository, and the refusals.

mod common;

use common::{lab_with, require_venv};

fn objects(lab: &common::TestLab) -> usize {
    walkdir::WalkDir::new(lab.path(".git/objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count()
}

#[test]
fn a_diff_shows_the_code_that_ran_even_when_it_was_discarded() {
    require_venv();
    let lab = lab_with(&["ok", "exact"]);
    lab.ok(&["run", "ok", "--decide", "--no-smoke", "-q"]);
    lab.edit("leaves/ok/train.py", "\"w\": 0.25", "\"w\": 9.0");
    lab.ok(&["run", "ok", "--decide", "--no-smoke", "-q"]);
    let restored = std::fs::read_to_string(lab.path("leaves/ok/train.py")).unwrap();
    assert!(restored.contains("\"w\": 0.25"), "the discard restored train.py");
    let before = objects(&lab);

    let json = lab.json(&["diff", "e1", "e2"]);
    let diff = json["diff"].as_str().unwrap();
    assert!(diff.contains("-    return {\"w\": 0.25}") && diff.contains("+    return {\"w\": 9.0}"), "{diff}");
    assert!(diff.contains("leaves/ok/train.py") && !diff.contains("data.py"), "{diff}");
    assert_eq!((json["a"]["verdict"].as_str(), json["b"]["verdict"].as_str()), (Some("keep"), Some("discard")));
    assert_eq!(json["b"]["metrics"]["loss"], 9.0, "{json:#}");
    assert_eq!(objects(&lab), before, "the diff writes no object into the repository");
    let text = lab.ok(&["diff", "e2", "e1"]);
    assert!(text.contains("+    return {\"w\": 0.25}"), "the other way round: {text}");
    assert!(lab.ok(&["diff", "e1", "e1"]).contains("(the same code)"));

    lab.ok(&["run", "exact", "--decide", "--no-smoke", "-q"]);
    assert!(lab.fails(&["diff", "e1", "e3"], 2).contains("a diff compares experiments of one leaf"));
    let h = lab.ok(&["hypothesis", "typed", "-m", "why", "--leaf", "ok"]);
    let e = lab.ok(&["experiment", h.trim()]);
    assert!(lab.fails(&["diff", "e1", e.trim()], 2).contains("has no recorded code"));
    assert!(lab.fails(&["diff", "e1", "e99"], 2).contains("no experiment e99"));
}
