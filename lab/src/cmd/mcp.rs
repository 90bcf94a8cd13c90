//! `lab mcp`: serve this lab's verbs to a coding agent as an MCP server over stdio.

use anyhow::Result;
use clap::Args;

use crate::ctx::Ctx;

/// Serve this lab to a coding agent: an MCP server on stdin and stdout.
///
/// Its tools are the verbs of an agent's loop (`context`, `run`, `result`, ...:
/// the client lists them), each taking the arguments of the command of the same
/// name as JSON, read from this CLI's own definitions. A call runs that
/// command on this lab root with --json and answers with its output; a command
/// that fails answers a tool error with its message, hint and exit code. `run`
/// sends its progress lines as MCP progress notifications. Register it with an
/// agent as the command `lab mcp --root DIR` (README: "For agents: MCP"). It
/// stops when the client closes stdin.
#[derive(Debug, Args)]
pub struct McpArgs {}

pub fn run(ctx: &Ctx, _args: McpArgs) -> Result<()> {
    crate::mcp::serve(ctx.lab()?.dir)
}
