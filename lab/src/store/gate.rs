//! The honest gate's records (migration 6): gate reports, baseline noise,
//! sealed held-out metrics with their read counter (and, from migration 15,
//! what each read found), and archive locations.
//!
//! Invariants: sealed held-out metrics are read only through
//! [`sealed_holdout`], which callers pair with [`add_holdout_read`] (the
//! counter is the honesty of the held-out split); no decision reads them.
//! Non-finite interval bounds are stored as NULL and read back as infinite.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use super::records::{self, Metrics};
use crate::gate::Sensitivity;
use crate::ids::ExperimentId;

/// What the gate said about one candidate, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReport {
    #[serde(serialize_with = "id_text")]
    pub experiment: ExperimentId,
    pub leaf: String,
    #[serde(serialize_with = "opt_id_text")]
    pub leader: Option<ExperimentId>,
    pub mode: String,
    pub verdict: String,
    pub improvement: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub prob_better: f64,
    pub n: usize,
    pub reason: String,
    pub flags: Vec<String>,
    pub min_improvement: f64,
    pub confidence: f64,
    /// What the decision's noise lets the gate see (migration 11); `None` before, or without noise.
    pub sensitivity: Option<Sensitivity>,
}

fn id_text<S: serde::Serializer>(id: &ExperimentId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

fn opt_id_text<S: serde::Serializer>(id: &Option<ExperimentId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

pub fn add_report(tx: &Transaction<'_>, r: &StoredReport) -> Result<()> {
    tx.execute(
        "INSERT INTO gate_reports (experiment_id, leaf, leader_experiment_id, mode, verdict, improvement, ci_low, ci_high,
                                   prob_better, n, reason, flags, min_improvement, confidence, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            r.experiment.0,
            r.leaf,
            r.leader.map(|e| e.0),
            r.mode,
            r.verdict,
            finite(r.improvement),
            finite(r.ci_low),
            finite(r.ci_high),
            finite(r.prob_better),
            r.n as i64,
            r.reason,
            serde_json::to_string(&r.flags)?,
            r.min_improvement,
            r.confidence,
            records::now()
        ],
    )?;
    if let Some(sensitivity) = r.sensitivity {
        tx.execute(
            "INSERT INTO gate_sensitivity (report_id, se, detectable) VALUES (?1, ?2, ?3)",
            params![tx.last_insert_rowid(), sensitivity.se, sensitivity.detectable],
        )?;
    }
    Ok(())
}

/// The latest report on `experiment`, if the gate ever judged it in a decision.
pub fn latest_report(conn: &Connection, experiment: ExperimentId) -> Result<Option<StoredReport>> {
    let row = conn
        .prepare_cached(
            "SELECT leaf, leader_experiment_id, mode, verdict, improvement, ci_low, ci_high, prob_better, n, reason,
                    flags, min_improvement, confidence, s.se, s.detectable
             FROM gate_reports g LEFT JOIN gate_sensitivity s ON s.report_id = g.id
             WHERE experiment_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([experiment.0], |r| {
            let flags: String = r.get(10)?;
            Ok(StoredReport {
                experiment,
                leaf: r.get(0)?,
                leader: r.get::<_, Option<i64>>(1)?.map(ExperimentId),
                mode: r.get(2)?,
                verdict: r.get(3)?,
                improvement: r.get::<_, Option<f64>>(4)?.unwrap_or(f64::NAN),
                ci_low: r.get::<_, Option<f64>>(5)?.unwrap_or(f64::NEG_INFINITY),
                ci_high: r.get::<_, Option<f64>>(6)?.unwrap_or(f64::INFINITY),
                prob_better: r.get::<_, Option<f64>>(7)?.unwrap_or(f64::NAN),
                n: r.get::<_, i64>(8)? as usize,
                reason: r.get(9)?,
                flags: serde_json::from_str(&flags).unwrap_or_default(),
                min_improvement: r.get(11)?,
                confidence: r.get(12)?,
                sensitivity: sensitivity(r.get(13)?, r.get(14)?),
            })
        })
        .optional()?;
    Ok(row)
}

fn sensitivity(se: Option<f64>, detectable: Option<f64>) -> Option<Sensitivity> {
    Some(Sensitivity { se: se?, detectable: detectable? })
}

/// The gate's decisions on a leaf within one comparison, and what they say
/// about the leaf's noise: how many candidates were judged and kept, how
/// many keeps noise alone would explain, and the latest decision's sensitivity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Power {
    /// Candidates the gate judged against a leader (the baseline is not one).
    pub decisions: u64,
    pub keeps: u64,
    /// The most keeps that candidates with no real gain would have won: each
    /// decision's false-keep budget (1 - confidence) / 2, summed.
    pub expected_noise_keeps: f64,
    /// The latest decision that measured any noise: a candidate whose every
    /// item moved alike (or not at all: outputs identical to the leader's)
    /// has a paired se of 0, which says nothing about the next candidate.
    #[serde(serialize_with = "opt_id_text")]
    pub measured_by: Option<ExperimentId>,
    pub sensitivity: Option<Sensitivity>,
}

/// [`Power`] of `leaf` in the comparison `key`, from the latest report of each
/// candidate recorded under it (a candidate rerun is one decision).
pub fn power(conn: &Connection, leaf: &str, key: &str) -> Result<Power> {
    let (decisions, keeps, expected_noise_keeps): (i64, i64, f64) = conn
        .prepare_cached(
            "SELECT COUNT(*), coalesce(SUM(g.verdict = 'pass'), 0), coalesce(SUM((1.0 - g.confidence) / 2), 0)
         FROM gate_reports g JOIN results r ON r.experiment_id = g.experiment_id AND r.superseded_by IS NULL
         WHERE g.leaf = ?1 AND r.comparison = ?2 AND g.leader_experiment_id IS NOT NULL
           AND g.id = (SELECT MAX(id) FROM gate_reports l WHERE l.experiment_id = g.experiment_id)",
        )?
        .query_row(params![leaf, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let latest = conn
        .prepare_cached(
            "SELECT g.experiment_id, s.se, s.detectable
             FROM gate_reports g JOIN gate_sensitivity s ON s.report_id = g.id
             JOIN results r ON r.experiment_id = g.experiment_id AND r.superseded_by IS NULL
             WHERE g.leaf = ?1 AND r.comparison = ?2 AND s.se > 0 ORDER BY g.id DESC LIMIT 1",
        )?
        .query_row(params![leaf, key], |r| Ok((ExperimentId(r.get(0)?), sensitivity(r.get(1)?, r.get(2)?))))
        .optional()?;
    Ok(Power {
        decisions: decisions as u64,
        keeps: keeps as u64,
        expected_noise_keeps,
        measured_by: latest.map(|(e, _)| e),
        sensitivity: latest.and_then(|(_, s)| s),
    })
}

/// The leader's run-to-run spread, measured by `lab baseline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub leaf: String,
    pub lock_sha256: String,
    #[serde(serialize_with = "id_text")]
    pub leader: ExperimentId,
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub seeds: Vec<u64>,
    pub created_at: String,
}

pub fn add_baseline(tx: &Transaction<'_>, b: &Baseline) -> Result<()> {
    tx.execute(
        "INSERT INTO baselines (leaf, lock_sha256, leader_experiment_id, n, mean, sd, seeds, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            b.leaf,
            b.lock_sha256,
            b.leader.0,
            b.n as i64,
            b.mean,
            b.sd,
            serde_json::to_string(&b.seeds)?,
            b.created_at
        ],
    )?;
    Ok(())
}

/// Baselines of `leaf` under `lock_sha256`, oldest first.
pub fn baselines(conn: &Connection, leaf: &str, lock_sha256: &str) -> Result<Vec<Baseline>> {
    let mut stmt = conn.prepare_cached(
        "SELECT leader_experiment_id, n, mean, sd, seeds, created_at FROM baselines
         WHERE leaf = ?1 AND lock_sha256 = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![leaf, lock_sha256], |r| {
        let seeds: String = r.get(4)?;
        Ok(Baseline {
            leaf: leaf.to_owned(),
            lock_sha256: lock_sha256.to_owned(),
            leader: ExperimentId(r.get(0)?),
            n: r.get::<_, i64>(1)? as usize,
            mean: r.get(2)?,
            sd: r.get(3)?,
            seeds: serde_json::from_str(&seeds).unwrap_or_default(),
            created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The primary metric of every full, successful run of `experiment`, with its seed, in run order.
pub fn full_values(conn: &Connection, experiment: ExperimentId, metric: &str) -> Result<Vec<(u64, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seed, json_extract(metrics, '$.' || json_quote(?2)) FROM runs
         WHERE experiment_id = ?1 AND tier = 'full' AND exit_reason = 'ok' ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![experiment.0, metric], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<f64>>(1)?)))?;
    let mut values = Vec::new();
    for row in rows {
        if let (seed, Some(v)) = row?
            && v.is_finite()
        {
            values.push((seed, v));
        }
    }
    Ok(values)
}

/// Seal the held-out metrics of one run: only `lab holdout` and `lab checkpoint` read them.
pub fn seal_holdout(tx: &Transaction<'_>, run_id: i64, experiment: ExperimentId, metrics: &Metrics) -> Result<()> {
    tx.execute(
        "INSERT INTO sealed_holdout (run_id, experiment_id, metrics) VALUES (?1, ?2, ?3)",
        params![run_id, experiment.0, Value::Object(metrics.clone()).to_string()],
    )?;
    Ok(())
}

/// The sealed held-out metrics of `experiment`'s runs, in run order.
pub fn sealed_holdout(conn: &Connection, experiment: ExperimentId) -> Result<Vec<Metrics>> {
    let mut stmt =
        conn.prepare_cached("SELECT metrics FROM sealed_holdout WHERE experiment_id = ?1 ORDER BY run_id")?;
    let rows = stmt.query_map([experiment.0], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for text in rows {
        if let Ok(Value::Object(m)) = serde_json::from_str(&text?) {
            out.push(m);
        }
    }
    Ok(out)
}

/// One counted read of the held-out split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldoutRead {
    pub id: i64,
    /// Reads of the leaf's held-out split, this one included.
    pub reads: u64,
}

/// Count one read of the held-out split.
pub fn add_holdout_read(
    tx: &Transaction<'_>,
    leaf: &str,
    experiments: &[ExperimentId],
    purpose: &str,
) -> Result<HoldoutRead> {
    let ids: Vec<String> = experiments.iter().map(ToString::to_string).collect();
    tx.execute(
        "INSERT INTO holdout_reads (leaf, experiments, purpose, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![leaf, serde_json::to_string(&ids)?, purpose, records::now()],
    )?;
    Ok(HoldoutRead { id: tx.last_insert_rowid(), reads: holdout_reads(tx, leaf)? })
}

/// What one read of the held-out split found about the leader (migration 15).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedTransfer {
    #[serde(serialize_with = "id_text")]
    pub leader: ExperimentId,
    pub holdout: Option<f64>,
    pub holdout_gain: Option<f64>,
    /// `transferred`, `did_not_transfer`, `not_shown`; `None` without a baseline.
    pub verdict: Option<String>,
    pub read_at: String,
}

/// Record what `read` found: the leader's held-out score, its gain over the baseline, the verdict.
pub fn add_transfer(
    tx: &Transaction<'_>,
    read: HoldoutRead,
    leader: ExperimentId,
    (holdout, holdout_gain): (Option<f64>, Option<f64>),
    verdict: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO holdout_transfers (read_id, leader_experiment_id, holdout, holdout_gain, verdict)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![read.id, leader.0, holdout.and_then(finite), holdout_gain.and_then(finite), verdict],
    )?;
    Ok(())
}

/// Every recorded read's finding on `leaf`, oldest first.
pub fn transfers(conn: &Connection, leaf: &str) -> Result<Vec<RecordedTransfer>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.leader_experiment_id, t.holdout, t.holdout_gain, t.verdict, h.created_at
         FROM holdout_transfers t JOIN holdout_reads h ON h.id = t.read_id WHERE h.leaf = ?1 ORDER BY h.id",
    )?;
    let rows = stmt.query_map([leaf], |r| {
        Ok(RecordedTransfer {
            leader: ExperimentId(r.get(0)?),
            holdout: r.get(1)?,
            holdout_gain: r.get(2)?,
            verdict: r.get(3)?,
            read_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn holdout_reads(conn: &Connection, leaf: &str) -> Result<u64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM holdout_reads WHERE leaf = ?1", [leaf], |r| r.get::<_, i64>(0))? as u64)
}

pub fn add_archive(tx: &Transaction<'_>, experiment: ExperimentId, verdict: &str, path: &str) -> Result<()> {
    tx.execute(
        // A replaced row gets a new chain entry; `lab verify` compares a row with its latest.
        "INSERT OR REPLACE INTO archives (experiment_id, verdict, path) VALUES (?1, ?2, ?3)",
        params![experiment.0, verdict, path],
    )?;
    Ok(())
}

pub fn archive_of(conn: &Connection, experiment: ExperimentId) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT path FROM archives WHERE experiment_id = ?1", [experiment.0], |r| r.get(0)).optional()?)
}

/// The leaf `experiment` ran in; a usage error for an unknown experiment.
pub fn experiment_leaf(conn: &Connection, experiment: ExperimentId) -> Result<Option<String>> {
    conn.query_row("SELECT leaf FROM experiments WHERE id = ?1", [experiment.0], |r| r.get(0))
        .optional()?
        .ok_or_else(|| crate::error::LabError::usage(format!("no experiment {experiment}")).into())
}

/// The first kept experiment of `leaf` (the harness's) with a full run under `lock_sha256`, and its kept `metric`.
pub fn first_keep(
    conn: &Connection,
    leaf: &str,
    metric: &str,
    lock_sha256: &str,
) -> Result<Option<(ExperimentId, f64)>> {
    Ok(conn
        .query_row(
            "SELECT m.experiment_id, m.value FROM metrics m
             WHERE m.leaf = ?1 AND m.name = ?2 AND m.verdict = 'keep' AND m.source = 'harness'
               AND EXISTS (SELECT 1 FROM runs u WHERE u.experiment_id = m.experiment_id AND u.tier = 'full'
                           AND u.frozen_lock_sha256 = ?3)
             ORDER BY m.experiment_id LIMIT 1",
            params![leaf, metric, lock_sha256],
            |r| Ok((ExperimentId(r.get(0)?), r.get(1)?)),
        )
        .optional()?)
}

/// Whether `experiment` has a current result (a candidate being decided has none yet).
pub fn has_result(conn: &Connection, experiment: ExperimentId) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM results WHERE experiment_id = ?1 AND superseded_by IS NULL", [experiment.0], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn holdout_reads_are_counted_per_leaf() {
        let mut store = Store::in_memory();
        let first = store.write(|tx| add_holdout_read(tx, "toy", &[ExperimentId(1)], "holdout")).unwrap();
        assert_eq!(first.reads, 1);
        let second = store.write(|tx| add_holdout_read(tx, "toy", &[], "checkpoint")).unwrap();
        assert_eq!((second.reads, second.id), (2, first.id + 1));
        assert_eq!(holdout_reads(store.conn(), "other").unwrap(), 0);
    }
}
