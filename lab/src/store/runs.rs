//! Runs executed by `lab run` (migration 4): typed writes and the reads the
//! runner needs (the leaf's leader, a run's record).
//!
//! Invariants: a run row is written once, after the run ended; its files are
//! fingerprinted (sha256) when written; the leader of a leaf is the best kept
//! result *of the harness* (never one an agent typed) recorded under the same
//! comparison key and with a full run under it, so results obtained under
//! other frozen files or gate settings are never compared. For a leaf
//! with inputs, `frozen_lock_sha256` holds the comparability key
//! (`leaf::inputs::comparability_key`), and `run_inputs` (migration 7) the
//! upstream files each run started from.

use std::collections::BTreeMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use super::records::{self, Metrics, NewHypothesis};
use crate::gate::Goal;
use crate::ids::{ExperimentId, HypothesisId};
use crate::leaf::inputs::ResolvedInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Smoke,
    Full,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smoke => "smoke",
            Self::Full => "full",
        }
    }
}

/// Where a run's metric came from: the leaf's frozen evaluate, or the harness
/// scoring predictions against labels it read itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricSource {
    Evaluate,
    Harness,
}

impl MetricSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evaluate => "evaluate",
            Self::Harness => "harness",
        }
    }
}

/// A file a run produced, fingerprinted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFile {
    /// `predictions` (predictions mode), `outputs` (artifact mode), `labels`
    /// (targets), `errors` / `scores` (per item), `code` (the snapshot), `artifact`.
    pub kind: &'static str,
    /// The split (`val`, `holdout`) or the name given to `save_predictions`.
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub len: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub experiment: ExperimentId,
    pub tier: Tier,
    pub seed: u64,
    pub device: Option<String>,
    pub budget_s: f64,
    pub wall_s: f64,
    pub exit_reason: String,
    pub detail: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub metric_source: MetricSource,
    pub frozen_lock_sha256: Option<String>,
    pub metrics: Metrics,
    pub log_path: Option<String>,
    pub log_tail: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub files: Vec<RunFile>,
    /// What the sandbox enforced (`landlock v7`, `none`, `disabled`); `None`: no worker ran (a blend).
    pub sandbox: Option<String>,
    /// The variables the workers got.
    pub environment: Option<Value>,
    /// sha256 of the prepared data's manifest: the targets the run was scored on.
    pub prepared_sha256: Option<String>,
    /// The installed version of each package the leaf declares (`python.requires`).
    pub packages: BTreeMap<String, String>,
}

