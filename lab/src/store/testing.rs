//! Fixtures for the store's unit tests: rows made through the recorder, as
//! the commands and the runner make them, on in-memory databases.

use rusqlite::Transaction;

use super::records::{self, Metrics, NewExperiment, NewHypothesis, NewResult, Recorded, Source, Verdict};
use super::runs::{self, MetricSource, NewRun, RunFile, Tier};
use crate::ids::ExperimentId;

pub fn metrics(pairs: &[(&str, f64)]) -> Metrics {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect()
}

/// A hypothesis and an experiment in `leaf`.
pub fn experiment(tx: &Transaction<'_>, leaf: &str) -> ExperimentId {
    let h = records::add_hypothesis(
        tx,
        &NewHypothesis {
            title: "idea".into(),
            mechanism: "why".into(),
            leaf: Some(leaf.into()),
            prediction: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        },
    )
    .unwrap();
    let e = NewExperiment {
        hypothesis: h,
        leaf: Some(leaf.into()),
        snapshot: Default::default(),
        host: "h".into(),
        pid: None,
        watch_pid: false,
        budget_s: Some(1.0),
        started_at: "2026-01-01T00:00:00Z".into(),
    };
    records::add_experiment(tx, &e).unwrap()
}

/// A full run of `e` under comparison `key`, with one predictions file and one package.
pub fn run(tx: &Transaction<'_>, e: ExperimentId, key: &str) -> i64 {
    let run = NewRun {
        experiment: e,
        tier: Tier::Full,
        seed: 7,
        device: Some("cpu".into()),
        budget_s: 1.0,
        wall_s: 0.5,
        exit_reason: "ok".into(),
        detail: None,
        exit_code: Some(0),
        signal: None,
        metric_source: MetricSource::Harness,
        frozen_lock_sha256: Some(key.into()),
        metrics: Metrics::new(),
        log_path: None,
        log_tail: Some("tail".into()),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: "2026-01-01T00:00:01Z".into(),
        files: vec![RunFile {
            kind: "predictions",
            name: "val".into(),
            path: "p".into(),
            sha256: "s".into(),
            len: Some(3),
        }],
        sandbox: Some("landlock v7".into()),
        environment: None,
        prepared_sha256: None,
        packages: [("numpy".to_owned(), "2.4.6".to_owned())].into(),
    };
    runs::add_run(tx, &run).unwrap()
}

pub fn result(e: ExperimentId, verdict: Verdict, metrics: Metrics, source: Source) -> NewResult {
    NewResult {
        experiment: e,
        verdict,
        metrics,
        mechanism: None,
        theory_revision: None,
        note: (source == Source::Harness).then(|| "the gate said so".to_owned()),
        created_at: "2026-01-01T00:00:02Z".into(),
        source,
    }
}

/// What the runner leaves: an experiment with a run under `key` and the harness's result.
pub fn harness(tx: &Transaction<'_>, leaf: &str, key: &str, verdict: Verdict, mae: f64) -> ExperimentId {
    let e = experiment(tx, leaf);
    run(tx, e, key);
    let _: Recorded =
        records::add_result(tx, &result(e, verdict, metrics(&[("mae", mae)]), Source::Harness), false).unwrap();
    e
}
