//! `lab saturation`, its section in `lab context`, and `lab blend` end to end:
//! the real binary and embedded interpreter on the `blend` fixture leaf, whose
//! mutable `predict.py` picks one of two model families with uncorrelated
//! errors (`FAMILY`) and has a knob that only shifts predictions (`SHIFT`).

mod common;

use std::path::Path;

use common::{TestLab, lab_with};
use serde_json::Value;

/// Set a fixture's model family and knob, then `lab run LEAF --decide`; the summary.
fn run_leaf(lab: &TestLab, leaf: &str, family: &str, shift: f64) -> Value {
    let path = format!("leaves/{leaf}/predict.py");
    let text = std::fs::read_to_string(lab.path(&path)).unwrap();
    let text: String = text
        .lines()
        .map(|line| match line {
            l if l.starts_with("FAMILY = ") => format!("FAMILY = \"{family}\"\n"),
            l if l.starts_with("SHIFT = ") => format!("SHIFT = {shift:?}\n"),
            l => format!("{l}\n"),
        })
        .collect();
    lab.write(&path, &text);
    lab.json(&["run", leaf, "--decide", "--no-smoke", "-q"])
}

fn run_model(lab: &TestLab, family: &str, shift: f64) -> Value {
    run_leaf(lab, "blend", family, shift)
}

fn ids(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|c| c["experiment"].as_str().unwrap()).collect()
}

fn overwrite_first_value(path: &Path) {
    let mut values = lab::supervisor::scoring::read_flat(path).unwrap();
    values[0] += 1.0;
    ndarray_npy::write_npy(path, &values).unwrap();
}

#[test]
fn knob_turns_saturate_a_leaf_and_a_blend_of_two_families_passes_the_gate() {
    let lab = lab_with(&["blend"]);
    let s = lab.json(&["saturation", "blend"]);
    assert_eq!((s["saturated"].as_bool(), s["leader"].is_null()), (Some(false), true), "{s:#}");
    assert_eq!(run_model(&lab, "a", 0.0)["verdict"], "keep", "the baseline");
    let e2 = run_model(&lab, "b", 0.0);
    assert_eq!(e2["verdict"], "keep", "the other family is better: {e2:#}");
    assert_eq!(run_model(&lab, "b", 0.5)["verdict"], "discard");
    let s = lab.json(&["saturation", "blend"]);
    assert_eq!((s["saturated"].as_bool(), s["leader"].as_str()), (Some(false), Some("e2")), "{s:#}");
    assert_eq!(ids(&s["candidates"]), ["e3", "e1"]);
    assert!(s["reason"].as_str().unwrap().contains("e1 was kept"), "{s:#}");
    assert!(s["candidates"][1]["correlation"].as_f64().unwrap().abs() < 0.3, "families are unrelated: {s:#}");

    assert_eq!(run_model(&lab, "b", 0.3)["verdict"], "discard");
    let s = lab.json(&["saturation", "blend"]);
    assert_eq!((s["saturated"].as_bool(), ids(&s["candidates"])), (Some(true), vec!["e4", "e3"]), "{s:#}");
    assert!(s["candidates"][0]["correlation"].as_f64().unwrap() > 0.98);
    let advice = "new ideas must change the model family or the data, not the knobs";
    assert_eq!(s["advice"], advice);
    let context = lab.json(&["context", "--leaf", "blend"]);
    assert_eq!(context["saturation"]["saturated"], true, "{context:#}");
    assert!(lab.ok(&["context", "--leaf", "blend"]).contains(advice));
    assert!(lab.json(&["context"]).get("saturation").is_none(), "no leaf in scope, no saturation");

    let b = lab.json(&["blend", "blend"]);
    assert_eq!((b["experiment"].as_str(), b["verdict"].as_str()), (Some("e5"), Some("keep")), "{b:#}");
    assert_eq!(b["components"], serde_json::json!(["e1", "e2"]));
    let weights: Vec<f64> = b["weights"].as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).collect();
    assert!((weights[0] + weights[1] - 1.0).abs() < 1e-9 && weights[0] > 0.1 && weights[1] > 0.5, "{b:#}");
    assert!(b["error_correlation"][0][1].as_f64().unwrap().abs() < 0.3, "{b:#}");
    let (blended, best_alone) = (b["value"].as_f64().unwrap(), b["component_scores"][1].as_f64().unwrap());
    assert!(blended < best_alone, "{b:#}");
    assert_eq!((b["gate"]["verdict"].as_str(), b["leader"]["experiment"].as_str()), (Some("pass"), Some("e2")));
    assert_eq!(b["metrics"]["weight.e1"].as_f64(), Some(weights[0]));
    assert_eq!(b["metrics"]["mae"].as_f64(), Some(blended), "scored by the harness");
    for split in ["val", "holdout"] {
        let file = b["files"].as_array().unwrap().iter().find(|f| f["kind"] == "predictions" && f["name"] == split);
        let path = file.unwrap_or_else(|| panic!("{split}: {b:#}"))["path"].as_str().unwrap();
        assert!(path.ends_with(&format!(".lab/runs/e5/full/out/{split}.npy")), "{path}");
        assert_eq!(file.unwrap()["sha256"].as_str().unwrap(), lab::fingerprint::sha256_file(Path::new(path)).unwrap());
    }
    let log = lab.json(&["log", "--leaf", "blend"]);
    let row = log.as_array().unwrap().iter().find(|r| r["experiment"] == "e5").unwrap_or_else(|| panic!("{log:#}"));
    assert_eq!((row["verdict"].as_str(), row["title"].as_str()), (Some("keep"), Some("blend of e1+e2")), "{row:#}");
    // The blend leads now, and it is a different model from the knob turns.
    let s = lab.json(&["saturation", "blend"]);
    assert_eq!((s["leader"].as_str(), s["saturated"].as_bool()), (Some("e5"), Some(false)), "{s:#}");

    // A prediction file changed since it was scored is refused, and shown by context.
    overwrite_first_value(&lab.path(".lab/runs/e3/full/out/val.npy"));
    let stderr = lab.fails(&["saturation", "blend"], 3);
    assert!(
        stderr.contains("val predictions file of e3") && stderr.contains("changed since it was scored"),
        "{stderr}"
    );
    let context = lab.json(&["context", "--leaf", "blend"]);
    assert!(context["saturation"]["error"].as_str().unwrap().contains("changed"), "{context:#}");
    let stderr = lab.fails(&["blend", "blend", "--components", "e3,e4"], 3);
    assert!(stderr.contains("e3"), "{stderr}");
}

