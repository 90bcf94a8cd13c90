use anyhow::Result;
use clap::Args;
use jiff::Timestamp;
use serde_json::json;

use crate::ctx::Ctx;
use crate::leaf::Leaf;
use crate::lifecycle::sensitivity::{self, LeafPower};
use crate::output;
use crate::output::{FormatArgs, Report, Table};
use crate::root::LabRoot;
use crate::stale;
use crate::store::queries::{self, HistoryQuery};
use crate::store::{Store, comparisons};

/// What a fresh agent session needs, compact enough for a context window: counts,
/// the best kept result per metric, the comparison it is ranked within (and what
/// the last re-lock changed), recent history, open hypotheses, running and stale
/// experiments, the latest failures, and what the gate can detect on each
/// leaf (the smallest gain it keeps 4 times in 5, whether the leader is at the
/// metric's ceiling, and how many keeps noise alone would explain).
///
/// A best is the harness's, within the leaf's current comparison: kept results
/// typed with `lab result` are listed apart, as reported by an agent.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Only this leaf (default: the leaf containing the working directory, else the whole lab)
    #[arg(long)]
    pub leaf: Option<String>,
    /// How many recent experiments, open hypotheses and failures to show
    #[arg(long, default_value_t = 10)]
    pub recent: usize,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: ContextArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let conn = store.conn();
    let leaf = ctx.leaf(&lab, args.leaf)?;
    let scope = leaf.as_deref();
    let counts = queries::counts(conn, scope)?;
    let best = queries::best_kept(conn, scope, |l, m| lab.goal_of(l, m))?;
    let reported = queries::reported_kept(conn, scope, |l, m| lab.goal_of(l, m))?;
    let compared = match scope {
        Some(name) => comparisons::current(conn, name)?.into_iter().collect(),
        None => comparisons::all_current(conn)?,
    };
    let recent =
        queries::history(conn, &HistoryQuery { leaf: leaf.clone(), limit: Some(args.recent), ..Default::default() })?;
    let open = queries::open_hypotheses(conn, scope, args.recent)?;
    let running = queries::history(conn, &HistoryQuery { leaf: leaf.clone(), running: true, ..Default::default() })?;
    let failures = queries::history(
        conn,
        &HistoryQuery {
            leaf: leaf.clone(),
            verdicts: vec!["discard", "crash"],
            limit: Some(args.recent.min(5)),
            research_only: true,
            ..Default::default()
        },
    )?;
    let failure_total = queries::count_failures(conn, scope)?;
    let (now, host) = (Timestamp::now(), stale::host_name());
    let running: Vec<_> = running
        .iter()
        .map(|r| {
            let reason = stale::stale_reason(r, now, &host, lab.manifest.stale_after);
            json!({
                "experiment": r.experiment, "hypothesis": r.hypothesis, "leaf": r.leaf, "title": r.title,
                "state": if reason.is_some() { "stale" } else { "running" }, "reason": reason,
                "host": r.host, "pid": r.pid, "started_at": r.started_at,
            })
        })
        .collect();

    let mut sections = Vec::new();
    // Four columns, so the counts read whole at any width; `--json` carries each count apart.
    let mut summary = Table::new(&["lab", "leaf", "hypotheses", "experiments"]);
    let c = &counts;
    summary.push(vec![
        lab.manifest.name.clone().into(),
        leaf.clone().unwrap_or_else(|| "(all)".into()).into(),
        format!("{}: {} open, {} confirmed, {} refuted", c.hypotheses, c.open, c.confirmed, c.refuted).into(),
        format!(
            "{}: {} keep, {} discard, {} crash; {} smoke checks",
            c.experiments, c.keep, c.discard, c.crash, c.checks
        )
        .into(),
    ]);
    sections.push(("summary".to_owned(), summary));
    sections.push(("best kept result per metric (the harness's, in the current comparison)".to_owned(), bests(&best)));
    if !reported.is_empty() {
        sections.push(("kept results typed by agents (no harness run: never a best)".to_owned(), bests(&reported)));
    }
    sections.push(("comparisons (leaders and bests never rank across them)".to_owned(), comparison_table(&compared)));
    let power = power(&lab, &store, &compared)?;
    if !power.is_empty() {
        sections.push((POWER_TITLE.to_owned(), power_table(&power)));
    }
    let mut recent_table =
        Table::new(&["experiment", "hypothesis", "verdict", "source", "title", "metrics", "mechanism"]);
    for r in &recent {
        recent_table.push(vec![
            r.experiment.clone().into(),
            r.hypothesis.clone().into(),
            r.shown_verdict().unwrap_or_else(|| stale::shown_state(r, now, &host, lab.manifest.stale_after)).into(),
            r.provenance().into(),
            r.title.clone().into(),
            r.metrics.clone(),
            r.mechanism_verdict.clone().into(),
        ]);
    }
    sections.push(("recent experiments".to_owned(), recent_table));
    let mut open_table = Table::new(&["hypothesis", "title", "mechanism", "prediction"]);
    for h in &open {
        open_table.push(vec![
            h.hypothesis.clone().into(),
            h.title.clone().into(),
            h.mechanism.clone().into(),
            h.prediction.clone().into(),
        ]);
    }
    sections.push(("open hypotheses not yet tested by a run".to_owned(), open_table));
    let mut running_table = Table::new(&["experiment", "state", "reason", "host", "pid", "started_at"]);
    for r in &running {
        running_table.push(
            ["experiment", "state", "reason", "host", "pid", "started_at"].iter().map(|k| r[k].clone()).collect(),
        );
    }
    sections.push(("running and stale experiments".to_owned(), running_table));
    let mut failure_table =
        Table::new(&["experiment", "verdict", "reason", "source", "title", "mechanism", "theory_revision"]);
    for r in &failures {
        failure_table.push(vec![
            r.experiment.clone().into(),
            r.verdict.clone().into(),
            output::brief(r.reason.as_deref().unwrap_or_default(), 60).into(),
            r.provenance().into(),
            r.title.clone().into(),
            r.mechanism.clone().into(),
            r.theory_revision.clone().into(),
        ]);
    }
    sections.push((format!("latest failures ({failure_total} in all; `lab failures` lists them)"), failure_table));

    let mut json = json!({
        "lab": lab.manifest.name,
        "leaf": leaf,
        "counts": counts,
        "best": best,
        "reported": reported,
        "comparisons": compared,
        "power": power,
        "recent": recent,
        "open_hypotheses": open,
        "running": running,
        "failures": { "total": failure_total, "latest": failures },
    });
    // Predictions-mode leaf in scope only; a changed prediction file is shown, not fatal.
    let saturation = scope.map(|name| crate::analysis::saturation::of_leaf(&lab, &store, name)).transpose();
    match saturation.map(Option::flatten) {
        Ok(None) => {}
        Ok(Some(s)) => {
            sections.extend(super::saturation::sections(&s));
            json["saturation"] = json!(s);
        }
        Err(e) => {
            let mut table = Table::new(&["error"]);
            table.push(vec![format!("{e:#}").into()]);
            sections.push(("saturation".to_owned(), table));
            json["saturation"] = json!({ "error": format!("{e:#}") });
        }
    }
    Report { json, sections }.write(args.output.format(), &mut output::stdout())?;
    Ok(())
}

