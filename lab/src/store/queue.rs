//! The candidate queue: ideas waiting to be tried, claimed atomically.
//!
//! `claim_next` runs inside the caller's IMMEDIATE transaction: the SELECT and
//! the UPDATE see the same snapshot and no other writer can interleave, so two
//! agents never get the same item. A claimed item stands under a hypothesis:
//! the one it was queued under, or one made from its title and mechanism in the
//! claiming transaction. Not at `add`: a queue of untried ideas would otherwise
//! fill `lab context`'s open hypotheses and be seen twice by the duplicate
//! check. Duplicates (of items queued, ideas tried, or
//! ideas that failed) are found by comparing normalized title words.

use std::collections::BTreeSet;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use crate::error::LabError;
use crate::ids::{HypothesisId, QueueId};
use crate::store::records::{self, NewHypothesis};

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
    /// `h<N>`: set once the item is claimed, or from the start when queued under one.
    pub hypothesis: Option<String>,
}

const ITEM_COLUMNS: &str = "id, leaf, title, mechanism, priority, link, status, claimed_by, created_at, hypothesis_id";

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
        hypothesis: r.get::<_, Option<i64>>(9)?.map(|h| HypothesisId(h).to_string()),
    })
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub leaf: Option<String>,
    pub title: String,
    pub mechanism: String,
    pub priority: i64,
    pub link: Option<String>,
    pub hypothesis: Option<HypothesisId>,
    pub created_at: String,
}

/// The leaf of an item queued under `hypothesis`: the hypothesis's, which the
/// leaf asked for (`--leaf` or the working directory's) must not contradict.
pub fn leaf_under(conn: &Connection, asked: Option<String>, hypothesis: HypothesisId) -> Result<Option<String>> {
    let owner = records::hypothesis_leaf(conn, hypothesis)?;
    match (asked, owner) {
        (Some(asked), Some(owner)) if asked != owner => {
            Err(LabError::usage(format!("{hypothesis} belongs to leaf `{owner}`, not `{asked}`")).into())
        }
        (asked, owner) => Ok(owner.or(asked)),
    }
}

pub fn add(tx: &Transaction<'_>, item: &NewItem) -> Result<QueueId> {
    if item.title.trim().is_empty() {
        return Err(LabError::usage("a queue item needs a title").into());
    }
    tx.execute(
        "INSERT INTO queue (leaf, title, mechanism, priority, link, hypothesis_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            item.leaf,
            item.title,
            item.mechanism,
            item.priority,
            item.link,
            item.hypothesis.map(|h| h.0),
            item.created_at
        ],
    )?;
    Ok(QueueId(tx.last_insert_rowid()))
}

/// Claim the most urgent queued item (highest priority, then oldest), giving it
/// a hypothesis from its title and mechanism if it was queued without one.
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
    let mut claimed = tx.query_row(&format!("SELECT {ITEM_COLUMNS} FROM queue WHERE id = ?1"), [id], item)?;
    if claimed.hypothesis.is_none() {
        let new = NewHypothesis {
            title: claimed.title.clone(),
            mechanism: claimed.mechanism.clone(),
            leaf: claimed.leaf.clone(),
            prediction: None,
            created_at: at.to_owned(),
        };
        let hypothesis = records::add_hypothesis(tx, &new)?;
        tx.execute("UPDATE queue SET hypothesis_id = ?1 WHERE id = ?2", params![hypothesis.0, id])?;
        claimed.hypothesis = Some(hypothesis.to_string());
    }
    Ok(Some(claimed))
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
