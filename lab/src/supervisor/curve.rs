//! A worker's training curve: the metrics its code reported with `lab.report`,
//! in time, appended by the supervisor to `<tier>/<worker>.curve.jsonl` as one
//! JSON line each (`{"t": seconds since launch, "metrics": {...}}`), for the
//! views (`lab plot --experiment`, `lab watch`, `lab serve`).
//!
//! Display only, never evidence: the gate reads what the harness scored, not
//! this. The worker cannot write the file (its sandbox allows its `artifact/`,
//! `out/` and scratch only), and a report flood cannot fill the disk: points
//! closer than [`EVERY`] are thinned (the latest is held and written when the
//! next is due or the worker ends) and at most [`MAX_POINTS`] are written.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Reports closer in time than this are thinned to the latest.
pub const EVERY: Duration = Duration::from_millis(100);
/// The most points one worker's curve holds.
pub const MAX_POINTS: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds since the worker was launched.
    pub t: f64,
    pub metrics: Map<String, Value>,
}

/// The writer of one worker's curve; failures to write are ignored (a view's
/// data must never fail a run).
#[derive(Debug)]
pub struct Recorder {
    /// Where to write; opened at the first report (a worker that reports nothing has no curve).
    path: Option<PathBuf>,
    file: Option<File>,
    started: Instant,
    written: usize,
    last_written: Option<Instant>,
    held: Option<Point>,
}

impl Recorder {
    pub fn create(path: &Path) -> Self {
        Self { path: Some(path.to_owned()), ..Self::none() }
    }

    /// A recorder that writes nothing (a worker whose curve nobody shows).
    pub fn none() -> Self {
        Self { path: None, file: None, started: Instant::now(), written: 0, last_written: None, held: None }
    }

    pub fn report(&mut self, metrics: &Map<String, Value>) {
        self.held = Some(Point { t: self.started.elapsed().as_secs_f64(), metrics: metrics.clone() });
        if self.last_written.is_none_or(|at| at.elapsed() >= EVERY) {
            self.flush();
        }
    }

    /// Write the held point, if any (at the worker's end).
    pub fn flush(&mut self) {
        if self.file.is_none() && self.held.is_some() {
            self.file = self.path.take().and_then(|p| File::create(p).ok());
        }
        let (Some(file), Some(point)) = (self.file.as_mut(), self.held.take()) else { return };
        if self.written >= MAX_POINTS {
            return;
        }
        if let Ok(mut line) = serde_json::to_vec(&point) {
            line.push(b'\n');
            let _ = file.write_all(&line);
            self.written += 1;
            self.last_written = Some(Instant::now());
        }
    }
}

/// Every curve of a run directory's tiers: `(tier, worker, points)`, tiers in
/// the order they ran (smoke first). Unreadable lines are skipped.
pub fn read_all(run_dir: &Path) -> Result<Vec<(String, String, Vec<Point>)>> {
    let mut curves = Vec::new();
    if !run_dir.exists() {
        return Ok(curves);
    }
    for entry in walkdir::WalkDir::new(run_dir).min_depth(2).max_depth(2).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot list `{}`", run_dir.display()))?;
        let name = entry.file_name().to_string_lossy();
        let Some(worker) = name.strip_suffix(".curve.jsonl") else { continue };
        let tier = entry.path().parent().and_then(Path::file_name).map(|t| t.to_string_lossy().into_owned());
        curves.push((tier.unwrap_or_default(), worker.to_owned(), read(entry.path())?));
    }
    curves.sort_by_key(|(tier, ..)| (tier != "smoke", tier.clone()));
    Ok(curves)
}

/// The last point of the curve written most recently under a run directory
/// (the worker running now, or the last to run).
pub fn latest(run_dir: &Path) -> Option<Point> {
    let files = walkdir::WalkDir::new(run_dir).min_depth(2).max_depth(2).into_iter().filter_map(Result::ok);
    let curves = files.filter(|e| e.file_name().to_string_lossy().ends_with(".curve.jsonl"));
    let newest = curves.max_by_key(|e| e.metadata().ok().and_then(|m| m.modified().ok()))?;
    read(newest.path()).ok()?.pop()
}

fn read(path: &Path) -> Result<Vec<Point>> {
    let file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(BufReader::new(file).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect())
}

/// The file of `worker`'s curve in a tier directory.
pub fn path(tier_dir: &Path, worker: &str) -> PathBuf {
    tier_dir.join(format!("{worker}.curve.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(loss: f64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("loss".into(), serde_json::json!(loss));
        m
    }

    #[test]
    fn a_flood_is_thinned_and_the_last_report_kept() {
        let dir = tempfile::tempdir().unwrap();
        let tier = dir.path().join("full");
        std::fs::create_dir(&tier).unwrap();
        let mut recorder = Recorder::create(&path(&tier, "train"));
        for i in 0..10_000 {
            recorder.report(&metrics(f64::from(i)));
        }
        recorder.flush();
        let curves = read_all(dir.path()).unwrap();
        assert_eq!(curves.len(), 1);
        let (t, w, points) = &curves[0];
        assert_eq!((t.as_str(), w.as_str()), ("full", "train"));
        assert!(points.len() < 100, "a flood in well under a second is a few points: {}", points.len());
        assert_eq!(points.first().unwrap().metrics, metrics(0.0), "the first report is written at once");
        assert_eq!(points.last().unwrap().metrics, metrics(9999.0), "the last report is kept");
    }

    #[test]
    fn smoke_comes_first_and_a_missing_run_has_no_curves() {
        let dir = tempfile::tempdir().unwrap();
        for tier in ["full", "smoke"] {
            std::fs::create_dir(dir.path().join(tier)).unwrap();
            let mut r = Recorder::create(&path(&dir.path().join(tier), "predict"));
            r.report(&metrics(1.0));
            r.flush();
        }
        let tiers: Vec<String> = read_all(dir.path()).unwrap().into_iter().map(|c| c.0).collect();
        assert_eq!(tiers, ["smoke", "full"]);
        assert!(read_all(&dir.path().join("gone")).unwrap().is_empty());
    }
}
