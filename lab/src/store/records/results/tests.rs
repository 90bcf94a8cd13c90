use super::*;
use crate::error::{self, LabError};
use crate::store::Store;
use crate::store::testing::{self, metrics};

fn amendment(e: ExperimentId) -> Amendment {
    Amendment {
        experiment: e,
        verdict: None,
        metrics: None,
        mechanism: None,
        theory_revision: None,
        created_at: "2026-01-02T00:00:00Z".into(),
    }
}

/// The exit code and message of a refused write.
fn refusal(err: anyhow::Error) -> (i32, String) {
    let message = err.chain().find_map(|c| c.downcast_ref::<LabError>()).map(|e| e.message.clone()).unwrap_or_default();
    (error::exit_code(&err), message)
}

#[test]
fn an_amendment_keeps_what_it_does_not_replace() {
    let mut store = Store::in_memory();
    let e = store.write(|tx| Ok(testing::experiment(tx, "toy"))).unwrap();
    let first = testing::result(e, Verdict::Keep, metrics(&[("mae", 0.5)]), Source::Agent);
    store.write(|tx| records_add(tx, &first)).unwrap();
    let cases: &[(&str, Amendment, Verdict, Metrics, Option<Mechanism>)] = &[
        (
            "only the mechanism",
            Amendment { mechanism: Some(Mechanism::Refuted), ..amendment(e) },
            Verdict::Keep,
            metrics(&[("mae", 0.5)]),
            Some(Mechanism::Refuted),
        ),
        (
            "new metrics",
            Amendment { metrics: Some(metrics(&[("mae", 0.4)])), ..amendment(e) },
            Verdict::Keep,
            metrics(&[("mae", 0.4)]),
            Some(Mechanism::Refuted),
        ),
        (
            "a new verdict",
            Amendment { verdict: Some(Verdict::Discard), ..amendment(e) },
            Verdict::Discard,
            metrics(&[("mae", 0.4)]),
            Some(Mechanism::Refuted),
        ),
    ];
    for (what, a, verdict, kept, mechanism) in cases {
        let recorded = store.write(|tx| amend_result(tx, a)).unwrap();
        assert!(recorded.amended, "{what}");
        let r = &recorded.result;
        assert_eq!(
            (r.verdict, &r.metrics, r.mechanism, r.source),
            (*verdict, kept, *mechanism, Source::Agent),
            "{what}"
        );
    }
    // The metrics index holds the current result's numbers only; each amendment names what it replaced.
    let conn = store.conn();
    let index: Vec<(i64, f64, String)> = conn
        .prepare("SELECT result_id, value, source FROM metrics")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(index, [(4, 0.4, "agent".to_owned())]);
    let links: Vec<(i64, Option<i64>, Option<i64>)> = conn
        .prepare("SELECT id, amends, superseded_by FROM results ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(links, [(1, None, Some(2)), (2, Some(1), Some(3)), (3, Some(2), Some(4)), (4, Some(3), None)]);
}

fn records_add(tx: &Transaction<'_>, r: &NewResult) -> Result<Recorded> {
    add_result(tx, r, false)
}

#[test]
fn the_harness_verdict_and_metrics_cannot_be_typed_over() {
    let mut store = Store::in_memory();
    let e = store.write(|tx| Ok(testing::harness(tx, "toy", "K", Verdict::Discard, 0.9))).unwrap();
    let refused: &[(&str, Amendment)] = &[
        ("a keep", Amendment { verdict: Some(Verdict::Keep), ..amendment(e) }),
        ("other metrics", Amendment { metrics: Some(metrics(&[("mae", 0.1)])), ..amendment(e) }),
        ("both", Amendment { verdict: Some(Verdict::Keep), metrics: Some(metrics(&[("mae", 0.1)])), ..amendment(e) }),
    ];
    for (what, a) in refused {
        let (code, message) = refusal(store.write(|tx| amend_result(tx, a)).unwrap_err());
        assert_eq!(code, 3, "{what}");
        assert!(message.contains("was run by the harness: its verdict (discard)"), "{what}: {message}");
    }
    let typed = testing::result(e, Verdict::Keep, metrics(&[("mae", 0.1)]), Source::Agent);
    let (code, message) = refusal(store.write(|tx| add_result(tx, &typed, false)).unwrap_err());
    assert_eq!((code, message.ends_with("by the harness")), (3, true), "{message}");
    let (code, _) = refusal(store.write(|tx| add_result(tx, &typed, true)).unwrap_err());
    assert_eq!(code, 3, "add_result with amend goes through the same rule");
    // The annotations may be amended; the verdict given again unchanged is not a change.
    let annotate = Amendment {
        verdict: Some(Verdict::Discard),
        mechanism: Some(Mechanism::Refuted),
        theory_revision: Some("noise".into()),
        ..amendment(e)
    };
    let r = store.write(|tx| amend_result(tx, &annotate)).unwrap().result;
    assert_eq!((r.verdict, r.source, r.note.as_deref()), (Verdict::Discard, Source::Harness, Some("the gate said so")));
    assert_eq!((r.metrics, r.comparison.as_deref()), (metrics(&[("mae", 0.9)]), Some("K")));
}

#[test]
fn an_agent_cannot_give_the_first_result_of_a_run_the_harness_started() {
    let mut store = Store::in_memory();
    let e = store
        .write(|tx| {
            let e = testing::experiment(tx, "toy");
            testing::run(tx, e, "K");
            Ok(e)
        })
        .unwrap();
    for amend in [false, true] {
        let typed = testing::result(e, Verdict::Crash, Metrics::new(), Source::Agent);
        let (code, message) = refusal(store.write(|tx| add_result(tx, &typed, amend)).unwrap_err());
        assert_eq!(code, 3);
        assert!(message.contains("has no result yet"), "{message}");
    }
    let swept = testing::result(e, Verdict::Crash, Metrics::new(), Source::Harness);
    assert_eq!(store.write(|tx| add_result(tx, &swept, false)).unwrap().result.source, Source::Harness);
}

#[test]
fn an_amendment_of_nothing_needs_a_verdict() {
    let mut store = Store::in_memory();
    let e = store.write(|tx| Ok(testing::experiment(tx, "toy"))).unwrap();
    let err = store.write(|tx| amend_result(tx, &amendment(e))).unwrap_err();
    assert_eq!(error::exit_code(&err), 2);
    let first = Amendment { verdict: Some(Verdict::Keep), ..amendment(e) };
    let recorded = store.write(|tx| amend_result(tx, &first)).unwrap();
    assert!(!recorded.amended, "nothing was there to supersede");
}
