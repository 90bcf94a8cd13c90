//! The command line: global flags and the subcommand tree (clap derive).

use std::path::PathBuf;

use clap::Parser;

use crate::cmd::Command;

/// lab: autonomous research loops under a protocol the harness enforces.
///
/// Leaves are self-contained workspaces; the research memory records every
/// hypothesis, experiment and result; the runner and the gate decide what is
/// kept. Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 refused by a rule
/// of the protocol, 4 the experiment crashed (its result is recorded).
#[derive(Debug, Parser)]
#[command(name = "lab", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The lab root (the directory holding lab.yaml); found by walking up from the working directory otherwise
    #[arg(long, global = true, env = "LAB_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
