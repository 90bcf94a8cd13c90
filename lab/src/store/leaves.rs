//! Per-leaf statistics for `lab leaves` and `lab show`: how many experiments,
//! when the leaf was last active, the best kept value of its primary metric
//! (the harness's, within the leaf's current comparison: an agent's typed keep
//! or a result under another lock is never the best), and that comparison.
//!
//! Each number is a few index probes (the tallies of migration 2, `max(id)` per
//! index prefix), never a scan of the leaf's history, so listing many leaves
//! stays fast at 100k experiments. Last activity is the newest of: the latest
//! hypothesis's creation, the latest experiment's start and finish, and the
//! latest current result's creation (timestamps are RFC 3339 UTC, so they
//! compare as text).

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::comparisons::{self, Current};
use crate::gate::Goal;
use crate::ids::ExperimentId;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeafStats {
    pub experiments: u64,
    pub kept: u64,
    pub last_activity: Option<String>,
    /// The best kept value of the primary metric, and the experiment that reached it.
    pub best: Option<f64>,
    pub best_experiment: Option<String>,
    /// The comparison the best is ranked within, and what its re-lock changed.
    pub comparison: Option<Current>,
}

/// Every leaf the research memory holds a record of, sorted (one index scan of
/// the tallies, not of the records).
pub fn recorded(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT leaf FROM tallies WHERE leaf <> '' AND n > 0 ORDER BY leaf")?;
    let leaves = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(leaves)
}

