//! Reads of the research memory: the history, counts, bests, running runs.
//!
//! Every query here is shaped to walk an index (see migration 2) so that read
//! commands stay within milliseconds at 100k experiments; `scripts/bench-store`
//! measures them. Filters are appended to the SQL only when present, because
//! `(?1 IS NULL OR leaf = ?1)` would stop SQLite from using the leaf index.
//! Bests are in `bests.rs`, re-exported here.

use anyhow::Result;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params_from_iter};
use serde::Serialize;
use serde_json::Value;

pub use super::bests::{Best, best_kept, reported_kept};
use crate::gate::Goal;
use crate::ids::{ExperimentId, HypothesisId};

/// One experiment with its hypothesis and current result, if any.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub experiment: String,
    pub hypothesis: String,
    pub leaf: Option<String>,
    pub title: String,
    pub mechanism: String,
    pub status: String,
    pub verdict: Option<String>,
    /// `smoke` for a smoke-only run: a check that the code runs, not a test of its hypothesis.
    pub check: Option<String>,
    pub metrics: Value,
    pub mechanism_verdict: Option<String>,
    pub theory_revision: Option<String>,
    pub note: Option<String>,
    /// Why it failed, for a crash or a discard (see [`reason`]); `None` otherwise.
    pub reason: Option<String>,
    /// Who recorded the current result (`harness` or `agent`); `None` without one.
    pub source: Option<String>,
    /// The comparison key the result was recorded under; `None` without a run.
    pub comparison: Option<String>,
    /// What the sandbox enforced on its last run (`landlock v7`, `none`, `disabled`); `None` without a run.
    pub sandbox: Option<String>,
    pub commit: Option<String>,
    pub dirty: bool,
    pub host: String,
    pub pid: Option<i64>,
    #[serde(skip)]
    pub watch_pid: bool,
    pub budget_s: Option<f64>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub leaf: Option<String>,
    /// Only this experiment (`lab diff`, `lab watch`).
    pub experiment: Option<ExperimentId>,
    pub verdicts: Vec<&'static str>,
    /// Only experiments started at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only experiments still marked running.
    pub running: bool,
    /// Leave out smoke checks: they test the code, not an idea (failures, discards).
    pub research_only: bool,
    /// Sort best-first by this metric instead of newest-first.
    pub sort: Option<(String, Goal)>,
    pub limit: Option<usize>,
}

const HISTORY_COLUMNS: &str = "e.id, e.hypothesis_id, e.leaf, h.title, h.mechanism, e.status, r.verdict, r.metrics,
    r.mechanism, r.theory_revision, r.note, e.git_commit, e.dirty, e.host, e.pid, e.watch_pid, e.budget_s,
    e.started_at, e.finished_at, r.source, r.comparison,
    (SELECT u.sandbox FROM runs u WHERE u.experiment_id = e.id ORDER BY u.id DESC LIMIT 1), e.smoke,
    (SELECT u.exit_reason || coalesce(': ' || u.detail, '') FROM runs u
     WHERE u.experiment_id = e.id AND u.exit_reason != 'ok' ORDER BY u.id DESC LIMIT 1)";

