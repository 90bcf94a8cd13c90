//! `lab verify`'s report, and the checks the store can make on its own.
//!
//! A [`Report`] is a list of [`Check`]s, each with a name, a verdict and its
//! findings (what, where, what differs), so checks that need more than the
//! database (re-hashing a kept run's files, re-scoring a keep) are added as
//! further entries. The store's checks:
//! - `chain`: every entry links to the one before and hashes to its own hash,
//!   with no gap in the sequence;
//! - `rows`: every row of every chained table matches its latest entry, no row
//!   lacks one and no entry lacks its row;
//! - `metrics`: the derived index leaders and bests are read from mirrors the
//!   current results exactly (a forged index row would fake a best);
//! - `provenance`: no agent result sits on an experiment the harness ran, no
//!   amendment changed a harness verdict, and supersession links agree.
//!
//! With a leaf, rows and results of other leaves are left out; the links of
//! the one chain are always checked whole.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::Connection;

use super::chain::{self, CHAINED, Chained, RowDigest};

mod report;

pub use report::{Check, CheckVerdict, Finding, Head, Report};

/// The store's checks, on the whole database or one leaf's rows.
pub fn verify(conn: &Connection, leaf: Option<&str>) -> Result<Report> {
    let (seq, hash) = chain::head(conn)?;
    let mut report = Report { ok: true, leaf: leaf.map(str::to_owned), head: Head { seq, hash }, checks: Vec::new() };
    let (links, latest) = links(conn)?;
    report.push(links);
    report.push(rows(conn, leaf, latest)?);
    report.push(metrics(conn, leaf)?);
    report.push(provenance(conn, leaf)?);
    Ok(report)
}

/// An entry as stored: its row's digest and the per-column digests.
struct Entry {
    seq: i64,
    row_sha256: String,
    columns: String,
}

/// Each row's latest entry, by (table, row id).
type Latest = HashMap<(String, String), Entry>;

