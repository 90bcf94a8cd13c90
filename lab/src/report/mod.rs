//! What the report (`lab report`) and the dashboard (`lab serve`) show of a
//! leaf, gathered once from the research memory: the progress chart, the
//! leader with the gate's interval, the noise and the held-out transfer as
//! recorded, what the gate can detect, the table of experiments with their
//! flags and provenance, blend weights, saturation, checkpoints, and the
//! running experiments with their last reported metrics.
//!
//! Invariants: read-only. Nothing here reads the held-out split (a read is
//! counted; the views show the reads `lab holdout` and `lab checkpoint`
//! recorded), and nothing is computed that the CLI's views do not compute the
//! same way: this module calls the queries they call.

mod page;

use std::path::Path;

use anyhow::Result;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

pub use page::render;

use crate::analysis::saturation::{self, Saturation};
use crate::error::LabError;
use crate::gate::Goal;
use crate::leaf::{Leaf, discover};
use crate::lifecycle::inputs;
use crate::lifecycle::sensitivity::{self, LeafPower};
use crate::plot::{self, Overlay, Point};
use crate::root::LabRoot;
use crate::store::gate::{self as records, Baseline, RecordedTransfer, StoredReport};
use crate::store::queries::{self, HistoryQuery, HistoryRow};
use crate::store::runs::{self, Leader};
use crate::store::{Store, comparisons};
use crate::supervisor::curve;

/// The most experiments a leaf's table lists (newest first); the chart draws all.
pub const MAX_ROWS: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct LeafView {
    pub name: String,
    pub description: String,
    pub metric: String,
    pub goal: String,
    pub comparison: Option<String>,
    /// The progress chart (SVG); `None` before the first finished experiment.
    pub chart: Option<String>,
    /// The experiments the chart draws (its marks).
    pub points: usize,
    pub leader: Option<LeaderView>,
    pub noise: Option<Baseline>,
    pub power: Option<LeafPower>,
    /// The latest recorded read of the held-out split that scored the leader.
    pub holdout: Option<RecordedTransfer>,
    pub holdout_reads: u64,
    /// Newest first, at most [`MAX_ROWS`].
    pub rows: Vec<Row>,
    pub total_rows: usize,
    pub blends: Vec<Blend>,
    pub saturation: Option<Saturation>,
    pub saturation_error: Option<String>,
    pub checkpoints: Vec<String>,
    pub running: Vec<Running>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaderView {
    #[serde(flatten)]
    pub leader: Leader,
    pub title: String,
    /// The gate's latest report on it (its gain over the leader it beat, with the interval).
    pub gate: Option<StoredReport>,
}

/// One experiment as the table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub history: HistoryRow,
    /// The primary metric, where the result carries it.
    pub value: Option<f64>,
    pub provenance: Option<String>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Blend {
    pub experiment: String,
    pub verdict: Option<String>,
    /// Component experiment and weight.
    pub weights: Vec<(String, f64)>,
}

/// A running experiment: how long it has run of its budget, and the last
/// metrics its code reported (from its curve; display only).
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub experiment: String,
    pub title: String,
    pub elapsed_s: f64,
    pub budget_s: Option<f64>,
    pub last: Map<String, Value>,
}

