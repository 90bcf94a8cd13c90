//! Starting one worker under a keeper and supervising it to its end: the
//! deadline, the log cap, a stop asked for by the person or agent, and the
//! channels back.
//!
//! The supervisor creates five pipes per worker: the lifeline (the keeper's
//! stdin, never written: it closes when the supervisor dies), the keeper's
//! reports (its stdout), the log (the keeper's stderr and the worker's stdout
//! and stderr, copied into `run.log` up to [`Limits::log_bytes`]), the events
//! (fd 3 of the worker) and the go (fd 4: the worker waits on it for its
//! deadline, its interpreter up and no leaf code run; see [`Pending`]).
//!
//! At the deadline, on a log over its cap, or when the supervisor itself gets
//! SIGINT, SIGTERM or SIGHUP (a signal thread takes them; they stay blocked
//! for the rest of the process), the keeper is asked to stop the worker
//! (SIGTERM to the keeper; it sends SIGTERM and then SIGKILL to the worker's
//! tree). If the keeper does not report within [`BACKSTOP`], the supervisor
//! kills the keeper and the worker's group itself.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use command_fds::{CommandFdExt as _, FdMapping};
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::progress::Progress;
use super::protocol::{EVENTS_FD, Event, GO_FD, KeeperReport, Termination};

/// How often progress is drawn while nothing else happens.
const TICK: Duration = Duration::from_millis(50);
/// How long past a stop request the keeper may take to report before the
/// supervisor kills it and the worker's group itself.
const BACKSTOP: Duration = Duration::from_secs(10);
/// After the keeper ended, how long the log may take to drain.
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the go to when the worker must be done (the `lab.deadline()` it is given).
    pub budget: Duration,
    /// The most bytes of the worker's output kept in `run.log`; more is a crash.
    pub log_bytes: u64,
}

/// Why the supervisor asked the keeper to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Deadline,
    LogLimit,
    Interrupted(Signal),
}

#[derive(Debug)]
pub struct Supervised {
    pub termination: Termination,
    /// Why the supervisor stopped the worker, if it did.
    pub stop: Option<Stop>,
    /// What the worker said, in order; of the progress reports only the last.
    pub events: Vec<Event>,
    pub wall: Duration,
    /// From the stop request to the last process of the worker gone.
    pub teardown: Option<Duration>,
    /// Processes still alive after the worker ended, killed by the keeper.
    pub stragglers: usize,
}

/// The last stop signal the supervisor received (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static WATCHER: Once = Once::new();

/// Block the stop signals in this thread (threads spawned later inherit the
/// mask; keepers and workers get it too and the worker unblocks them) and take
/// them on a signal thread.
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

/// What a supervised keeper sends back, merged into one stream.
enum News {
    Event(Event),
    Report(KeeperReport),
    EventsClosed,
    ReportsClosed,
}

/// A keeper and its worker started, held before any leaf code runs: the
/// worker has applied its sandbox and brought its interpreter up, and waits
/// on its go pipe (fd [`GO_FD`]) for the deadline. [`Pending::supervise`]
/// sends it; dropping a `Pending` instead stops the keeper, which ends the
/// worker, and reaps it. Starting the next worker of a tier while the current
/// one runs hides the interpreter's start-up from the run's wall clock.
#[derive(Debug)]
pub struct Pending {
    keeper: Pid,
    /// The go pipe's write end: one line, the Unix deadline, then closed.
    go: Option<std::io::PipeWriter>,
    /// Held, never written: it closes when the supervisor dies.
    _lifeline: std::io::PipeWriter,
    news: mpsc::Receiver<News>,
    /// The most bytes of the worker's output kept in the log: unbounded until
    /// the go (nothing of the leaf runs before), then [`Limits::log_bytes`].
    log_cap: Arc<AtomicU64>,
    over_cap: Arc<AtomicBool>,
    copier: mpsc::Receiver<()>,
    /// Set once [`Pending::supervise`] reaped the keeper.
    reaped: bool,
}

