//! `lab gate e<N>`: what the honest gate says about an experiment now, read-only.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::ExperimentId;
use crate::leaf::{self, Leaf};
use crate::lifecycle::{inputs, judge};
use crate::output;
use crate::output::{FormatArgs, Report, Table};
use crate::store::gate as records;

/// The honest improvement of an experiment over the current leader: its
/// interval, the probability it is better, the gate's verdict and why.
///
/// The leader itself is compared with the best other kept result. Read-only: no file is touched and no verdict changes. Predictions mode
/// re-hashes every prediction and label file first and refuses (exit 3) one
/// that changed since it was scored. The verdict recorded when the experiment
/// was decided, if it was, is shown beside it.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The experiment (e<N>)
    pub experiment: ExperimentId,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: GateArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let e = args.experiment;
    let name = records::experiment_leaf(store.conn(), e)?
        .ok_or_else(|| LabError::usage(format!("{e} belongs to no leaf: the gate judges leaf runs")))?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, Some(&name))?)?;
    let lock_sha256 = inputs::comparability(&lab, &store, &leaf)?.key;
    let j = judge::judge(&store, &leaf, e, &lock_sha256)?;
    let decided = records::latest_report(store.conn(), e)?;
    let r = &j.report;
    let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    let document = json!({
        "experiment": e.to_string(),
        "leaf": leaf.name(),
        "leader": j.leader.as_ref().map(|l| json!({"experiment": l.experiment, "value": l.value})),
        "mode": j.mode.as_str(),
        "metric": leaf.manifest.metric.name,
        "improvement": num(r.improvement),
        "ci_low": num(r.ci_low),
        "ci_high": num(r.ci_high),
        "confidence": leaf.manifest.gate.confidence,
        "min_improvement": leaf.manifest.gate.min_improvement,
        "prob_better": num(r.prob_better),
        "verdict": r.verdict.name(),
        "reason": r.reason,
        "n": r.n,
        "detectable": r.sensitivity.map(|s| s.detectable),
        "flags": j.flags,
        "decided": decided.as_ref().map(|d| json!({"verdict": d.verdict, "leader": d.leader.map(|l| l.to_string()), "reason": d.reason})),
    });
    let mut table = Table::new(&["key", "value"]);
    if let Value::Object(map) = &document {
        for (key, value) in map {
            table.push(vec![json!(key), value.clone()]);
        }
    }
    let report = Report { json: document, sections: vec![(format!("gate {e}"), table)] };
    report.write(args.output.format(), &mut output::stdout())?;
    Ok(())
}
