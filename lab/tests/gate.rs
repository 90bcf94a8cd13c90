//! The honest gate end to end: `lab run --decide` through the gate, `lab
//! baseline`, repeats, seed-only flags, `lab gate`, `lab holdout`, `lab
//! checkpoint` and the archive, on fixture leaves whose quality is set by a
//! mutable constant: `noisy` (artifact, loss = 1 - GAIN + seed noise within
//! +-0.01, sealed held-out loss), `exact` (artifact, deterministic, a gain on
//! the first RIGHT of 20 items) and `quality` (predictions, least squares
//! scaled by SCALE). Seeds are given, so every verdict here is reproducible.

mod common;

use common::{TestLab, lab_with};
use rusqlite::Connection;
use serde_json::Value;

fn run(lab: &TestLab, args: &[&str], code: i32) -> Value {
    let args = [&["run"], args, &["--json", "-q"]].concat();
    let out = lab.cmd(&args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "lab {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

fn query<T: rusqlite::types::FromSql>(lab: &TestLab, sql: &str) -> T {
    Connection::open(lab.path(".lab/lab.db")).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn read(lab: &TestLab, rel: &str) -> String {
    std::fs::read_to_string(lab.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Replace `from` by `to` in a leaf file (the edit must apply).
fn edit(lab: &TestLab, rel: &str, from: &str, to: &str) {
    let text = read(lab, rel);
    assert!(text.contains(from), "{rel} has no `{from}`");
    lab.write(rel, &text.replacen(from, to, 1));
}

fn gate_row(lab: &TestLab, e: &str) -> (String, String, i64) {
    let id: i64 = e[1..].parse().unwrap();
    Connection::open(lab.path(".lab/lab.db"))
        .unwrap()
        .query_row(
            "SELECT verdict, flags, n FROM gate_reports WHERE experiment_id = ?1 ORDER BY id DESC LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[test]
fn scalar_gate_needs_a_noise_estimate_then_keeps_real_gains_and_repeats_close_ones() {
    let lab = lab_with(&["noisy"]);
    let s = run(&lab, &["noisy", "--decide", "--seed", "1"], 0);
    assert_eq!(s["verdict"], "keep", "the first full run is the baseline: {s:#}");

    // A big gain, but the leader has one run and there is no stored noise: not a win.
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.0", "GAIN = 0.5");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "2"], 0);
    assert_eq!(s["verdict"], "discard", "{s:#}");
    assert!(s["note"].as_str().unwrap().contains("lab baseline"), "{s:#}");
    assert_eq!(gate_row(&lab, "e2").0, "no_noise_estimate");
    // Archived, never deleted, and invisible to git and to the integrity check.
    for file in ["candidate.patch", "log_tail.txt", "metrics.json"] {
        assert!(lab.path(&format!("leaves/noisy/_archive/e2-discard/{file}")).is_file(), "{file}");
    }
    assert!(read(&lab, "leaves/noisy/_archive/e2-discard/candidate.patch").contains("+GAIN = 0.5"));
    assert_eq!(lab.git(&["status", "--porcelain"]), "");
    let log = lab.json(&["log", "--leaf", "noisy"]);
    let e2 = log.as_array().unwrap().iter().find(|r| r["experiment"] == "e2").unwrap();
    assert!(e2["archive"].as_str().unwrap().ends_with("_archive/e2-discard"), "{e2:#}");

    // The baseline refuses a dirty tree, then measures the leader's spread.
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.0", "GAIN = 0.1");
    let err = lab.fails(&["baseline", "noisy", "-q"], 3);
    assert!(err.contains("the baseline must run the leader's code"), "{err}");
    lab.git(&["checkout", "--", "leaves/noisy/train.py"]);
    let b = lab.json(&["baseline", "noisy", "--repeats", "3", "--seed", "10", "-q"]);
    assert_eq!((b["leader"].as_str(), b["n"].as_u64()), (Some("e1"), Some(4)), "{b:#}");
    assert!(b["sd"].as_f64().unwrap() > 0.0 && b["sd"].as_f64().unwrap() < 0.02, "{b:#}");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM runs WHERE experiment_id = 1 AND tier = 'full'"), 4);

    // A real gain of 50 noise sds passes. It is e2's code again, so its run is pooled with e2's.
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.0", "GAIN = 0.5");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "3"], 0);
    assert_eq!((s["verdict"].as_str(), s["experiment"].as_str()), (Some("keep"), Some("e3")), "{s:#}");
    assert_eq!(gate_row(&lab, "e3"), ("pass".into(), "[\"resubmitted\"]".into(), 2));
    // The corrected level is explained where it is printed.
    assert!(s["note"].as_str().unwrap().contains("(96.67% CI "), "the second of 3 runs at 0.9: {s:#}");
    assert!(s["note"].as_str().unwrap().contains(", the level of run 2 of up to 3)"), "{s:#}");

    // A gain of about one noise sd: within the noise on one run, so the runner repeats it.
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.5", "GAIN = 0.508");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "4"], 0);
    let full_runs: i64 = query(&lab, "SELECT COUNT(*) FROM runs WHERE experiment_id = 4 AND tier = 'full'");
    assert!(full_runs >= 2, "NEEDS_REPEATS reran the candidate: {full_runs} runs\n{s:#}");
    assert_eq!(gate_row(&lab, "e4").2, full_runs, "the gate judged every run");
    let seeds: String = query(&lab, "SELECT group_concat(seed) FROM runs WHERE experiment_id = 4");
    assert!(seeds.starts_with("4,5"), "repeats count up from the given seed: {seeds}");
    lab.git(&["checkout", "--", "leaves/noisy/train.py"]);

    // A seed-only change is flagged and never kept on one run.
    edit(&lab, "leaves/noisy/train.py", "SEED_SHIFT = 0", "SEED_SHIFT = 6");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "5"], 0);
    let e = s["experiment"].as_str().unwrap().to_owned();
    let (_, flags, _) = gate_row(&lab, &e);
    assert_eq!(flags, "[\"seed-only\"]", "{s:#}");
    assert!(s["note"].as_str().unwrap().contains("flagged seed-only"), "{s:#}");
    assert_eq!(s["verdict"], "discard", "{s:#}");

    // `lab gate` is read-only and agrees with the recorded decision.
    let before = (lab.git(&["status", "--porcelain"]), query::<i64>(&lab, "SELECT COUNT(*) FROM gate_reports"));
    // The leader's own gate compares it with the best other keep, the first baseline.
    let g = lab.json(&["gate", "e3"]);
    assert_eq!((g["mode"].as_str(), g["leader"]["experiment"].as_str()), (Some("scalar"), Some("e1")), "{g:#}");
    assert_eq!(g["verdict"], "pass", "{g:#}");
    let g = lab.json(&["gate", &e]);
    assert_eq!(g["flags"][0], "seed-only", "{g:#}");
    assert_eq!(g["decided"]["verdict"], "fail", "{g:#}");
    let after = (lab.git(&["status", "--porcelain"]), query::<i64>(&lab, "SELECT COUNT(*) FROM gate_reports"));
    assert_eq!(before, after, "lab gate wrote nothing");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM holdout_reads"), 0, "no decision read the held-out split");

    // The held-out split: sealed at run time, read only here, every read counted.
    let h = lab.json(&["holdout", "noisy"]);
    assert_eq!((h["reads"].as_u64(), h["leader"]["experiment"].as_str()), (Some(1), Some("e3")), "{h:#}");
    let (val, holdout) = (h["leader"]["val"].as_f64().unwrap(), h["leader"]["holdout"].as_f64().unwrap());
    assert!((holdout - val - 0.01).abs() < 1e-9, "{h:#}");
    assert_eq!(h["baseline"]["experiment"], "e1");
    assert_eq!(h["transferred"], true, "{h:#}");
    let out = lab.cmd(&["holdout", "noisy"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("has been read 2 times"));
    let results: String = query(&lab, "SELECT group_concat(metrics) FROM results");
    assert!(!results.contains("holdout"), "held-out metrics never reach results: {results}");

    // A checkpoint: written once, with a red team; an edited evaluation fails its claim.
    let path = lab.ok(&["checkpoint", "first", "noisy"]);
    let md = std::fs::read_to_string(path.trim()).unwrap();
    assert!(md.contains("- leader: e3 (loss = ") && md.contains("`data.py` "), "{md}");
    assert!(
        md.contains(
            "| frozen files unchanged | an edited evaluation | every frozen file matches leaf.lock | **holds** |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| leader reproducible | a lucky seed |")
            && md.contains("| validation gain transferred to held-out |")
    );
    assert!(md.contains("| records untampered |") && md.contains(" hold | **holds** |"), "{md}");
    lab.redactions().bind(|| insta::assert_snapshot!("checkpoint_md_transfer", md));
    lab.fails(&["checkpoint", "first", "noisy"], 3);
    lab.fails(&["checkpoint", "Bad Name", "noisy"], 2);
    edit(&lab, "leaves/noisy/data.py", "[-0.01] * 4", "[-0.02] * 4");
    let c = lab.json(&["checkpoint", "second", "noisy"]);
    let frozen = c["red_team"].as_array().unwrap().iter().find(|r| r["claim"] == "frozen files unchanged").unwrap();
    assert_eq!(frozen["verdict"], "fails", "{c:#}");
    assert!(frozen["evidence"].as_str().unwrap().contains("`data.py` changed since the lock"), "{c:#}");
    let noise =
        c["red_team"].as_array().unwrap().iter().find(|r| r["claim"] == "improvement larger than noise").unwrap();
    assert_eq!(noise["verdict"], "holds", "{c:#}");
    assert_eq!(c["state"]["holdout"]["reads"], 4, "checkpoints count as held-out reads: {c:#}");
}

#[test]
fn a_checkpoint_of_a_lone_baseline_says_there_is_nothing_to_transfer_in_words() {
    let lab = lab_with(&["ok"]);
    assert_eq!(run(&lab, &["ok", "--decide", "--seed", "1"], 0)["verdict"], "keep");
    let path = lab.ok(&["checkpoint", "first", "ok"]);
    let md = std::fs::read_to_string(path.trim()).unwrap();
    for raw in ["null", "None", "1 times", "(s)", "{\"", "\"artifact\""] {
        assert!(!md.contains(raw), "`{raw}` in the Markdown:\n{md}");
    }
    assert!(md.contains("the leader is the baseline: nothing to transfer yet"), "{md}");
    lab.redactions().bind(|| insta::assert_snapshot!("checkpoint_md_lone_baseline", md));
    let c = lab.json(&["checkpoint", "second", "ok"]);
    assert_eq!((&c["state"]["holdout"]["baseline"], &c["state"]["noise"]), (&Value::Null, &Value::Null), "{c:#}");
}

#[test]
fn a_lucky_leader_fails_reproducible_against_reruns_that_exclude_it() {
    // Seed 11 draws the lowest noise of `noisy` (-0.01); seeds 12..14 draw +0.010, +0.008, +0.006.
    let lab = lab_with(&["noisy"]);
    assert_eq!(run(&lab, &["noisy", "--decide", "--seed", "11"], 0)["verdict"], "keep");
    lab.json(&["baseline", "noisy", "--repeats", "3", "--seed", "12", "-q"]);
    let c = lab.json(&["checkpoint", "lucky", "noisy"]);
    let claim = c["red_team"].as_array().unwrap().iter().find(|r| r["claim"] == "leader reproducible").unwrap();
    assert_eq!(claim["verdict"], "fails", "the kept value is not in the reruns it is judged against: {c:#}");
    let evidence = claim["evidence"].as_str().unwrap();
    assert!(evidence.contains("3 reruns excluding it: mean 1.008"), "{evidence}");
}

#[test]
fn a_candidate_that_changes_no_behaviour_is_flagged_and_never_kept_on_one_run() {
    // An unlucky leader (seed 12: +0.010) and its reruns (13..15: +0.008 .. +0.004).
    let lab = lab_with(&["noisy"]);
    assert_eq!(run(&lab, &["noisy", "--decide", "--seed", "12"], 0)["verdict"], "keep");
    lab.json(&["baseline", "noisy", "--repeats", "3", "--seed", "13", "-q"]);
    // A comment and some spacing, run on the luckiest seed (11: -0.010): 0.02 better
    // than the leader on one run, which the gate alone would pass.
    edit(&lab, "leaves/noisy/train.py", "SEED_SHIFT = 0", "SEED_SHIFT=0  # tidier");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "11"], 0);
    let e = s["experiment"].as_str().unwrap().to_owned();
    let (_, flags, n) = gate_row(&lab, &e);
    assert_eq!(flags, "[\"no-op\"]", "{s:#}");
    assert!(n >= 2, "a flagged candidate is rerun before any keep: {s:#}");
    assert_eq!(s["verdict"], "discard", "its reruns regress to the leader's code: {s:#}");
    // No diff at all is a no-op too.
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "11"], 0);
    assert_eq!(gate_row(&lab, s["experiment"].as_str().unwrap()).1, "[\"no-op\"]", "{s:#}");
    // So is a rewrite the text rules cannot see through, with the same syntax
    // tree (parsed, never run, at launch); a changed tree is not.
    edit(&lab, "leaves/noisy/train.py", "1.0 - GAIN + noise", "(1.0 - GAIN) + noise");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "11"], 0);
    let (_, flags, n) = gate_row(&lab, s["experiment"].as_str().unwrap());
    assert_eq!(flags, "[\"no-op\"]", "{s:#}");
    assert!(n >= 2 && s["verdict"] == "discard", "{s:#}");
    edit(&lab, "leaves/noisy/train.py", "1.0 - GAIN + noise", "1.0 - (GAIN + noise)");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "11"], 0);
    assert_eq!(gate_row(&lab, s["experiment"].as_str().unwrap()).1, "[]", "{s:#}");
}

