//! The `lab` binary: parse, dispatch, and map errors to exit codes (see error.rs).
//!
//! Output that stdout did not take is reported here, after the command: a
//! closed pipe ends quietly with the command's own exit code, a full or failing
//! stdout is an error that shows on stderr what was not printed.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd as _, IntoRawFd as _};
use std::process::ExitCode;

use clap::Parser;
use lab::cli::Cli;
use lab::ctx::Ctx;
use lab::{error, output};

fn main() -> ExitCode {
    fill_closed_std_fds();
    let cli = Cli::parse();
    let result = Ctx::new(cli.root)
        .and_then(|ctx| cli.command.run(&ctx).map_err(|err| error::naming_database(err, ctx.database())));
    let mut code = match &result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{}", error::report(err));
            error::exit_code(err)
        }
    };
    if let Some(report) = output::undelivered() {
        eprintln!("{report}");
        if code == 0 {
            code = error::Exit::Failure as i32;
        }
    }
    ExitCode::from(code as u8)
}

/// Open `/dev/null` on stdin, stdout or stderr where the caller closed them
/// (`lab context >&-`): otherwise the next file lab opens (a log, a lock file)
/// takes that descriptor, and data meant for stdout is written into it.
fn fill_closed_std_fds() {
    while let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        if null.as_raw_fd() > 2 {
            break; // dropped: every standard descriptor is open
        }
        // Leaked on purpose: it now stands in for the closed descriptor.
        let _ = null.into_raw_fd();
    }
}
