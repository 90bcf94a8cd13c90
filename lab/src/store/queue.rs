//! The candidate queue: ideas waiting to be tried, claimed atomically.
//!
//! `claim_next` runs inside the caller's IMMEDIATE transaction: the SELECT and
//! the UPDATE see the same snapshot and no other writer can interleave, so two
//! agents never get the same item. Duplicates (of items queued, ideas tried, or
//! ideas that failed) are found by comparing normalized title words.

use std::collections::BTreeSet;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use crate::error::LabError;
use crate::ids::{HypothesisId, QueueId};

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub leaf: Option<String>,
    pub title: String,
    pub mechanism: String,
    pub priority: i64,
    pub link: Option<String>,
    pub status: String,
    pub claimed_by: Option<String>,
    pub created_at: String,
}

const ITEM_COLUMNS: &str = "id, leaf, title, mechanism, priority, link, status, claimed_by, created_at";

fn item(r: &Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        id: QueueId(r.get(0)?).to_string(),
        leaf: r.get(1)?,
        title: r.get(2)?,
        mechanism: r.get(3)?,
        priority: r.get(4)?,
        link: r.get(5)?,
        status: r.get(6)?,
        claimed_by: r.get(7)?,
        created_at: r.get(8)?,
    })
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub leaf: Option<String>,
    pub title: String,
    pub mechanism: String,
    pub priority: i64,
    pub link: Option<String>,
    pub created_at: String,
}

pub fn add(tx: &Transaction<'_>, item: &NewItem) -> Result<QueueId> {
    if item.title.trim().is_empty() {
        return Err(LabError::usage("a queue item needs a title").into());
    }
    tx.execute(
        "INSERT INTO queue (leaf, title, mechanism, priority, link, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![item.leaf, item.title, item.mechanism, item.priority, item.link, item.created_at],
    )?;
    Ok(QueueId(tx.last_insert_rowid()))
}

/// Claim the most urgent queued item (highest priority, then oldest).
pub fn claim_next(tx: &Transaction<'_>, leaf: Option<&str>, claimer: &str, at: &str) -> Result<Option<Item>> {
    let sql = match leaf {
        Some(_) => "SELECT id FROM queue WHERE status = 'queued' AND leaf = ?1 ORDER BY priority DESC, id LIMIT 1",
        None => "SELECT id FROM queue WHERE status = 'queued' AND ?1 IS NULL ORDER BY priority DESC, id LIMIT 1",
    };
    let Some(id): Option<i64> = tx.query_row(sql, [leaf], |r| r.get(0)).optional()? else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE queue SET status = 'claimed', claimed_by = ?1, claimed_at = ?2 WHERE id = ?3",
        params![claimer, at, id],
    )?;
    Ok(Some(tx.query_row(&format!("SELECT {ITEM_COLUMNS} FROM queue WHERE id = ?1"), [id], item)?))
}

/// Close an item as done or dropped; refuses one already closed.
pub fn close(tx: &Transaction<'_>, id: QueueId, status: &str, note: Option<&str>, at: &str) -> Result<()> {
    let current: String = tx
        .query_row("SELECT status FROM queue WHERE id = ?1", [id.0], |r| r.get(0))
        .optional()?
        .ok_or_else(|| LabError::usage(format!("no queue item {id}")))?;
    if current == "done" || current == "dropped" {
        return Err(LabError::refused(format!("{id} is already {current}")).into());
    }
    tx.execute(
        "UPDATE queue SET status = ?1, note = ?2, closed_at = ?3 WHERE id = ?4",
        params![status, note, at, id.0],
    )?;
    Ok(())
}

pub fn list(conn: &Connection, leaf: Option<&str>, statuses: &[&str]) -> Result<Vec<Item>> {
    let mut sql =
        format!("SELECT {ITEM_COLUMNS} FROM queue WHERE status IN ({})", vec!["?"; statuses.len()].join(", "));
    let mut args: Vec<&str> = statuses.to_vec();
    if let Some(leaf) = leaf {
        sql.push_str(" AND leaf = ?");
        args.push(leaf);
    }
    sql.push_str(" ORDER BY status = 'queued' DESC, priority DESC, id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), item)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Something already on record that an idea looks like.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    /// `q<N>` or `h<N>`.
    pub id: String,
    pub title: String,
    /// queued, claimed, done, dropped; or for hypotheses: tried, failed.
    pub status: String,
}

/// Items and hypotheses whose titles share most of their words with `title`
/// (Jaccard similarity of normalized word sets at least 0.75).
pub fn duplicates(conn: &Connection, leaf: Option<&str>, title: &str) -> Result<Vec<Duplicate>> {
    let words = normalize(title);
    let mut found = Vec::new();
    let mut stmt = conn.prepare("SELECT id, title, status FROM queue WHERE leaf IS ?1")?;
    for row in stmt.query_map([leaf], |r| Ok((QueueId(r.get(0)?).to_string(), r.get(1)?, r.get(2)?)))? {
        let (id, other, status): (String, String, String) = row?;
        if similar(&words, &normalize(&other)) {
            found.push(Duplicate { id, title: other, status });
        }
    }
    let mut stmt = conn.prepare(
        "SELECT h.id, h.title,
                CASE WHEN EXISTS (SELECT 1 FROM results r JOIN experiments e ON e.id = r.experiment_id
                                  WHERE e.hypothesis_id = h.id AND r.superseded_by IS NULL
                                  AND r.verdict IN ('discard', 'crash')) THEN 'failed' ELSE 'tried' END
         FROM hypotheses h WHERE h.leaf IS ?1",
    )?;
    for row in stmt.query_map([leaf], |r| Ok((HypothesisId(r.get(0)?).to_string(), r.get(1)?, r.get(2)?)))? {
        let (id, other, status): (String, String, String) = row?;
        if similar(&words, &normalize(&other)) {
            found.push(Duplicate { id, title: other, status });
        }
    }
    Ok(found)
}

fn normalize(title: &str) -> BTreeSet<String> {
    title
        .split(|c: char| !c.is_alphanumeric() && c != '.')
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn similar(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    let union = a.union(b).count();
    union > 0 && a.intersection(b).count() * 4 >= union * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_ignores_case_punctuation_and_order() {
        let cases = [
            ("Increase LR to 0.04", "increase lr to 0.04!", true),
            // 4 shared words of 5 in all: Jaccard 0.8 >= 0.75.
            ("increase LR to 0.04", "to 0.04, increase the LR", true),
            ("increase LR to 0.04", "increase LR to 0.08", false), // 3 of 5
            ("warmup 500 steps", "cosine schedule", false),
            ("use GeLU", "Use gelu", true),
            ("", "", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(similar(&normalize(a), &normalize(b)), expected, "{a} ~ {b}");
        }
    }
}