#[test]
fn flags_read_the_change_from_the_leaders_code_whatever_head_holds() {
    let lab = lab_with(&["noisy"]);
    assert_eq!(run(&lab, &["noisy", "--decide", "--seed", "12"], 0)["verdict"], "keep");
    lab.json(&["baseline", "noisy", "--repeats", "3", "--seed", "13", "-q"]);
    // The attack: commit a real change by hand (never run), then undo it in the
    // working tree beside a new seed. From HEAD that diff is a real change; from
    // the leader it changes the seed and nothing else.
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.0", "GAIN = 0.3");
    lab.git(&["commit", "-qam", "a change no gate saw"]);
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.3", "GAIN = 0.0");
    // Its first run lands on the luckiest seed (5 + 6 = 11: 0.02 better than the leader).
    edit(&lab, "leaves/noisy/train.py", "SEED_SHIFT = 0", "SEED_SHIFT = 6");
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "5"], 0);
    let (_, flags, n) = gate_row(&lab, s["experiment"].as_str().unwrap());
    assert_eq!(flags, "[\"seed-only\"]", "{s:#}");
    assert!(n >= 2 && s["verdict"] == "discard", "never kept on one run: {s:#}");
    // The honest twin: a real change committed before its run is judged as the
    // change it is, not as no change at all.
    lab.git(&["checkout", "--", "leaves/noisy/train.py"]);
    edit(&lab, "leaves/noisy/train.py", "GAIN = 0.3", "GAIN = 0.5");
    lab.git(&["commit", "-qam", "the candidate, committed first"]);
    let s = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "20"], 0);
    assert_eq!(gate_row(&lab, s["experiment"].as_str().unwrap()).1, "[]", "{s:#}");
    assert_eq!(s["verdict"], "keep", "{s:#}");
}

