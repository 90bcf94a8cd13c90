//! Experiments whose predictions can be compared with each other: those with a
//! successful full run under one `leaf.lock`, newest first, with their current
//! verdict. Saturation and blending read these.
//!
//! Invariants: only a full run that ended `ok` counts (a smoke run or a crash
//! has no predictions worth comparing); an experiment's run is its latest such
//! run; runs under another lock are never mixed in, because their labels and
//! frozen evaluation may differ.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};

use super::runs::{self, RunFile};
use crate::error::LabError;
use crate::ids::ExperimentId;

/// Earlier discarded experiments of `leaf` under the comparison `key` that ran
/// exactly the code `experiment` ran (every snapshot file, by sha256, in their
/// first full run): a resubmission of a discarded candidate is the same
/// candidate looked at again, not a new one.
pub fn same_code(conn: &Connection, leaf: &str, key: &str, experiment: ExperimentId) -> Result<Vec<ExperimentId>> {
    let mut stmt = conn.prepare_cached(
        "WITH firsts AS (
             SELECT u.experiment_id AS e, MIN(u.id) AS run FROM runs u JOIN experiments x ON x.id = u.experiment_id
             WHERE x.leaf = ?1 AND u.tier = 'full' AND u.frozen_lock_sha256 = ?2 AND u.experiment_id <= ?3
             GROUP BY u.experiment_id),
         signatures AS (
             SELECT firsts.e AS e, (SELECT group_concat(name || ':' || sha256, ',')
                                    FROM (SELECT name, sha256 FROM run_files f
                                          WHERE f.run_id = firsts.run AND f.kind = 'code' ORDER BY name)) AS code
             FROM firsts)
         SELECT s.e FROM signatures s JOIN results r ON r.experiment_id = s.e AND r.superseded_by IS NULL
         WHERE s.e < ?3 AND r.verdict = 'discard' AND s.code IS NOT NULL
           AND s.code = (SELECT code FROM signatures WHERE e = ?3)
         ORDER BY s.e",
    )?;
    let rows = stmt.query_map(params![leaf, key, experiment.0], |r| r.get(0).map(ExperimentId))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest successful full run of an experiment, as comparisons need it.
#[derive(Debug, Clone)]
pub struct ScoredRun {
    pub experiment: ExperimentId,
    pub leaf: Option<String>,
    /// The current result's verdict; `None` while the experiment has none.
    pub verdict: Option<String>,
    pub lock_sha256: Option<String>,
    pub files: Vec<RunFile>,
}

impl ScoredRun {
    /// The fingerprinted predictions file for `split`, if the run saved one.
    pub fn predictions(&self, split: &str) -> Option<&RunFile> {
        self.files.iter().find(|f| f.kind == "predictions" && f.name == split)
    }

    pub fn labels(&self, split: &str) -> Option<&RunFile> {
        self.files.iter().find(|f| f.kind == "labels" && f.name == split)
    }

    pub fn kept(&self) -> bool {
        self.verdict.as_deref() == Some("keep")
    }
}

/// `None` when the experiment exists but has no successful full run; a usage
/// error when there is no such experiment.
pub fn scored_run(conn: &Connection, experiment: ExperimentId) -> Result<Option<ScoredRun>> {
    let (leaf, verdict): (Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT e.leaf, (SELECT verdict FROM results r WHERE r.experiment_id = e.id AND r.superseded_by IS NULL)
             FROM experiments e WHERE e.id = ?1",
        )?
        .query_row([experiment.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| LabError::usage(format!("no experiment {experiment}")).hint("`lab log` lists them"))?;
    let run = runs::runs_of(conn, experiment)?.into_iter().rev().find(|r| r.tier == "full" && r.exit_reason == "ok");
    Ok(run.map(|r| ScoredRun { experiment, leaf, verdict, lock_sha256: r.frozen_lock_sha256, files: r.files }))
}

/// The newest `limit` experiments of `leaf` with a successful full run under
/// `lock_sha256`, leaving out `exclude` (the leader, which is not its own candidate).
pub fn recent(
    conn: &Connection,
    leaf: &str,
    lock_sha256: &str,
    exclude: Option<ExperimentId>,
    limit: usize,
) -> Result<Vec<ExperimentId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id FROM experiments e
         WHERE e.leaf = ?1 AND e.id IS NOT ?2
           AND EXISTS (SELECT 1 FROM runs u WHERE u.experiment_id = e.id AND u.tier = 'full'
                       AND u.exit_reason = 'ok' AND u.frozen_lock_sha256 = ?3)
         ORDER BY e.id DESC LIMIT ?4",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![leaf, exclude.map(|e| e.0), lock_sha256, limit], |r| r.get(0))?;
    Ok(rows.map(|r| r.map(ExperimentId)).collect::<Result<_, _>>()?)
}

