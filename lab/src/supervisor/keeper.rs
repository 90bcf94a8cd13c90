//! `lab __keeper SPEC`: the process between the supervisor and one worker that
//! makes sure nothing the judged code starts outlives its worker.
//!
//! The keeper is never sandboxed and runs no leaf code. It is a child subreaper,
//! so every orphan of the worker's process tree comes back to it, even ones that
//! left the worker's process group (`setsid`, double forks). It starts the
//! worker in a process group of its own and then waits for one of three things:
//! the worker ends (the rest of its tree is killed at once); the supervisor asks
//! it to stop (SIGTERM: the group gets SIGTERM, then SIGKILL after [`GRACE`]);
//! or the supervisor is gone (its end of the lifeline, the keeper's stdin, closes:
//! the same stop), so a `kill -9` of `lab run` leaves nothing running. Judged
//! code cannot signal the keeper: the worker's Landlock domain scopes signals.
//! The keeper reports on its stdout (a pipe only it holds) as [`KeeperReport`]
//! lines, the last one when every process of the worker is reaped, then exits.

use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::protocol::{KeeperReport, Termination};

/// Between SIGTERM and SIGKILL when a worker is stopped. The embedded
/// interpreter installs no signal handlers, so SIGTERM usually ends the worker
/// at once; the grace is for the leaf's own child processes.
pub const GRACE: Duration = Duration::from_millis(500);
/// How long killing the tree may take before the keeper gives up on a process
/// that ignores SIGKILL (uninterruptible I/O).
const KILL_LIMIT: Duration = Duration::from_secs(5);

enum News {
    Reaped(Pid, Termination),
    Stop,
}

pub fn keeper_main(spec_path: &Path) -> Result<i32> {
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // Stop signals are taken by a thread; the mask is inherited by the worker,
    // which unblocks them before any leaf code runs.
    let mut stops = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stops.add(signal);
    }
    stops.thread_block().context("cannot block stop signals")?;
    let log = std::io::stderr().as_fd().try_clone_to_owned().context("cannot share the log with the worker")?;
    let exe = std::env::current_exe().context("cannot find the lab binary")?;
    let child = Command::new(exe)
        .arg("__worker")
        .arg(spec_path)
        .env("LAB_KEEPER_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .process_group(0)
        .spawn()
        .context("cannot start the worker")?;
    let worker = Pid::from_raw(child.id() as i32);
    drop(child); // reaped by pid below, with every orphan
    report(&KeeperReport::Spawned { pid: worker.as_raw() });

    let (tx, rx) = mpsc::channel();
    let stop = tx.clone();
    std::thread::spawn(move || {
        if stops.wait().is_ok() {
            let _ = stop.send(News::Stop);
        }
    });
    let lifeline = tx.clone();
    std::thread::spawn(move || {
        // Nothing is ever written: EOF means the supervisor is gone.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = lifeline.send(News::Stop);
    });
    std::thread::spawn(move || reap_all(&tx));

    let mut stopped_at = None;
    let how = loop {
        let news = match stopped_at {
            Some(at) => rx.recv_timeout(GRACE.saturating_sub(Instant::elapsed(&at))),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match news {
            Ok(News::Reaped(pid, how)) if pid == worker => break how,
            Ok(News::Reaped(..)) => {}
            Ok(News::Stop) if stopped_at.is_none() => {
                let _ = killpg(worker, Signal::SIGTERM);
                stopped_at = Some(Instant::now());
            }
            Ok(News::Stop) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = killpg(worker, Signal::SIGKILL);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break Termination::Exited { code: -1 },
        }
    };
    let stragglers = kill_tree(worker);
    report(&KeeperReport::Ended {
        how,
        stopped: stopped_at.is_some(),
        teardown_ms: stopped_at.map(|at| at.elapsed().as_secs_f64() * 1000.0),
        stragglers,
    });
    Ok(0)
}

fn report(report: &KeeperReport) {
    // The keeper's stdout is its report pipe to the supervisor, not data for people.
    #[allow(clippy::disallowed_methods)]
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, report);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Reap every child, the worker and the orphans that come back to this subreaper.
fn reap_all(tx: &mpsc::Sender<News>) {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) => {
                let _ = tx.send(News::Reaped(pid, Termination::Exited { code }));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                let _ = tx.send(News::Reaped(pid, Termination::Signaled { signal: signal as i32 }));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // ECHILD: nothing left to wait for, for now; orphans may still come back.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Kill what is left of the worker's group and every process that came back
/// to the keeper, until none is left; returns how many were found alive.
fn kill_tree(group: Pid) -> usize {
    let give_up = Instant::now() + KILL_LIMIT;
    let mut killed = std::collections::BTreeSet::new();
    loop {
        let group_alive = killpg(group, Signal::SIGKILL).is_ok();
        let children = own_children();
        for pid in &children {
            let _ = kill(*pid, Signal::SIGKILL);
            killed.insert(pid.as_raw());
        }
        // Zombies count as children until the reaper thread collects them.
        if (!group_alive && children.is_empty()) || Instant::now() >= give_up {
            return killed.len();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `lab sweep`'s last resort, for when a keeper died with its supervisor
/// (both killed at once): kill every process whose command line names a path
/// under `run_dir` (keepers and workers are started with their spec there) or
/// whose working directory is under it (what the leaf's code started); returns
/// how many were killed.
pub fn end_leftovers(run_dir: &Path) -> usize {
    let me = std::process::id() as i32;
    let needle = run_dir.to_string_lossy().into_owned();
    let mut killed = std::collections::BTreeSet::new();
    let give_up = Instant::now() + KILL_LIMIT;
    loop {
        let Ok(dir) = std::fs::read_dir("/proc") else { return killed.len() };
        let found: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|&pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
                String::from_utf8_lossy(&cmdline).contains(&needle) || cwd.is_some_and(|c| c.starts_with(run_dir))
            })
            .filter(|pid| !killed.contains(pid) || alive_not_zombie(*pid))
            .collect();
        if found.is_empty() || Instant::now() >= give_up {
            return killed.len();
        }
        for pid in found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn alive_not_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])))
        .is_some_and(|dead| !dead)
}

/// Processes whose parent is this process, from /proc.
pub fn own_children() -> Vec<Pid> {
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
