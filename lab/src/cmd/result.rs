use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::ids::ExperimentId;
use crate::outln;
use crate::output;
use crate::store::records::{self, Amendment, Mechanism, NewResult, Source, Verdict};

/// Record what happened in an experiment; prints the verdict.
///
/// The hypothesis becomes confirmed or refuted by the mechanism flag, not by the
/// verdict: a discard can confirm a mechanism and a keep can refute one. A second
/// result for the same experiment is refused unless --amend, which keeps the
/// earlier record; an amendment keeps whatever it does not replace. On an
/// experiment the harness ran (`lab run`), the verdict and metrics are the
/// harness's: --amend may add only the mechanism flags and a theory revision.
/// Results typed here are marked `agent` and never become a leader or a best.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The experiment (e<N>)
    pub experiment: ExperimentId,
    /// keep, discard or crash (with --amend: default the earlier verdict)
    #[arg(short = 'v', long, value_enum, required_unless_present = "amend")]
    pub verdict: Option<Verdict>,
    /// Metrics as a JSON object of numbers, e.g. '{"val_bpb": 0.993}' (with --amend: default the earlier ones)
    #[arg(long)]
    pub metrics: Option<String>,
    /// The mechanism behind the hypothesis held
    #[arg(long, conflicts_with = "mechanism_refuted")]
    pub mechanism_confirmed: bool,
    /// The mechanism behind the hypothesis did not hold
    #[arg(long)]
    pub mechanism_refuted: bool,
    /// What you now believe instead
    #[arg(long)]
    pub theory_revision: Option<String>,
    /// Record a correction of an existing result (the earlier one is kept)
    #[arg(long)]
    pub amend: bool,
    /// Print the result as recorded (experiment, verdict, metrics, mechanism, source, amended) as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: ResultArgs) -> Result<()> {
    let metrics = args.metrics.as_deref().map(records::parse_metrics).transpose()?;
    let (_, mut store) = ctx.open()?;
    let mechanism = match (args.mechanism_confirmed, args.mechanism_refuted) {
        (true, _) => Some(Mechanism::Confirmed),
        (_, true) => Some(Mechanism::Refuted),
        _ => None,
    };
    let created_at = records::now();
    let recorded = store.write(|tx| match (args.amend, args.verdict) {
        (false, Some(verdict)) => {
            let result = NewResult {
                experiment: args.experiment,
                verdict,
                metrics: metrics.clone().unwrap_or_default(),
                mechanism,
                theory_revision: args.theory_revision.clone(),
                note: None,
                created_at: created_at.clone(),
                source: Source::Agent,
            };
            records::add_result(tx, &result, false)
        }
        _ => {
            let amendment = Amendment {
                experiment: args.experiment,
                verdict: args.verdict,
                metrics: metrics.clone(),
                mechanism,
                theory_revision: args.theory_revision.clone(),
                created_at: created_at.clone(),
            };
            records::amend_result(tx, &amendment)
        }
    })?;
    let r = &recorded.result;
    let answer = json!({
        "experiment": r.experiment.to_string(),
        "verdict": r.verdict,
        "metrics": r.metrics,
        "mechanism": r.mechanism,
        "theory_revision": r.theory_revision,
        "source": r.source,
        "comparison": r.comparison,
        "amended": recorded.amended,
    });
    output::answer(args.json, &answer, || outln!("{}", r.verdict))?;
    Ok(())
}
