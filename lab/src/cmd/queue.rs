//! `lab queue`: ideas waiting to be tried. `next` hands an agent one item, its
//! hypothesis and the `lab run` that tests it, so the result is traceable to the idea.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::{HypothesisId, QueueId};
use crate::outln;
use crate::output::{self, Format, FormatArgs, Table};
use crate::stale;
use crate::store::queue::{self, NewItem};
use crate::store::records;

/// The candidate queue: ideas waiting to be tried, claimed atomically by agents.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Queue an idea; prints its id (q<N>). Look-alikes already queued, tried or failed are pointed out
    Add(AddArgs),
    /// Claim the most urgent queued item: two agents never get the same one. Gives its hypothesis
    /// (made from its title and mechanism unless it was queued under one) and the `lab run` that tests it
    Next(NextArgs),
    /// The queue, most urgent first
    List(ListArgs),
    /// Mark an item done
    Done(CloseArgs),
    /// Drop an item without trying it
    Drop(CloseArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The idea, in a few words
    pub title: String,
    /// Why it should work
    #[arg(short = 'm', long)]
    pub mechanism: String,
    /// Higher goes first
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Where the idea comes from (a paper, an issue)
    #[arg(long)]
    pub link: Option<String>,
    /// The hypothesis it tests (h<N>), if already registered; else one is made from the title and
    /// mechanism when the item is claimed
    #[arg(long)]
    pub hypothesis: Option<HypothesisId>,
    /// The leaf it is for (default: the leaf containing the working directory)
    #[arg(long)]
    pub leaf: Option<String>,
    /// Queue it even if the same idea is already queued
    #[arg(long)]
    pub force: bool,
    /// Print the item queued and the look-alikes pointed out as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NextArgs {
    #[arg(long)]
    pub leaf: Option<String>,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub leaf: Option<String>,
    /// Also show done and dropped items
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub output: FormatArgs,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The item (q<N>)
    pub id: QueueId,
    /// Why (e.g. the hypothesis it became, or why it was dropped)
    #[arg(long)]
    pub note: Option<String>,
    /// Print the item and its new status as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, command: QueueCommand) -> Result<()> {
    let (lab, mut store) = ctx.open()?;
    match command {
        QueueCommand::Add(args) => {
            let mut leaf = ctx.leaf_to_record(&lab, &store, args.leaf)?;
            if let Some(hypothesis) = args.hypothesis {
                leaf = queue::leaf_under(store.conn(), leaf, hypothesis)?;
            }
            let duplicates = queue::duplicates(store.conn(), leaf.as_deref(), &args.title)?;
            for d in &duplicates {
                eprintln!("note: looks like {} ({}): {}", d.id, d.status, d.title);
            }
            if !args.force && duplicates.iter().any(|d| d.status == "queued" || d.status == "claimed") {
                return Err(LabError::refused("the same idea is already in the queue")
                    .hint("pass --force to queue it anyway")
                    .into());
            }
            let item = NewItem {
                leaf,
                title: args.title,
                mechanism: args.mechanism,
                priority: args.priority,
                link: args.link,
                hypothesis: args.hypothesis,
                created_at: records::now(),
            };
            let id = store.write(|tx| queue::add(tx, &item))?;
            let answer = json!({
                "id": id.to_string(),
                "status": "queued",
                "leaf": item.leaf,
                "title": item.title,
                "mechanism": item.mechanism,
                "priority": item.priority,
                "link": item.link,
                "hypothesis": item.hypothesis.map(|h| h.to_string()),
                "look_alikes": duplicates,
            });
            output::answer(args.json, &answer, || outln!("{id}"))?;
        }
        QueueCommand::Next(args) => {
            let leaf = ctx.leaf(&lab, args.leaf)?;
            let claimer = format!("{}:{}", stale::host_name(), nix::unistd::getppid());
            let item = store.write(|tx| queue::claim_next(tx, leaf.as_deref(), &claimer, &records::now()))?;
            let claim = item.map(|item| Claim { command: run_command(&item), item });
            // JSON gives the item itself (or null), so `lab queue next --json | jq .id` works.
            match (&claim, args.output.format()) {
                (_, Format::Json) => outln!("{}", serde_json::to_string_pretty(&claim)?),
                (None, _) => eprintln!("the queue is empty"),
                (Some(claim), format) => {
                    let mut table = Table::new(&["id", "leaf", "hypothesis", "title", "mechanism", "command"]);
                    let i = &claim.item;
                    let row = json!([i.id, i.leaf, i.hypothesis, i.title, i.mechanism, claim.command]);
                    table.push(row.as_array().cloned().unwrap_or_default());
                    table.write(format, &mut output::stdout())?;
                    eprintln!("when it is decided: lab queue done {} --note \"...\"", i.id);
                }
            }
        }
        QueueCommand::List(args) => {
            let leaf = ctx.leaf(&lab, args.leaf)?;
            let statuses: &[&str] =
                if args.all { &["queued", "claimed", "done", "dropped"] } else { &["queued", "claimed"] };
            let items = queue::list(store.conn(), leaf.as_deref(), statuses)?;
            items_table(&items).write(args.output.format(), &mut output::stdout())?;
        }
        QueueCommand::Done(args) => close(&mut store, args, "done")?,
        QueueCommand::Drop(args) => close(&mut store, args, "dropped")?,
    }
    Ok(())
}

fn close(store: &mut crate::store::Store, args: CloseArgs, status: &str) -> Result<()> {
    store.write(|tx| queue::close(tx, args.id, status, args.note.as_deref(), &records::now()))?;
    let answer = json!({"id": args.id.to_string(), "status": status, "note": args.note});
    output::answer(args.json, &answer, || outln!("{} {status}", args.id))?;
    Ok(())
}

/// A claimed item and the command that tests it, as `lab queue next` hands it out.
#[derive(Serialize)]
struct Claim {
    #[serde(flatten)]
    item: queue::Item,
    command: String,
}

/// `lab run` under the item's hypothesis, judged by the gate: the leaf named,
/// so it works from any directory of the lab.
fn run_command(item: &queue::Item) -> String {
    let leaf = item.leaf.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
    let hypothesis = item.hypothesis.as_deref().unwrap_or_default();
    format!("lab run{leaf} --hypothesis {hypothesis} --decide")
}

fn items_table(items: &[queue::Item]) -> Table {
    let mut table =
        Table::new(&["id", "leaf", "priority", "status", "hypothesis", "title", "mechanism", "link", "claimed_by"]);
    for i in items {
        let row = json!([i.id, i.leaf, i.priority, i.status, i.hypothesis, i.title, i.mechanism, i.link, i.claimed_by]);
        table.push(row.as_array().cloned().unwrap_or_default());
    }
    table
}
