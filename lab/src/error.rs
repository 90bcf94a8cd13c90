//! Errors that know their exit code, and the one place that prints them.
//!
//! Commands return `anyhow::Result`; where the kind of failure matters to a caller
//! (an agent scripting against exit codes), they raise a [`LabError`] somewhere in
//! the chain. `main` asks [`exit_code`] and [`report`] for the rest. A keep or a
//! discard is a result, never an error.

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::ErrorCode;

/// Exit codes, documented in the README. Agents branch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Something failed that is not the caller's fault: I/O, the database, a crash.
    Failure = 1,
    /// Bad usage or bad input: unknown id, malformed JSON, invalid name.
    Usage = 2,
    /// A rule of the protocol refused the request: a second result without
    /// `--amend`, a database newer than this binary, a frozen file changed.
    Refused = 3,
    /// `lab run`: the experiment crashed. Its result (verdict crash, with the
    /// reason) is recorded; this is a result, not a failure of lab.
    Crashed = 4,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LabError {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
}

impl LabError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self { exit: Exit::Usage, message: message.into(), hint: None }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self { exit: Exit::Refused, message: message.into(), hint: None }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self { exit: Exit::Failure, message: message.into(), hint: None }
    }

    pub fn crashed(message: impl Into<String>) -> Self {
        Self { exit: Exit::Crashed, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// `err` with the database it came from, where it is SQLite saying what is wrong
/// with a database file (malformed, not a database, I/O, locked) and nothing in
/// it names the file yet: such errors surface from any query, long after
/// `Store::open` (whose own errors name the path). Sources other than the lab's
/// database (an import's) turn their SQLite errors into messages naming theirs.
pub fn naming_database(err: anyhow::Error, database: Option<&Path>) -> anyhow::Error {
    let Some(path) = database else { return err };
    let about_the_file = err.chain().any(|cause| {
        cause.downcast_ref::<rusqlite::Error>().and_then(rusqlite::Error::sqlite_error_code).is_some_and(|code| {
            matches!(
                code,
                ErrorCode::DatabaseCorrupt
                    | ErrorCode::NotADatabase
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::FileLockingProtocolFailed
                    | ErrorCode::PermissionDenied
            )
        })
    });
    let shown = path.display().to_string();
    if about_the_file && !err.chain().any(|cause| cause.to_string().contains(&shown)) {
        err.context(format!("the research database `{shown}` failed"))
    } else {
        err
    }
}

/// The exit code for an error: the first [`LabError`] in the chain decides.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain().find_map(|cause| cause.downcast_ref::<LabError>()).map_or(Exit::Failure, |e| e.exit) as i32
}

/// `error: what failed`, the cause chain, then `hint: what to do`.
pub fn report(err: &anyhow::Error) -> String {
    let mut out = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let _ = write!(out, "\n  caused by: {cause}");
    }
    if let Some(hint) = err.chain().find_map(|c| c.downcast_ref::<LabError>()?.hint.as_deref()) {
        let _ = write!(out, "\nhint: {hint}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn innermost_lab_error_decides_the_code_and_hint() {
        let err = Err::<(), _>(LabError::refused("frozen file changed").hint("run `lab lock`"))
            .context("cannot run leaf `x`")
            .unwrap_err();
        assert_eq!(exit_code(&err), 3);
        assert_eq!(report(&err), "error: cannot run leaf `x`\n  caused by: frozen file changed\nhint: run `lab lock`");
    }

    #[test]
    fn file_errors_from_sqlite_name_the_database_once() {
        let sqlite = |code| anyhow::Error::from(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None));
        let db = Path::new("/lab/.lab/lab.db");
        let named = naming_database(sqlite(rusqlite::ffi::SQLITE_CORRUPT), Some(db));
        assert!(report(&named).starts_with("error: the research database `/lab/.lab/lab.db` failed"), "{named:#}");
        let again = naming_database(named, Some(db));
        assert_eq!(report(&again).matches("/lab/.lab/lab.db").count(), 1);
        let constraint = naming_database(sqlite(rusqlite::ffi::SQLITE_CONSTRAINT), Some(db));
        assert!(!report(&constraint).contains("lab.db"), "not about the file: {constraint:#}");
    }

    #[test]
    fn plain_errors_are_failures() {
        let err = anyhow::anyhow!("disk full");
        assert_eq!(exit_code(&err), 1);
        assert_eq!(report(&err), "error: disk full");
    }
}