#[test]
fn deterministic_code_is_judged_on_its_items_not_on_an_exact_gap() {
    let lab = lab_with(&["exact"]);
    assert_eq!(run(&lab, &["exact", "--decide", "--seed", "1"], 0)["verdict"], "keep");
    let b = lab.json(&["baseline", "exact", "--repeats", "1", "-q"]);
    assert_eq!((b["n"].as_u64(), b["sd"].as_f64()), (Some(2), Some(0.0)), "reruns agree exactly: {b:#}");

    // 0.1 better on average, all of it on 2 of 20 items: within item noise. The
    // seed noise is zero, so repeats cannot help and none are asked for.
    edit(&lab, "leaves/exact/train.py", "RIGHT = 0", "RIGHT = 2");
    let s = run(&lab, &["exact", "--decide", "--no-smoke"], 0);
    assert_eq!(s["verdict"], "discard", "{s:#}");
    let note = s["note"].as_str().unwrap();
    assert!(note.contains("after 1 candidate runs on 20 validation items it is within noise"), "{note}");
    assert!(!note.contains("0.100..0.100"), "never an exact interval on a few items: {note}");
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM runs WHERE experiment_id = 2 AND tier = 'full'"), 1);
    assert_eq!(gate_row(&lab, "e2").0, "fail");
    // What the items let the gate see: per-item gains sd .3078 on 19 df, se .0688, at the
    // last look's 94.44% level: (t(.9722; 19) + t(.8; 19)) * se = .20, twice the gap it missed.
    let p = &lab.json(&["context"])["power"][0];
    let detectable = p["sensitivity"]["detectable"].as_f64().unwrap();
    assert!((detectable - 0.200).abs() < 0.005, "{p:#}");
    assert_eq!(lab.json(&["gate", "e2"])["detectable"].as_f64(), Some(detectable));
    assert_eq!(
        (p["decisions"].as_u64(), p["keeps"].as_u64(), p["at_ceiling"].as_bool()),
        (Some(1), Some(0), Some(false))
    );

    // The same gain from a file named like an evaluation path: flagged
    // eval-only, and reruns of deterministic code would only repeat its one
    // run, so it is refused at once, without the repeats a flag costs
    // stochastic code (one identical rerun used to keep it).
    edit(&lab, "leaves/exact/evaluation.py", "RIGHT = 0", "RIGHT = 20");
    let s = run(&lab, &["exact", "--decide", "--no-smoke"], 0);
    assert_eq!(s["verdict"], "discard", "{s:#}");
    assert!(s["note"].as_str().unwrap().contains("reruns repeat that run rather than add one"), "{s:#}");
    assert_eq!(gate_row(&lab, "e3"), ("fail".into(), "[\"eval-only\"]".into(), 1));
    assert_eq!(query::<i64>(&lab, "SELECT COUNT(*) FROM runs WHERE experiment_id = 3 AND tier = 'full'"), 1);

    // Right on every item: the same gain everywhere is a keep.
    // The discards restored train.py and evaluation.py.
    edit(&lab, "leaves/exact/train.py", "RIGHT = 0", "RIGHT = 20");
    let s = run(&lab, &["exact", "--decide", "--no-smoke"], 0);
    assert_eq!(s["verdict"], "keep", "{s:#}");
    let h = lab.json(&["holdout", "exact"]);
    assert_eq!((h["verdict"].as_str(), h["transferred"].as_bool()), (Some("transferred"), Some(true)), "{h:#}");
    // mae 0 now: nothing is left to gain, and the leaf says so.
    let show = lab.json(&["show", "exact"]);
    let p = &show["power"];
    assert_eq!((p["headroom"].as_f64(), p["at_ceiling"].as_bool()), (Some(0.0), Some(true)), "{p:#}");
    assert_eq!((p["decisions"].as_u64(), p["keeps"].as_u64()), (Some(3), Some(1)));
    assert!((p["expected_noise_keeps"].as_f64().unwrap() - 3.0 * 0.05).abs() < 1e-12, "5% each at 0.9: {p:#}");
    assert!(p["summary"].as_str().unwrap().contains("at its ceiling"), "{p:#}");
}

