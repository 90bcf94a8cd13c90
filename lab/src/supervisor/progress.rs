//! Live progress on stderr: elapsed / budget and the last reported metrics;
//! each report also goes to the worker's curve (`curve::Recorder`).
//!
//! On a terminal one line is redrawn a few times a second (an indicatif
//! spinner, cleared at the end); otherwise (an agent reading a pipe, an MCP
//! client relaying stderr) a line is printed only when something new was
//! reported, at most every [`PIPE_EVERY`], so logs stay short. `--quiet`
//! disables both.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use super::curve::Recorder;
use super::protocol::{Event, decode_number};
use crate::output::format_number;

const TTY_EVERY: Duration = Duration::from_millis(250);
const PIPE_EVERY: Duration = Duration::from_secs(10);
/// Progress lines are cut to this many characters.
const WIDTH: usize = 100;

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    /// The redrawn line, on a terminal only.
    bar: Option<ProgressBar>,
    label: String,
    budget: Duration,
    last: Option<Map<String, Value>>,
    fresh: bool,
    drawn_at: Option<Instant>,
    curve: Recorder,
}

impl Progress {
    pub fn new(enabled: bool, label: String, budget: Duration) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Self { enabled, bar, label, budget, last: None, fresh: false, drawn_at: None, curve: Recorder::none() }
    }

    /// Also write every report to `curve`.
    pub fn recording(mut self, curve: Recorder) -> Self {
        self.curve = curve;
        self
    }

    pub fn event(&mut self, event: &Event) {
        if let Event::Report { metrics } = event {
            self.curve.report(metrics);
            self.last = Some(metrics.clone());
            self.fresh = true;
        }
    }

    pub fn tick(&mut self, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let due = |every| self.drawn_at.is_none_or(|t: Instant| t.elapsed() >= every);
        if let Some(bar) = &self.bar {
            if due(TTY_EVERY) {
                bar.set_message(self.line(elapsed));
                bar.tick();
            } else {
                return;
            }
        } else if self.fresh && due(PIPE_EVERY) {
            eprintln!("{}", self.line(elapsed));
        } else {
            return;
        }
        self.drawn_at = Some(Instant::now());
        self.fresh = false;
    }

    /// Clear the redrawn line before the summary is printed; write the curve's last point.
    pub fn finish(&mut self) {
        self.curve.flush();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, elapsed: Duration) -> String {
        let mut line = format!("lab: {} {} / {}", self.label, clock(elapsed), clock(self.budget));
        for (name, value) in self.last.iter().flatten() {
            let shown = match decode_number(value) {
                Some(x) => format_number(x),
                None => value.as_str().map_or_else(|| value.to_string(), str::to_owned),
            };
            line.push_str(&format!("  {name}={shown}"));
        }
        if line.chars().count() > WIDTH {
            line = line.chars().take(WIDTH - 1).chain(['…']).collect();
        }
        line
    }
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_well() {
        assert_eq!(clock(Duration::from_secs(42)), "0:42");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }

    #[test]
    fn a_line_shows_the_last_report() {
        let mut p = Progress::new(true, "e3 full".into(), Duration::from_secs(300));
        let mut metrics = Map::new();
        metrics.insert("loss".into(), serde_json::json!(0.5));
        metrics.insert("note".into(), serde_json::json!("warmup"));
        p.event(&Event::Report { metrics });
        assert_eq!(p.line(Duration::from_secs(61)), "lab: e3 full 1:01 / 5:00  loss=0.5000  note=warmup");
    }
}
