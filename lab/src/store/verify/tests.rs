use rusqlite::Transaction;
use serde_json::json;

use super::*;
use crate::ids::ExperimentId;
use crate::leaf::inputs::{Found, ResolvedInput};
use crate::store::comparisons::{self, NewComparison};
use crate::store::gate::{self, Baseline, StoredReport};
use crate::store::imports;
use crate::store::records::{Source, Verdict};
use crate::store::submissions::{self, Submission};
use crate::store::testing::{self, metrics};
use crate::store::transfer::Imported;
use crate::store::{Store, runs};

/// One row in every chained table, through the store's own writes.
fn everything(tx: &Transaction<'_>, leaf: &str) -> Result<ExperimentId> {
    let e = testing::experiment(tx, leaf);
    let run = testing::run(tx, e, "K");
    let input = ResolvedInput {
        name: "base".into(),
        leaf: "up".into(),
        file: "model.pt".into(),
        found: Some(Found { experiment: "e1".into(), path: "/p".into(), sha256: "abc".into() }),
        missing: None,
    };
    runs::add_inputs(tx, run, &[input])?;
    crate::store::records::add_result(
        tx,
        &testing::result(e, Verdict::Keep, metrics(&[("mae", 0.5)]), Source::Harness),
        false,
    )?;
    let report = StoredReport {
        experiment: e,
        leaf: leaf.into(),
        leader: None,
        mode: "predictions".into(),
        verdict: "pass".into(),
        improvement: 0.1,
        ci_low: f64::NEG_INFINITY,
        ci_high: 0.2,
        prob_better: 0.9,
        n: 10,
        reason: "r".into(),
        flags: vec![],
        min_improvement: 0.0,
        confidence: 0.9,
        sensitivity: Some(crate::gate::Sensitivity { se: 0.01, detectable: 0.03 }),
    };
    gate::add_report(tx, &report)?;
    let baseline = Baseline {
        leaf: leaf.into(),
        lock_sha256: "K".into(),
        leader: e,
        n: 3,
        mean: 0.5,
        sd: 0.01,
        seeds: vec![1, 2],
        created_at: "t".into(),
    };
    gate::add_baseline(tx, &baseline)?;
    gate::seal_holdout(tx, run, e, &metrics(&[("mae", 0.6)]))?;
    let read = gate::add_holdout_read(tx, leaf, &[e], "holdout")?;
    gate::add_transfer(tx, read, e, (Some(0.6), None), None)?;
    gate::add_archive(tx, e, "discard", "/a")?;
    let submission = Submission {
        leaf: leaf.into(),
        experiment: e.to_string(),
        path: "s.csv".into(),
        sha256: "f".into(),
        rows: 2,
        created_at: "t".into(),
    };
    submissions::add(tx, &submission, e)?;
    let c = NewComparison {
        leaf: leaf.into(),
        key: "K".into(),
        files: [("data.py".to_owned(), "1".to_owned())].into(),
        gate: json!({"min_improvement": 0.0}),
        inputs: json!([]),
        experiment: e,
        created_at: "t".into(),
    };
    comparisons::record(tx, &c)?;
    let source = imports::Source { format: "results-tsv", path: "r.tsv", sha256: "ab", leaf: Some(leaf) };
    imports::once(tx, &source, |_| Ok(Imported { hypotheses: 1, experiments: 1, results: 1 }))?;
    Ok(e)
}

fn store() -> Store {
    let mut store = Store::in_memory();
    store.write(|tx| everything(tx, "toy")).unwrap();
    store
}

fn findings(report: &Report) -> Vec<(&'static str, &'static str, String)> {
    report.checks.iter().flat_map(|c| c.findings.iter().map(move |f| (c.name, f.kind, f.describe()))).collect()
}

#[test]
fn what_lab_wrote_verifies_and_covers_every_chained_table() {
    let store = store();
    let report = verify(store.conn(), None).unwrap();
    assert!(report.ok, "{:?}", findings(&report));
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["chain", "rows", "metrics", "provenance"]);
    for spec in CHAINED {
        let n: i64 = store.conn().query_row(&format!("SELECT COUNT(*) FROM {}", spec.table), [], |r| r.get(0)).unwrap();
        assert!(n > 0, "the fixture has no {} row", spec.table);
    }
    assert_eq!(report.head.seq, report.checks[0].checked as i64);
}

