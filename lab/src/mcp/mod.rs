//! `lab mcp`: lab's verbs as the tools of an MCP server over stdio, with rmcp
//! (the official Rust SDK).
//!
//! The CLI stays the one implementation: a call is translated into the argv of
//! the subcommand of the same name ([`tools`]) and runs as a child `lab`
//! process ([`child`]), so a tool answers exactly what the command prints
//! with `--json`, refuses what it refuses, and a crash or panic in one call
//! is that call's error while the server goes on. A request the server cannot
//! route (an unknown tool, an argument of the wrong JSON type) is a protocol
//! error (invalid params) and runs nothing. This process's stdout is the
//! protocol's channel: nothing else writes to it here, since every command
//! runs in a child whose stdout is piped.

mod child;
mod tools;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt as _};

use tools::Catalog;

const INSTRUCTIONS: &str = "lab: a research memory, a sandboxed runner and an honest gate. Each tool runs \
the `lab` command of the same name on this lab root and answers with its JSON output; a failed command is a \
tool error with the CLI's message, hint and exit code (2 bad usage or input, 3 refused by a rule of the \
protocol, 4 the experiment crashed and its result is recorded). Read `context` first, then a leaf's \
program.md; `run` reports progress while it runs.";

/// Serve the lab at `root` on stdin and stdout until the client closes stdin.
pub fn serve(root: PathBuf) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let catalog = Catalog::default();
        let server = Server { root, tools: catalog.tools(), catalog };
        let running = server.serve(rmcp::transport::stdio()).await.context("the MCP client did not initialize")?;
        running.waiting().await.context("the MCP server stopped")?;
        Ok(())
    })
}

#[derive(Debug)]
struct Server {
    root: PathBuf,
    catalog: Catalog,
    tools: Vec<Tool>,
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lab", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let argv = self.catalog.argv(&request.name, request.arguments.unwrap_or_default())?;
        let root = self.root.clone();
        // Its own task: a panic in one call is that call's error, not the server's end.
        let call = tokio::spawn(async move { child::call(&root, &argv, &context).await });
        let result = call.await.map_err(|e| ErrorData::internal_error(format!("`{}`: {e}", request.name), None))?;
        Ok(result.into())
    }
}
