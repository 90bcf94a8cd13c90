use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::ids::ExperimentId;
use crate::output;
use crate::store::records::{self, Mechanism, NewResult, Verdict};

/// Record what happened in an experiment; prints the verdict.
///
/// The hypothesis becomes confirmed or refuted by the mechanism flag, not by the
/// verdict: a discard can confirm a mechanism and a keep can refute one. A second
/// result for the same experiment is refused unless --amend, which keeps the
/// earlier record.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The experiment (e<N>)
    pub experiment: ExperimentId,
    /// keep, discard or crash
    #[arg(short = 'v', long, value_enum)]
    pub verdict: Verdict,
    /// Metrics as a JSON object of numbers, e.g. '{"val_bpb": 0.993}'
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
    /// Print the result as recorded (experiment, verdict, metrics, mechanism, amended) as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: ResultArgs) -> Result<()> {
    let metrics = args.metrics.as_deref().map(records::parse_metrics).transpose()?.unwrap_or_default();
    let (_, mut store) = ctx.open()?;
    let mechanism = match (args.mechanism_confirmed, args.mechanism_refuted) {
        (true, _) => Some(Mechanism::Confirmed),
        (_, true) => Some(Mechanism::Refuted),
        _ => None,
    };
    let result = NewResult {
        experiment: args.experiment,
        verdict: args.verdict,
        metrics,
        mechanism,
        theory_revision: args.theory_revision,
        note: None,
        created_at: records::now(),
    };
    let recorded = store.write(|tx| records::add_result(tx, &result, args.amend))?;
    let answer = json!({
        "experiment": result.experiment.to_string(),
        "verdict": result.verdict,
        "metrics": result.metrics,
        "mechanism": result.mechanism,
        "theory_revision": result.theory_revision,
        "amended": recorded.amended,
    });
    output::answer(args.json, &answer, || println!("{}", args.verdict))?;
    Ok(())
}