#[test]
fn a_gain_tuned_on_the_validation_split_did_not_transfer() {
    let lab = lab_with(&["exact"]);
    assert_eq!(run(&lab, &["exact", "--decide", "--seed", "1"], 0)["verdict"], "keep");
    lab.json(&["baseline", "exact", "--repeats", "1", "-q"]);
    edit(&lab, "leaves/exact/train.py", "RIGHT = 0\nVAL_ONLY = False", "RIGHT = 20\nVAL_ONLY = True");
    assert_eq!(run(&lab, &["exact", "--decide", "--no-smoke"], 0)["verdict"], "keep", "right on every val item");
    let h = lab.json(&["holdout", "exact"]);
    assert_eq!((h["val_gain"].as_f64(), h["holdout_gain"].as_f64()), (Some(1.0), Some(0.0)), "{h:#}");
    assert_eq!((h["verdict"].as_str(), h["transferred"].as_bool()), (Some("did_not_transfer"), Some(false)), "{h:#}");
    let out = lab.cmd(&["holdout", "exact"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not transfer: the held-out gain's 90% CI 0..0 lies below the validation gain 1"),
        "{stderr}"
    );
    let c = lab.json(&["checkpoint", "tuned", "exact"]);
    let claim =
        c["red_team"].as_array().unwrap().iter().find(|r| r["claim"] == "validation gain transferred to held-out");
    assert_eq!(claim.unwrap()["verdict"], "fails", "{c:#}");
}

#[test]
fn predictions_gate_bootstraps_val_errors_and_refuses_edited_files() {
    let lab = lab_with(&["quality"]);
    let predict = "leaves/quality/predict.py";
    assert_eq!(run(&lab, &["quality", "--decide", "--no-smoke", "--seed", "1"], 0)["verdict"], "keep");
    edit(&lab, predict, "SCALE = 0.5", "SCALE = 1.0");
    let s = run(&lab, &["quality", "--decide", "--no-smoke", "--seed", "1"], 0);
    assert_eq!(s["verdict"], "keep", "a real improvement: {s:#}");
    assert!(s["note"].as_str().unwrap().contains("predictions mode"), "{s:#}");
    assert_eq!(gate_row(&lab, "e2"), ("pass".into(), "[]".into(), 75));

    // Noise-sized change: predictions jittered by 1e-4, not a real gain.
    edit(&lab, predict, "JITTER = 0.0", "JITTER = 0.0001");
    let s = run(&lab, &["quality", "--decide", "--no-smoke", "--seed", "1"], 0);
    assert_eq!((s["verdict"].as_str(), gate_row(&lab, "e3").0.as_str()), (Some("discard"), "fail"), "{s:#}");

    // Seed-only change: flagged, and predictions mode never keeps a flagged candidate.
    edit(&lab, predict, "SEED_SHIFT = 0", "SEED_SHIFT = 1");
    let s = run(&lab, &["quality", "--decide", "--no-smoke", "--seed", "1"], 0);
    assert_eq!(s["verdict"], "discard", "{s:#}");
    assert_eq!(gate_row(&lab, "e4").1, "[\"seed-only\"]");
    assert!(lab.path("leaves/quality/_archive/e4-discard/candidate.patch").is_file());

    // Held-out transfer: the leader's gain over the first baseline holds on the held-out split.
    let h = lab.json(&["holdout", "quality"]);
    assert_eq!((h["leader"]["experiment"].as_str(), h["baseline"]["experiment"].as_str()), (Some("e2"), Some("e1")));
    assert_eq!((h["transferred"].as_bool(), h["reads"].as_u64()), (Some(true), Some(1)), "{h:#}");

    // A scored prediction file edited afterwards: the gate refuses, the checkpoint's red team fails it.
    let g = lab.json(&["gate", "e2"]);
    assert_eq!((g["leader"]["experiment"].as_str(), g["verdict"].as_str()), (Some("e1"), Some("pass")), "{g:#}");
    let val = lab.path(".lab/runs/e2/full/out/val.npy");
    let mut bytes = std::fs::read(&val).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&val, bytes).unwrap();
    let err = lab.fails(&["gate", "e3"], 3);
    assert!(err.contains("changed since it was scored"), "{err}");
    let c = lab.json(&["checkpoint", "edited", "quality"]);
    let claim =
        c["red_team"].as_array().unwrap().iter().find(|r| r["claim"] == "recorded files unchanged since scoring");
    assert_eq!(claim.unwrap()["verdict"], "fails", "{c:#}");
    let records = c["red_team"].as_array().unwrap().iter().find(|r| r["claim"] == "records untampered").unwrap();
    assert_eq!(records["verdict"], "fails", "lab verify's verdict is in the checkpoint: {c:#}");
    assert!(records["evidence"].as_str().unwrap().contains("files (1 finding: run_files e2 predictions val"), "{c:#}");
}

