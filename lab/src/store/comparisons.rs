//! Comparisons (migration 8): what a leaf's results are ranked within.
//!
//! A comparison is a key (`runs.frozen_lock_sha256`: the leaf.lock sha256, or
//! a hash of it with the inputs' sha256s) with what stands behind it: the
//! frozen files, the gate settings and the inputs. Leaders and bests are
//! ranked within one comparison, never across. The runner records one
//! ([`record`]) whenever a leaf runs under a key other than the one it ran
//! under last, so the table is the leaf's history of re-locks; the current
//! comparison is the latest row, and [`current`] says what changed since the
//! one before it (files added, removed or changed; gate settings old -> new).
//!
//! Invariants: recording the key the leaf is already under changes nothing;
//! rows are never updated; `files`, `gate` and `inputs` are JSON (`null` on
//! rows backfilled from runs made before migration 8, which did not record them).

use std::collections::BTreeMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use crate::ids::ExperimentId;

/// What the runner records when a run starts under a key.
#[derive(Debug, Clone)]
pub struct NewComparison {
    pub leaf: String,
    pub key: String,
    /// The lock's files: path -> sha256.
    pub files: BTreeMap<String, String>,
    /// `{"min_improvement": .., "confidence": .., "repeats": ..}`.
    pub gate: Value,
    /// The resolved inputs (name, leaf, file, sha256, upstream experiment), `[]` for none.
    pub inputs: Value,
    /// The first experiment run under it.
    pub experiment: ExperimentId,
    pub created_at: String,
}

/// Record that `c.leaf` runs under `c.key`; returns whether a row was added
/// (false when the leaf's latest comparison already has this key).
pub fn record(tx: &Transaction<'_>, c: &NewComparison) -> Result<bool> {
    let latest: Option<String> = tx
        .prepare_cached("SELECT key FROM comparisons WHERE leaf = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([&c.leaf], |r| r.get(0))
        .optional()?;
    if latest.as_deref() == Some(c.key.as_str()) {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO comparisons (leaf, key, files, gate, inputs, experiment_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            c.leaf,
            c.key,
            serde_json::to_string(&c.files)?,
            c.gate.to_string(),
            c.inputs.to_string(),
            c.experiment.0,
            c.created_at
        ],
    )?;
    Ok(true)
}

/// One recorded comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub key: String,
    /// Path -> sha256; `None` when it was not recorded (before migration 8).
    pub files: Option<BTreeMap<String, String>>,
    pub gate: Value,
    pub inputs: Value,
    /// The first experiment run under it.
    pub experiment: Option<String>,
    pub created_at: String,
}

/// A leaf's current comparison, and how it differs from the one before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Current {
    pub leaf: String,
    /// 1 for the leaf's first comparison; each re-lock adds one.
    pub number: u64,
    pub comparison: Comparison,
    /// `None` while this is the leaf's only comparison.
    pub relock: Option<Relock>,
}

/// What a re-lock changed: the comparison before, and every difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relock {
    pub previous: Comparison,
    /// The key was used before: the leaf went back to an earlier lock.
    pub returned: bool,
    pub files: Vec<FileChange>,
    pub gate: Vec<SettingChange>,
    pub inputs: Vec<SettingChange>,
    /// The earlier comparison recorded no files or gate (made before migration 8).
    pub unrecorded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingChange {
    pub name: String,
    pub from: Value,
    pub to: Value,
}

const COLUMNS: &str = "key, files, gate, inputs, experiment_id, created_at";

/// The current comparison of `leaf` (its latest), with what the re-lock before it changed.
pub fn current(conn: &Connection, leaf: &str) -> Result<Option<Current>> {
    let latest = conn
        .prepare_cached(&format!(
            "SELECT id, (SELECT COUNT(*) FROM comparisons WHERE leaf = ?1), {COLUMNS}
             FROM comparisons WHERE leaf = ?1 ORDER BY id DESC LIMIT 1"
        ))?
        .query_row([leaf], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, comparison_at(r, 2)?)))
        .optional()?;
    let Some((id, number, now)) = latest else { return Ok(None) };
    let before = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM comparisons WHERE leaf = ?1 AND id < ?2 ORDER BY id DESC LIMIT 1"
        ))?
        .query_row(params![leaf, id], |r| comparison_at(r, 0))
        .optional()?;
    let relock = match before {
        None => None,
        Some(previous) => {
            let returned = conn
                .prepare_cached("SELECT 1 FROM comparisons WHERE leaf = ?1 AND key = ?2 AND id < ?3 LIMIT 1")?
                .query_row(params![leaf, now.key, id], |_| Ok(()))
                .optional()?
                .is_some();
            Some(diff(previous, &now, returned))
        }
    };
    Ok(Some(Current { leaf: leaf.to_owned(), number: number as u64, comparison: now, relock }))
}