pub fn add_run(tx: &Transaction<'_>, run: &NewRun) -> Result<i64> {
    tx.execute(
        "INSERT INTO runs (experiment_id, tier, seed, device, budget_s, wall_s, exit_reason, detail, exit_code, signal,
                           metric_source, frozen_lock_sha256, metrics, log_path, log_tail, started_at, finished_at,
                           sandbox, environment, prepared_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        params![
            run.experiment.0,
            run.tier.as_str(),
            run.seed as i64,
            run.device,
            run.budget_s,
            run.wall_s,
            run.exit_reason,
            run.detail,
            run.exit_code,
            run.signal,
            run.metric_source.as_str(),
            run.frozen_lock_sha256,
            Value::Object(run.metrics.clone()).to_string(),
            run.log_path,
            run.log_tail,
            run.started_at,
            run.finished_at,
            run.sandbox,
            run.environment.as_ref().map(Value::to_string),
            run.prepared_sha256
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO run_files (run_id, kind, name, path, sha256, len) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for f in &run.files {
        insert.execute(params![id, f.kind, f.name, f.path, f.sha256, f.len.map(|n| n as i64)])?;
    }
    let mut insert = tx.prepare_cached("INSERT INTO run_packages (run_id, name, version) VALUES (?1, ?2, ?3)")?;
    for (name, version) in &run.packages {
        insert.execute(params![id, name, version])?;
    }
    Ok(id)
}

/// The package versions run `run_id` ran with, by name.
pub fn packages(conn: &Connection, run_id: i64) -> Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT name, version FROM run_packages WHERE run_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Record the upstream files run `run_id` started from (the sha256 is `none` for a fallback).
pub fn add_inputs(tx: &Transaction<'_>, run_id: i64, inputs: &[ResolvedInput]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO run_inputs (run_id, name, leaf, file, experiment_id, path, sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for input in inputs {
        let experiment = input.found.as_ref().map(|f| f.experiment.parse::<ExperimentId>()).transpose()?;
        let path = input.found.as_ref().map(|f| f.path.display().to_string());
        insert.execute(params![
            run_id,
            input.name,
            input.leaf,
            input.file,
            experiment.map(|e| e.0),
            path,
            input.sha256()
        ])?;
    }
    Ok(())
}

/// Mark an experiment as only a smoke check (never a keep, not a real failure).
pub fn mark_smoke(tx: &Transaction<'_>, experiment: ExperimentId) -> Result<()> {
    tx.execute("UPDATE experiments SET smoke = 1 WHERE id = ?1", [experiment.0])?;
    Ok(())
}

/// What `lab run` gave no hypothesis for is filed under one standing hypothesis
/// per leaf and title (`baseline`, `run`), made on first use.
pub const AUTO_MECHANISM: &str = "recorded by `lab run` without --hypothesis or -m";

pub fn auto_hypothesis(tx: &Transaction<'_>, leaf: &str, title: &str) -> Result<HypothesisId> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM hypotheses WHERE leaf = ?1 AND title = ?2 AND mechanism = ?3 ORDER BY id LIMIT 1",
            params![leaf, title, AUTO_MECHANISM],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        return Ok(HypothesisId(id));
    }
    records::add_hypothesis(
        tx,
        &NewHypothesis {
            title: title.to_owned(),
            mechanism: AUTO_MECHANISM.to_owned(),
            leaf: Some(leaf.to_owned()),
            prediction: None,
            created_at: records::now(),
        },
    )
}

/// The title of a hypothesis (for commit messages); errors if it does not exist.
pub fn hypothesis_title(conn: &Connection, id: HypothesisId) -> Result<String> {
    Ok(conn.query_row("SELECT title FROM hypotheses WHERE id = ?1", [id.0], |r| r.get(0))?)
}

/// The result a candidate must beat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leader {
    pub experiment: String,
    pub value: f64,
}

/// The best kept value of `metric` in `leaf` among the harness's results with a
/// full run under the comparison key `lock_sha256`; `None` before the first keep.
pub fn leader(conn: &Connection, leaf: &str, metric: &str, goal: Goal, lock_sha256: &str) -> Result<Option<Leader>> {
    best_kept(conn, leaf, metric, goal, lock_sha256, None)
}

/// What `candidate` is judged against: the leader, or when the candidate is
/// itself the leader (a later `lab gate` of a keep), the best other kept result.
pub fn rival(
    conn: &Connection,
    leaf: &str,
    metric: &str,
    goal: Goal,
    lock_sha256: &str,
    candidate: ExperimentId,
) -> Result<Option<Leader>> {
    best_kept(conn, leaf, metric, goal, lock_sha256, Some(candidate))
}

fn best_kept(
    conn: &Connection,
    leaf: &str,
    metric: &str,
    goal: Goal,
    lock_sha256: &str,
    except: Option<ExperimentId>,
) -> Result<Option<Leader>> {
    let order = match goal {
        Goal::Minimize => "ASC",
        Goal::Maximize => "DESC",
    };
    let sql = format!(
        "SELECT m.experiment_id, m.value FROM metrics m
         WHERE m.leaf = ?1 AND m.comparison = ?3 AND m.name = ?2 AND m.verdict = 'keep' AND m.source = 'harness'
           AND m.experiment_id IS NOT ?4
           AND EXISTS (SELECT 1 FROM runs u WHERE u.experiment_id = m.experiment_id AND u.tier = 'full'
                       AND u.frozen_lock_sha256 = ?3)
         ORDER BY m.value {order}, m.experiment_id LIMIT 1"
    );
    let except = except.map(|e| e.0);
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![leaf, metric, lock_sha256, except], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)))
        .optional()?;
    Ok(row.map(|(id, value)| Leader { experiment: ExperimentId(id).to_string(), value }))
}

