use super::*;
use crate::store::comparisons::{self, NewComparison};
use crate::store::records::Source;
use crate::store::records::{self, Verdict};
use crate::store::testing::{self, metrics};
use crate::store::{Store, runs};

fn comparison(e: ExperimentId, key: &str) -> NewComparison {
    NewComparison {
        leaf: "toy".into(),
        key: key.into(),
        files: Default::default(),
        gate: serde_json::json!({}),
        inputs: serde_json::json!([]),
        experiment: e,
        created_at: "t".into(),
    }
}

/// Harness keeps under an old lock (0.1) and the current one (0.4, 0.3), a harness discard (0.2), an agent's keep (0.05).
fn lab() -> Store {
    let mut store = Store::in_memory();
    store
        .write(|tx| {
            for (key, verdict, mae) in [
                ("old", Verdict::Keep, 0.1),
                ("K", Verdict::Keep, 0.4),
                ("K", Verdict::Keep, 0.3),
                ("K", Verdict::Discard, 0.2),
            ] {
                let e = testing::harness(tx, "toy", key, verdict, mae);
                comparisons::record(tx, &comparison(e, key))?;
            }
            let typed = testing::experiment(tx, "toy");
            records::add_result(
                tx,
                &testing::result(typed, Verdict::Keep, metrics(&[("mae", 0.05)]), Source::Agent),
                false,
            )
        })
        .unwrap();
    store
}

#[test]
fn the_best_is_the_harness_keep_of_the_current_comparison_and_agents_are_apart() {
    let store = lab();
    let goal = |_: Option<&str>, _: &str| Some(Goal::Minimize);
    let best = best_kept(store.conn(), Some("toy"), goal).unwrap();
    let got: Vec<(f64, &str, Source, Option<&str>)> =
        best.iter().map(|b| (b.value, b.experiment.as_str(), b.source, b.comparison.as_deref())).collect();
    assert_eq!(got, [(0.3, "e3", Source::Harness, Some("K"))]);
    let reported = reported_kept(store.conn(), None, goal).unwrap();
    let got: Vec<(f64, &str, Source)> = reported.iter().map(|b| (b.value, b.experiment.as_str(), b.source)).collect();
    assert_eq!(got, [(0.05, "e5", Source::Agent)]);
    // The runner's leader agrees: same comparison, harness only.
    let leader = runs::leader(store.conn(), "toy", "mae", Goal::Minimize, "K").unwrap().unwrap();
    assert_eq!((leader.experiment.as_str(), leader.value), ("e3", 0.3));
    let rival = runs::rival(store.conn(), "toy", "mae", Goal::Minimize, "K", ExperimentId(3)).unwrap().unwrap();
    assert_eq!(rival.experiment, "e2");
    let history = history(store.conn(), &HistoryQuery { limit: Some(1), ..Default::default() }).unwrap();
    assert_eq!((history[0].source.as_deref(), history[0].comparison.as_deref()), (Some("agent"), None));
}

#[test]
fn a_best_is_one_probe_of_the_leaders_index() {
    let store = lab();
    let plan: String = store
        .conn()
        .prepare(
            "EXPLAIN QUERY PLAN SELECT value, experiment_id FROM metrics
             WHERE leaf = ?1 AND comparison = ?2 AND name = ?3 AND verdict = 'keep' AND source = 'harness'
             ORDER BY value ASC LIMIT 1",
        )
        .unwrap()
        .query_map(["toy", "K", "mae"], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(plan.contains("USING INDEX metrics_leaders") && !plan.contains("TEMP B-TREE"), "{plan}");
}

#[test]
fn a_reason_is_given_for_crashes_and_discarded_ideas_only() {
    let run = || Some("exception: ValueError: boom".to_owned());
    for (verdict, smoke, run, note, expected) in [
        (Some("crash"), false, run(), Some("smoke run: ..."), Some("exception: ValueError: boom")),
        (Some("crash"), false, None, Some("stale: pid 7 is gone"), Some("stale: pid 7 is gone")),
        (Some("crash"), true, run(), None, Some("exception: ValueError: boom")),
        (Some("discard"), false, None, Some("gate fail"), Some("gate fail")),
        (Some("discard"), true, None, Some("loss=0.2; smoke run"), None),
        (Some("keep"), false, None, Some("gate pass"), None),
        (None, false, None, None, None),
    ] {
        assert_eq!(reason(verdict, smoke, run, note).as_deref(), expected, "{verdict:?} {smoke}");
    }
}
