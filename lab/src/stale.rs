//! Staleness of runs still marked "running": decided at read time, written only
//! by an explicit `lab sweep`.
//!
//! A run is stale when its watched process is gone (same host only: a pid means
//! nothing elsewhere) or when it is far past its budget: twice the budget plus
//! five minutes, or the lab's `stale_after` when it has no budget.

use std::time::Duration;

use jiff::Timestamp;
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::store::queries::HistoryRow;

pub fn host_name() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

/// Why a running experiment is stale, or `None` if it may still be running.
pub fn stale_reason(row: &HistoryRow, now: Timestamp, host: &str, default_after: Duration) -> Option<String> {
    if row.status != "running" {
        return None;
    }
    if row.watch_pid
        && row.host == host
        && let Some(pid) = row.pid.filter(|&p| p > 0 && !process_alive(p as i32))
    {
        return Some(format!("process {pid} is gone"));
    }
    let started: Timestamp = row.started_at.parse().ok()?;
    let allowed = match row.budget_s {
        Some(budget) => Duration::from_secs_f64(2.0 * budget.max(0.0) + 300.0),
        None => default_after,
    };
    let elapsed = now.duration_since(started).unsigned_abs();
    (elapsed > allowed).then(|| {
        format!(
            "running {} (allowed {})",
            humantime::format_duration(round(elapsed)),
            humantime::format_duration(allowed)
        )
    })
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// A process exists if signal 0 reaches it (EPERM: it exists, owned by another user).
fn process_alive(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// The run state shown at read time: `stale` replaces `running` when it applies.
pub fn shown_state(row: &HistoryRow, now: Timestamp, host: &str, default_after: Duration) -> String {
    match stale_reason(row, now, host, default_after) {
        Some(_) => "stale".to_owned(),
        None => row.status.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn running(started_at: &str, budget_s: Option<f64>, pid: Option<i64>, watch: bool) -> HistoryRow {
        HistoryRow {
            experiment: "e1".into(),
            hypothesis: "h1".into(),
            leaf: None,
            title: "t".into(),
            mechanism: "m".into(),
            status: "running".into(),
            verdict: None,
            check: None,
            metrics: Value::Null,
            mechanism_verdict: None,
            theory_revision: None,
            note: None,
            reason: None,
            source: None,
            comparison: None,
            sandbox: None,
            commit: None,
            dirty: false,
            host: "here".into(),
            pid,
            watch_pid: watch,
            budget_s,
            started_at: started_at.into(),
            finished_at: None,
        }
    }

    const SIX_HOURS: Duration = Duration::from_secs(6 * 3600);

    #[test]
    fn staleness_by_budget_and_default() {
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let cases = [
            ("2026-01-01T11:55:00Z", Some(60.0), false), // 5 min < 2*60s + 300s? no: 300 > 420? fresh
            ("2026-01-01T11:50:00Z", Some(60.0), true),  // 10 min > 7 min
            ("2026-01-01T07:00:00Z", None, false),       // 5 h < 6 h default
            ("2026-01-01T05:00:00Z", None, true),        // 7 h > 6 h
        ];
        for (started, budget, stale) in cases {
            let row = running(started, budget, None, false);
            assert_eq!(stale_reason(&row, now, "here", SIX_HOURS).is_some(), stale, "{started} {budget:?}");
        }
    }

    #[test]
    fn a_dead_watched_process_is_stale_only_on_its_own_host() {
        let now = Timestamp::now();
        let started = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = i64::from(child.id());
        child.wait().unwrap();
        let row = running(&started, None, Some(dead), true);
        assert_eq!(stale_reason(&row, now, "here", SIX_HOURS), Some(format!("process {dead} is gone")));
        assert_eq!(stale_reason(&row, now, "elsewhere", SIX_HOURS), None);
        let unwatched = running(&started, None, Some(dead), false);
        assert_eq!(stale_reason(&unwatched, now, "here", SIX_HOURS), None);
        let alive = running(&started, None, Some(i64::from(std::process::id())), true);
        assert_eq!(stale_reason(&alive, now, "here", SIX_HOURS), None);
    }
}
