//! Why a run ended, decided from how the worker ended and what it said.
//!
//! Pure: a [`Supervised`] in, an [`Outcome`] out, so every case is tested
//! without a process. The rules, in order: a run the supervisor had to kill
//! exceeded its budget (unless it had already finished in order); a worker that
//! wrote `Done` ended in order and its last word decides (an exception, a
//! `sys.exit`, a refusal, or final metrics, which must hold the primary metric
//! and only finite numbers); a worker that ended without `Done` was ended by
//! `os._exit`, a signal, or a SIGKILL it did not get from us (out of memory).

use std::collections::BTreeMap;

use nix::sys::signal::Signal;
use serde::Serialize;

use super::protocol::{Event, decode_number};
use super::supervise::{Supervised, Termination};

/// The recorded reason a run ended; `Ok` is the only one that is not a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Ok,
    Exception,
    SysExit,
    OsExit,
    Signal,
    Budget,
    OutOfMemory,
    NonFiniteMetric,
    MissingMetric,
    /// The leaf's code returned something the harness cannot use.
    InvalidOutput,
    /// The supervisor was asked to stop (Ctrl-C, an agent's timeout).
    Interrupted,
    /// Not the leaf's fault: the worker loaded another Python than lab was built for.
    Environment,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Exception => "exception",
            Self::SysExit => "sys_exit",
            Self::OsExit => "os_exit",
            Self::Signal => "signal",
            Self::Budget => "budget",
            Self::OutOfMemory => "out_of_memory",
            Self::NonFiniteMetric => "non_finite_metric",
            Self::MissingMetric => "missing_metric",
            Self::InvalidOutput => "invalid_output",
            Self::Interrupted => "interrupted",
            Self::Environment => "environment",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub reason: ExitReason,
    /// One line for people: `ValueError: bad lr`, `sys.exit(3)`, `killed by SIGSEGV`.
    pub detail: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The final metrics as sent (in-process mode); empty otherwise.
    pub metrics: BTreeMap<String, f64>,
    pub traceback: Option<String>,
    pub device: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.reason == ExitReason::Ok
    }

    /// The same run, failed for a reason found after it ended (scoring).
    pub fn fail(mut self, reason: ExitReason, detail: String) -> Self {
        self.reason = reason;
        self.detail = detail;
        self
    }
}

/// Classify a finished worker. `primary` is the metric the final event must
/// hold (`None` in phases whose metrics the harness computes itself).
pub fn classify(run: &Supervised, primary: Option<&str>, budget_text: &str) -> Outcome {
    let (exit_code, signal) = match run.termination {
        Termination::Exited(code) => (Some(code), None),
        Termination::Signaled(sig) => (None, Some(sig as i32)),
    };
    let device = run.events.iter().rev().find_map(|e| match e {
        Event::Device { device } => Some(device.clone()),
        _ => None,
    });
    let mut outcome = Outcome {
        reason: ExitReason::Ok,
        detail: String::new(),
        exit_code,
        signal,
        metrics: BTreeMap::new(),
        traceback: None,
        device,
    };
    let done = run.events.contains(&Event::Done);
    let (reason, detail) = if let Some(signal) = run.interrupted.filter(|_| !done) {
        (ExitReason::Interrupted, format!("lab received {signal}: the run was stopped and its processes killed"))
    } else if run.killed && !done {
        let what =
            if run.killed_in_evaluation { "evaluation ran past its window" } else { "training ran past the deadline" };
        (ExitReason::Budget, format!("budget {budget_text} exceeded: {what}, killed"))
    } else if done {
        return ended_in_order(run, primary, outcome);
    } else {
        match run.termination {
            Termination::Exited(code) => (
                ExitReason::OsExit,
                format!("the worker exited with status {code} without finishing (os._exit or a fatal error)"),
            ),
            Termination::Signaled(Signal::SIGKILL) => {
                (ExitReason::OutOfMemory, "killed by SIGKILL, not sent by lab: most likely out of memory".to_owned())
            }
            Termination::Signaled(sig) => (ExitReason::Signal, format!("killed by {sig}")),
        }
    };
    outcome.reason = reason;
    outcome.detail = detail;
    outcome
}

fn ended_in_order(run: &Supervised, primary: Option<&str>, mut outcome: Outcome) -> Outcome {
    let last = run.events.iter().rev().find(|e| {
        matches!(
            e,
            Event::Final { .. }
                | Event::Exception { .. }
                | Event::SysExit { .. }
                | Event::Refused { .. }
                | Event::Environment { .. }
        )
    });
    let (reason, detail) = match last {
        Some(Event::Exception { kind, message, traceback }) => {
            outcome.traceback = Some(traceback.clone());
            let reason = if kind == "MemoryError" { ExitReason::OutOfMemory } else { ExitReason::Exception };
            (reason, format!("{kind}: {message}").trim_end_matches(": ").to_owned())
        }
        Some(Event::SysExit { code, message }) => {
            let code = code.map_or_else(|| "None".to_owned(), |c| c.to_string());
            let extra = if message.is_empty() { String::new() } else { format!(": {message}") };
            (ExitReason::SysExit, format!("sys.exit({code}) called before the run finished{extra}"))
        }
        Some(Event::Refused { message }) => (ExitReason::InvalidOutput, message.clone()),
        Some(Event::Environment { message }) => (ExitReason::Environment, message.clone()),
        Some(Event::Final { metrics }) => match final_metrics(metrics, primary) {
            Ok(values) => {
                outcome.metrics = values;
                (ExitReason::Ok, String::new())
            }
            Err(failure) => failure,
        },
        _ => (ExitReason::InvalidOutput, "the worker finished without a result".to_owned()),
    };
    outcome.reason = reason;
    outcome.detail = detail;
    outcome
}