/// The views of the leaves named (every leaf of the lab when none is), in
/// name order; a leaf that cannot be shown is left out with a warning.
pub fn views(lab: &LabRoot, store: &Store, named: Option<&Leaf>) -> Result<Vec<LeafView>> {
    if let Some(leaf) = named {
        return Ok(vec![leaf_view(lab, store, leaf)?]);
    }
    let found = discover::discover(&lab.leaves_dir());
    let mut views = Vec::new();
    for f in &found.leaves {
        // One leaf that cannot be shown (a broken manifest, a missing input) leaves the others shown.
        match f.leaf.as_ref().map_err(|e| anyhow::anyhow!("{e}")).and_then(|leaf| leaf_view(lab, store, leaf)) {
            Ok(view) => views.push(view),
            Err(e) => eprintln!("warning: leaf `{}` left out: {e:#}", f.name()),
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(views)
}

/// The view of `leaf`.
pub fn leaf_view(lab: &LabRoot, store: &Store, leaf: &Leaf) -> Result<LeafView> {
    let conn = store.conn();
    let name = leaf.name().to_owned();
    let metric = &leaf.manifest.metric;
    let key = inputs::comparability(lab, store, leaf)?.key;
    let history = queries::history(conn, &HistoryQuery { leaf: Some(name.clone()), ..HistoryQuery::default() })?;
    let leader = runs::leader(conn, &name, &metric.name, metric.goal, &key)?;
    let power = comparisons::current_key(conn, &name)?.map(|k| sensitivity::of_leaf(store, leaf, &k)).transpose()?;
    let holdout = leader.as_ref().and_then(|l| latest_transfer(store, &name, l));
    let mut rows = Vec::new();
    for h in history.iter().take(MAX_ROWS) {
        let flags = records::latest_report(conn, h.experiment.parse()?)?.map(|r| r.flags).unwrap_or_default();
        let value = h.metrics.get(&metric.name).and_then(Value::as_f64);
        rows.push(Row { value, provenance: h.provenance(), flags, history: h.clone() });
    }
    let (saturation, saturation_error) = match saturation::of_leaf(lab, store, &name) {
        Ok(s) => (s, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let (chart, points) = progress_chart(lab, store, leaf, &metric.name)?;
    Ok(LeafView {
        description: leaf.manifest.description.clone(),
        metric: metric.name.clone(),
        goal: metric.goal.to_string(),
        comparison: comparisons::current(conn, &name)?.map(|c| c.describe()),
        points: points.len(),
        chart,
        leader: leader.map(|l| leader_view(store, l, &history)).transpose()?,
        noise: records::baselines(conn, &name, &key)?.pop(),
        power,
        holdout,
        holdout_reads: records::holdout_reads(conn, &name)?,
        total_rows: history.len(),
        blends: blends(&history),
        saturation,
        saturation_error,
        checkpoints: checkpoints(&lab.layout().checkpoints(), &name),
        running: running(lab, &history),
        rows,
        name,
    })
}

/// The progress chart of `leaf` on `metric`: its SVG (`None` before the first
/// finished experiment) and the experiments it draws. The leader's band and
/// held-out score are drawn on the primary metric only: the gate judges that one.
pub fn progress_chart(lab: &LabRoot, store: &Store, leaf: &Leaf, metric: &str) -> Result<(Option<String>, Vec<Point>)> {
    let conn = store.conn();
    let name = leaf.name();
    let goal = lab.goal_of(Some(name), metric).ok_or_else(|| {
        LabError::usage(format!("leaf `{name}` declares no goal for `{metric}`"))
            .hint("name the primary metric, one in metric.also, or one lab.yaml gives a goal")
    })?;
    let history = queries::history(conn, &HistoryQuery { leaf: Some(name.to_owned()), ..HistoryQuery::default() })?;
    let points = progress_points(&history, metric);
    let primary = &leaf.manifest.metric;
    let mut overlay = Overlay::default();
    if metric == primary.name {
        let key = inputs::comparability(lab, store, leaf)?.key;
        let leader = runs::leader(conn, name, metric, goal, &key)?;
        let power = comparisons::current_key(conn, name)?.map(|k| sensitivity::of_leaf(store, leaf, &k)).transpose()?;
        let holdout = leader.as_ref().and_then(|l| latest_transfer(store, name, l));
        overlay = self::overlay(&points, leader.as_ref(), power.as_ref(), holdout.as_ref());
    }
    Ok((chart(name, metric, goal, &points, &overlay)?, points))
}

fn chart(leaf: &str, metric: &str, goal: Goal, points: &[Point], overlay: &Overlay) -> Result<Option<String>> {
    (!points.is_empty()).then(|| plot::progress_svg(leaf, metric, goal, points, overlay)).transpose()
}

/// The latest recorded read of the held-out split that scored `leader`.
fn latest_transfer(store: &Store, leaf: &str, leader: &Leader) -> Option<RecordedTransfer> {
    let transfers = records::transfers(store.conn(), leaf).ok()?;
    transfers.into_iter().rev().find(|t| t.leader.to_string() == leader.experiment)
}

/// Every finished research experiment of the leaf in order, as the chart draws
/// them (smoke checks left out: they test the code, not an idea).
fn progress_points(history: &[HistoryRow], metric: &str) -> Vec<Point> {
    let finished = history.iter().rev().filter(|r| r.check.is_none());
    finished
        .filter_map(|r| {
            Some(Point {
                verdict: r.verdict.clone()?,
                value: r.metrics.get(metric).and_then(Value::as_f64),
                harness: r.source.as_deref() == Some("harness"),
                experiment: r.experiment.clone(),
                title: r.title.clone(),
            })
        })
        .collect()
}

/// The band the gate cannot tell from the leader, and its held-out score where read.
fn overlay(
    points: &[Point],
    leader: Option<&Leader>,
    power: Option<&LeafPower>,
    holdout: Option<&RecordedTransfer>,
) -> Overlay {
    let Some(leader) = leader else { return Overlay::default() };
    let detectable = power.and_then(|p| p.power.sensitivity).map(|s| s.detectable.abs());
    let band = detectable.filter(|d| d.is_finite()).map(|d| (leader.value - d, leader.value + d));
    let at = points.iter().position(|p| p.experiment == leader.experiment);
    let holdout = at.zip(holdout.and_then(|h| h.holdout)).into_iter().collect();
    Overlay { band, holdout }
}

fn leader_view(store: &Store, leader: Leader, history: &[HistoryRow]) -> Result<LeaderView> {
    let title = history.iter().find(|h| h.experiment == leader.experiment).map(|h| h.title.clone());
    let gate = records::latest_report(store.conn(), leader.experiment.parse()?)?;
    Ok(LeaderView { title: title.unwrap_or_default(), gate, leader })
}

/// Blends: results whose metrics carry `weight.<component>` (see `analysis::blend`).
fn blends(history: &[HistoryRow]) -> Vec<Blend> {
    let blend = |h: &HistoryRow| {
        let weights: Vec<(String, f64)> = h
            .metrics
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("weight.")?.to_owned(), v.as_f64()?)))
            .collect();
        (!weights.is_empty()).then(|| Blend { experiment: h.experiment.clone(), verdict: h.verdict.clone(), weights })
    };
    history.iter().filter_map(blend).collect()
}

/// The checkpoints written for `leaf` (their first line names it), by name.
fn checkpoints(dir: &Path, leaf: &str) -> Vec<String> {
    let heading = format!(": leaf `{leaf}`");
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let first = std::fs::read_to_string(e.path()).ok().and_then(|t| t.lines().next().map(str::to_owned));
            first.is_some_and(|l| l.ends_with(&heading))
        })
        .map(|e| e.path().display().to_string())
        .collect();
    names.sort();
    names
}

