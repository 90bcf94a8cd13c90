//! Spawn a worker, enforce its time limits, and make sure nothing of it survives.
//!
//! The worker runs in its own process group. Until `train` returns, the limit is
//! the training deadline; after [`Event::TrainDone`] the evaluation gets its own
//! window. At the limit the whole group gets SIGTERM, then SIGKILL after
//! [`GRACE`]. Whatever way the worker ends, the rest of its group is killed and
//! reaped: the supervisor is a child subreaper, so orphaned grandchildren come
//! back to it and are collected (a zombie would still answer `kill(pid, 0)`).
//! Descendants that left the group (`setsid`) are found by parent pid and
//! killed too. SIGINT, SIGTERM and SIGHUP sent to the supervisor are caught (a
//! signal thread; they stay blocked for the rest of the process) and end the
//! run the same way, recorded as interrupted, so an agent's timeout or a Ctrl-C
//! leaves no processes behind and no experiment stuck "running". No pyo3 here:
//! the supervisor only spawns, waits and reads files.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::progress::Progress;
use super::protocol::Event;

/// Between SIGTERM and SIGKILL. The embedded interpreter installs no signal
/// handlers, so SIGTERM usually ends the worker at once; the grace is for the
/// leaf's own child processes.
pub const GRACE: Duration = Duration::from_millis(500);
/// How often events are read and progress is drawn while nothing else happens.
const TICK: Duration = Duration::from_millis(50);
/// How long reaping waits for processes that ignore SIGKILL (uninterruptible I/O).
const REAP_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// When training must be over (the `lab.deadline()` the worker was given).
    pub deadline: Instant,
    /// How long evaluation may take once `train` has returned.
    pub eval_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(Signal),
}

#[derive(Debug)]
pub struct Supervised {
    pub termination: Termination,
    /// The supervisor sent SIGTERM because a limit passed.
    pub killed: bool,
    /// A limit passed after `train` returned (the evaluation ran over).
    pub killed_in_evaluation: bool,
    /// What the worker said, in order; of the progress reports only the last.
    pub events: Vec<Event>,
    pub wall: Duration,
    /// From SIGTERM to the last process of the run gone (only when killed).
    pub teardown: Option<Duration>,
    /// The supervisor itself was asked to stop (SIGINT, SIGTERM, SIGHUP).
    pub interrupted: Option<Signal>,
}

/// The last stop signal the supervisor received (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static WATCHER: Once = Once::new();

/// Block the stop signals in this thread (threads spawned later inherit the
/// mask, the worker unblocks them after exec) and take them on a signal thread.
fn watch_stop_signals() {
    WATCHER.call_once(|| {
        let mut set = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(signal);
        }
        if set.thread_block().is_ok() {
            std::thread::spawn(move || {
                loop {
                    if let Ok(signal) = set.wait() {
                        INTERRUPTED.store(signal as i32, Ordering::SeqCst);
                    }
                }
            });
        }
    });
}

/// The stop signal received so far, if any.
pub fn interrupted() -> Option<Signal> {
    Signal::try_from(INTERRUPTED.load(Ordering::SeqCst)).ok()
}

/// Run `cmd` (a worker command from `env::worker_command`) to its end.
pub fn supervise(mut cmd: Command, events_path: &Path, limits: Limits, progress: &mut Progress) -> Result<Supervised> {
    // Orphans of the run are re-parented here, so they can be reaped.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    watch_stop_signals();
    File::create(events_path).with_context(|| format!("cannot create `{}`", events_path.display()))?;
    let mut tail = EventTail { file: File::open(events_path)?, pending: Vec::new() };
    let started = Instant::now();
    // Spawned from this (the main) thread: PR_SET_PDEATHSIG fires when the
    // spawning thread ends, not the process.
    let child = cmd.spawn().context("cannot start the worker")?;
    let pid = Pid::from_raw(child.id() as i32);
    drop(child); // waited for by pid below, so the group can be reaped with it
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(wait_for(pid)));

    let mut events = Vec::new();
    let mut limit = limits.deadline;
    let mut in_evaluation = false;
    let mut term_at: Option<Instant> = None;
    let mut kill_sent = false;
    let termination = loop {
        let now = Instant::now();
        let mut wake = now + TICK;
        match term_at {
            None => wake = wake.min(limit),
            Some(t) if !kill_sent => wake = wake.min(t + GRACE),
            Some(_) => {}
        }
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(status) => break status?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("lost track of the worker (pid {pid})"),
        }
        for event in tail.read_new() {
            if event == Event::TrainDone && term_at.is_none() {
                in_evaluation = true;
                limit = Instant::now() + limits.eval_window;
            }
            progress.event(&event);
            keep(&mut events, event);
        }
        let now = Instant::now();
        if interrupted().is_some() && !kill_sent {
            let _ = killpg(pid, Signal::SIGKILL);
            kill_sent = true;
        } else if term_at.is_none() && now >= limit {
            let _ = killpg(pid, Signal::SIGTERM);
            term_at = Some(now);
        } else if let Some(t) = term_at
            && !kill_sent
            && now >= t + GRACE
        {
            let _ = killpg(pid, Signal::SIGKILL);
            kill_sent = true;
        }
        progress.tick(started.elapsed());
    };
    let wall = started.elapsed();
    for event in tail.read_new() {
        progress.event(&event);
        keep(&mut events, event);
    }
    reap_group(pid);
    Ok(Supervised {
        termination,
        killed: term_at.is_some(),
        killed_in_evaluation: term_at.is_some() && in_evaluation,
        events,
        wall,
        teardown: term_at.map(|t| t.elapsed()),
        interrupted: interrupted(),
    })
}

/// Progress reports can number millions; only the last is worth holding (the
/// events file keeps them all).
fn keep(events: &mut Vec<Event>, event: Event) {
    if matches!(event, Event::Report { .. }) {
        events.retain(|e| !matches!(e, Event::Report { .. }));
    }
    events.push(event);
}

fn wait_for(pid: Pid) -> Result<Termination> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Termination::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Termination::Signaled(signal)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("cannot wait for the worker"),
        }
    }
}

/// Kill what is left of the group `pgid` (its leader is already reaped), reap
/// it, then kill and reap any other child this process still has: only runs'
/// descendants that left the group can be such children.
fn reap_group(pgid: Pid) {
    let _ = killpg(pgid, Signal::SIGKILL);
    let give_up = Instant::now() + REAP_LIMIT;
    let group = Pid::from_raw(-pgid.as_raw());
    loop {
        match waitpid(group, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < give_up => std::thread::sleep(Duration::from_millis(1)),
            Ok(WaitStatus::StillAlive) => break,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => break, // ECHILD: no child of ours is left in the group
        }
    }
    // Members that are not our children (no subreaper support) die on their own.
    while killpg(pgid, None).is_ok() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..10 {
        let strays = own_children();
        if strays.is_empty() {
            break;
        }
        for pid in strays {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// Processes whose parent is this process, from /proc.
fn own_children() -> Vec<Pid> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == me).then(|| Pid::from_raw(pid))
        })
        .collect()
}

/// The events file read as it grows; a line is parsed once it is complete.
struct EventTail {
    file: File,
    pending: Vec<u8>,
}

impl EventTail {
    fn read_new(&mut self) -> Vec<Event> {
        if self.file.read_to_end(&mut self.pending).is_err() {
            return Vec::new();
        }
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else { return Vec::new() };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        // A line that is not an event (a leaf writing into the file) is ignored.
        complete.split(|&b| b == b'\n').filter_map(|line| serde_json::from_slice(line).ok()).collect()
    }
}
