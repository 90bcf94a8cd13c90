//! The record of imports (migration 10): which bytes were imported, in which
//! format, with what counts, so the same file is never imported twice.
//!
//! [`once`] looks for an earlier import of the same bytes and, finding none,
//! runs the import and records it, inside the caller's transaction: the rows
//! and their record land together or not at all. A second import of the same
//! bytes is a no-op, not a refusal: re-running an import script is harmless,
//! and the caller is told when the earlier one was made.

use anyhow::Result;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::records;
use super::transfer::Imported;

/// What is being imported: the format, the file as the caller named it, the
/// sha256 of its bytes, and the leaf its rows go to (results.tsv only).
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub format: &'a str,
    pub path: &'a str,
    pub sha256: &'a str,
    pub leaf: Option<&'a str>,
}

/// An import already recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Earlier {
    pub id: i64,
    pub path: String,
    pub leaf: Option<String>,
    pub hypotheses: usize,
    pub experiments: usize,
    pub results: usize,
    pub created_at: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Imported(Imported),
    /// The same bytes were imported before: nothing was written.
    Already(Earlier),
}

/// Run `import` unless `source`'s bytes were imported before; record it if it ran.
pub fn once(
    tx: &Transaction<'_>,
    source: &Source<'_>,
    import: impl FnOnce(&Transaction<'_>) -> Result<Imported>,
) -> Result<Outcome> {
    if let Some(earlier) = earlier(tx, source.format, source.sha256)? {
        return Ok(Outcome::Already(earlier));
    }
    let imported = import(tx)?;
    tx.execute(
        "INSERT INTO imports (format, sha256, path, leaf, hypotheses, experiments, results, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            source.format,
            source.sha256,
            source.path,
            source.leaf,
            imported.hypotheses as i64,
            imported.experiments as i64,
            imported.results as i64,
            records::now(),
        ],
    )?;
    Ok(Outcome::Imported(imported))
}

fn earlier(tx: &Transaction<'_>, format: &str, sha256: &str) -> Result<Option<Earlier>> {
    let found = tx
        .query_row(
            "SELECT id, path, leaf, hypotheses, experiments, results, created_at FROM imports
             WHERE format = ?1 AND sha256 = ?2",
            params![format, sha256],
            |r| {
                let count = |i| r.get::<_, i64>(i).map(|n| n.max(0) as usize);
                Ok(Earlier {
                    id: r.get(0)?,
                    path: r.get(1)?,
                    leaf: r.get(2)?,
                    hypotheses: count(3)?,
                    experiments: count(4)?,
                    results: count(5)?,
                    created_at: r.get(6)?,
                })
            },
        )
        .optional()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn the_same_bytes_import_once() {
        let mut store = Store::in_memory();
        let source = Source { format: "praxlab", path: "x.db", sha256: "ab", leaf: None };
        let counts = || Imported { hypotheses: 1, experiments: 2, results: 3 };
        let first = store.write(|tx| once(tx, &source, |_| Ok(counts()))).unwrap();
        assert_eq!(first, Outcome::Imported(counts()));
        let again = store.write(|tx| once(tx, &source, |_| panic!("imported twice"))).unwrap();
        let Outcome::Already(earlier) = again else { panic!("{again:?}") };
        assert_eq!((earlier.id, earlier.path.as_str(), earlier.results), (1, "x.db", 3));
        let other = Source { format: "results-tsv", ..source };
        let third = store.write(|tx| once(tx, &other, |_| Ok(Imported::default()))).unwrap();
        assert_eq!(third, Outcome::Imported(Imported::default()), "another format is another import");
    }
}