/// Every current keep the harness recorded (of `leaf`, or of the whole lab), oldest first.
pub fn harness_keeps(conn: &Connection, leaf: Option<&str>) -> Result<Vec<(ExperimentId, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.experiment_id, coalesce(r.leaf, '') FROM results r
         WHERE r.superseded_by IS NULL AND r.verdict = 'keep' AND r.source = 'harness' AND (?1 IS NULL OR r.leaf = ?1)
         ORDER BY r.experiment_id",
    )?;
    let rows = stmt.query_map([leaf], |r| Ok((ExperimentId(r.get(0)?), r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One recorded run, as tests and read commands see it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub tier: String,
    pub seed: i64,
    pub device: Option<String>,
    pub budget_s: f64,
    pub wall_s: f64,
    pub exit_reason: String,
    pub detail: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub metric_source: String,
    pub frozen_lock_sha256: Option<String>,
    pub metrics: Value,
    pub log_path: Option<String>,
    pub log_tail: Option<String>,
    pub sandbox: Option<String>,
    pub files: Vec<RunFile>,
}

pub fn runs_of(conn: &Connection, experiment: ExperimentId) -> Result<Vec<RunRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tier, seed, device, budget_s, wall_s, exit_reason, detail, exit_code, signal, metric_source,
                frozen_lock_sha256, metrics, log_path, log_tail, sandbox
         FROM runs WHERE experiment_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([experiment.0], |r| {
        let metrics: String = r.get(12)?;
        Ok((
            r.get::<_, i64>(0)?,
            RunRow {
                tier: r.get(1)?,
                seed: r.get(2)?,
                device: r.get(3)?,
                budget_s: r.get(4)?,
                wall_s: r.get(5)?,
                exit_reason: r.get(6)?,
                detail: r.get(7)?,
                exit_code: r.get(8)?,
                signal: r.get(9)?,
                metric_source: r.get(10)?,
                frozen_lock_sha256: r.get(11)?,
                metrics: serde_json::from_str(&metrics).unwrap_or(Value::Null),
                log_path: r.get(13)?,
                log_tail: r.get(14)?,
                sandbox: r.get(15)?,
                files: Vec::new(),
            },
        ))
    })?;
    let mut runs = Vec::new();
    for row in rows {
        let (id, mut run) = row?;
        run.files = files_of(conn, id)?;
        runs.push(run);
    }
    Ok(runs)
}

fn files_of(conn: &Connection, run: i64) -> Result<Vec<RunFile>> {
    let mut stmt = conn
        .prepare_cached("SELECT kind, name, path, sha256, len FROM run_files WHERE run_id = ?1 ORDER BY kind, name")?;
    let rows = stmt.query_map([run], |r| {
        let kind: String = r.get(0)?;
        Ok(RunFile {
            kind: match kind.as_str() {
                "labels" => "labels",
                "errors" => "errors",
                "outputs" => "outputs",
                "scores" => "scores",
                "code" => "code",
                "artifact" => "artifact",
                _ => "predictions",
            },
            name: r.get(1)?,
            path: r.get(2)?,
            sha256: r.get(3)?,
            len: r.get::<_, Option<i64>>(4)?.map(|n| n as usize),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::records::{NewExperiment, NewResult, Verdict};

    fn experiment(tx: &Transaction<'_>, h: HypothesisId) -> ExperimentId {
        let e = NewExperiment {
            hypothesis: h,
            leaf: Some("toy".into()),
            snapshot: Default::default(),
            host: "h".into(),
            pid: None,
            watch_pid: false,
            budget_s: Some(1.0),
            started_at: records::now(),
        };
        records::add_experiment(tx, &e).unwrap()
    }

    fn run(e: ExperimentId, tier: Tier, lock: &str) -> NewRun {
        NewRun {
            experiment: e,
            tier,
            seed: 7,
            device: Some("cpu".into()),
            budget_s: 1.0,
            wall_s: 0.5,
            exit_reason: "ok".into(),
            detail: None,
            exit_code: Some(0),
            signal: None,
            metric_source: MetricSource::Harness,
            frozen_lock_sha256: Some(lock.into()),
            metrics: Metrics::new(),
            log_path: None,
            log_tail: None,
            started_at: records::now(),
            finished_at: records::now(),
            sandbox: Some("landlock v7".into()),
            environment: None,
            prepared_sha256: None,
            packages: BTreeMap::new(),
            files: vec![RunFile {
                kind: "predictions",
                name: "val".into(),
                path: "p".into(),
                sha256: "s".into(),
                len: Some(3),
            }],
        }
    }

    fn keep(tx: &Transaction<'_>, e: ExperimentId, mae: f64) {
        let mut metrics = Metrics::new();
        metrics.insert("mae".into(), mae.into());
        let r = NewResult {
            experiment: e,
            verdict: Verdict::Keep,
            metrics,
            mechanism: None,
            theory_revision: None,
            note: None,
            created_at: records::now(),
            source: records::Source::Harness,
        };
        records::add_result(tx, &r, false).unwrap();
    }

    #[test]
    fn the_leader_is_the_best_keep_under_the_same_lock_with_a_full_run() {
        let mut store = Store::in_memory();
        store
            .write(|tx| {
                let h = auto_hypothesis(tx, "toy", "baseline")?;
                assert_eq!(auto_hypothesis(tx, "toy", "baseline")?, h, "reused, not duplicated");
                for (mae, tier, lock) in
                    [(0.5, Tier::Full, "A"), (0.3, Tier::Full, "B"), (0.1, Tier::Smoke, "A"), (0.4, Tier::Full, "A")]
                {
                    let e = experiment(tx, h);
                    add_run(tx, &run(e, tier, lock))?;
                    keep(tx, e, mae);
                }
                Ok(())
            })
            .unwrap();
        let leader = leader(store.conn(), "toy", "mae", Goal::Minimize, "A").unwrap().unwrap();
        assert_eq!(leader, Leader { experiment: "e4".into(), value: 0.4 });
        assert_eq!(super::leader(store.conn(), "toy", "mae", Goal::Minimize, "C").unwrap(), None);
        let runs = runs_of(store.conn(), ExperimentId(1)).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].files[0].name, "val");
    }

    #[test]
    fn a_second_schema_database_with_rows_migrates_to_runs() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate_to(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO hypotheses (title, mechanism, leaf, created_at) VALUES ('lr', 'faster', 'toy', 't');
             INSERT INTO experiments (hypothesis_id, leaf, host, started_at) VALUES (1, 'toy', 'h', 't');
             INSERT INTO results (experiment_id, leaf, verdict, metrics, created_at) VALUES (1, 'toy', 'keep', '{\"mae\": 0.2}', 't');",
        )
        .unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        let smoke: i64 = conn.query_row("SELECT smoke FROM experiments WHERE id = 1", [], |r| r.get(0)).unwrap();
        assert_eq!(smoke, 0);
        let runs: i64 = conn.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0)).unwrap();
        assert_eq!(runs, 0);
        conn.execute(
            "INSERT INTO runs (experiment_id, tier, seed, budget_s, wall_s, exit_reason, metric_source, started_at, finished_at)
             VALUES (1, 'full', 1, 1.0, 0.5, 'ok', 'evaluate', 't', 't')",
            [],
        )
        .unwrap();
        let value: f64 = conn
            .query_row("SELECT json_extract(metrics, '$.mae') FROM results WHERE experiment_id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(value, 0.2);
    }
}