impl Running {
    /// `0:42 / 5:00`, or the elapsed time alone without a budget.
    pub fn clock(&self) -> String {
        let clock = |s: f64| crate::supervisor::progress::clock(std::time::Duration::from_secs_f64(s));
        self.budget_s.map_or_else(|| clock(self.elapsed_s), |b| format!("{} / {}", clock(self.elapsed_s), clock(b)))
    }

    /// `loss=0.5000 step=3`: the last reported metrics as the progress line shows them.
    pub fn last_text(&self) -> String {
        let shown = |v: &Value| v.as_f64().map_or_else(|| v.to_string(), crate::output::format_number);
        self.last.iter().map(|(k, v)| format!("{k}={}", shown(v))).collect::<Vec<_>>().join(" ")
    }
}

/// The running experiments among `history`, with their progress.
pub fn running(lab: &LabRoot, history: &[HistoryRow]) -> Vec<Running> {
    let now = Timestamp::now();
    let running = history.iter().filter(|h| h.status == "running");
    running
        .map(|h| {
            let started: Option<Timestamp> = h.started_at.parse().ok();
            let elapsed_s = started.map_or(0.0, |s| now.duration_since(s).as_secs_f64().max(0.0));
            Running {
                experiment: h.experiment.clone(),
                title: h.title.clone(),
                elapsed_s,
                budget_s: h.budget_s,
                last: last_reported(lab, &h.experiment),
            }
        })
        .collect()
}

/// The last metrics a running experiment's code reported (its newest curve).
pub fn last_reported(lab: &LabRoot, experiment: &str) -> Map<String, Value> {
    let Ok(id) = experiment.parse() else { return Map::new() };
    curve::latest(lab.layout().run(id).root()).map(|p| p.metrics).unwrap_or_default()
}