/// The statistics of `leaf`, scored on `metric` in the direction `goal`.
pub fn stats(conn: &Connection, leaf: &str, metric: &str, goal: Goal) -> Result<LeafStats> {
    let tally = |kind: &str| -> Result<u64> {
        let n: Option<i64> = conn
            .prepare_cached("SELECT n FROM tallies WHERE leaf = ?1 AND kind = ?2")?
            .query_row(params![leaf, kind], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    };
    let order = match goal {
        Goal::Minimize => "ASC",
        Goal::Maximize => "DESC",
    };
    let comparison = comparisons::current(conn, leaf)?;
    let best: Option<(f64, i64)> = match &comparison {
        None => None,
        Some(c) => conn
            .prepare_cached(&format!(
                "SELECT value, experiment_id FROM metrics
                 WHERE leaf = ?1 AND comparison = ?2 AND name = ?3 AND verdict = 'keep' AND source = 'harness'
                 ORDER BY value {order} LIMIT 1"
            ))?
            .query_row(params![leaf, c.comparison.key, metric], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    };
    Ok(LeafStats {
        experiments: tally("experiments")?,
        kept: tally("results:keep")?,
        last_activity: last_activity(conn, leaf)?,
        best: best.map(|b| b.0),
        best_experiment: best.map(|b| ExperimentId(b.1).to_string()),
        comparison,
    })
}

fn last_activity(conn: &Connection, leaf: &str) -> Result<Option<String>> {
    // One `max(id)` per (leaf, status) prefix walks each index to its end; a
    // plain `ORDER BY id DESC` across statuses would sort every row of the leaf.
    let newest = |sql: &str| -> Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let times =
            stmt.query_map(params![leaf], |r| Ok([r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?]))?;
        let mut all = Vec::new();
        for pair in times {
            all.extend(pair?.into_iter().flatten());
        }
        Ok(all)
    };
    let mut times = newest(
        "SELECT created_at, NULL FROM hypotheses WHERE id IN (
            SELECT (SELECT max(id) FROM hypotheses WHERE leaf = ?1 AND status = s)
            FROM (SELECT 'open' AS s UNION ALL SELECT 'confirmed' UNION ALL SELECT 'refuted'))",
    )?;
    times.extend(newest(
        "SELECT started_at, finished_at FROM experiments WHERE id = (SELECT max(id) FROM experiments WHERE leaf = ?1)",
    )?);
    times.extend(newest(
        "SELECT created_at, NULL FROM results WHERE id IN (
            SELECT (SELECT max(id) FROM results WHERE leaf = ?1 AND verdict = v AND superseded_by IS NULL)
            FROM (SELECT 'keep' AS v UNION ALL SELECT 'discard' UNION ALL SELECT 'crash'))",
    )?);
    Ok(times.into_iter().max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn exec(store: &Store, sql: &str) {
        store.conn().execute_batch(sql).unwrap();
    }

    #[test]
    fn counts_best_and_last_activity_of_one_leaf() {
        let store = Store::in_memory();
        let empty = stats(store.conn(), "a", "loss", Goal::Minimize).unwrap();
        assert_eq!(empty, LeafStats::default());
        exec(
            &store,
            "INSERT INTO hypotheses (id, leaf, title, mechanism, created_at) VALUES
                (1, 'a', 't', 'm', '2026-01-01T00:00:00Z'), (2, 'b', 't', 'm', '2026-03-01T00:00:00Z');
             INSERT INTO experiments (id, hypothesis_id, leaf, host, started_at, finished_at, status) VALUES
                (1, 1, 'a', 'h', '2026-01-02T00:00:00Z', '2026-01-02T01:00:00Z', 'finished'),
                (2, 1, 'a', 'h', '2026-01-03T00:00:00Z', '2026-01-03T01:00:00Z', 'finished'),
                (3, 2, 'b', 'h', '2026-03-02T00:00:00Z', NULL, 'running');
             INSERT INTO results (id, experiment_id, leaf, verdict, metrics, created_at) VALUES
                (1, 1, 'a', 'keep', '{\"loss\": 2.0}', '2026-01-02T01:00:00Z'),
                (2, 2, 'a', 'keep', '{\"loss\": 1.5}', '2026-01-05T00:00:00Z');
             INSERT INTO comparisons (leaf, key, files, gate, inputs, experiment_id, created_at) VALUES
                ('a', 'old', 'null', 'null', 'null', 1, 't'), ('a', 'K', '{}', '{}', '[]', 1, 't');
             INSERT INTO metrics (result_id, experiment_id, leaf, verdict, name, value, source, comparison) VALUES
                (1, 1, 'a', 'keep', 'loss', 2.0, 'harness', 'K'), (2, 2, 'a', 'keep', 'loss', 1.5, 'harness', 'K');",
        );
        let a = stats(store.conn(), "a", "loss", Goal::Minimize).unwrap();
        assert_eq!((a.experiments, a.kept, a.best), (2, 2, Some(1.5)));
        assert_eq!(a.best_experiment.as_deref(), Some("e2"));
        assert_eq!(a.last_activity.as_deref(), Some("2026-01-05T00:00:00Z"));
        let relock = a.comparison.and_then(|c| c.relock).expect("a second comparison is a re-lock");
        assert!(relock.unrecorded, "the first was backfilled without files");
        let a_max = stats(store.conn(), "a", "loss", Goal::Maximize).unwrap();
        assert_eq!(a_max.best, Some(2.0));
        let b = stats(store.conn(), "b", "loss", Goal::Minimize).unwrap();
        assert_eq!((b.experiments, b.best, b.last_activity.as_deref()), (1, None, Some("2026-03-02T00:00:00Z")));
    }

    #[test]
    fn the_best_is_the_harness_keep_of_the_current_comparison() {
        use crate::store::comparisons::{self, NewComparison};
        use crate::store::records::{self, Source, Verdict};
        use crate::store::testing::{self, metrics};
        let mut store = Store::in_memory();
        store
            .write(|tx| {
                for key in ["old", "K"] {
                    let e = testing::harness(tx, "a", key, Verdict::Keep, if key == "K" { 0.5 } else { 0.1 });
                    let c = NewComparison {
                        leaf: "a".into(),
                        key: key.into(),
                        files: Default::default(),
                        gate: serde_json::json!({}),
                        inputs: serde_json::json!([]),
                        experiment: e,
                        created_at: "t".into(),
                    };
                    comparisons::record(tx, &c)?;
                }
                let typed = testing::experiment(tx, "a");
                let r = testing::result(typed, Verdict::Keep, metrics(&[("loss", 0.01), ("mae", 0.01)]), Source::Agent);
                records::add_result(tx, &r, false)
            })
            .unwrap();
        let a = stats(store.conn(), "a", "mae", Goal::Minimize).unwrap();
        assert_eq!((a.best, a.best_experiment.as_deref(), a.kept), (Some(0.5), Some("e2"), 3));
        assert_eq!(stats(store.conn(), "a", "loss", Goal::Minimize).unwrap().best, None, "an agent's number only");
    }
}
