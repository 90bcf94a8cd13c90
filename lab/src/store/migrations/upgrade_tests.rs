//! Migrations on databases with history: 8's provenance, amendments,
//! comparisons and chain, 9's smoke tallies and 12's queue links are backfilled
//! from the rows already there.

use rusqlite::Connection;

use super::*;

#[test]
fn a_seventh_schema_database_gets_sources_comparisons_and_a_chain() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    migrate_to(&mut conn, 7).unwrap();
    conn.execute_batch(
        "INSERT INTO hypotheses (id, title, mechanism, leaf, created_at) VALUES (1, 'h', 'm', 'toy', 't');
         INSERT INTO experiments (id, hypothesis_id, leaf, host, started_at) VALUES
             (1, 1, 'toy', 'h', 't'), (2, 1, 'toy', 'h', 't'), (3, 1, 'toy', 'h', 't'), (4, 1, 'toy', 'h', 't');
         INSERT INTO runs (experiment_id, tier, seed, budget_s, wall_s, exit_reason, metric_source, frozen_lock_sha256,
                           started_at, finished_at) VALUES
             (1, 'full', 1, 1, 1, 'ok', 'harness', 'A', 't1', 't'), (2, 'full', 1, 1, 1, 'ok', 'harness', 'B', 't2', 't');
         -- e1: the harness kept it. e2: the harness discarded it, then an agent typed a keep over it.
         -- e3: typed by an agent, no run. e4: imported.
         INSERT INTO results (id, experiment_id, leaf, verdict, metrics, note, created_at, superseded_by) VALUES
             (1, 1, 'toy', 'keep', '{\"mae\": 0.5}', 'the baseline', 't', NULL),
             (2, 2, 'toy', 'discard', '{\"mae\": 0.9}', 'gate fail', 't', 3),
             (3, 2, 'toy', 'keep', '{\"mae\": 0.1}', NULL, 't', NULL),
             (4, 3, 'toy', 'keep', '{\"mae\": 0.2}', NULL, 't', NULL),
             (5, 4, 'toy', 'keep', '{\"mae\": 0.3}', 'imported from PraxLab x', 't', NULL);
         INSERT INTO metrics (result_id, experiment_id, leaf, verdict, name, value) VALUES
             (1, 1, 'toy', 'keep', 'mae', 0.5), (3, 2, 'toy', 'keep', 'mae', 0.1),
             (4, 3, 'toy', 'keep', 'mae', 0.2), (5, 4, 'toy', 'keep', 'mae', 0.3);",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let rows: Vec<(i64, String, Option<String>, Option<i64>)> = conn
        .prepare("SELECT id, source, comparison, amends FROM results ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let row = |id, source: &str, comparison: Option<&str>, amends| {
        (id, source.to_owned(), comparison.map(str::to_owned), amends)
    };
    assert_eq!(
        rows,
        [
            row(1, "harness", Some("A"), None),
            row(2, "harness", Some("B"), None),
            row(3, "agent", Some("B"), Some(2)),
            row(4, "agent", None, None),
            row(5, "agent", None, None),
        ]
    );
    let comparisons: Vec<(String, String, i64)> = conn
        .prepare("SELECT key, files, experiment_id FROM comparisons ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(comparisons, [("A".to_owned(), "null".to_owned(), 1), ("B".to_owned(), "null".to_owned(), 2)]);
    let report = crate::store::verify::verify(&conn, None).unwrap();
    let rows_check = &report.checks[1];
    assert_eq!((report.checks[0].findings.len(), rows_check.findings.len()), (0, 0), "{report:?}");
    assert_eq!(report.head.seq, 1 + 4 + 5 + 2 + 2, "hypotheses, experiments, results, runs, comparisons");
    // The typed keep over the harness's discard is flagged, not laundered by the migration.
    let provenance: Vec<&str> = report.checks[3].findings.iter().map(|f| f.kind).collect();
    assert_eq!(provenance, ["agent-on-harness", "rewritten"]);
}

#[test]
fn migration_nine_counts_smoke_runs_as_checks_and_keeps_counting_them() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate_to(&mut conn, 8).unwrap();
    let tally = |conn: &Connection, kind: &str| -> i64 {
        conn.query_row("SELECT coalesce(SUM(n), 0) FROM tallies WHERE kind = ?1", [kind], |r| r.get(0)).unwrap()
    };
    conn.execute_batch(
        "INSERT INTO hypotheses (id, title, mechanism, leaf, created_at) VALUES (1, 'h', 'm', 'toy', 't');
         INSERT INTO experiments (id, hypothesis_id, leaf, host, started_at, smoke) VALUES
             (1, 1, 'toy', 'h', 't', 0), (2, 1, 'toy', 'h', 't', 1);
         INSERT INTO results (experiment_id, leaf, verdict, metrics, created_at, source) VALUES
             (1, 'toy', 'discard', '{}', 't', 'harness'), (2, 'toy', 'discard', '{}', 't', 'harness');",
    )
    .unwrap();
    assert_eq!(tally(&conn, "results:discard"), 2, "schema 8 counted the smoke run as a discard");
    migrate(&mut conn).unwrap();
    assert_eq!((tally(&conn, "results:discard"), tally(&conn, "checks:discard")), (1, 1));
    conn.execute_batch(
        "INSERT INTO experiments (id, hypothesis_id, leaf, host, started_at, smoke) VALUES (3, 1, 'toy', 'h', 't', 1);
         INSERT INTO results (experiment_id, leaf, verdict, metrics, created_at, source)
             VALUES (3, 'toy', 'crash', '{}', 't', 'harness');",
    )
    .unwrap();
    assert_eq!((tally(&conn, "results:crash"), tally(&conn, "checks:crash")), (0, 1));
    conn.execute("UPDATE results SET superseded_by = 1 WHERE experiment_id = 3", []).unwrap();
    assert_eq!(tally(&conn, "checks:crash"), 0, "a superseded check leaves its own tally");
}

