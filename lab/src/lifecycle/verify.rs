//! `lab verify`, the checks beyond the database: every kept run's files
//! re-hashed, every keep re-scored from its stored outputs and targets, and the
//! chain anchors written into keep commits compared with the chain.
//!
//! The store's own checks (`store::verify`: the hash chain, rows against it,
//! the metrics index, provenance) come first; these are pushed onto the same
//! report. A keep is re-scored the way it was scored: by the harness's metric
//! (`metric.kind`) from the recorded outputs and labels, or by running the
//! frozen `score` of the run's own frozen snapshot again, in a sandboxed worker,
//! on the recorded outputs and targets. Read-only but for that worker's files
//! under the kept run's directory.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::evidence;
use crate::gate::{self, MetricKind, Scorer};
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::leaf::manifest::Entry;
use crate::leaf::snapshot::Snapshot;
use crate::root::LabRoot;
use crate::store::runs::{self, RunFile, RunRow, Tier};
use crate::store::verify::{self as store_verify, Check, Finding, Report};
use crate::store::{Store, chain};
use crate::supervisor::pipeline::{self, Host, TierPlan};
use crate::supervisor::protocol::ScoreSplit;
use crate::supervisor::{env, policy, scoring};
use crate::vcs;

/// Relative difference between a recorded and a recomputed metric still taken as equal.
const TOLERANCE: f64 = 1e-9;

/// The trailer a keep commit carries: `Lab-Chain: <seq> <hash>`, the chain's head when it was made.
pub const ANCHOR: &str = "Lab-Chain";

pub fn verify(lab: &LabRoot, store: &Store, leaf: Option<&str>) -> Result<Report> {
    let mut report = store_verify::verify(store.conn(), leaf)?;
    let keeps = runs::harness_keeps(store.conn(), leaf)?;
    let mut kept = Vec::new();
    for (experiment, leaf) in keeps {
        let ok: Vec<RunRow> = runs::runs_of(store.conn(), experiment)?
            .into_iter()
            .filter(|r| r.tier == Tier::Full.as_str() && r.exit_reason == "ok")
            .collect();
        kept.push((experiment, leaf, ok));
    }
    report.push(files(&kept));
    report.push(scores(lab, &kept)?);
    report.push(anchors(lab, store)?);
    Ok(report)
}

type Kept = (ExperimentId, String, Vec<RunRow>);

fn files(kept: &[Kept]) -> Check {
    let (mut checked, mut findings) = (0, Vec::new());
    for (experiment, _, runs) in kept {
        for file in runs.iter().flat_map(|r| &r.files) {
            checked += 1;
            if let Err(detail) = evidence::holds(*experiment, file) {
                findings.push(Finding::row(
                    "changed",
                    "run_files",
                    format!("{experiment} {} {}", file.kind, file.name),
                    detail,
                ));
            }
        }
    }
    Check::new("files", "every file of every kept run has the sha256 recorded when the run ended", checked, findings)
}

fn scores(lab: &LabRoot, kept: &[Kept]) -> Result<Check> {
    let (mut checked, mut findings) = (0, Vec::new());
    for (experiment, _, runs) in kept {
        for (i, run) in runs.iter().enumerate() {
            let Some(frozen) = frozen_dir(run) else { continue };
            let Ok(leaf) = Leaf::load(&frozen) else {
                findings.push(Finding::row(
                    "unscorable",
                    "runs",
                    experiment,
                    "its frozen snapshot has no readable leaf.yaml",
                ));
                continue;
            };
            checked += 1;
            let metric = &leaf.manifest.metric;
            let recorded = run.metrics.get(&metric.name).and_then(Value::as_f64);
            let recomputed = match rescore(lab, &leaf, *experiment, run, i) {
                Ok(value) => value,
                Err(e) => {
                    findings.push(Finding::row("unscorable", "runs", experiment, format!("{e:#}")));
                    continue;
                }
            };
            let same = recorded.is_some_and(|r| (r - recomputed).abs() <= TOLERANCE * r.abs().max(1.0));
            if !same {
                findings.push(Finding::row(
                    "rescored",
                    "runs",
                    experiment,
                    format!("{} recorded {recorded:?}, {recomputed} from its stored outputs and targets", metric.name),
                ));
            }
        }
    }
    let about = "every keep scores what it recorded, from its stored outputs and targets";
    Ok(Check::new("scores", about, checked, findings))
}

/// The run's frozen snapshot (`.lab/runs/e<N>/frozen` or a baseline rerun's), from its code files.
fn frozen_dir(run: &RunRow) -> Option<PathBuf> {
    let code = run.files.iter().find(|f| f.kind == "code" && f.name == "leaf.yaml")?;
    let code_dir = Path::new(&code.path).parent()?;
    Some(code_dir.parent()?.join("frozen"))
}

