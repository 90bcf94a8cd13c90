//! `lab plot` end to end: the chart's marks count the leaf's finished
//! experiments (smoke checks aside), and bad output paths are refused.

mod common;

use common::{lab_with, require_venv};

#[test]
fn the_progress_chart_draws_every_finished_experiment_once() {
    require_venv();
    let lab = lab_with(&["ok"]);
    let err = lab.fails(&["plot", "ok"], 2);
    assert!(err.contains("leaf `ok` has no finished experiment to plot"), "{err}");
    lab.ok(&["run", "ok", "--smoke", "-q"]);
    lab.ok(&["run", "ok", "--decide", "--no-smoke", "-q"]);
    for (verdict, metrics) in [("discard", r#"{"loss": 0.9}"#), ("crash", "{}")] {
        let h = lab.ok(&["hypothesis", "typed", "-m", "why", "--leaf", "ok"]);
        let e = lab.ok(&["experiment", h.trim()]);
        lab.ok(&["result", e.trim(), "-v", verdict, "--metrics", metrics]);
    }
    let out = lab.cmd(&["plot", "ok", "-o", "chart.svg"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("plotted 3 experiments of `ok` (1 without `loss`, on the floor)"),
        "the smoke check is not one: {stderr}"
    );
    let svg = std::fs::read_to_string(lab.path("chart.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 2, "the keep and the discard; the crash is a cross");
    assert!(svg.contains("ok: loss (minimize), 3 experiments"), "{svg}");

    lab.ok(&["plot", "ok", "-o", "chart.png"]);
    let png = std::fs::read(lab.path("chart.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG of the same chart");
    assert!(lab.fails(&["plot", "ok", "-o", "chart.pdf"], 2).contains("lab plot writes SVG or PNG"));
    std::os::unix::fs::symlink("/dev/null", lab.path("link.svg")).unwrap();
    assert!(lab.fails(&["plot", "ok", "-o", "link.svg"], 2).contains("is a symbolic link"));
}
