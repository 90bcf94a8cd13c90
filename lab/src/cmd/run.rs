//! `lab run`: execute a leaf under its budget and record the result.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::HypothesisId;
use crate::leaf;
use crate::lifecycle::{self, RunOptions, RunSummary};
use crate::outln;
use crate::output::{self, format_number};
use crate::store::records::Verdict;
use crate::store::runs::Tier;
use crate::supervisor::ExitReason;

/// Run a leaf's code under its budget; the harness produces the metric and records the result.
///
/// Refuses (exit 3) when frozen files differ from leaf.lock or when files other
/// than the leaf's mutable ones differ from the last commit. Records an
/// experiment (under --hypothesis, a new hypothesis from -m, or the leaf's
/// standing "baseline"/"run" hypothesis) and its result. Without --decide the
/// result is a discard that touches no file. With --decide a smoke run goes
/// first (--no-smoke skips it) and a failed smoke stops there; the full run is
/// then judged by the gate (`lab gate`): kept (its mutable files committed) when
/// there is no leader yet or the lower bound of its improvement over the leader
/// clears gate.min_improvement; repeated with new seeds while the gap is within
/// the noise; else discarded (its diff and artifacts archived under the leaf's
/// `_archive/`, its mutable files restored). Exit codes: 0 a result
/// was recorded (keep or discard), 4 the experiment crashed (its result is
/// recorded), 3 refused, 2 bad usage.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The leaf, by name or directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// Only the smoke tier: the manifest's short budget; checks the code runs and the metric is finite
    #[arg(long, conflicts_with_all = ["decide", "no_smoke"])]
    pub smoke: bool,
    /// Override the tier's budget (e.g. 90s, 5m)
    #[arg(long, value_parser = crate::cli::budget, value_name = "DURATION")]
    pub budget: Option<Duration>,
    /// The hypothesis this experiment tests (h<N>)
    #[arg(long)]
    pub hypothesis: Option<HypothesisId>,
    /// Without --hypothesis: a new hypothesis titled TEXT
    #[arg(short = 'm', long = "message", value_name = "TEXT")]
    pub message: Option<String>,
    /// Keep or discard against the leaf's leader: commit or restore the mutable files
    #[arg(long)]
    pub decide: bool,
    /// With --decide: skip the smoke run
    #[arg(long, requires = "decide")]
    pub no_smoke: bool,
    /// No live progress on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// lab.memo reads and writes nothing: every item is computed (rerun a suspicious result cold)
    #[arg(long)]
    pub no_memo: bool,
    /// The seed handed to the leaf as lab.seed() (default: random, recorded)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let leaf_dir = leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?;
    let options = RunOptions {
        leaf_dir,
        smoke_only: args.smoke,
        skip_smoke: args.no_smoke,
        decide: args.decide,
        budget: args.budget,
        hypothesis: args.hypothesis,
        message: args.message,
        seed: args.seed,
        quiet: args.quiet,
        no_memo: args.no_memo,
    };
    let summary = lifecycle::run(&lab, &mut store, options)?;
    output::answer(args.json, &summary, || print_summary(&summary))?;
    if summary.exit_reason != ExitReason::Ok {
        return Err(LabError::crashed(format!(
            "{} crashed ({}: {}); its result is recorded",
            summary.experiment,
            summary.exit_reason.as_str(),
            summary.detail
        ))
        .hint(format!("read the log: {}", summary.log))
        .into());
    }
    Ok(())
}

fn print_summary(s: &RunSummary) {
    let value = s.value.map_or_else(String::new, |v| format!("  {}={}", s.metric, format_number(v)));
    // A smoke tier that ended without a crash is a smoke-only run (a `--decide` goes on to the full tier): a check.
    let verdict = match (s.tier, s.verdict) {
        (Tier::Smoke, Verdict::Discard) => "smoke check passed".to_owned(),
        (_, verdict) => verdict.to_string(),
    };
    outln!(
        "{} {verdict}{value}  ({} {} run, metric from {})",
        s.experiment,
        s.leaf,
        s.tier.as_str(),
        s.metric_source.as_str()
    );
    outln!("  {}", s.note);
    if let Some(traceback) = &s.traceback {
        let lines: Vec<&str> = traceback.lines().collect();
        for line in &lines[lines.len().saturating_sub(8)..] {
            outln!("  | {line}");
        }
    }
    let budget = humantime::format_duration(Duration::from_secs_f64(s.budget_s));
    outln!("  {:.1}s of {budget}, {}, seed {}, exit {}", s.wall_s, s.device, s.seed, s.exit_reason.as_str());
    if let Some(commit) = &s.commit {
        outln!("  committed {}", &commit[..commit.len().min(12)]);
    }
    if let Some(patch) = &s.patch {
        outln!("  restored the mutable files; candidate diff: {patch}");
    }
    outln!("  log: {}", s.log);
}
