//! Results: the one way every command records one, and the provenance rules.
//!
//! Invariants, enforced here and not only by the commands: a result is never
//! overwritten (an amendment appends a row naming the one it replaced, which
//! points at it); an experiment the harness ran (it has runs) only ever gets
//! verdicts and metrics from the harness, so `lab result` there may amend the
//! agent's annotations (mechanism, theory revision) and nothing else, and the
//! amended row keeps the harness's verdict, metrics, note and source; an
//! amendment keeps whatever it does not replace (an amend that only adds
//! `--mechanism-refuted` keeps the metrics); a hypothesis is confirmed or
//! refuted by the mechanism flag of a result, never by its verdict; the
//! derived `metrics` table mirrors exactly the current results' numbers, with
//! their source and comparison.

use anyhow::Result;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use super::{Mechanism, Metrics, Source, Verdict};
use crate::error::LabError;
use crate::ids::ExperimentId;

/// A complete result, as the runner, `lab sweep`, the importers and a first `lab result` give it.
#[derive(Debug, Clone)]
pub struct NewResult {
    pub experiment: ExperimentId,
    pub verdict: Verdict,
    pub metrics: Metrics,
    pub mechanism: Option<Mechanism>,
    pub theory_revision: Option<String>,
    pub note: Option<String>,
    pub created_at: String,
    /// Who produced it: the harness (through the runner) or an agent (typed, imported).
    pub source: Source,
}

/// `lab result --amend`: what the agent replaces; `None` keeps the earlier value.
#[derive(Debug, Clone)]
pub struct Amendment {
    pub experiment: ExperimentId,
    pub verdict: Option<Verdict>,
    pub metrics: Option<Metrics>,
    pub mechanism: Option<Mechanism>,
    pub theory_revision: Option<String>,
    pub created_at: String,
}

/// A result as stored: what read commands and `lab result --json` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredResult {
    #[serde(serialize_with = "id_text")]
    pub experiment: ExperimentId,
    pub verdict: Verdict,
    pub metrics: Metrics,
    pub mechanism: Option<Mechanism>,
    pub theory_revision: Option<String>,
    pub note: Option<String>,
    pub source: Source,
    /// The comparison key of the experiment's run; `None` without a run.
    pub comparison: Option<String>,
}

fn id_text<S: serde::Serializer>(id: &ExperimentId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// A result as recorded: its row id, whether it superseded an earlier one, and the row.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub id: i64,
    pub amended: bool,
    pub result: StoredResult,
}

/// What recording needs to know about the experiment.
struct Facts {
    leaf: Option<String>,
    hypothesis: i64,
    /// The harness ran it: it has rows in `runs`.
    ran: bool,
    /// The key of its latest full run, else its latest run.
    comparison: Option<String>,
    current: Option<(i64, StoredResult, String)>,
}

fn facts(tx: &Transaction<'_>, experiment: ExperimentId) -> Result<Facts> {
    let (leaf, hypothesis): (Option<String>, i64) = tx
        .query_row("SELECT leaf, hypothesis_id FROM experiments WHERE id = ?1", [experiment.0], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
        .ok_or_else(|| LabError::usage(format!("no experiment {experiment}")))?;
    let run: Option<Option<String>> = tx
        .prepare_cached(
            "SELECT frozen_lock_sha256 FROM runs WHERE experiment_id = ?1 ORDER BY tier = 'full' DESC, id DESC LIMIT 1",
        )?
        .query_row([experiment.0], |r| r.get(0))
        .optional()?;
    let current = tx
        .prepare_cached(
            "SELECT id, verdict, metrics, mechanism, theory_revision, note, source, comparison, created_at
             FROM results WHERE experiment_id = ?1 AND superseded_by IS NULL",
        )?
        .query_row([experiment.0], |r| {
            let text = |i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default);
            let result = StoredResult {
                experiment,
                verdict: Verdict::parse(&text(1)?).unwrap_or(Verdict::Crash),
                metrics: serde_json::from_str(&text(2)?).unwrap_or_default(),
                mechanism: Mechanism::parse(r.get::<_, Option<String>>(3)?.as_deref()),
                theory_revision: r.get(4)?,
                note: r.get(5)?,
                source: Source::parse(&text(6)?).unwrap_or(Source::Agent),
                comparison: r.get(7)?,
            };
            Ok((r.get(0)?, result, text(8)?))
        })
        .optional()?;
    Ok(Facts { leaf, hypothesis, ran: run.is_some(), comparison: run.flatten(), current })
}

/// Record a result. A second result for the same experiment is refused unless
/// `amend`; an amendment appends and supersedes, keeping the earlier record. An
/// agent's result on an experiment the harness ran is refused.
pub fn add_result(tx: &Transaction<'_>, r: &NewResult, amend: bool) -> Result<Recorded> {
    if amend && r.source == Source::Agent {
        let amendment = Amendment {
            experiment: r.experiment,
            verdict: Some(r.verdict),
            metrics: Some(r.metrics.clone()),
            mechanism: r.mechanism,
            theory_revision: r.theory_revision.clone(),
            created_at: r.created_at.clone(),
        };
        return amend_result(tx, &amendment);
    }
    let facts = facts(tx, r.experiment)?;
    if let Some((_, previous, at)) = &facts.current
        && !amend
    {
        return Err(already_recorded(r.experiment, previous, at).into());
    }
    if r.source == Source::Agent && facts.ran {
        return Err(harness_ran(r.experiment, None).into());
    }
    let result = StoredResult {
        experiment: r.experiment,
        verdict: r.verdict,
        metrics: r.metrics.clone(),
        mechanism: r.mechanism,
        theory_revision: r.theory_revision.clone(),
        note: r.note.clone(),
        source: r.source,
        comparison: facts.comparison.clone(),
    };
    insert(tx, &facts, result, &r.created_at)
}

