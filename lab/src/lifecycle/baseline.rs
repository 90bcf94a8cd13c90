//! `lab baseline`: the leader's run-to-run noise, measured by rerunning the
//! leader's code (the committed HEAD of the mutable files) under new seeds.
//!
//! Each rerun is a full run recorded in `runs` under the **leader experiment**
//! itself (so the scalar gate reads every run of the leader as its repeats),
//! with the seed the harness chose. The spread over all the leader's full runs
//! (mean, sd, n) is stored per leaf and leaf.lock in `baselines`; the gate uses
//! it when a later leader has a single run. Refused (exit 3) when the working
//! tree has uncommitted mutable changes: those would not be the leader's code.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::inputs;
use super::integrity;
use super::record::new_run;
use super::session::host;
use crate::error::LabError;
use crate::gate;
use crate::ids::ExperimentId;
use crate::leaf::Leaf;
use crate::leaf::snapshot;
use crate::root::LabRoot;
use crate::store::Store;
use crate::store::gate::{self as records, Baseline};
use crate::store::records::now;
use crate::store::runs::{self, Tier};
use crate::supervisor::memo::Memo;
use crate::supervisor::pipeline::{TierPlan, run_tier};
use crate::supervisor::{env, requires};

#[derive(Debug, Clone)]
pub struct BaselineOptions {
    pub leaf_dir: PathBuf,
    pub repeats: Option<u32>,
    pub budget: Option<Duration>,
    pub quiet: bool,
    /// The first rerun's seed; the next ones count up from it (default: random).
    pub seed: Option<u64>,
}

/// What `lab baseline` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineSummary {
    pub leaf: String,
    pub leader: String,
    pub metric: String,
    /// Seeds of the reruns made now.
    pub seeds: Vec<u64>,
    /// The primary metric of every full run of the leader, the first included.
    pub values: Vec<f64>,
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub lock_sha256: String,
    pub log: String,
}

pub fn baseline(lab: &LabRoot, store: &mut Store, opts: BaselineOptions) -> Result<BaselineSummary> {
    let leaf = Leaf::load(&opts.leaf_dir)?;
    let checked = integrity::check(&leaf)?;
    if !checked.mutable_changes.is_empty() {
        let list: Vec<String> = checked.mutable_changes.iter().map(|p| format!("`{}`", p.display())).collect();
        return Err(LabError::refused(format!(
            "uncommitted changes to mutable files of `{}`: {}; the baseline must run the leader's code",
            leaf.name(),
            list.join(", ")
        ))
        .hint("run or restore the candidate first (`lab run --decide`, or `git restore` the files)")
        .into());
    }
    let packages = requires::require(&leaf, env::find_venv(Some(&lab.dir))?.as_ref())?;
    let compared = inputs::comparability(lab, store, &leaf)?;
    let lock_sha256 = compared.key.clone(); // the lock's sha256 itself when the leaf has no inputs
    let metric = leaf.manifest.metric.clone();
    let leader =
        runs::leader(store.conn(), leaf.name(), &metric.name, metric.goal, &lock_sha256)?.ok_or_else(|| {
            LabError::refused(format!(
                "leaf `{}` has no comparable leader (same leaf.lock and inputs) to repeat",
                leaf.name()
            ))
            .hint("keep a first run with `lab run --decide`; it becomes the baseline")
        })?;
    let leader_id: ExperimentId = leader.experiment.parse()?;
    let repeats = opts.repeats.unwrap_or(leaf.manifest.gate.repeats).max(1);
    let run_dir = lab.layout().run(leader_id);
    std::fs::create_dir_all(run_dir.root()).with_context(|| format!("cannot create `{}`", run_dir.root().display()))?;
    let log_path = run_dir.root().join("baseline.log");
    let used: Vec<u64> = records::full_values(store.conn(), leader_id, &metric.name)?.iter().map(|r| r.0).collect();
    let mut seeds = Vec::new();
    let mut next = opts.seed;
    for repeat in 1..=repeats {
        let seed = loop {
            let s = next.unwrap_or_else(|| u64::from(rand::random::<u32>()));
            next = next.map(|n| n + 1);
            if !used.contains(&s) && !seeds.contains(&s) {
                break s;
            }
        };
        seeds.push(seed);
        let tier = run_dir.tier(&format!("baseline-{seed}"));
        let snapshot = snapshot::take(&leaf, &tier.root().join("code"), &tier.root().join("frozen"))?;
        let host =
            host(lab, &leaf, &run_dir, &compared, snapshot, opts.quiet, seed, &log_path, Some(Memo::new(&packages)))?;
        let plan = TierPlan {
            tier: Tier::Full,
            budget: opts.budget.unwrap_or(leaf.manifest.budget.full),
            dir: tier,
            label: format!("{leader_id} baseline {repeat}/{repeats}"),
        };
        let result = run_tier(&host, &plan)?;
        let row = new_run(leader_id, &result, seed, &lock_sha256, &host.snapshot, &log_path, &packages);
        store.write(|tx| {
            let id = runs::add_run(tx, &row)?;
            runs::add_inputs(tx, id, &compared.inputs)?;
            if let Some(holdout) = &result.holdout {
                records::seal_holdout(tx, id, leader_id, holdout)?;
            }
            Ok(())
        })?;
        if !result.outcome.ok() {
            return Err(LabError::crashed(format!(
                "a baseline rerun of {leader_id} (seed {seed}) crashed ({}: {}); no spread was stored",
                result.outcome.reason.as_str(),
                result.outcome.detail
            ))
            .hint(format!("read the log: {}", log_path.display()))
            .into());
        }
    }
    let values: Vec<f64> = records::full_values(store.conn(), leader_id, &metric.name)?.iter().map(|r| r.1).collect();
    let (n, mean, sd) = spread(&values);
    let record = Baseline {
        leaf: leaf.name().to_owned(),
        lock_sha256: lock_sha256.clone(),
        leader: leader_id,
        n,
        mean,
        sd,
        seeds: seeds.clone(),
        created_at: now(),
    };
    store.write(|tx| records::add_baseline(tx, &record))?;
    Ok(BaselineSummary {
        leaf: leaf.name().to_owned(),
        leader: leader_id.to_string(),
        metric: metric.name,
        seeds,
        values,
        n,
        mean,
        sd,
        lock_sha256,
        log: log_path.display().to_string(),
    })
}

/// n, mean and the sample sd (`gate::run_sd`: 0 for a single value, and
/// where the runs differ by rounding only).
fn spread(values: &[f64]) -> (usize, f64, f64) {
    let n = values.len();
    if n == 0 {
        return (0, f64::NAN, f64::NAN);
    }
    (n, values.iter().sum::<f64>() / n as f64, gate::run_sd(values))
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_the_sample_sd() {
        let (n, mean, sd) = spread(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((n, mean), (4, 2.5));
        assert!((sd - (5.0_f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(spread(&[0.25]), (1, 0.25, 0.0));
        assert_eq!(spread(&[0.25, 0.25, 0.25]), (3, 0.25, 0.0));
        // Reruns of deterministic code that differ where threads reassociate a
        // sum ("sd 8.702e-15" on a leaf of mae near 0.4) show no spread.
        assert_eq!(spread(&[0.4, 0.4 + 1.5e-14, 0.4 - 1e-14]).2, 0.0);
        assert!(spread(&[0.4, 0.4 + 1e-6]).2 > 0.0, "a seed's spread stays");
        assert!(spread(&[]).1.is_nan());
    }
}