/// Every kept experiment of `leaf` (kept by the harness) with a successful full run under `lock_sha256`, oldest first.
pub fn kept(conn: &Connection, leaf: &str, lock_sha256: &str) -> Result<Vec<ExperimentId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.experiment_id FROM results r
         WHERE r.leaf = ?1 AND r.verdict = 'keep' AND r.source = 'harness' AND r.superseded_by IS NULL
           AND EXISTS (SELECT 1 FROM runs u WHERE u.experiment_id = r.experiment_id AND u.tier = 'full'
                       AND u.exit_reason = 'ok' AND u.frozen_lock_sha256 = ?2)
         ORDER BY r.experiment_id",
    )?;
    let rows = stmt.query_map(params![leaf, lock_sha256], |r| r.get(0))?;
    Ok(rows.map(|r| r.map(ExperimentId)).collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::records::{self, Metrics, NewExperiment, NewResult, Verdict};
    use crate::store::runs::{MetricSource, NewRun, Tier};

    fn experiment(store: &mut Store, lock: &str, tier: Tier, exit: &str, verdict: Option<Verdict>) -> ExperimentId {
        store
            .write(|tx| {
                let h = runs::auto_hypothesis(tx, "toy", "run")?;
                let e = records::add_experiment(
                    tx,
                    &NewExperiment {
                        hypothesis: h,
                        leaf: Some("toy".into()),
                        snapshot: Default::default(),
                        host: "h".into(),
                        pid: None,
                        watch_pid: false,
                        budget_s: None,
                        started_at: records::now(),
                    },
                )?;
                let file = RunFile {
                    kind: "predictions",
                    name: "val".into(),
                    path: "p".into(),
                    sha256: "s".into(),
                    len: None,
                };
                let run = NewRun {
                    experiment: e,
                    tier,
                    seed: 1,
                    device: None,
                    budget_s: 1.0,
                    wall_s: 0.1,
                    exit_reason: exit.into(),
                    detail: None,
                    exit_code: None,
                    signal: None,
                    metric_source: MetricSource::Harness,
                    frozen_lock_sha256: Some(lock.into()),
                    metrics: Metrics::new(),
                    log_path: None,
                    log_tail: None,
                    started_at: records::now(),
                    finished_at: records::now(),
                    files: vec![file],
                    sandbox: None,
                    environment: None,
                    prepared_sha256: None,
                    packages: Default::default(),
                };
                runs::add_run(tx, &run)?;
                if let Some(verdict) = verdict {
                    let result = NewResult {
                        experiment: e,
                        verdict,
                        metrics: Metrics::new(),
                        mechanism: None,
                        theory_revision: None,
                        note: None,
                        created_at: records::now(),
                        source: records::Source::Harness,
                    };
                    records::add_result(tx, &result, false)?;
                }
                Ok(e)
            })
            .unwrap()
    }

    #[test]
    fn only_successful_full_runs_under_the_lock_count_newest_first() {
        let mut store = Store::in_memory();
        let e1 = experiment(&mut store, "A", Tier::Full, "ok", Some(Verdict::Keep));
        let _other_lock = experiment(&mut store, "B", Tier::Full, "ok", Some(Verdict::Keep));
        let _smoke = experiment(&mut store, "A", Tier::Smoke, "ok", Some(Verdict::Discard));
        let _crash = experiment(&mut store, "A", Tier::Full, "timeout", Some(Verdict::Crash));
        let e5 = experiment(&mut store, "A", Tier::Full, "ok", Some(Verdict::Discard));
        let e6 = experiment(&mut store, "A", Tier::Full, "ok", None);
        let conn = store.conn();
        assert_eq!(recent(conn, "toy", "A", None, 10).unwrap(), [e6, e5, e1]);
        assert_eq!(recent(conn, "toy", "A", Some(e5), 2).unwrap(), [e6, e1]);
        assert_eq!(kept(conn, "toy", "A").unwrap(), [e1]);
        let run = scored_run(conn, e1).unwrap().unwrap();
        assert!(run.kept() && run.predictions("val").is_some() && run.predictions("holdout").is_none());
        assert_eq!((run.lock_sha256.as_deref(), run.leaf.as_deref()), (Some("A"), Some("toy")));
        assert!(scored_run(conn, ExperimentId(3)).unwrap().is_none(), "a smoke run is not scored");
        assert!(scored_run(conn, ExperimentId(99)).unwrap_err().to_string().contains("no experiment e99"));
    }
}
