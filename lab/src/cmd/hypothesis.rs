use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::outln;
use crate::output;
use crate::store::records::{self, NewHypothesis};

/// Register what you are testing and why; prints its id (h<N>).
#[derive(Debug, Args)]
pub struct HypothesisArgs {
    /// What you will change, in a few words
    pub title: String,
    /// Why it should work: the mechanism, confirmed or refuted by the result
    #[arg(short = 'm', long)]
    pub mechanism: String,
    /// The leaf it is about (default: the leaf containing the working directory)
    #[arg(long)]
    pub leaf: Option<String>,
    /// What you expect to see if the mechanism holds
    #[arg(long, visible_alias = "expected")]
    pub predict: Option<String>,
    /// Print the hypothesis (id, leaf, title, mechanism, prediction) as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: HypothesisArgs) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    let hypothesis = NewHypothesis {
        title: args.title,
        mechanism: args.mechanism,
        leaf: ctx.leaf_to_record(&lab, &store, args.leaf)?,
        prediction: args.predict,
        created_at: records::now(),
    };
    let id = store.write(|tx| records::add_hypothesis(tx, &hypothesis))?;
    let answer = json!({
        "hypothesis": id.to_string(),
        "leaf": hypothesis.leaf,
        "title": hypothesis.title,
        "mechanism": hypothesis.mechanism,
        "prediction": hypothesis.prediction,
    });
    output::answer(args.json, &answer, || outln!("{id}"))?;
    Ok(())
}
