use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::leaf::discover::{dir_name, shown};
use crate::leaf::files::Resolved;
use crate::leaf::lock::{Change, ChangeKind, LockState};
use crate::leaf::{self, Leaf, lock};
use crate::lifecycle::sensitivity;
use crate::output;
use crate::output::{FormatArgs, Report, Table};
use crate::store::comparisons;
use crate::store::leaves::stats;
use crate::store::queries::{self, HistoryQuery};

/// One leaf in detail: its manifest, every file with its role (mutable,
/// frozen, other) and lock state, its statistics, what the gate can detect on
/// it (and whether it is at its ceiling), and recent experiments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The leaf: a name or a directory (default: the leaf containing the working directory)
    pub leaf: Option<String>,
    /// How many recent experiments to show
    #[arg(long, default_value_t = 5)]
    pub recent: usize,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: ShowArgs) -> Result<()> {
    let (lab, store) = ctx.open()?;
    let leaf = Leaf::load(&leaf::locate(&lab, &ctx.cwd, args.leaf.as_deref())?)?;
    let m = &leaf.manifest;
    let state = lock::verify(&leaf)?;
    let resolved = leaf.file_sets()?.resolve(&leaf.dir)?;
    // Research records name a leaf by its directory (see `LabRoot::leaf_containing`).
    let id = dir_name(&leaf.dir);
    let s = stats(store.conn(), &id, &m.metric.name, m.metric.goal)?;
    let recent = queries::history(
        store.conn(),
        &HistoryQuery { leaf: Some(id.clone()), limit: Some(args.recent), ..Default::default() },
    )?;

    let power = match comparisons::current_key(store.conn(), &id)? {
        Some(key) => Some(sensitivity::of_leaf(&store, &leaf, &key)?),
        None => None,
    };
    let summary = summary(&lab.dir, &leaf, &state);
    let (files, changes) = files(&resolved, &state);
    let mut stats_table =
        Table::new(&["experiments", "kept", "best", "best_experiment", "comparison", "last_activity"]);
    stats_table.push(vec![
        json!(s.experiments),
        json!(s.kept),
        json!(s.best),
        json!(s.best_experiment),
        json!(s.comparison.as_ref().map(crate::store::comparisons::Current::describe)),
        json!(s.last_activity),
    ]);
    let mut recent_table =
        Table::new(&["experiment", "hypothesis", "verdict", "check", "source", "title", "metrics", "started_at"]);
    for r in &recent {
        recent_table.push(vec![
            json!(r.experiment),
            json!(r.hypothesis),
            json!(r.verdict),
            json!(r.check),
            json!(r.provenance()),
            json!(r.title),
            r.metrics.clone(),
            json!(r.started_at),
        ]);
    }
    let json = json!({
        "name": leaf.name(),
        "path": shown(&lab.dir, &leaf.dir),
        "manifest": m,
        "lock": state.label(),
        "lock_changes": changes,
        "files": files.to_json(),
        "stats": s,
        "power": power,
        "recent": recent,
    });
    let mut sections =
        vec![("leaf".to_owned(), summary), ("files".to_owned(), files), ("stats".to_owned(), stats_table)];
    if let Some(power) = &power {
        sections
            .push((super::context::POWER_TITLE.to_owned(), super::context::power_table(std::slice::from_ref(power))));
        let mut said = Table::new(&["summary"]);
        said.push(vec![json!(power.summary)]);
        sections.push(("in words".to_owned(), said));
    }
    sections.push(("recent experiments".to_owned(), recent_table));
    Report { json, sections }.write(args.output.format(), &mut output::stdout())?;
    Ok(())
}

/// The manifest and lock state as field / value rows.
fn summary(root: &std::path::Path, leaf: &Leaf, state: &LockState) -> Table {
    let m = &leaf.manifest;
    let mut summary = Table::new(&["field", "value"]);
    let (mutable_key, mutable_target) = m.entry.mutable_target();
    let (frozen_key, frozen_target) = m.entry.frozen_target();
    let guards: Vec<String> =
        m.metric.guards.iter().map(|g| format!("{} ({}, tolerance {})", g.name, g.goal, g.tolerance)).collect();
    for (field, value) in [
        ("name", json!(leaf.name())),
        ("path", json!(shown(root, &leaf.dir))),
        ("description", json!(m.description)),
        ("metric", json!(format!("{} ({}{})", m.metric.name, m.metric.goal, unit(&m.metric.unit)))),
        ("also", json!(m.metric.also.join(", "))),
        ("guards", json!(guards.join(", "))),
        ("mode", json!(m.entry.mode())),
        (mutable_key, json!(mutable_target)),
        (frozen_key, json!(frozen_target)),
        (
            "budget",
            json!(format!(
                "{} (smoke {})",
                humantime::format_duration(m.budget.full),
                humantime::format_duration(m.budget.smoke)
            )),
        ),
        (
            "gate",
            json!(format!(
                "min improvement {}, {} repeats, confidence {}",
                m.gate.min_improvement, m.gate.repeats, m.gate.confidence
            )),
        ),
        ("device", json!(format!("{:?}", m.device).to_lowercase())),
        ("requires", json!(m.python.requires.join(", "))),
        ("lock", json!(state.label())),
    ] {
        summary.push(vec![json!(field), value]);
    }

    summary
}

/// Every file with its role and, for frozen ones, its state against the lock;
/// plus the changes, for the JSON document.
fn files(resolved: &Resolved, state: &LockState) -> (Table, Vec<Change>) {
    let changes = match state {
        LockState::Changed(changes) => changes.clone(),
        _ => Vec::new(),
    };
    let mut files = Table::new(&["path", "role", "lock"]);
    for f in &resolved.files {
        let lock_cell = match (state, f.frozen) {
            (_, false) => Value::Null,
            (LockState::Missing, true) => json!("no lock"),
            _ => json!(changes.iter().find(|c| c.path == f.path).map_or("ok", |c| kind(c.kind))),
        };
        files.push(vec![json!(f.path), json!(f.role()), lock_cell]);
    }
    for gone in changes.iter().filter(|c| c.kind == ChangeKind::Missing) {
        files.push(vec![json!(gone.path), json!("frozen"), json!("missing")]);
    }

    (files, changes)
}

fn unit(unit: &str) -> String {
    if unit.is_empty() { String::new() } else { format!(", {unit}") }
}

fn kind(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Modified => "modified",
        ChangeKind::Missing => "missing",
        ChangeKind::Unfrozen => "unfrozen",
        ChangeKind::Unlisted => "unlisted",
    }
}