#[test]
fn migration_twelve_links_queue_items_to_the_hypotheses_they_became() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate_to(&mut conn, 11).unwrap();
    conn.execute_batch(
        "INSERT INTO hypotheses (id, title, mechanism, leaf, created_at) VALUES
             (1, 'Warmup 500 steps', 'm', 'toy', 't'), (2, 'warmup 500 steps ', 'm', 'toy', 't'),
             (3, 'cosine schedule', 'm', 'other', 't');
         INSERT INTO queue (id, leaf, title, mechanism, status, created_at) VALUES
             (1, 'toy', 'warmup 500 steps', 'm', 'done', 't'), (2, 'toy', 'cosine schedule', 'm', 'queued', 't'),
             (3, NULL, 'warmup 500 steps', 'm', 'queued', 't');",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let links: Vec<Option<i64>> = conn
        .prepare("SELECT hypothesis_id FROM queue ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // The earliest hypothesis of the same title and leaf; none across leaves.
    assert_eq!(links, [Some(1), None, None]);
}

#[test]
fn migration_fourteen_marks_the_hypotheses_a_run_has_tested() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate_to(&mut conn, 13).unwrap();
    conn.execute_batch(
        "INSERT INTO hypotheses (id, title, mechanism, leaf, created_at) VALUES
             (1, 'tried', 'm', 'toy', 't'), (2, 'smoked', 'm', 'toy', 't'), (3, 'waiting', 'm', 'toy', 't');
         INSERT INTO experiments (id, hypothesis_id, leaf, host, started_at, smoke) VALUES
             (1, 1, 'toy', 'h', 't', 0), (2, 2, 'toy', 'h', 't', 1);
         INSERT INTO results (experiment_id, leaf, verdict, metrics, created_at, source) VALUES
             (1, 'toy', 'discard', '{}', 't', 'harness'), (2, 'toy', 'discard', '{}', 't', 'harness');",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let tested = |conn: &Connection| -> Vec<i64> {
        conn.prepare("SELECT id FROM hypotheses WHERE tested = 1 ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(tested(&conn), [1], "backfilled; a smoke check tests the code, not the idea");
    conn.execute_batch(
        "INSERT INTO experiments (id, hypothesis_id, leaf, host, started_at) VALUES (3, 3, 'toy', 'h', 't');
         INSERT INTO results (experiment_id, leaf, verdict, metrics, created_at, source)
             VALUES (3, 'toy', 'keep', '{}', 't', 'agent');",
    )
    .unwrap();
    assert_eq!(tested(&conn), [1, 3], "the trigger marks it with the result");
}