/// Amend the current result of an experiment: every field not given keeps its
/// earlier value. On an experiment the harness ran, a verdict or metrics that
/// differ from the harness's are refused; with no result yet, the amendment is
/// the first result and needs a verdict.
pub fn amend_result(tx: &Transaction<'_>, a: &Amendment) -> Result<Recorded> {
    let facts = facts(tx, a.experiment)?;
    let Some((_, previous, _)) = &facts.current else {
        let verdict = a.verdict.ok_or_else(|| {
            LabError::usage(format!("{} has no result to amend", a.experiment))
                .hint("give its verdict with -v keep|discard|crash")
        })?;
        let first = NewResult {
            experiment: a.experiment,
            verdict,
            metrics: a.metrics.clone().unwrap_or_default(),
            mechanism: a.mechanism,
            theory_revision: a.theory_revision.clone(),
            note: None,
            created_at: a.created_at.clone(),
            source: Source::Agent,
        };
        return add_result(tx, &first, false);
    };
    let harness = facts.ran || previous.source == Source::Harness;
    if harness {
        let verdict = a.verdict.filter(|v| *v != previous.verdict);
        let metrics = a.metrics.as_ref().filter(|m| **m != previous.metrics);
        if verdict.is_some() || metrics.is_some() {
            return Err(harness_ran(a.experiment, Some(previous)).into());
        }
    }
    let result = StoredResult {
        verdict: a.verdict.unwrap_or(previous.verdict),
        metrics: a.metrics.clone().unwrap_or_else(|| previous.metrics.clone()),
        mechanism: a.mechanism.or(previous.mechanism),
        theory_revision: a.theory_revision.clone().or_else(|| previous.theory_revision.clone()),
        ..previous.clone()
    };
    insert(tx, &facts, result, &a.created_at)
}

fn already_recorded(experiment: ExperimentId, previous: &StoredResult, at: &str) -> LabError {
    let what = format!("{experiment} already has a result ({}, recorded {at})", previous.verdict);
    match previous.source {
        Source::Agent => {
            LabError::refused(what).hint("pass --amend to record a correction; the earlier result is kept")
        }
        Source::Harness => LabError::refused(format!("{what} by the harness")).hint(
            "--amend may add --mechanism-confirmed, --mechanism-refuted or --theory-revision; \
             the verdict and metrics are the harness's",
        ),
    }
}

fn harness_ran(experiment: ExperimentId, previous: Option<&StoredResult>) -> LabError {
    match previous {
        Some(p) => LabError::refused(format!(
            "{experiment} was run by the harness: its verdict ({}) and metrics come from its runs, and \
             `lab result` cannot set or change them",
            p.verdict
        ))
        .hint(
            "amend only the annotations: `lab result <e> --amend --mechanism-confirmed|--mechanism-refuted \
             [--theory-revision TEXT]`, without -v or --metrics; try the idea again with `lab run`",
        ),
        None => LabError::refused(format!(
            "{experiment} was run by the harness and has no result yet: its verdict comes from its runs, \
             not from `lab result`"
        ))
        .hint("if its `lab run` was killed, `lab sweep` marks it crashed once it is stale"),
    }
}

/// Append `result` for the experiment, superseding its current one.
fn insert(tx: &Transaction<'_>, facts: &Facts, result: StoredResult, created_at: &str) -> Result<Recorded> {
    let e = result.experiment;
    let id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM results", [], |row| row.get(0))?;
    let previous = facts.current.as_ref().map(|c| c.0);
    if let Some(old) = previous {
        // The foreign key is deferred: the new row exists by commit time.
        tx.execute("UPDATE results SET superseded_by = ?1 WHERE id = ?2", params![id, old])?;
        tx.execute("DELETE FROM metrics WHERE result_id = ?1", [old])?;
    }
    tx.execute(
        "INSERT INTO results (id, experiment_id, leaf, verdict, metrics, mechanism, theory_revision, note, created_at,
                              source, comparison, amends)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id,
            e.0,
            facts.leaf,
            result.verdict.as_str(),
            Value::Object(result.metrics.clone()).to_string(),
            result.mechanism.map(Mechanism::as_str),
            result.theory_revision,
            result.note,
            created_at,
            result.source.as_str(),
            result.comparison,
            previous
        ],
    )?;
    let mut metric = tx.prepare_cached(
        "INSERT INTO metrics (result_id, experiment_id, leaf, verdict, name, value, source, comparison)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (name, value) in &result.metrics {
        let (verdict, source) = (result.verdict.as_str(), result.source.as_str());
        metric.execute(params![id, e.0, facts.leaf, verdict, name, value.as_f64(), source, result.comparison])?;
    }
    let status = if result.verdict == Verdict::Crash { "crashed" } else { "finished" };
    tx.execute(
        "UPDATE experiments SET status = ?1, finished_at = COALESCE(finished_at, ?2) WHERE id = ?3",
        params![status, created_at, e.0],
    )?;
    if let Some(mechanism) = result.mechanism {
        tx.execute("UPDATE hypotheses SET status = ?1 WHERE id = ?2", params![mechanism.as_str(), facts.hypothesis])?;
    }
    Ok(Recorded { id, amended: previous.is_some(), result })
}

#[cfg(test)]
mod tests;
