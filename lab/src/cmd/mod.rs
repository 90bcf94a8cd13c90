//! One file per subcommand: each has an `XArgs` struct (its doc comment is the
//! help text) and a `run(ctx, args)` function. Commands parse, call a library
//! module, and print; SQL, git and Python live elsewhere.

mod context;
mod experiment;
mod export;
mod failures;
mod hypothesis;
mod import;
mod init;
mod log;
mod result;
mod sweep;

use anyhow::Result;
use clap::Subcommand;

use crate::ctx::Ctx;

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Hypothesis(hypothesis::HypothesisArgs),
    Experiment(experiment::ExperimentArgs),
    Result(result::ResultArgs),
    Context(context::ContextArgs),
    Failures(failures::FailuresArgs),
    Log(log::LogArgs),
    Sweep(sweep::SweepArgs),
    #[command(subcommand)]
    Import(import::ImportCommand),
    Export(export::ExportArgs),
}

impl Command {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        match self {
            Self::Init(args) => init::run(ctx, args),
            Self::Hypothesis(args) => hypothesis::run(ctx, args),
            Self::Experiment(args) => experiment::run(ctx, args),
            Self::Result(args) => result::run(ctx, args),
            Self::Context(args) => context::run(ctx, args),
            Self::Failures(args) => failures::run(ctx, args),
            Self::Log(args) => log::run(ctx, args),
            Self::Sweep(args) => sweep::run(ctx, args),
            Self::Import(command) => import::run(ctx, command),
            Self::Export(args) => export::run(ctx, args),
        }
    }
}