/// Start `lab __keeper SPEC` with the environment of `cmd_env` (already
/// cleaned by `env::worker_env`), up to the worker's wait for its go.
pub fn spawn(spec_path: &Path, env: &[(String, String)], cwd: &Path, log: &File) -> Result<Pending> {
    watch_stop_signals();
    let (lifeline_read, lifeline) = std::io::pipe()?;
    let (reports_read, reports_write) = std::io::pipe()?;
    let (log_read, log_write) = std::io::pipe()?;
    let (events_read, events_write) = std::io::pipe()?;
    let (go_read, go) = std::io::pipe()?;
    let exe = std::env::current_exe().context("cannot find the lab binary to start a worker")?;
    let mut cmd = Command::new(exe);
    cmd.arg("__keeper")
        .arg(spec_path)
        .current_dir(cwd)
        .process_group(0)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(OwnedFd::from(lifeline_read)))
        .stdout(Stdio::from(OwnedFd::from(reports_write)))
        .stderr(Stdio::from(OwnedFd::from(log_write)))
        .fd_mappings(vec![
            FdMapping { parent_fd: OwnedFd::from(events_write), child_fd: EVENTS_FD },
            FdMapping { parent_fd: OwnedFd::from(go_read), child_fd: GO_FD },
        ])
        .map_err(|e| anyhow::anyhow!("cannot pass the events and go pipes: {e}"))?;
    let keeper = cmd.spawn().context("cannot start the worker's keeper")?;
    drop(cmd); // our copies of the child's ends: EOF comes when the worker's tree is gone
    let keeper_pid = Pid::from_raw(keeper.id() as i32);
    drop(keeper); // waited for by pid

    let (log_cap, over_cap) = (Arc::new(AtomicU64::new(u64::MAX)), Arc::new(AtomicBool::new(false)));
    let copier = copy_log(log_read, log.try_clone()?, log_cap.clone(), over_cap.clone());
    let (tx, news) = mpsc::channel();
    read_lines(events_read, tx.clone(), News::Event, News::EventsClosed);
    read_lines(reports_read, tx, News::Report, News::ReportsClosed);
    Ok(Pending {
        keeper: keeper_pid,
        go: Some(go),
        _lifeline: lifeline,
        news,
        log_cap,
        over_cap,
        copier,
        reaped: false,
    })
}

/// [`spawn`] and [`Pending::supervise`] at once.
pub fn launch(
    spec_path: &Path,
    env: &[(String, String)],
    cwd: &Path,
    log: &File,
    limits: Limits,
    progress: &mut Progress,
) -> Result<Supervised> {
    spawn(spec_path, env, cwd, log)?.supervise(limits, progress)
}

