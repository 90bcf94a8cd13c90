//! The best kept value per (leaf, metric), as `lab context` shows it.
//!
//! A best is the harness's: ranked among the harness's results of the leaf's
//! current comparison, never across comparisons and never an agent's typed
//! number (migration 8's partial index `metrics_leaders` makes it one probe).
//! Kept results typed by agents are reported apart ([`reported_kept`]). Which
//! (leaf, metric) pairs have a kept value comes from the tallies of migration 2.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use serde::Serialize;

use super::comparisons;
use super::queries::scoped;
use super::records::Source;
use crate::gate::Goal;
use crate::ids::ExperimentId;

/// The best kept value of one metric.
#[derive(Debug, Clone, Serialize)]
pub struct Best {
    pub leaf: Option<String>,
    pub metric: String,
    pub goal: Option<Goal>,
    pub value: f64,
    pub experiment: String,
    pub source: Source,
    /// The comparison it was ranked within (the leaf's current one); `None` for agent results.
    pub comparison: Option<String>,
}

/// Best kept value per (leaf, metric) among the harness's results of each
/// leaf's current comparison: what `lab context` calls best. `goal_of` gives a
/// metric's goal; for a metric with no known goal both extremes are reported.
pub fn best_kept(
    conn: &Connection,
    leaf: Option<&str>,
    goal_of: impl Fn(Option<&str>, &str) -> Option<Goal>,
) -> Result<Vec<Best>> {
    let mut keys = HashMap::new();
    extremes(conn, leaf, goal_of, |leaf, metric, order| {
        let Some(leaf) = leaf else { return Ok(None) };
        if !keys.contains_key(leaf) {
            keys.insert(leaf.to_owned(), comparisons::current_key(conn, leaf)?);
        }
        let Some(key) = keys[leaf].clone() else { return Ok(None) };
        // One probe of the partial index metrics_leaders.
        let sql = format!(
            "SELECT value, experiment_id FROM metrics
             WHERE leaf = ?1 AND comparison = ?2 AND name = ?3 AND verdict = 'keep' AND source = 'harness'
             ORDER BY value {order} LIMIT 1"
        );
        let row = conn.prepare_cached(&sql)?.query_row(rusqlite::params![leaf, key, metric], pair).optional()?;
        Ok(row.map(|(value, e)| (value, e, Source::Harness, Some(key))))
    })
}

/// Kept results typed by agents, best per (leaf, metric): shown as what they
/// are, never as a best.
pub fn reported_kept(
    conn: &Connection,
    leaf: Option<&str>,
    goal_of: impl Fn(Option<&str>, &str) -> Option<Goal>,
) -> Result<Vec<Best>> {
    extremes(conn, leaf, goal_of, |leaf, metric, order| {
        // `leaf IS ?` would defeat the index. On ties the index order (by result id) gives the earliest.
        let leaf_test = if leaf.is_some() { "leaf = ?1" } else { "leaf IS NULL AND ?1 IS NULL" };
        let sql = format!(
            "SELECT value, experiment_id FROM metrics
             WHERE {leaf_test} AND name = ?2 AND verdict = 'keep' AND source = 'agent' ORDER BY value {order} LIMIT 1"
        );
        let row = conn.prepare_cached(&sql)?.query_row(rusqlite::params![leaf, metric], pair).optional()?;
        Ok(row.map(|(value, e)| (value, e, Source::Agent, None)))
    })
}

fn pair(r: &Row<'_>) -> rusqlite::Result<(f64, i64)> {
    Ok((r.get(0)?, r.get(1)?))
}

type Found = Option<(f64, i64, Source, Option<String>)>;

/// For every (leaf, metric) with a kept value (the tallies), the extreme `probe` finds in the goal's direction.
fn extremes(
    conn: &Connection,
    leaf: Option<&str>,
    goal_of: impl Fn(Option<&str>, &str) -> Option<Goal>,
    mut probe: impl FnMut(Option<&str>, &str, &str) -> Result<Found>,
) -> Result<Vec<Best>> {
    let sql = format!(
        "SELECT nullif(leaf, ''), substr(kind, 13) FROM tallies{} ORDER BY leaf, kind",
        scoped(leaf, "kind >= 'kept-metric:' AND kind < 'kept-metric;' AND n > 0")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let pairs: Vec<(Option<String>, String)> =
        stmt.query_map(params_from_iter(leaf), |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let mut best = Vec::new();
    for (leaf, metric) in pairs {
        let goal = goal_of(leaf.as_deref(), &metric);
        let orders: &[(&str, Option<Goal>)] = match goal {
            Some(Goal::Minimize) => &[("ASC", Some(Goal::Minimize))],
            Some(Goal::Maximize) => &[("DESC", Some(Goal::Maximize))],
            None => &[("ASC", None), ("DESC", None)],
        };
        for (order, goal) in orders {
            let Some((value, experiment, source, comparison)) = probe(leaf.as_deref(), &metric, order)? else {
                continue;
            };
            best.push(Best {
                leaf: leaf.clone(),
                metric: metric.clone(),
                goal: *goal,
                value,
                experiment: ExperimentId(experiment).to_string(),
                source,
                comparison,
            });
        }
    }
    Ok(best)
}