pub fn history(conn: &Connection, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
    let mut args: Vec<SqlValue> = Vec::new();
    let mut conditions = Vec::new();
    // Sorted by a metric, the walk starts at the metric's index so LIMIT stops
    // it early; otherwise at the newest experiment.
    let (mut sql, leaf_column, verdict_column) = match &q.sort {
        Some((metric, _)) => {
            conditions.push("m.name = ?".to_owned());
            args.push(metric.clone().into());
            (
                format!(
                    "SELECT {HISTORY_COLUMNS} FROM metrics m JOIN experiments e ON e.id = m.experiment_id
                     JOIN hypotheses h ON h.id = e.hypothesis_id JOIN results r ON r.id = m.result_id"
                ),
                "m.leaf",
                "m.verdict",
            )
        }
        None => {
            // With a verdict filter the join is inner anyway; CROSS JOIN pins the
            // walk to experiments, newest first. Left to itself, SQLite prefers
            // the partial index on current results for small LIMITs and sorts
            // every failure of the lab to return the newest five (100 ms at 100k).
            let join = if q.verdicts.is_empty() { "LEFT JOIN" } else { "CROSS JOIN" };
            (
                format!(
                    "SELECT {HISTORY_COLUMNS} FROM experiments e JOIN hypotheses h ON h.id = e.hypothesis_id
                     {join} results r ON r.experiment_id = e.id AND r.superseded_by IS NULL"
                ),
                "e.leaf",
                "r.verdict",
            )
        }
    };
    if let Some(leaf) = &q.leaf {
        conditions.push(format!("{leaf_column} = ?"));
        args.push(leaf.clone().into());
    }
    if let Some(id) = q.experiment {
        conditions.push("e.id = ?".to_owned());
        args.push(id.0.into());
    }
    if !q.verdicts.is_empty() {
        conditions.push(format!("{verdict_column} IN ({})", vec!["?"; q.verdicts.len()].join(", ")));
        args.extend(q.verdicts.iter().map(|v| SqlValue::from((*v).to_owned())));
    }
    if let Some(since) = &q.since {
        conditions.push("e.started_at >= ?".to_owned());
        args.push(since.clone().into());
    }
    if q.running {
        conditions.push("e.status = 'running'".to_owned());
    }
    if q.research_only {
        conditions.push("e.smoke = 0".to_owned());
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(match &q.sort {
        Some((_, Goal::Minimize)) => " ORDER BY m.value ASC, e.id DESC",
        Some((_, Goal::Maximize)) => " ORDER BY m.value DESC, e.id DESC",
        None => " ORDER BY e.id DESC",
    });
    if let Some(limit) = q.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), history_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl HistoryRow {
    /// The verdict as tables show it: a smoke check `passed` or `failed`, never a discard of an idea.
    pub fn shown_verdict(&self) -> Option<String> {
        match (&self.check, self.verdict.as_deref()) {
            (Some(tier), Some("crash")) => Some(format!("{tier} check failed")),
            (Some(tier), Some(_)) => Some(format!("{tier} check passed")),
            _ => self.verdict.clone(),
        }
    }

    /// Who recorded the result, flagged when the code ran without a sandbox:
    /// `harness`, `agent`, `harness, unsandboxed (none)`.
    pub fn provenance(&self) -> Option<String> {
        let source = self.source.clone()?;
        match self.sandbox.as_deref() {
            Some(s) if !s.starts_with("landlock") => Some(format!("{source}, unsandboxed ({s})")),
            _ => Some(source),
        }
    }
}

/// Why an experiment failed: for a crash, how its last failed run ended (the
/// harness's `exit_reason: detail`), else the result's note (a sweep's
/// staleness, lab's own failure); for a discard of an idea, the note (the
/// gate's reasoning). A keep, a passed smoke check or no result has none.
fn reason(verdict: Option<&str>, smoke: bool, run: Option<String>, note: Option<&str>) -> Option<String> {
    match verdict {
        Some("crash") => run.or_else(|| note.map(str::to_owned)),
        Some("discard") if !smoke => note.map(str::to_owned),
        _ => None,
    }
}

fn history_row(r: &Row<'_>) -> rusqlite::Result<HistoryRow> {
    let metrics: Option<String> = r.get(7)?;
    let (verdict, smoke, note): (Option<String>, bool, Option<String>) = (r.get(6)?, r.get(22)?, r.get(10)?);
    Ok(HistoryRow {
        experiment: ExperimentId(r.get(0)?).to_string(),
        hypothesis: HypothesisId(r.get(1)?).to_string(),
        leaf: r.get(2)?,
        title: r.get(3)?,
        mechanism: r.get(4)?,
        status: r.get(5)?,
        reason: reason(verdict.as_deref(), smoke, r.get(23)?, note.as_deref()),
        verdict,
        check: smoke.then(|| "smoke".to_owned()),
        metrics: metrics.and_then(|m| serde_json::from_str(&m).ok()).unwrap_or(Value::Null),
        mechanism_verdict: r.get(8)?,
        theory_revision: r.get(9)?,
        note,
        source: r.get(19)?,
        comparison: r.get(20)?,
        sandbox: r.get(21)?,
        commit: r.get(11)?,
        dirty: r.get(12)?,
        host: r.get(13)?,
        pid: r.get(14)?,
        watch_pid: r.get(15)?,
        budget_s: r.get(16)?,
        started_at: r.get(17)?,
        finished_at: r.get(18)?,
    })
}

/// How many current results of `leaf` (or the lab) are discards or crashes.
pub fn count_failures(conn: &Connection, leaf: Option<&str>) -> Result<u64> {
    let counts = counts(conn, leaf)?;
    Ok(counts.discard + counts.crash)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub hypotheses: u64,
    /// Hypotheses no run has tested yet, as [`open_hypotheses`] lists them: a
    /// tested one whose mechanism nobody judged, or a standing one, is counted
    /// in `hypotheses` only.
    pub open: u64,
    pub confirmed: u64,
    pub refuted: u64,
    pub experiments: u64,
    pub keep: u64,
    pub discard: u64,
    pub crash: u64,
    /// Smoke checks (passed or failed): runs of the code, not results of an idea.
    pub checks: u64,
}

/// ` WHERE leaf = ?1 AND <extra>` or ` WHERE <extra>`: the leaf filter only when scoped.
pub(super) fn scoped(leaf: Option<&str>, extra: &str) -> String {
    match leaf {
        Some(_) => format!(" WHERE leaf = ?1 AND {extra}"),
        None => format!(" WHERE {extra}"),
    }
}

/// A number that changes whenever the research memory does: the chain's last
/// entry (every record appends one) with the count of running experiments (a
/// status is not chained). The dashboard polls it.
pub fn version(conn: &Connection) -> Result<(i64, i64)> {
    let sql = "SELECT (SELECT coalesce(max(seq), 0) FROM chain),
                      (SELECT count(*) FROM experiments WHERE status = 'running')";
    Ok(conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Counts from the tallies the triggers of migration 2 keep exact: a few rows
/// per leaf, whatever the number of experiments; the open ones from migration
/// 14's partial index, which holds only the untested.
pub fn counts(conn: &Connection, leaf: Option<&str>) -> Result<Counts> {
    let sql =
        format!("SELECT kind, SUM(n) FROM tallies{} GROUP BY kind", scoped(leaf, "kind NOT LIKE 'kept-metric:%'"));
    let (mut counts, mut undecided) = (Counts::default(), 0);
    for row in conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(leaf), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
    {
        let (kind, n) = row?;
        let n = n.max(0) as u64;
        match kind.as_str() {
            "hypotheses:open" => undecided = n,
            "hypotheses:confirmed" => counts.confirmed = n,
            "hypotheses:refuted" => counts.refuted = n,
            "experiments" => counts.experiments = n,
            "results:keep" => counts.keep = n,
            "results:discard" => counts.discard = n,
            "results:crash" => counts.crash = n,
            k if k.starts_with("checks:") => counts.checks += n,
            _ => {}
        }
    }
    counts.hypotheses = undecided + counts.confirmed + counts.refuted;
    let sql = format!("SELECT count(*) FROM {}", untested(leaf));
    let open: i64 = conn.prepare_cached(&sql)?.query_row(params_from_iter(leaf), |r| r.get(0))?;
    counts.open = open as u64;
    Ok(counts)
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenHypothesis {
    pub hypothesis: String,
    pub leaf: Option<String>,
    pub title: String,
    pub mechanism: String,
    pub prediction: Option<String>,
}

/// Open hypotheses no run has tested yet (migration 14), newest first: the
/// ideas still waiting, not the tested ones whose mechanism nobody judged,
/// nor the standing ones `lab run` files runs under ("baseline", "smoke
/// check"), which are bookkeeping, not ideas.
pub fn open_hypotheses(conn: &Connection, leaf: Option<&str>, limit: usize) -> Result<Vec<OpenHypothesis>> {
    let sql =
        format!("SELECT id, leaf, title, mechanism, prediction FROM {} ORDER BY id DESC LIMIT {limit}", untested(leaf));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(leaf), |r| {
        Ok(OpenHypothesis {
            hypothesis: HypothesisId(r.get(0)?).to_string(),
            leaf: r.get(1)?,
            title: r.get(2)?,
            mechanism: r.get(3)?,
            prediction: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The one definition of an open hypothesis (open, untested, not standing) as
/// the SQL after `FROM`. It names migration 14's partial index, which holds
/// only the untested: without statistics the planner picks the (leaf, status)
/// index and walks every open hypothesis of the leaf, tested or not (measured
/// with 100k open, 1% untested: 30 ms for the count instead of 2).
fn untested(leaf: Option<&str>) -> String {
    let index = if leaf.is_some() { "hypotheses_untested_by_leaf" } else { "hypotheses_untested" };
    // A constant without quotes, so it can sit in the SQL beside the optional leaf parameter.
    let standing = super::runs::AUTO_MECHANISM;
    let filter = scoped(leaf, &format!("status = 'open' AND tested = 0 AND mechanism != '{standing}'"));
    format!("hypotheses INDEXED BY {index}{filter}")
}

#[cfg(test)]
mod tests;