#[test]
fn an_edited_column_of_any_chained_table_is_named() {
    for spec in CHAINED {
        for column in spec.columns {
            let store = store();
            // Another value of the same type, or one where there was NULL: always a change.
            let sql = format!(
                "UPDATE {} SET {column} = CASE typeof({column}) WHEN 'null' THEN 1 WHEN 'integer' THEN {column} + 1
                 WHEN 'real' THEN {column} + 0.5 ELSE {column} || 'x' END",
                spec.table
            );
            let pragmas = "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON;";
            store.conn().execute_batch(&format!("{pragmas} {sql}")).unwrap_or_else(|e| panic!("{sql}: {e}"));
            let report = verify(store.conn(), None).unwrap();
            assert!(!report.ok, "{}.{column}", spec.table);
            let rows = &report.checks[1].findings;
            let named = |f: &Finding| {
                f.table.as_deref() == Some(spec.table) && f.kind == "changed" && f.detail.starts_with(column)
            };
            // A key column renames the row: its entry has no row, and the row no entry.
            let renamed = |f: &Finding| f.table.as_deref() == Some(spec.table) && f.kind == "unchained";
            let is_key = spec.key.contains(&format!("t.{column}"));
            assert!(
                rows.iter().any(|f| if is_key { renamed(f) } else { named(f) }),
                "{}.{column}: {rows:?}",
                spec.table
            );
        }
    }
}

#[test]
fn the_chain_itself_and_rows_behind_its_back_are_caught() {
    let cases: &[(&str, &str, (&str, &str))] = &[
        ("a deleted row", "DELETE FROM holdout_reads", ("rows", "deleted")),
        (
            "a row without a trigger",
            "DROP TRIGGER chain_hypotheses; INSERT INTO hypotheses (title, mechanism, created_at) VALUES ('x', 'y', 't')",
            ("rows", "unchained"),
        ),
        ("a rewritten entry", "UPDATE chain SET row_sha256 = 'x' WHERE seq = 2", ("chain", "forged")),
        ("a relinked entry", "UPDATE chain SET prev_hash = 'x' WHERE seq = 3", ("chain", "broken")),
        ("a removed entry", "DELETE FROM chain WHERE seq = 2", ("chain", "gap")),
        (
            "a forged best",
            "INSERT INTO metrics VALUES (1, 1, 'toy', 'keep', 'rmse', 0.0, 'harness', 'K')",
            ("metrics", "forged"),
        ),
        ("an index edited", "UPDATE metrics SET value = 0.01", ("metrics", "differs")),
        ("a harness result relabelled", "UPDATE results SET source = 'agent'", ("provenance", "agent-on-harness")),
        ("a discard hidden", "UPDATE results SET superseded_by = 1", ("provenance", "supersession")),
    ];
    for (what, sql, (check, kind)) in cases {
        let store = store();
        store.conn().execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql}")).unwrap();
        let report = verify(store.conn(), None).unwrap();
        let found = findings(&report);
        assert!(found.iter().any(|(c, k, _)| c == check && k == kind), "{what}: {found:?}");
    }
}

#[test]
fn a_leaf_is_verified_alone_but_the_chain_whole() {
    let mut store = store();
    store.write(|tx| everything(tx, "other")).unwrap();
    store.conn().execute_batch("UPDATE hypotheses SET title = 'forged' WHERE leaf = 'other'").unwrap();
    assert!(verify(store.conn(), Some("toy")).unwrap().ok, "toy's rows are intact");
    let other = verify(store.conn(), Some("other")).unwrap();
    assert_eq!(findings(&other).len(), 1, "{:?}", findings(&other));
    assert_eq!(other.failures(), ["rows: hypotheses 2: title changed since it was recorded (chain entry 18)"]);
}
