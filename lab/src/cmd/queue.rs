use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::ids::QueueId;
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
    /// Claim the most urgent queued item: two agents never get the same one
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
            let leaf = ctx.leaf_to_record(&lab, &store, args.leaf)?;
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
                "look_alikes": duplicates,
            });
            output::answer(args.json, &answer, || outln!("{id}"))?;
        }
        QueueCommand::Next(args) => {
            let leaf = ctx.leaf(&lab, args.leaf)?;
            let claimer = format!("{}:{}", stale::host_name(), nix::unistd::getppid());
            let item = store.write(|tx| queue::claim_next(tx, leaf.as_deref(), &claimer, &records::now()))?;
            // JSON gives the item itself (or null), so `lab queue next --json | jq .id` works.
            match (&item, args.output.format()) {
                (_, Format::Json) => outln!("{}", serde_json::to_string_pretty(&item)?),
                (None, _) => eprintln!("the queue is empty"),
                (Some(item), format) => items_table(std::slice::from_ref(item)).write(format, &mut output::stdout())?,
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

fn items_table(items: &[queue::Item]) -> Table {
    let mut table = Table::new(&["id", "leaf", "priority", "status", "title", "mechanism", "link", "claimed_by"]);
    for i in items {
        let row = json!([i.id, i.leaf, i.priority, i.status, i.title, i.mechanism, i.link, i.claimed_by]);
        table.push(row.as_array().cloned().unwrap_or_default());
    }
    table
}