#[test]
fn stochastic_predictions_are_judged_on_their_seed_noise_as_well_as_their_items() {
    let lab = lab_with(&["quality"]);
    let predict = "leaves/quality/predict.py";
    edit(&lab, predict, "JITTER = 0.0", "JITTER = 0.3");
    lab.git(&["commit", "-qam", "a noisy baseline"]);
    assert_eq!(run(&lab, &["quality", "--decide", "--no-smoke", "--seed", "1"], 0)["verdict"], "keep");
    edit(&lab, predict, "SCALE = 0.5", "SCALE = 1.0");
    assert_eq!(run(&lab, &["quality", "--decide", "--no-smoke", "--seed", "2"], 0)["verdict"], "keep");
    // One run each and no measured seed noise: the paired bootstrap over the val items alone.
    let items = lab.json(&["gate", "e2"]);
    assert_eq!(items["n"].as_u64(), Some(75), "{items:#}");
    // The leader rerun under new seeds: its predictions move with the seed, and the gate now says so.
    let b = lab.json(&["baseline", "quality", "--repeats", "2", "-q"]);
    assert!(b["sd"].as_f64().unwrap() > 0.0, "{b:#}");
    let both = lab.json(&["gate", "e2"]);
    assert_eq!(both["n"].as_u64(), Some(3), "judged on its three runs: {both:#}");
    let width = |g: &Value| g["ci_high"].as_f64().unwrap() - g["ci_low"].as_f64().unwrap();
    assert!(width(&both) > width(&items), "seed noise widens the interval: {items:#} {both:#}");
    assert!(both["reason"].as_str().unwrap().contains("94.44% CI"), "the third look's level: {both:#}");
}

