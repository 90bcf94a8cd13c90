//! The research memory: one SQLite database per lab root.
//!
//! Opened with WAL, `synchronous=NORMAL`, a busy timeout and foreign keys. Every
//! write runs in an IMMEDIATE transaction ([`Store::write`]): a deferred one that
//! reads and then writes fails at once with "database is locked" whatever the
//! busy timeout. Results are appended, never overwritten. Refuses, before touching
//! anything, a database on a network filesystem, in a read-only directory, or with
//! a schema newer than this binary; and a missing or empty database where its data
//! directory exists ([`OpenMode`]): a lost research log is never silently replaced
//! by an empty one. Every connection gets the SQL functions of the hash chain
//! ([`chain::register`]) before anything is read or written; without them (the
//! `sqlite3` shell) an insert into a chained table fails.

pub mod bests;
pub mod candidates;
pub mod chain;
pub mod comparisons;
mod fsck;
pub mod gate;
pub mod imports;
pub mod leaves;
mod migrations;
pub mod queries;
pub mod queue;
pub mod records;
pub mod runs;
pub mod submissions;
#[cfg(test)]
pub mod testing;
pub mod transfer;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::error::LabError;

pub use migrations::LATEST_VERSION;

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// How [`Store::open`] treats a database that is not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The database must exist and hold a schema (`lab doctor`).
    Existing,
    /// Create it only where there is no data directory yet (a fresh lab root,
    /// a fresh clone); a missing or empty database in an existing data
    /// directory is refused: the research log was lost, and an empty one in
    /// its place would silently start history over.
    CreateIfNew,
    /// Create it even in an existing data directory (`lab init --force`).
    Create,
}

impl Store {
    /// Open the database at `path` in `mode` and migrate it to the latest schema.
    /// Every error names the path.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        Self::open_inner(path, mode).with_context(|| format!("cannot open the database `{}`", path.display()))
    }

    fn open_inner(path: &Path, mode: OpenMode) -> Result<Self> {
        let dir = path.parent().context("database path has no parent directory")?;
        let existed = refuse_lost(path, dir, mode)?;
        // Check before creating anything: the nearest directory that exists.
        let existing = dir.ancestors().find(|d| d.is_dir()).context("no existing ancestor directory")?;
        fsck::check_directory(existing)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .context("SQLite cannot open it")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        chain::register(&conn)?;
        if existed && mode != OpenMode::Create && is_blank(&conn)? {
            return Err(lost(path, "holds no schema: it is empty").into());
        }
        let mut store = Self { conn, path: path.to_path_buf() };
        migrations::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// An in-memory database at the latest schema, for unit tests.
    #[cfg(test)]
    pub fn in_memory() -> Self {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        chain::register(&conn).unwrap();
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

/// What a database file holds, as [`inspect`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A schema this lab reads (an older one is migrated on next use).
    Schema(u32),
    /// A schema newer than [`LATEST_VERSION`]: this lab will not touch it.
    Newer(u32),
    /// No schema at all: a lost research log in its place.
    Empty,
    /// Not a database lab can read, and why.
    Broken(String),
}

impl Health {
    /// What is wrong, for people; `None` when it is a schema this lab reads.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Schema(_) => None,
            Self::Newer(v) => Some(format!("a newer schema (version {v}) than this lab knows ({LATEST_VERSION})")),
            Self::Empty => Some("empty: it holds no schema (a lost research log?)".to_owned()),
            Self::Broken(why) => Some(why.clone()),
        }
    }
}

/// Look at the database at `path` read-only, without migrating or creating
/// anything (`lab doctor`): its schema version, or what it is instead.
pub fn inspect(path: &Path) -> Health {
    if path.is_dir() {
        return Health::Broken("a directory, not a database".to_owned());
    }
    let read = || -> rusqlite::Result<(u32, i64, String)> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tables = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
        // The first problem only: a damaged page deep in the file shows here, not in the header.
        let check = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
        Ok((version, tables, check))
    };
    match read() {
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            Health::Broken(format!("not a SQLite database ({e})"))
        }
        Err(e) => Health::Broken(format!("unreadable: {e}")),
        Ok((version, ..)) if version > LATEST_VERSION => Health::Newer(version),
        Ok((0, 0, _)) => Health::Empty,
        Ok((_, _, check)) if check != "ok" => Health::Broken(format!("damaged: {}", check.replace('\n', " "))),
        Ok((version, ..)) => Health::Schema(version),
    }
}

/// Refuse a database that should be there and is not (or is empty); returns
/// whether the file existed.
fn refuse_lost(path: &Path, dir: &Path, mode: OpenMode) -> Result<bool> {
    let len = std::fs::metadata(path).ok().map(|m| m.len());
    match (len, mode) {
        (None, OpenMode::Existing) => Err(lost(path, "does not exist").into()),
        (None, OpenMode::CreateIfNew) if dir.exists() => {
            Err(lost(path, &format!("is missing, but its data directory `{}` exists", dir.display())).into())
        }
        (Some(0), OpenMode::Existing | OpenMode::CreateIfNew) => Err(lost(path, "is empty (0 bytes)").into()),
        (len, _) => Ok(len.is_some()),
    }
}

/// A file SQLite opens but that holds no schema at all.
fn is_blank(conn: &Connection) -> Result<bool> {
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok(version == 0 && tables == 0)
}

fn lost(path: &Path, what: &str) -> LabError {
    LabError::refused(format!("the research log `{}` {what}", path.display())).hint(
        "restore it from a backup; or run `lab init --force` to start an empty one deliberately \
         (the earlier history is not in it)",
    )
}
