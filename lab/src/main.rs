//! The `lab` binary: parse, dispatch, and map errors to exit codes (see error.rs).

use std::process::ExitCode;

use clap::Parser;
use lab::cli::Cli;
use lab::ctx::Ctx;
use lab::error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = Ctx::new(cli.root).and_then(|ctx| cli.command.run(&ctx));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error::report(&err));
            ExitCode::from(error::exit_code(&err) as u8)
        }
    }
}