/// The primary metric of `run`, recomputed from its recorded files.
fn rescore(lab: &LabRoot, leaf: &Leaf, experiment: ExperimentId, run: &RunRow, index: usize) -> Result<f64> {
    let find = |kind: &str, name: &str| evidence::find(&run.files, kind, name).cloned();
    let labels = find("labels", "val").ok_or_else(|| anyhow::anyhow!("no recorded val labels"))?;
    match &leaf.manifest.entry {
        Entry::Predictions { .. } => {
            let kind: MetricKind = leaf.manifest.metric.kind().parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let predictions =
                find("predictions", "val").ok_or_else(|| anyhow::anyhow!("no recorded val predictions"))?;
            let (y, p) = (evidence::values(experiment, &labels)?, evidence::values(experiment, &predictions)?);
            Ok(gate::score(kind, &y, &p)?)
        }
        Entry::Artifact { score: None, .. } => {
            let scorer: Scorer = leaf.manifest.metric.kind().parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let outputs = find("outputs", "val").ok_or_else(|| anyhow::anyhow!("no recorded val outputs"))?;
            evidence::bytes(experiment, &outputs)?;
            evidence::bytes(experiment, &labels)?;
            let items = scoring::items(scorer, Path::new(&outputs.path), Path::new(&labels.path), "val")?
                .map_err(|(_, detail)| anyhow::anyhow!(detail))?;
            scoring::mean_of(&items).ok_or_else(|| anyhow::anyhow!("no per-item scores"))
        }
        Entry::Artifact { score: Some(score), .. } => frozen_rescore(lab, leaf, experiment, run, index, score, &labels),
    }
}

/// Run the frozen `score` of the run's own snapshot again on its recorded val outputs and targets.
fn frozen_rescore(
    lab: &LabRoot,
    leaf: &Leaf,
    experiment: ExperimentId,
    run: &RunRow,
    index: usize,
    score: &str,
    labels: &RunFile,
) -> Result<f64> {
    let outputs =
        evidence::find(&run.files, "outputs", "val").ok_or_else(|| anyhow::anyhow!("no recorded val outputs"))?;
    evidence::bytes(experiment, outputs)?;
    evidence::bytes(experiment, labels)?;
    // The inputs sit beside the targets in the prepared data, verified as a whole.
    let prepared_root =
        Path::new(&labels.path).parent().and_then(Path::parent).ok_or_else(|| anyhow::anyhow!("no prepared data"))?;
    let inputs = ["npy", "pkl"]
        .iter()
        .map(|e| prepared_root.join("eval").join(format!("val.{e}")))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("the prepared val inputs are gone"))?;
    let split = ScoreSplit {
        split: "val".into(),
        inputs,
        outputs: PathBuf::from(&outputs.path),
        targets: PathBuf::from(&labels.path),
    };
    let frozen = frozen_dir(run).expect("checked by the caller");
    let layout = lab.layout();
    let run_dir = layout.run(experiment);
    let dir = run_dir.tier(&format!("verify-{index}"));
    let _ = std::fs::remove_dir_all(dir.root());
    let log_path = dir.root().join("verify.log");
    std::fs::create_dir_all(dir.root())?;
    let venv = env::find_venv(Some(&lab.dir))?;
    let module_dir = env::write_child_module(&dir.root().join("python"))?;
    let host = Host {
        policy: policy::Base::new(venv.as_ref(), &module_dir, &leaf.manifest.sealed.site_packages),
        venv,
        quiet: true,
        leaf: leaf.clone(),
        layout,
        run: run_dir,
        snapshot: Snapshot { code: frozen.clone(), frozen, files: Vec::new() },
        seed: 0,
        inputs: Vec::new(),
        key: String::new(),
        sandboxed: true,
        memo: None,
        log: std::fs::File::create(&log_path)?,
        log_path,
    };
    let plan = TierPlan {
        tier: Tier::Full,
        budget: leaf.manifest.budget.infer(),
        dir: dir.clone(),
        label: format!("{experiment} verify"),
    };
    let out = match pipeline::rescore(&host, &plan, score, vec![split])? {
        Ok(out) => out,
        Err(outcome) => anyhow::bail!("{}", outcome.detail),
    };
    let lists: Value = serde_json::from_slice(&std::fs::read(out.join("val.json"))?)?;
    let value = lists.get(&leaf.manifest.metric.name).and_then(scoring::mean_of);
    let _ = std::fs::remove_dir_all(dir.root());
    value.ok_or_else(|| anyhow::anyhow!("the frozen score gave no `{}`", leaf.manifest.metric.name))
}

/// Every keep commit's `Lab-Chain` trailer names an entry the chain still has, with that hash.
fn anchors(lab: &LabRoot, store: &Store) -> Result<Check> {
    let about = "the chain's head written into each keep commit is still in the chain: it was not rebuilt";
    let Ok(trailers) = vcs::trailers(&lab.dir, ANCHOR) else {
        return Ok(Check::new("anchors", about, 0, Vec::new()));
    };
    let mut findings = Vec::new();
    for (commit, value) in &trailers {
        let short = &commit[..commit.len().min(12)];
        let parsed = value.split_once(' ').and_then(|(seq, hash)| Some((seq.parse::<i64>().ok()?, hash.to_owned())));
        let Some((seq, hash)) = parsed else {
            findings.push(Finding::row("anchor", "commit", short, format!("unreadable trailer `{ANCHOR}: {value}`")));
            continue;
        };
        match chain::hash_at(store.conn(), seq)? {
            Some(now) if now == hash => {}
            now => findings.push(Finding::row(
                "anchor",
                "commit",
                short,
                format!(
                    "anchors chain entry {seq} at {hash}, the chain has {}",
                    now.as_deref().unwrap_or("no such entry")
                ),
            )),
        }
    }
    Ok(Check::new("anchors", about, trailers.len() as u64, findings))
}
