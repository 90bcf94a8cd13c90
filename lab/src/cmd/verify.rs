//! `lab verify [LEAF]`: is the research memory what lab wrote? Exit 3 naming
//! every mismatch, 0 when every check holds.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::lifecycle::verify;
use crate::output;
use crate::output::{FormatArgs, Report, Table};

/// Check the records against their hash chain: every entry links to the one
/// before, every row of the records matches what was hashed when it was
/// written (a row edited, inserted or deleted behind lab's back is named, with
/// the columns that differ), the metrics index mirrors the current results, and
/// no agent-typed result replaced a harness verdict. Then the evidence: every
/// file of every kept run is re-hashed, every keep is re-scored from its stored
/// outputs and targets, and the chain head written into each keep commit
/// (`Lab-Chain:`) must still be in the chain.
///
/// Prints each check with its verdict and findings, and the chain's head (an
/// anchor to compare with later). Exits 3 when any check fails.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this leaf's rows (default: the whole lab); the chain's links are always checked whole
    pub leaf: Option<String>,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let report = verify::verify(&lab, &store, args.leaf.as_deref())?;
    let mut checks = Table::new(&["check", "verdict", "checked", "findings", "about"]);
    let mut findings = Table::new(&["check", "kind", "table", "row", "detail"]);
    for c in &report.checks {
        checks.push(vec![json!(c.name), json!(c.verdict), json!(c.checked), json!(c.findings.len()), json!(c.about)]);
        for f in &c.findings {
            findings.push(vec![json!(c.name), json!(f.kind), json!(f.table), json!(f.row), json!(f.detail)]);
        }
    }
    let head = format!("chain head: entry {} {}", report.head.seq, report.head.hash);
    let sections = vec![(head, checks), ("findings".to_owned(), findings)];
    Report { json: json!(report), sections }.write(args.output.format(), &mut output::stdout())?;
    if report.ok {
        return Ok(());
    }
    let failures = report.failures();
    Err(LabError::refused(format!("lab verify found {} problem(s):\n  {}", failures.len(), failures.join("\n  ")))
        .hint("a record changed, appeared or vanished outside lab: restore the database from a backup, and find out who wrote it")
        .into())
}