/// The current comparison of every leaf that has one, by leaf name.
pub fn all_current(conn: &Connection) -> Result<Vec<Current>> {
    let leaves: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT leaf FROM comparisons ORDER BY leaf")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    leaves.iter().filter_map(|leaf| current(conn, leaf).transpose()).collect()
}

/// The key `leaf` runs under now, for ranking its results.
pub fn current_key(conn: &Connection, leaf: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT key FROM comparisons WHERE leaf = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([leaf], |r| r.get(0))
        .optional()?)
}

fn comparison_at(r: &Row<'_>, offset: usize) -> rusqlite::Result<Comparison> {
    let json = |i| r.get::<_, String>(offset + i).map(|t| serde_json::from_str(&t).unwrap_or(Value::Null));
    Ok(Comparison {
        key: r.get(offset)?,
        files: serde_json::from_value(json(1)?).ok(),
        gate: json(2)?,
        inputs: json(3)?,
        experiment: r.get::<_, Option<i64>>(offset + 4)?.map(|e| ExperimentId(e).to_string()),
        created_at: r.get(offset + 5)?,
    })
}

fn diff(previous: Comparison, now: &Comparison, returned: bool) -> Relock {
    let mut files = Vec::new();
    if let (Some(old), Some(new)) = (&previous.files, &now.files) {
        for (path, sha) in new {
            match old.get(path) {
                None => files.push(FileChange { path: path.clone(), change: "added" }),
                Some(o) if o != sha => files.push(FileChange { path: path.clone(), change: "changed" }),
                Some(_) => {}
            }
        }
        files.extend(
            old.keys().filter(|p| !new.contains_key(*p)).map(|p| FileChange { path: p.clone(), change: "removed" }),
        );
        files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let unrecorded = previous.files.is_none() || previous.gate.is_null();
    Relock {
        gate: settings(&previous.gate, &now.gate),
        inputs: inputs(&previous.inputs, &now.inputs),
        files,
        unrecorded,
        returned,
        previous,
    }
}

/// Settings that differ between two JSON objects, by name.
fn settings(old: &Value, new: &Value) -> Vec<SettingChange> {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else { return Vec::new() };
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (from, to) =
                (old.get(name).cloned().unwrap_or(Value::Null), new.get(name).cloned().unwrap_or(Value::Null));
            (from != to).then(|| SettingChange { name: name.clone(), from, to })
        })
        .collect()
}

/// Inputs that differ, by input name, compared on their sha256.
fn inputs(old: &Value, new: &Value) -> Vec<SettingChange> {
    let by_name = |v: &Value| -> Value {
        let entries = v.as_array().into_iter().flatten();
        Value::Object(
            entries.filter_map(|i| Some((i.get("name")?.as_str()?.to_owned(), i["sha256"].clone()))).collect(),
        )
    };
    settings(&by_name(old), &by_name(new))
}

impl Current {
    /// One line for people: which comparison, since when, and what the re-lock changed.
    pub fn describe(&self) -> String {
        let c = &self.comparison;
        let since = c.experiment.as_deref().map_or_else(String::new, |e| format!(" since {e}"));
        let mut text = format!("comparison {} ({}){since}", self.number, short(&c.key));
        if let Some(r) = &self.relock {
            text.push_str(&format!("; {}", r.describe()));
        }
        text
    }
}

impl Relock {
    pub fn describe(&self) -> String {
        let what = if self.returned {
            "a re-lock returned to an earlier comparison"
        } else {
            "a re-lock started a new comparison"
        };
        let mut parts = vec![format!("{what} (was {})", short(&self.previous.key))];
        if !self.files.is_empty() {
            let files: Vec<String> = self.files.iter().map(|f| format!("`{}` {}", f.path, f.change)).collect();
            parts.push(format!("frozen files: {}", files.join(", ")));
        }
        for (kind, changes) in [("gate", &self.gate), ("input", &self.inputs)] {
            parts.extend(changes.iter().map(|s| format!("{kind} {} {} -> {}", s.name, s.from, s.to)));
        }
        if self.unrecorded {
            parts.push("the earlier comparison's files and gate were not recorded (before schema 8)".into());
        }
        parts.join("; ")
    }
}

/// The first 12 hex digits of a key, as views show it.
pub fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}

#[cfg(test)]
mod tests;
