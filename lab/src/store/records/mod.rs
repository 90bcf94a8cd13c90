//! The recorder: the one path by which every command writes hypotheses,
//! experiments and results (`lab hypothesis`, `lab experiment`, `lab result`,
//! the importers, `lab sweep` and the runner), each inside the caller's
//! IMMEDIATE transaction, with the result's [`Source`] set explicitly by the
//! caller. The provenance rules live with the result writes in `results.rs`.

use std::fmt;

mod results;

use anyhow::Result;
use clap::ValueEnum;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::LabError;
use crate::ids::{ExperimentId, HypothesisId};
use crate::vcs::Snapshot;

pub use results::{Amendment, NewResult, Recorded, StoredResult, add_result, amend_result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Keep,
    Discard,
    Crash,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Discard => "discard",
            Self::Crash => "crash",
        }
    }

    pub fn parse(s: &str) -> Result<Self, LabError> {
        <Self as ValueEnum>::from_str(s, false)
            .map_err(|_| LabError::usage(format!("unknown verdict `{s}`: expected keep, discard or crash")))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    Confirmed,
    Refuted,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Refuted => "refuted",
        }
    }

    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s? {
            "confirmed" => Some(Self::Confirmed),
            "refuted" => Some(Self::Refuted),
            _ => None,
        }
    }
}

/// Who produced a result. Only the harness's results become a leader or a
/// "best"; an agent's are shown, marked as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Recorded by the runner (`lab run`, `lab baseline`, `lab blend`) or `lab sweep`.
    Harness,
    /// Typed with `lab result`, or imported.
    Agent,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Harness => "harness",
            Self::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "harness" => Some(Self::Harness),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metrics as given: a JSON object of finite numbers, key order kept.
pub type Metrics = Map<String, Value>;

/// Parse `--metrics` JSON: an object whose values are all numbers.
pub fn parse_metrics(text: &str) -> Result<Metrics, LabError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        LabError::usage(format!("malformed metrics JSON: {e}")).hint(r#"for example --metrics '{"val_bpb": 0.993}'"#)
    })?;
    let Value::Object(_) = value else {
        return Err(LabError::usage("metrics must be a JSON object of numbers, like {\"val_bpb\": 0.993}"));
    };
    // Again, refusing a repeated name: serde_json keeps the last one silently.
    let UniqueKeys(map) = serde_json::from_str(text).map_err(|e| LabError::usage(format!("metrics JSON: {e}")))?;
    for (name, value) in &map {
        if name.trim().is_empty() {
            return Err(LabError::usage("metric names must not be empty"));
        }
        if !value.as_f64().is_some_and(f64::is_finite) {
            return Err(LabError::usage(format!("metric `{name}` must be a finite number, got {value}")));
        }
    }
    Ok(map)
}

/// A JSON object whose keys each appear once.
struct UniqueKeys(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = UniqueKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("metric `{key}` is given twice")));
                    }
                    map.insert(key, access.next_value()?);
                }
                Ok(UniqueKeys(map))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[derive(Debug, Clone)]
pub struct NewHypothesis {
    pub title: String,
    pub mechanism: String,
    pub leaf: Option<String>,
    pub prediction: Option<String>,
    pub created_at: String,
}

pub fn add_hypothesis(tx: &Transaction<'_>, h: &NewHypothesis) -> Result<HypothesisId> {
    if h.title.trim().is_empty() {
        return Err(LabError::usage("a hypothesis needs a title").into());
    }
    tx.execute(
        "INSERT INTO hypotheses (title, mechanism, leaf, prediction, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![h.title, h.mechanism, h.leaf, h.prediction, h.created_at],
    )?;
    Ok(HypothesisId(tx.last_insert_rowid()))
}

#[derive(Debug, Clone)]
pub struct NewExperiment {
    pub hypothesis: HypothesisId,
    pub leaf: Option<String>,
    pub snapshot: Snapshot,
    pub host: String,
    pub pid: Option<i64>,
    /// Whether `pid` is the process doing the work, so its death means a crash.
    pub watch_pid: bool,
    pub budget_s: Option<f64>,
    pub started_at: String,
}

/// The leaf of a hypothesis; errors if the hypothesis does not exist.
pub fn hypothesis_leaf(conn: &Connection, id: HypothesisId) -> Result<Option<String>> {
    conn.query_row("SELECT leaf FROM hypotheses WHERE id = ?1", [id.0], |r| r.get(0)).optional()?.ok_or_else(|| {
        LabError::usage(format!("no hypothesis {id}")).hint("`lab log` or `lab context` lists them").into()
    })
}

pub fn add_experiment(tx: &Transaction<'_>, e: &NewExperiment) -> Result<ExperimentId> {
    tx.execute(
        "INSERT INTO experiments (hypothesis_id, leaf, git_commit, dirty, diff_sha256, host, pid, watch_pid,
                                  budget_s, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.hypothesis.0,
            e.leaf,
            e.snapshot.commit,
            e.snapshot.dirty,
            e.snapshot.diff_sha256,
            e.host,
            e.pid,
            e.watch_pid,
            e.budget_s,
            e.started_at
        ],
    )?;
    Ok(ExperimentId(tx.last_insert_rowid()))
}
