//! Errors that know their exit code, and the one place that prints them.
//!
//! Commands return `anyhow::Result`; where the kind of failure matters to a caller
//! (an agent scripting against exit codes), they raise a [`LabError`] somewhere in
//! the chain. `main` asks [`exit_code`] and [`report`] for the rest. A keep or a
//! discard is a result, never an error.

use std::fmt::Write as _;

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
    fn plain_errors_are_failures() {
        let err = anyhow::anyhow!("disk full");
        assert_eq!(exit_code(&err), 1);
        assert_eq!(report(&err), "error: disk full");
    }
}
