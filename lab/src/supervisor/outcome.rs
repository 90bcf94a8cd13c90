//! Why a worker ended, decided from how it ended and what it said.
//!
//! Pure: a [`Supervised`] in, an [`Outcome`] out, so every case is tested
//! without a process. The rules, in order: a worker the supervisor stopped ran
//! past its budget, over its log cap, or was interrupted (unless it had already
//! finished in order); a worker that wrote `Done` ended in order and its last
//! word decides (an exception, a `sys.exit`, a refusal, or nothing: ok); a
//! worker that ended without `Done` was ended by `os._exit`, a signal, or a
//! SIGKILL it did not get from us (out of memory). No metric comes from here:
//! the harness scores outputs after the worker is gone (`scoring`).

use nix::sys::signal::Signal;
use serde::Serialize;

use super::launch::{Stop, Supervised};
use super::protocol::{Event, Termination};

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
    /// The harness's causality probes found outputs that depend on later inputs.
    NotCausal,
    /// The worker wrote more output than the log may hold.
    LogLimit,
    /// The supervisor was asked to stop (Ctrl-C, an agent's timeout).
    Interrupted,
    /// Not the leaf's fault: the worker loaded another Python than lab was built for, or could not be sandboxed.
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
            Self::NotCausal => "not_causal",
            Self::LogLimit => "log_limit",
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
    pub traceback: Option<String>,
    pub device: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.reason == ExitReason::Ok
    }

    /// The same run, failed for a reason found after it ended (scoring, probes).
    pub fn fail(mut self, reason: ExitReason, detail: String) -> Self {
        self.reason = reason;
        self.detail = detail;
        self
    }
}

/// Classify a finished worker; `what` names its function in messages (`train`, `infer`).
pub fn classify(run: &Supervised, what: &str, budget_text: &str) -> Outcome {
    let (exit_code, signal) = match run.termination {
        Termination::Exited { code } => (Some(code), None),
        Termination::Signaled { signal } => (None, Some(signal)),
    };
    let device = run.events.iter().rev().find_map(|e| match e {
        Event::Device { device } => Some(device.clone()),
        _ => None,
    });
    let mut outcome =
        Outcome { reason: ExitReason::Ok, detail: String::new(), exit_code, signal, traceback: None, device };
    let done = run.events.contains(&Event::Done);
    let (reason, detail) = match run.stop {
        Some(Stop::LogLimit) => {
            (ExitReason::LogLimit, format!("{what} wrote more output than the log may hold; it was stopped"))
        }
        Some(Stop::Interrupted(signal)) if !done => {
            (ExitReason::Interrupted, format!("lab received {signal}: the run was stopped and its processes killed"))
        }
        Some(Stop::Deadline) if !done => {
            (ExitReason::Budget, format!("budget {budget_text} exceeded: {what} was still running, killed"))
        }
        _ if done => return ended_in_order(run, outcome),
        _ => match run.termination {
            Termination::Exited { code } => (
                ExitReason::OsExit,
                format!("the worker exited with status {code} without finishing (os._exit or a fatal error)"),
            ),
            Termination::Signaled { signal } if signal == Signal::SIGKILL as i32 => {
                (ExitReason::OutOfMemory, "killed by SIGKILL, not sent by lab: most likely out of memory".to_owned())
            }
            Termination::Signaled { signal } => (
                ExitReason::Signal,
                format!(
                    "killed by {}",
                    Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.to_string())
                ),
            ),
        },
    };
    outcome.reason = reason;
    outcome.detail = detail;
    outcome
}

fn ended_in_order(run: &Supervised, mut outcome: Outcome) -> Outcome {
    let last = run.events.iter().rev().find(|e| {
        matches!(e, Event::Exception { .. } | Event::SysExit { .. } | Event::Refused { .. } | Event::Environment { .. })
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
        _ => (ExitReason::Ok, String::new()),
    };
    outcome.reason = reason;
    outcome.detail = detail;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(termination: Termination, stop: Option<Stop>, events: Vec<Event>) -> Supervised {
        Supervised { termination, stop, events, wall: Duration::ZERO, teardown: None, stragglers: 0 }
    }

    const EXITED: Termination = Termination::Exited { code: 0 };

    #[test]
    fn a_worker_that_finished_in_order_is_ok() {
        let out = classify(&run(EXITED, None, vec![Event::Done]), "train", "5m");
        assert!(out.ok(), "{out:?}");
    }

    #[test]
    fn each_way_of_failing_has_its_reason() {
        let exception = Event::Exception { kind: "ValueError".into(), message: "bad".into(), traceback: "tb".into() };
        let memory = Event::Exception { kind: "MemoryError".into(), message: String::new(), traceback: "tb".into() };
        let sig = |s: Signal| Termination::Signaled { signal: s as i32 };
        let cases: Vec<(Supervised, ExitReason, &str)> = vec![
            (run(EXITED, None, vec![exception, Event::Done]), ExitReason::Exception, "ValueError: bad"),
            (run(EXITED, None, vec![memory, Event::Done]), ExitReason::OutOfMemory, "MemoryError"),
            (
                run(EXITED, None, vec![Event::SysExit { code: Some(3), message: String::new() }, Event::Done]),
                ExitReason::SysExit,
                "sys.exit(3)",
            ),
            (run(Termination::Exited { code: 7 }, None, vec![]), ExitReason::OsExit, "status 7"),
            (run(sig(Signal::SIGSEGV), None, vec![]), ExitReason::Signal, "SIGSEGV"),
            (run(sig(Signal::SIGKILL), None, vec![]), ExitReason::OutOfMemory, "out of memory"),
            (run(sig(Signal::SIGTERM), Some(Stop::Deadline), vec![]), ExitReason::Budget, "budget 5m exceeded"),
            (run(sig(Signal::SIGTERM), Some(Stop::LogLimit), vec![Event::Done]), ExitReason::LogLimit, "log"),
            (
                run(EXITED, None, vec![Event::Refused { message: "infer must".into() }, Event::Done]),
                ExitReason::InvalidOutput,
                "infer must",
            ),
            (
                run(sig(Signal::SIGKILL), Some(Stop::Interrupted(Signal::SIGINT)), vec![]),
                ExitReason::Interrupted,
                "SIGINT",
            ),
        ];
        for (supervised, reason, detail) in cases {
            let out = classify(&supervised, "train", "5m");
            assert_eq!(out.reason, reason, "{out:?}");
            assert!(out.detail.contains(detail), "{:?} does not contain {detail:?}", out.detail);
        }
    }

    #[test]
    fn a_worker_that_finished_before_the_stop_landed_counts() {
        let out = classify(&run(EXITED, Some(Stop::Deadline), vec![Event::Done]), "train", "1s");
        assert!(out.ok(), "{out:?}");
    }
}