#[test]
fn blend_refuses_bad_input_and_leaves_no_trace() {
    let lab = lab_with(&["blend", "ok"]);
    let stderr = lab.fails(&["blend", "ok"], 2);
    assert!(stderr.contains("blending needs predictions mode"), "{stderr}");
    assert!(lab.fails(&["saturation", "ok"], 2).contains("not in predictions mode"));
    let stderr = lab.fails(&["blend", "blend"], 2);
    assert!(stderr.contains("at least 2 components; found 0"), "{stderr}");
    assert_eq!(run_model(&lab, "a", 0.0)["verdict"], "keep");
    assert_eq!(run_model(&lab, "b", 0.0)["verdict"], "keep");
    let stderr = lab.fails(&["blend", "blend", "--components", "e1,e1"], 2);
    assert!(stderr.contains("at least 2 components"), "{stderr}");
    assert!(lab.fails(&["blend", "blend", "--components", "e1,e9"], 2).contains("no experiment e9"));
    assert!(lab.fails(&["blend", "blend", "--components", "e1,x2"], 2).contains("malformed experiment id"));

    // A new lock (a frozen setting changed): the old runs are not comparable.
    let manifest = std::fs::read_to_string(lab.path("leaves/blend/leaf.yaml")).unwrap();
    lab.write("leaves/blend/leaf.yaml", &manifest.replace("n: 800", "n: 400"));
    let stderr = lab.fails(&["blend", "blend"], 3);
    assert!(stderr.contains("differ from leaf.lock"), "changed frozen files are refused first: {stderr}");
    lab.ok(&["lock", "blend"]);
    let stderr = lab.fails(&["blend", "blend", "--components", "e1,e2"], 3);
    assert!(stderr.contains("e1 was scored under another leaf.lock"), "{stderr}");
    let stderr = lab.fails(&["blend", "blend"], 2);
    assert!(stderr.contains("found 0 kept experiments under the current leaf.lock"), "{stderr}");
    let experiments: Vec<Value> = lab.json(&["log", "--leaf", "blend"]).as_array().unwrap().clone();
    assert_eq!(experiments.len(), 2, "refusals record nothing: {experiments:#?}");
}

#[test]
fn a_blend_of_rankers_on_different_scales_keeps_their_ranking() {
    // A probability and a raw score three hundred times wider: weighted per fold on
    // their own scales, the pooled out-of-fold blend ranked worse than either alone.
    let lab = lab_with(&["rank-blend"]);
    assert_eq!(run_leaf(&lab, "rank-blend", "a", 0.0)["verdict"], "keep");
    run_leaf(&lab, "rank-blend", "b", 0.0);
    let b = lab.json(&["blend", "rank-blend", "--components", "e1,e2"]);
    let scores: Vec<f64> = b["component_scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let blended = b["value"].as_f64().unwrap();
    // Measured: components 0.780 and 0.853, blend 0.976; on raw scales the blend scored 0.869.
    assert!(blended > scores[0].max(scores[1]) + 0.05, "independent rankers blend into a far better one: {b:#}");
    assert_eq!(b["verdict"], "keep", "{b:#}");
    assert!(b["note"].as_str().unwrap().contains("standardized by its val mean and sd"), "{b:#}");
}
