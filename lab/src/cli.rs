//! The command line: global flags and the subcommand tree (clap derive).

use std::path::PathBuf;
use std::time::Duration;

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

/// A `--budget` (`90s`, `5m`): a duration above zero. Zero (`0s`) would give a
/// run no time at all, or mark a manual experiment stale at once.
pub fn budget(text: &str) -> Result<Duration, String> {
    let budget = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if budget.is_zero() {
        return Err("a budget must be above zero (e.g. 90s, 5m)".to_owned());
    }
    Ok(budget)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn budgets_are_positive_durations() {
        assert_eq!(super::budget("5m"), Ok(std::time::Duration::from_secs(300)));
        assert!(super::budget("0s").unwrap_err().contains("above zero"));
        assert!(super::budget("0ms").is_err() && super::budget("-1s").is_err() && super::budget("soon").is_err());
    }

    #[test]
    fn the_cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
