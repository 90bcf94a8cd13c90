//! The research memory: one SQLite database per lab root.
//!
//! Opened with WAL, `synchronous=NORMAL`, a busy timeout and foreign keys. Every
//! write runs in an IMMEDIATE transaction ([`Store::write`]): a deferred one that
//! reads and then writes fails at once with "database is locked" whatever the
//! busy timeout. Results are appended, never overwritten. Refuses, before touching
//! anything, a database on a network filesystem, in a read-only directory, or with
//! a schema newer than this binary.

pub mod candidates;
mod fsck;
pub mod gate;
pub mod leaves;
mod migrations;
pub mod queries;
pub mod queue;
pub mod records;
pub mod runs;
pub mod submissions;
pub mod transfer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::LabError;

pub use migrations::LATEST_VERSION;

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open the database at `path`, creating it (and its directory) when
    /// `create` is set, and migrate it to the latest schema.
    pub fn open(path: &Path, create: bool) -> Result<Self> {
        let dir = path.parent().context("database path has no parent directory")?;
        if !path.exists() && !create {
            return Err(LabError::usage(format!("no database at `{}`", path.display()))
                .hint("run `lab init` in the lab root")
                .into());
        }
        // Check before creating anything: the nearest directory that exists.
        let existing = dir.ancestors().find(|d| d.is_dir()).context("no existing ancestor directory")?;
        fsck::check_directory(existing)?;
        if create {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open database `{}`", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self { conn, path: path.to_path_buf() };
        migrations::migrate(&mut store.conn).with_context(|| format!("database `{}`", path.display()))?;
        Ok(store)
    }

    /// An in-memory database at the latest schema, for unit tests.
    #[cfg(test)]
    pub fn in_memory() -> Self {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrations::migrate(&mut conn).unwrap();
        Self { conn, path: PathBuf::from(":memory:") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn schema_version(&self) -> Result<u32> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Run `f` in an IMMEDIATE transaction: committed if it returns `Ok`, rolled
    /// back (nothing written) if it returns an error.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}