/// Walk the chain in order; returns the check and each row's latest entry.
fn links(conn: &Connection) -> Result<(Check, Latest)> {
    let mut stmt = conn.prepare(
        "SELECT seq, table_name, row_id, row_sha256, column_digests, prev_hash, hash FROM chain ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let (mut findings, mut latest) = (Vec::new(), HashMap::new());
    let (mut expected_seq, mut prev, mut n) = (1, chain::GENESIS.to_owned(), 0);
    while let Some(r) = rows.next()? {
        let (seq, table, row, row_sha256): (i64, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (columns, prev_hash, hash): (String, String, String) = (r.get(4)?, r.get(5)?, r.get(6)?);
        n += 1;
        if seq != expected_seq {
            findings.push(Finding::row(
                "gap",
                "chain",
                seq,
                format!("entries {expected_seq}..{} are missing", seq - 1),
            ));
        }
        if prev_hash != prev {
            findings.push(Finding::row(
                "broken",
                "chain",
                seq,
                "its previous hash is not the hash of the entry before",
            ));
        }
        if chain::link(&prev_hash, &table, &row, &row_sha256) != hash {
            findings.push(Finding::row(
                "forged",
                "chain",
                seq,
                format!("its hash does not derive from its content ({table} {row})"),
            ));
        }
        (expected_seq, prev) = (seq + 1, hash);
        latest.insert((table, row), Entry { seq, row_sha256, columns });
    }
    let about = "every entry links to the one before it and hashes to its own hash";
    Ok((Check::new("chain", about, n, findings), latest))
}

/// Re-derive every chained row's digest and compare it with its latest entry.
fn rows(conn: &Connection, leaf: Option<&str>, mut latest: Latest) -> Result<Check> {
    let (mut findings, mut n) = (Vec::new(), 0);
    for spec in CHAINED {
        let columns: Vec<String> = spec.columns.iter().map(|c| format!("t.{c}")).collect();
        let sql = format!("SELECT {}, {}, {} FROM {} t", spec.key, spec.leaf, columns.join(", "), spec.table);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (key, row_leaf): (String, Option<String>) = (r.get(0)?, r.get(1)?);
            let entry = latest.remove(&(spec.table.to_owned(), key.clone()));
            if leaf.is_some_and(|l| row_leaf.as_deref() != Some(l)) {
                continue;
            }
            n += 1;
            let digest =
                RowDigest::of((0..spec.columns.len()).map(|i| r.get_ref(i + 2)).collect::<Result<Vec<_>, _>>()?);
            match entry {
                None => findings.push(Finding::row(
                    "unchained",
                    spec.table,
                    &key,
                    "the row has no chain entry: it was not written by lab",
                )),
                Some(e) if e.row_sha256 != digest.row => {
                    let changed = changed_columns(spec, &e.columns, &digest);
                    findings.push(Finding::row(
                        "changed",
                        spec.table,
                        &key,
                        format!("{changed} changed since it was recorded (chain entry {})", e.seq),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let mut orphans: Vec<_> = latest.into_iter().collect();
    orphans.sort_by_key(|(_, e)| e.seq);
    for ((table, row), e) in orphans {
        findings.push(Finding::row(
            "deleted",
            &table,
            row,
            format!("chain entry {} has no row: the row was deleted", e.seq),
        ));
    }
    Ok(Check::new("rows", "every record matches what its chain entry recorded when it was written", n, findings))
}

/// `verdict, metrics`: the columns whose digests no longer match.
fn changed_columns(spec: &Chained, recorded: &str, now: &RowDigest) -> String {
    let recorded: Vec<&str> = recorded.split(' ').collect();
    if recorded.len() != now.columns.len() {
        return "its columns".to_owned();
    }
    let names: Vec<&str> = spec
        .columns
        .iter()
        .zip(recorded.iter().zip(&now.columns))
        .filter(|(_, (a, b))| *a != b)
        .map(|(c, _)| *c)
        .collect();
    if names.is_empty() { "its columns".to_owned() } else { names.join(", ") }
}

/// The derived metrics index against the current results it is made from.
fn metrics(conn: &Connection, leaf: Option<&str>) -> Result<Check> {
    let scope = |column: &str| leaf.map_or_else(String::new, |_| format!(" WHERE {column} = ?1"));
    let expected = format!(
        "SELECT r.id, j.key, r.experiment_id, r.leaf, r.verdict, j.value, r.source, r.comparison
         FROM results r, json_each(CASE WHEN json_valid(r.metrics) THEN r.metrics ELSE '{{}}' END) j
         WHERE r.superseded_by IS NULL AND j.type IN ('integer', 'real'){}",
        leaf.map_or_else(String::new, |_| " AND r.leaf = ?1".to_owned())
    );
    let actual = format!(
        "SELECT result_id, name, experiment_id, leaf, verdict, value, source, comparison FROM metrics{}",
        scope("leaf")
    );
    let keys = |sql: String| -> Result<Vec<(i64, String)>> {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(leaf), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let missing = keys(format!("{expected} EXCEPT {actual}"))?;
    let extra = keys(format!("{actual} EXCEPT {expected}"))?;
    let mut findings = Vec::new();
    for (result, name) in &missing {
        let (kind, what) = if extra.contains(&(*result, name.clone())) {
            ("differs", "the metrics index differs from the result's number, verdict or source")
        } else {
            ("missing", "the metrics index lacks this result's number")
        };
        findings.push(Finding::row(kind, "metrics", format!("{result}/{name}"), what));
    }
    let malformed = format!(
        "SELECT id, '' FROM results r WHERE NOT json_valid(r.metrics){}",
        leaf.map_or_else(String::new, |_| " AND r.leaf = ?1".to_owned())
    );
    for (result, _) in keys(malformed)? {
        findings.push(Finding::row("malformed", "results", result, "its metrics are not JSON"));
    }
    for (result, name) in extra.iter().filter(|k| !missing.contains(k)) {
        findings.push(Finding::row(
            "forged",
            "metrics",
            format!("{result}/{name}"),
            "the metrics index holds a number no current result has",
        ));
    }
    let n: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM metrics{}", scope("leaf")),
        rusqlite::params_from_iter(leaf),
        |r| r.get(0),
    )?;
    Ok(Check::new(
        "metrics",
        "the index that bests and leaders are read from mirrors the current results",
        n as u64,
        findings,
    ))
}

/// Rules of provenance that the rows themselves can break.
fn provenance(conn: &Connection, leaf: Option<&str>) -> Result<Check> {
    let scope = leaf.map_or_else(String::new, |_| " AND n.leaf = ?1".to_owned());
    let queries = [
        (
            "agent-on-harness",
            format!(
                "SELECT n.id FROM results n WHERE n.source = 'agent'{scope}
                     AND EXISTS (SELECT 1 FROM runs u WHERE u.experiment_id = n.experiment_id)"
            ),
            "an agent's result on an experiment the harness ran",
        ),
        (
            "rewritten",
            format!(
                "SELECT n.id FROM results n JOIN results o ON o.id = n.amends
                     WHERE o.source = 'harness'{scope}
                       AND (n.source != 'harness' OR n.verdict != o.verdict OR n.metrics != o.metrics)"
            ),
            "an amendment changed the harness's verdict, metrics or source",
        ),
        (
            "supersession",
            format!(
                "SELECT o.id FROM results o LEFT JOIN results n ON n.id = o.superseded_by
                     WHERE o.superseded_by IS NOT NULL{}
                       AND (n.id IS NULL OR n.amends IS NOT o.id OR n.experiment_id != o.experiment_id)",
                leaf.map_or_else(String::new, |_| " AND o.leaf = ?1".to_owned())
            ),
            "marked superseded, but no amendment of it says so",
        ),
        (
            "supersession",
            format!(
                "SELECT n.id FROM results n JOIN results o ON o.id = n.amends WHERE o.superseded_by IS NOT n.id{scope}"
            ),
            "amends a result that does not point back at it",
        ),
    ];
    let mut findings = Vec::new();
    for (kind, sql, what) in queries {
        let mut stmt = conn.prepare(&sql)?;
        for id in stmt.query_map(rusqlite::params_from_iter(leaf), |r| r.get::<_, i64>(0))? {
            findings.push(Finding::row(kind, "results", id?, what));
        }
    }
    let n: i64 = match leaf {
        Some(l) => conn.query_row("SELECT COUNT(*) FROM results WHERE leaf = ?1", [l], |r| r.get(0))?,
        None => conn.query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))?,
    };
    Ok(Check::new(
        "provenance",
        "the harness's verdicts stand as it recorded them; agents' results are marked",
        n as u64,
        findings,
    ))
}

#[cfg(test)]
mod tests;