#[test]
fn a_resubmitted_candidate_is_pooled_with_its_first_submission() {
    let lab = lab_with(&["noisy"]);
    assert_eq!(run(&lab, &["noisy", "--decide", "--seed", "1"], 0)["verdict"], "keep");
    lab.json(&["baseline", "noisy", "--repeats", "3", "--seed", "10", "-q"]);
    // A change that does nothing, on a seed whose noise is the luckiest (-0.01):
    // promising on one run, so the gate asks for repeats, which regress.
    let null = ("GAIN = 0.0", "GAIN = 0.0 * 2");
    edit(&lab, "leaves/noisy/train.py", null.0, null.1);
    let first = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "22"], 0);
    assert_eq!(first["verdict"], "discard", "{first:#}");
    let first_runs: i64 = query(&lab, "SELECT COUNT(*) FROM runs WHERE experiment_id = 2 AND tier = 'full'");
    assert_eq!(first_runs, 3, "the gate asked for both repeats");
    // The agent submits the same code again on another lucky seed: the same candidate, looked at again.
    edit(&lab, "leaves/noisy/train.py", null.0, null.1);
    let again = run(&lab, &["noisy", "--decide", "--no-smoke", "--seed", "33"], 0);
    assert_eq!(again["verdict"], "discard", "{again:#}");
    let (verdict, flags, n) = gate_row(&lab, "e3");
    assert_eq!((verdict.as_str(), flags.as_str(), n), ("fail", "[\"resubmitted\"]", 4), "pooled with e2's three runs");
    let runs: i64 = query(&lab, "SELECT COUNT(*) FROM runs WHERE experiment_id = 3 AND tier = 'full'");
    assert_eq!(runs, 1, "no repeats left: the first submission spent them");
}
