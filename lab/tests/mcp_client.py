"""The MCP client of lab/tests/mcp.rs: the official Python SDK (`mcp`) driving `lab mcp` over stdio.

Usage: mcp_client.py loop|errors LAB ROOT LEAF

Starts `LAB mcp --root ROOT` the way a coding agent does, goes through one
scenario with LEAF (`loop`: list the tools, a smoke run through `run` with a
progress token, `context`; `errors`: a run of a crashing leaf, bad input,
malformed requests, and a call after them) and prints what it saw as one JSON
document on stdout. The Rust test asserts on it; nothing is judged here.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def outcome(result):
    """A tool result as plain JSON: is_error, its text blocks, its structured content."""
    texts = [block.text for block in result.content if block.type == "text"]
    return {"is_error": bool(result.is_error), "texts": texts, "structured": result.structured_content}


async def protocol_error(call):
    """The JSON-RPC error a call was answered with (or its result, which the test then rejects)."""
    try:
        return {"result": outcome(await call)}
    except MCPError as err:
        return {"code": err.code, "message": err.message}


async def loop(session, leaf):
    """What an agent's loop does: list the tools, a smoke run with a progress token, the context."""
    seen = {}
    listed = await session.list_tools()
    seen["tools"] = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed.tools]
    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "message": message})

    run = await session.call_tool("run", {"leaf": leaf, "smoke": True, "seed": 3}, progress_callback=on_progress)
    seen["run"], seen["progress"] = outcome(run), progress
    seen["context"] = outcome(await session.call_tool("context", {"leaf": leaf}))
    return seen


async def errors(session, leaf):
    """What goes wrong: a crashing run, bad input, malformed requests, then a call after them."""
    seen = {}
    seen["crash"] = outcome(await session.call_tool("run", {"leaf": leaf}))
    seen["unknown_experiment"] = outcome(await session.call_tool("gate", {"experiment": "e99"}))
    seen["unknown_tool"] = await protocol_error(session.call_tool("nope", {}))
    seen["wrong_type"] = await protocol_error(session.call_tool("log", {"limit": "all"}))
    seen["unknown_argument"] = await protocol_error(session.call_tool("context", {"format": "csv"}))
    seen["after"] = outcome(await session.call_tool("log", {"limit": 0}))
    return seen


async def main(scenario, lab, root, leaf):
    server = StdioServerParameters(command=lab, args=["mcp", "--root", root], env=dict(os.environ), cwd=root)
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        seen = await {"loop": loop, "errors": errors}[scenario](session, leaf)
        seen["server"] = init.server_info.name
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