/// Best-of rows as a table; the goal spelled out, or how to declare it.
fn bests(rows: &[queries::Best]) -> Table {
    let mut table = Table::new(&["leaf", "metric", "goal", "best", "experiment", "source"]);
    for b in rows {
        let goal =
            b.goal.map_or_else(|| "unknown (declare it in lab.yaml)".to_owned(), |g| format!("{g:?}").to_lowercase());
        table.push(vec![
            b.leaf.clone().into(),
            b.metric.clone().into(),
            goal.into(),
            b.value.into(),
            b.experiment.clone().into(),
            b.source.as_str().into(),
        ]);
    }
    table
}

/// The section title of [`power_table`], which says what "detectable" means.
pub(super) const POWER_TITLE: &str = "what the gate can detect (a true gain of `detectable` is kept 4 times in 5; \
    `noise_keeps`: the most keeps candidates with no real gain would have won)";

/// What the gate can detect on each leaf in its current comparison (leaves
/// whose directory is gone are left out: their manifest says the metric).
fn power(lab: &LabRoot, store: &Store, compared: &[comparisons::Current]) -> Result<Vec<LeafPower>> {
    let mut rows = Vec::new();
    for c in compared {
        if let Some(dir) = crate::leaf::discover::find_dir(&lab.leaves_dir(), &c.leaf) {
            rows.push(sensitivity::of_leaf(store, &Leaf::load(&dir)?, &c.comparison.key)?);
        }
    }
    Ok(rows)
}

pub(super) fn power_table(rows: &[LeafPower]) -> Table {
    let mut table = Table::new(&[
        "leaf",
        "metric",
        "detectable",
        "leader",
        "headroom",
        "at_ceiling",
        "decisions",
        "keeps",
        "noise_keeps",
        "measured_by",
    ]);
    for p in rows {
        table.push(vec![
            p.leaf.clone().into(),
            p.metric.clone().into(),
            p.power.sensitivity.map(|s| s.detectable).into(),
            p.leader.into(),
            p.headroom.into(),
            p.at_ceiling.into(),
            p.power.decisions.into(),
            p.power.keeps.into(),
            p.power.expected_noise_keeps.into(),
            p.power.measured_by.map(|e| e.to_string()).into(),
        ]);
    }
    table
}

/// Each leaf's current comparison, and what the re-lock that started it changed.
fn comparison_table(compared: &[comparisons::Current]) -> Table {
    let mut table = Table::new(&["leaf", "comparison", "since", "relock"]);
    for c in compared {
        table.push(vec![
            c.leaf.clone().into(),
            format!("{} ({})", c.number, comparisons::short(&c.comparison.key)).into(),
            c.comparison.experiment.clone().into(),
            c.relock.as_ref().map(comparisons::Relock::describe).into(),
        ]);
    }
    table
}
