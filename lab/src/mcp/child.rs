//! One tool call as a child `lab` process, and its end as the tool's result.
//!
//! The child is this same binary ([`std::env::current_exe`]) with `--root` of
//! the server's lab, in the lab root, with stdin closed. Its stdout (the
//! command's JSON) is the result, as text and as structured content; a non-zero
//! exit is a tool error (`is_error`) carrying its stderr as the CLI prints it
//! (message and hint) and the exit code with its meaning, plus whatever it
//! printed on stdout (`lab run` prints the recorded crash). Every stderr line
//! is a progress notification while the call runs, when the client asked for
//! progress. A cancelled call sends the child SIGTERM, which `lab run` treats
//! as a stop (its worker ended, the run recorded), and waits for it.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam};
use rmcp::service::RequestContext;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Run `lab --root ROOT ARGV...` to its end; its answer as the tool's result.
pub async fn call(root: &Path, argv: &[String], context: &RequestContext<RoleServer>) -> CallToolResult {
    let spawned = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .arg("--root")
            .arg(root)
            .args(argv)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return CallToolResult::error(vec![ContentBlock::text(format!("cannot start `lab`: {err}"))]),
    };
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (ended, stdout, stderr) = tokio::join!(wait(&mut child, context), read(stdout), stream(stderr, context));
    let command =
        format!("lab {}", argv.iter().take_while(|a| !a.starts_with('-')).cloned().collect::<Vec<_>>().join(" "));
    match ended {
        Ok(status) => answer(&command, status, stdout, stderr),
        Err(err) => CallToolResult::error(vec![ContentBlock::text(format!("`{command}`: lost track of it: {err}"))]),
    }
}

/// The child's exit; on cancellation it is asked to stop first.
async fn wait(child: &mut Child, context: &RequestContext<RoleServer>) -> std::io::Result<ExitStatus> {
    tokio::select! {
        status = child.wait() => status,
        () = context.ct.cancelled() => {
            if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            child.wait().await
        }
    }
}

async fn read(mut stdout: impl AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    // A read error ends the output there; the exit status still says how the command ended.
    let _ = stdout.read_to_end(&mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The child's stderr, each line sent on as progress (numbered, the line as
/// its message) when the call carries a progress token.
async fn stream(stderr: impl AsyncRead + Unpin, context: &RequestContext<RoleServer>) -> String {
    let token = context.meta.get_progress_token();
    let mut reader = BufReader::new(stderr);
    let (mut text, mut line, mut count) = (String::new(), Vec::new(), 0_u32);
    while reader.read_until(b'\n', &mut line).await.is_ok_and(|n| n > 0) {
        let shown = String::from_utf8_lossy(&line).trim_end().to_owned();
        line.clear();
        if let Some(token) = &token {
            count += 1;
            let note = ProgressNotificationParam::new(token.clone(), f64::from(count)).with_message(shown.clone());
            // A client that stopped listening does not stop the command.
            let _ = context.peer.notify_progress(note).await;
        }
        text.push_str(&shown);
        text.push('\n');
    }
    text
}

/// The tool's result for a command that ended with `status`.
fn answer(command: &str, status: ExitStatus, stdout: String, stderr: String) -> CallToolResult {
    // Structured content is an object (MCP 2025-06-18); a list (`lab log`) stays text.
    let structured = serde_json::from_str::<Value>(&stdout).ok().filter(Value::is_object);
    let mut result = if status.success() {
        CallToolResult::success(vec![ContentBlock::text(stdout)])
    } else {
        let ended = match (status.code(), status.signal()) {
            (Some(code), _) => format!("`{command}` exited with code {code} ({})", meaning(code)),
            (None, signal) => format!("`{command}` was killed by signal {}", signal.unwrap_or_default()),
        };
        let mut content = vec![ContentBlock::text(format!("{stderr}{ended}"))];
        if !stdout.trim().is_empty() {
            content.push(ContentBlock::text(stdout));
        }
        CallToolResult::error(content)
    };
    result.structured_content = structured;
    result
}

/// What an exit code of `lab` means (`lab --help`).
fn meaning(code: i32) -> &'static str {
    match code {
        2 => "bad usage or input",
        3 => "refused by a rule of the protocol",
        4 => "the experiment crashed; its result is recorded",
        _ => "failure",
    }
}