impl Pending {
    /// Give the worker its deadline (`limits.budget` from now) and supervise
    /// it until its keeper reports the end.
    pub fn supervise(mut self, limits: Limits, progress: &mut Progress) -> Result<Supervised> {
        let started = Instant::now();
        let deadline = started + limits.budget;
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        if let Some(mut go) = self.go.take() {
            // A worker that already ended (it could not start) reads nothing: its end is reported below.
            let _ = writeln!(go, "{:.6}", unix + limits.budget.as_secs_f64());
        }
        self.log_cap.store(limits.log_bytes, Ordering::SeqCst);
        let keeper_pid = self.keeper;
        let rx = &self.news;
        let mut events = Vec::new();
        let mut worker = None;
        let mut stop: Option<(Stop, Instant)> = None;
        let mut events_closed = false;
        let ended = loop {
            let now = Instant::now();
            let wake = match stop {
                None => (now + TICK).min(deadline),
                Some((_, at)) => (now + TICK).min(at + BACKSTOP),
            };
            match rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(News::Event(event)) => {
                    progress.event(&event);
                    keep(&mut events, event);
                }
                Ok(News::Report(KeeperReport::Spawned { pid })) => worker = Some(Pid::from_raw(pid)),
                Ok(News::Report(ended @ KeeperReport::Ended { .. })) => break Some(ended),
                Ok(News::ReportsClosed) | Err(RecvTimeoutError::Disconnected) => break None,
                Ok(News::EventsClosed) => events_closed = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            let wanted = if let Some(signal) = interrupted() {
                Some(Stop::Interrupted(signal))
            } else if self.over_cap.load(Ordering::SeqCst) {
                Some(Stop::LogLimit)
            } else if now >= deadline {
                Some(Stop::Deadline)
            } else {
                None
            };
            match (stop, wanted) {
                (None, Some(why)) => {
                    let _ = kill(keeper_pid, Signal::SIGTERM);
                    stop = Some((why, now));
                }
                (Some((_, at)), _) if now >= at + BACKSTOP => {
                    backstop(keeper_pid, worker);
                    break None;
                }
                _ => {}
            }
            progress.tick(started.elapsed());
        };
        let wall = started.elapsed();
        let _ = waitpid(keeper_pid, None);
        self.reaped = true;
        // Events still in the pipe came before the end: every writer is gone, so it closes soon.
        let drain_until = Instant::now() + DRAIN;
        while !events_closed && let Ok(news) = rx.recv_timeout(drain_until.saturating_duration_since(Instant::now())) {
            match news {
                News::Event(event) => {
                    progress.event(&event);
                    keep(&mut events, event);
                }
                News::EventsClosed => events_closed = true,
                _ => {}
            }
        }
        let _ = self.copier.recv_timeout(DRAIN);
        let Some(KeeperReport::Ended { how, teardown_ms, stragglers, .. }) = ended else {
            bail!("the worker's keeper (pid {keeper_pid}) ended without reporting; its processes were killed");
        };
        let teardown = stop.map(|(_, at)| teardown_ms.map_or(at.elapsed(), |ms| Duration::from_secs_f64(ms / 1000.0)));
        Ok(Supervised { termination: how, stop: stop.map(|s| s.0), events, wall, teardown, stragglers })
    }
}

impl Drop for Pending {
    /// Never told to go: the keeper ends the waiting worker and is reaped.
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.keeper, Signal::SIGTERM);
            let _ = waitpid(self.keeper, None);
        }
    }
}

/// The keeper did not report in time: kill it and the worker's group.
fn backstop(keeper: Pid, worker: Option<Pid>) {
    let _ = kill(keeper, Signal::SIGKILL);
    if let Some(worker) = worker {
        let _ = killpg(worker, Signal::SIGKILL);
    }
    let _ = waitpid(keeper, None);
}

/// Progress reports can number millions; only the last is worth holding.
fn keep(events: &mut Vec<Event>, event: Event) {
    if matches!(event, Event::Report { .. }) {
        events.retain(|e| !matches!(e, Event::Report { .. }));
    }
    events.push(event);
}

/// Parse JSON lines from `pipe` on a thread; a line that is not one is ignored.
fn read_lines<T: serde::de::DeserializeOwned + Send + 'static>(
    pipe: std::io::PipeReader,
    tx: mpsc::Sender<News>,
    wrap: fn(T) -> News,
    at_end: News,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
            if let Ok(value) = serde_json::from_slice::<T>(&line)
                && tx.send(wrap(value)).is_err()
            {
                return;
            }
        }
        let _ = tx.send(at_end);
    });
}

/// Copy the log pipe into the run's log until EOF, keeping at most `cap`
/// bytes; past it, set `over` (the worker is stopped) and drain the rest.
/// The receiver gets `()` at EOF.
fn copy_log(
    mut pipe: std::io::PipeReader,
    mut log: File,
    cap: Arc<AtomicU64>,
    over: Arc<AtomicBool>,
) -> mpsc::Receiver<()> {
    let (done, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut written = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let cap = cap.load(Ordering::SeqCst);
            let room = cap.saturating_sub(written);
            let take = (n as u64).min(room) as usize;
            if take > 0 {
                let _ = log.write_all(&buf[..take]);
                written += take as u64;
            }
            if take < n && !over.swap(true, Ordering::SeqCst) {
                let _ = writeln!(log, "\n==== lab: the log reached its cap of {cap} bytes; the rest was dropped ====");
            }
        }
        let _ = done.send(());
    });
    rx
}
