//! `lab watch [eN]`: follow a running experiment until it ends.

use std::io::{IsTerminal as _, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use jiff::Timestamp;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::ExperimentId;
use crate::output;
use crate::root::LabRoot;
use crate::store::gate as records;
use crate::store::queries::{self, HistoryQuery, HistoryRow};
use crate::{outln, report, stale};

/// Follow a running experiment: elapsed / budget, the last metrics its code
/// reported and the tail of its log, redrawn every second on a terminal,
/// until it ends; then print its verdict and metrics (the result row with
/// `--json`). Quiet while it runs when stderr is not a terminal. Without an
/// experiment, the one running (the newest when several are). Exit 2 when
/// nothing is running or the experiment is unknown; exit 1 when it went stale
/// (its process is gone without a result).
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The experiment (default: the one running)
    pub experiment: Option<ExperimentId>,
    /// Lines of the log's tail shown
    #[arg(long, default_value_t = 5)]
    pub lines: usize,
    /// Print the final result as JSON
    #[arg(long)]
    pub json: bool,
}

const EVERY: Duration = Duration::from_secs(1);

pub fn run(ctx: &Ctx, args: WatchArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let running = queries::history(store.conn(), &HistoryQuery { running: true, ..HistoryQuery::default() })?;
    let id = match args.experiment {
        Some(id) => id,
        None => running.first().map(|r| r.experiment.parse()).transpose()?.ok_or_else(|| {
            LabError::usage("no experiment is running").hint("`lab run LEAF` starts one; `lab log` lists the finished")
        })?,
    };
    records::experiment_leaf(store.conn(), id)?; // an unknown id is a usage error
    drop(store);
    let query = HistoryQuery { experiment: Some(id), ..HistoryQuery::default() };
    let tty = std::io::stderr().is_terminal();
    let mut drawn = 0;
    let row = loop {
        let store = lab.open_store()?;
        let row = queries::history(store.conn(), &query)?.into_iter().next().context("the experiment vanished")?;
        if row.status != "running" {
            break row;
        }
        if let Some(reason) = stale::stale_reason(&row, Timestamp::now(), &stale::host_name(), lab.manifest.stale_after)
        {
            return Err(LabError::failure(format!("{id} is stale: {reason}")).hint("`lab sweep` records it").into());
        }
        if tty {
            drawn = redraw(&screen(&lab, &row, args.lines), drawn);
        }
        std::thread::sleep(EVERY);
    };
    if tty {
        redraw(&[], drawn);
    }
    output::answer(args.json, &row, || {
        let metrics = output::display_text(&row.metrics);
        outln!("{id}: {} {metrics}", row.shown_verdict().unwrap_or_else(|| row.status.clone()));
    })?;
    Ok(())
}

/// What the terminal shows of a running experiment.
fn screen(lab: &LabRoot, row: &HistoryRow, lines: usize) -> Vec<String> {
    let head = report::running(lab, std::slice::from_ref(row))
        .pop()
        .map(|r| format!("{} {}: {}  {}", r.experiment, r.title, r.clock(), r.last_text()))
        .unwrap_or_default();
    let log = row.experiment.parse().map(|id| lab.layout().run(id).log());
    let mut screen = vec![head];
    screen.extend(log.ok().map(|p| tail(&p, lines)).unwrap_or_default().into_iter().map(|l| format!("  {l}")));
    screen.iter().map(|l| output::brief(&output::visible(l), 120)).collect()
}

/// Replace the `drawn` lines drawn before with `lines`; returns how many are drawn now.
fn redraw(lines: &[String], drawn: usize) -> usize {
    let mut err = std::io::stderr().lock();
    for _ in 0..drawn {
        let _ = write!(err, "\x1b[1A\x1b[2K");
    }
    for line in lines {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
    lines.len()
}

/// The last `n` lines of a log, read from its end (a log can be large).
fn tail(path: &Path, n: usize) -> Vec<String> {
    const BYTES: u64 = 16 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| (*l).to_owned()).collect()
}
