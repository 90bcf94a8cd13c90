//! How a Python error raised by a leaf's code becomes an event.
//!
//! `sys.exit(n)` arrives as a `SystemExit` exception; it is reported with its
//! code and never printed with `PyErr::print`, which would end the worker with
//! that code before the supervisor hears why. The harness's own `Refused` (what
//! the leaf returned cannot be used) is a refusal with its message. Every other
//! exception is printed in full to the run's log and sent with its type,
//! message and traceback tail.

use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;

use super::module::{harness, write_stderr};
use crate::supervisor::protocol::Event;

/// Lines of traceback kept with the event (the log keeps all of it).
const TRACEBACK_LINES: usize = 30;

pub(crate) fn event(py: Python<'_>, err: &PyErr) -> Event {
    if err.is_instance_of::<PySystemExit>(py) {
        return sys_exit(py, err);
    }
    let refused = harness(py).and_then(|h| h.getattr("Refused"));
    if let Ok(refused) = refused
        && err.is_instance(py, &refused)
    {
        let message = err.value(py).str().map(|s| s.to_string()).unwrap_or_default();
        write_stderr(py, &format!("[lab] refused: {message}"));
        return Event::Refused { message };
    }
    let kind = qualified_type(py, err);
    let message = err.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let traceback = format_traceback(py, err).unwrap_or_else(|_| format!("{kind}: {message}\n"));
    write_stderr(py, traceback.trim_end());
    let lines: Vec<&str> = traceback.lines().collect();
    let tail = lines[lines.len().saturating_sub(TRACEBACK_LINES)..].join("\n");
    Event::Exception { kind, message, traceback: tail }
}

/// `SystemExit.code`: None means 0, an int is the status, anything else is a
/// message (Python would print it and exit 1).
fn sys_exit(py: Python<'_>, err: &PyErr) -> Event {
    let code = err.value(py).getattr("code").ok();
    match code {
        None => Event::SysExit { code: Some(0), message: String::new() },
        Some(code) if code.is_none() => Event::SysExit { code: Some(0), message: String::new() },
        Some(code) => match code.extract::<i64>() {
            Ok(n) => Event::SysExit { code: Some(n), message: String::new() },
            Err(_) => {
                let message = code.str().map(|s| s.to_string()).unwrap_or_default();
                Event::SysExit { code: Some(1), message }
            }
        },
    }
}

fn qualified_type(py: Python<'_>, err: &PyErr) -> String {
    let ty = err.get_type(py);
    let name = ty.qualname().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    match ty.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{name}"),
        _ => name,
    }
}

fn format_traceback(py: Python<'_>, err: &PyErr) -> PyResult<String> {
    // pyo3 keeps the traceback beside the exception, not on its __traceback__.
    let args = (err.get_type(py), err.value(py), err.traceback(py));
    let lines = py.import("traceback")?.call_method1("format_exception", args)?;
    Ok(lines.extract::<Vec<String>>()?.concat())
}