type Failure = (ExitReason, String);

/// Decode and validate the final metrics: every value finite, the primary present.
pub fn final_metrics(
    metrics: &serde_json::Map<String, serde_json::Value>,
    primary: Option<&str>,
) -> Result<BTreeMap<String, f64>, Failure> {
    let mut values = BTreeMap::new();
    for (name, value) in metrics {
        let Some(x) = decode_number(value) else {
            return Err((ExitReason::InvalidOutput, format!("metric `{name}` is not a number: {value}")));
        };
        if !x.is_finite() {
            return Err((ExitReason::NonFiniteMetric, format!("metric `{name}` is {x}")));
        }
        values.insert(name.clone(), x);
    }
    if let Some(primary) = primary
        && !values.contains_key(primary)
    {
        let got: Vec<&str> = values.keys().map(String::as_str).collect();
        let got = if got.is_empty() { "none".to_owned() } else { got.join(", ") };
        return Err((ExitReason::MissingMetric, format!("evaluate did not report `{primary}` (reported: {got})")));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn run(termination: Termination, killed: bool, events: Vec<Event>) -> Supervised {
        Supervised {
            termination,
            killed,
            killed_in_evaluation: false,
            events,
            wall: Duration::ZERO,
            teardown: None,
            interrupted: None,
        }
    }

    fn classify_events(events: Vec<Event>) -> Outcome {
        classify(&run(Termination::Exited(0), false, events), Some("loss"), "5m")
    }

    fn final_event(metrics: serde_json::Value) -> Event {
        Event::Final { metrics: metrics.as_object().unwrap().clone() }
    }

    #[test]
    fn a_finished_run_carries_its_metrics() {
        let out = classify_events(vec![final_event(json!({"loss": 0.5, "acc": 1})), Event::Done]);
        assert!(out.ok(), "{out:?}");
        assert_eq!(out.metrics.get("loss"), Some(&0.5));
    }

    #[test]
    fn each_way_of_failing_has_its_reason() {
        let exception = Event::Exception { kind: "ValueError".into(), message: "bad".into(), traceback: "tb".into() };
        let memory = Event::Exception { kind: "MemoryError".into(), message: String::new(), traceback: "tb".into() };
        let cases: Vec<(Supervised, ExitReason, &str)> = vec![
            (
                run(Termination::Exited(1), false, vec![exception, Event::Done]),
                ExitReason::Exception,
                "ValueError: bad",
            ),
            (run(Termination::Exited(1), false, vec![memory, Event::Done]), ExitReason::OutOfMemory, "MemoryError"),
            (
                run(
                    Termination::Exited(1),
                    false,
                    vec![Event::SysExit { code: Some(3), message: String::new() }, Event::Done],
                ),
                ExitReason::SysExit,
                "sys.exit(3)",
            ),
            (run(Termination::Exited(7), false, vec![]), ExitReason::OsExit, "status 7"),
            (run(Termination::Signaled(Signal::SIGSEGV), false, vec![]), ExitReason::Signal, "SIGSEGV"),
            (run(Termination::Signaled(Signal::SIGKILL), false, vec![]), ExitReason::OutOfMemory, "out of memory"),
            (run(Termination::Signaled(Signal::SIGTERM), true, vec![]), ExitReason::Budget, "budget 5m exceeded"),
            (
                run(Termination::Exited(0), false, vec![final_event(json!({"loss": "nan"})), Event::Done]),
                ExitReason::NonFiniteMetric,
                "`loss` is NaN",
            ),
            (
                run(Termination::Exited(0), false, vec![final_event(json!({"acc": 1.0})), Event::Done]),
                ExitReason::MissingMetric,
                "did not report `loss` (reported: acc)",
            ),
            (
                run(
                    Termination::Exited(0),
                    false,
                    vec![Event::Refused { message: "evaluate must".into() }, Event::Done],
                ),
                ExitReason::InvalidOutput,
                "evaluate must",
            ),
        ];
        for (supervised, reason, detail) in cases {
            let out = classify(&supervised, Some("loss"), "5m");
            assert_eq!(out.reason, reason, "{out:?}");
            assert!(out.detail.contains(detail), "{:?} does not contain {detail:?}", out.detail);
        }
    }

    #[test]
    fn a_stopped_supervisor_records_an_interruption() {
        let mut stopped = run(Termination::Signaled(Signal::SIGKILL), false, vec![]);
        stopped.interrupted = Some(Signal::SIGINT);
        let out = classify(&stopped, Some("loss"), "5m");
        assert_eq!(out.reason, ExitReason::Interrupted);
        assert!(out.detail.contains("SIGINT"), "{}", out.detail);
    }

    #[test]
    fn a_run_that_finished_before_the_kill_landed_counts() {
        let events = vec![final_event(json!({"loss": 0.1})), Event::Done];
        let out = classify(&run(Termination::Exited(0), true, events), Some("loss"), "1s");
        assert!(out.ok(), "{out:?}");
    }
}
