//! One file per subcommand: each has an `XArgs` struct (its doc comment is the
//! help text) and a `run(ctx, args)` function. Commands parse, call a library
//! module, and print; SQL, git and Python live elsewhere.

mod baseline;
mod blend;
mod check;
mod checkpoint;
mod context;
mod diff;
mod doctor;
mod experiment;
mod export;
mod failures;
mod gate;
mod holdout;
mod hypothesis;
mod import;
mod init;
mod keeper;
mod leaves;
mod lock;
mod log;
mod mcp;
mod new;
mod plot;
mod queue;
mod report;
mod result;
mod run;
mod saturation;
mod serve;
mod show;
mod submit;
mod sweep;
mod templates;
mod verify;
mod watch;
mod worker;

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
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    New(new::NewArgs),
    Templates(templates::TemplatesArgs),
    Leaves(leaves::LeavesArgs),
    Show(show::ShowArgs),
    Lock(lock::LockArgs),
    Check(check::CheckArgs),
    Run(run::RunArgs),
    Doctor(doctor::DoctorArgs),
    Baseline(baseline::BaselineArgs),
    Gate(gate::GateArgs),
    Holdout(holdout::HoldoutArgs),
    Checkpoint(checkpoint::CheckpointArgs),
    Saturation(saturation::SaturationArgs),
    Plot(plot::PlotArgs),
    Report(report::ReportArgs),
    Diff(diff::DiffArgs),
    Watch(watch::WatchArgs),
    Serve(serve::ServeArgs),
    Blend(blend::BlendArgs),
    Submit(submit::SubmitArgs),
    Verify(verify::VerifyArgs),
    Mcp(mcp::McpArgs),
    #[command(name = "__keeper", hide = true)]
    Keeper(keeper::KeeperArgs),
    #[command(name = "__worker", hide = true)]
    Worker(worker::WorkerArgs),
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
            Self::Queue(command) => queue::run(ctx, command),
            Self::New(args) => new::run(ctx, args),
            Self::Templates(args) => templates::run(ctx, args),
            Self::Leaves(args) => leaves::run(ctx, args),
            Self::Show(args) => show::run(ctx, args),
            Self::Lock(args) => lock::run(ctx, args),
            Self::Check(args) => check::run(ctx, args),
            Self::Run(args) => run::run(ctx, args),
            Self::Doctor(args) => doctor::run(ctx, args),
            Self::Baseline(args) => baseline::run(ctx, args),
            Self::Gate(args) => gate::run(ctx, args),
            Self::Holdout(args) => holdout::run(ctx, args),
            Self::Checkpoint(args) => checkpoint::run(ctx, args),
            Self::Saturation(args) => saturation::run(ctx, args),
            Self::Plot(args) => plot::run(ctx, args),
            Self::Report(args) => report::run(ctx, args),
            Self::Diff(args) => diff::run(ctx, args),
            Self::Watch(args) => watch::run(ctx, args),
            Self::Serve(args) => serve::run(ctx, args),
            Self::Blend(args) => blend::run(ctx, args),
            Self::Submit(args) => submit::run(ctx, args),
            Self::Verify(args) => verify::run(ctx, args),
            Self::Mcp(args) => mcp::run(ctx, args),
            Self::Keeper(args) => keeper::run(ctx, args),
            Self::Worker(args) => worker::run(ctx, args),
        }
    }
}
