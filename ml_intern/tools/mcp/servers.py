"""MCP server tools: the configured `mcpServers`, started once per run, offered as ordinary tools.

Servers start concurrently at the run's first model call (`Services.start`), each in its own background task
that keeps one session open until `close_all`/`Services.aclose`; a server that fails to start or dies is
reported once and its tools answer with an error, while the run goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.logs import RedactSecrets, routes_library_logs
from ml_intern.tools.mcp.hf_auth import SKIPPED_HF_TOOLS, on_hf_host, with_hf_token
from ml_intern.tools.mcp.results import bounded, result_text
from ml_intern.tools.mcp.session import McpConnection
from ml_intern.tools.undeclared import READ_ONLY

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what model providers accept as a function name
MAX_DESCRIPTION_CHARS = 1000  # servers may describe tools at length; every schema is sent on every call


class McpServers:
    """The configured MCP servers: started together once, their tools offered, closed together."""

    def __init__(self, servers: dict[str, dict[str, Any]], home: Path) -> None:
        self.home = home
        self.connections = [
            McpConnection(name, with_hf_token(settings), home / "logs" / f"mcp-{safe_name(name)}.log")
            for name, settings in servers.items()
        ]
        self.on_hf_host = {name for name, settings in servers.items() if on_hf_host(settings, os.environ)}
        self.loop = asyncio.get_running_loop()
        self._started: asyncio.Future[list[str]] | None = None

    async def start(self) -> list[str]:
        """Start every server (concurrently, once); the start-up problems, for the first caller only."""
        first = self._started is None
        if self._started is None:
            self._started = asyncio.ensure_future(self._start_all())
        problems = await asyncio.shield(self._started)
        return problems if first else []

    async def _start_all(self) -> list[str]:
        await asyncio.to_thread(send_sdk_logs_to, self.home / "logs" / "mcp-client.log")  # off the loop
        await asyncio.gather(*(connection.start() for connection in self.connections))
        problems = []
        for connection in self.connections:
            if connection.failure:
                connection.mark_reported()
                problems.append(f"MCP server {connection.name} failed to start: {connection.failure}")
        return problems

    def tools(self, reserved: set[str]) -> list[BaseTool]:
        """Every started server's tools under names that shadow none of `reserved` (nor each other)."""
        listed = [
            (c, tool)
            for c in self.connections
            for tool in c.tools
            if self.offers(c.name, tool.name, reserved)
        ]
        names = offered_names([(c.name, tool.name) for c, tool in listed], reserved)
        spill_dir = self.home / "outputs"
        return [offered_tool(c, tool, name, spill_dir) for (c, tool), name in zip(listed, names, strict=True)]

    def offers(self, server: str, tool: str, reserved: set[str]) -> bool:
        """Whether to offer a server's tool: the HF server's copies of built-in tools are left out."""
        return server not in self.on_hf_host or (tool not in SKIPPED_HF_TOOLS and tool not in reserved)

    async def aclose(self) -> None:
        """Stop every server; a later `shared_servers` call starts afresh."""
        _shared[:] = [(key, pool) for key, pool in _shared if pool is not self]
        await asyncio.gather(*(connection.close() for connection in self.connections))


def safe_name(text: str) -> str:
    """`text` with every character a tool or file name cannot hold replaced by `_`, cut to 64."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)[:64] or "_"


def offered_names(listed: list[tuple[str, str]], reserved: set[str]) -> list[str]:
    """A name per (server, tool): its own if valid, unique and not reserved, else `<server>__<tool>`."""
    counts = Counter(tool for _, tool in listed)
    taken = set(reserved)
    names = []
    for server, tool in listed:
        keep = TOOL_NAME.match(tool) and counts[tool] == 1 and tool not in reserved
        name = base = tool if keep else safe_name(f"{server}__{tool}")
        number = 2
        while name in taken:
            suffix = f"_{number}"
            name, number = base[: 64 - len(suffix)] + suffix, number + 1
        taken.add(name)
        names.append(name)
    return names


def offered_tool(connection: McpConnection, tool: BaseTool, name: str, spill_dir: Path) -> BaseTool:
    """`tool` as offered to the model: renamed, with a bounded description and a bounded text result."""

    async def run(**arguments: Any) -> str:
        content, artifact = await connection.call(tool, arguments)
        return await asyncio.to_thread(bounded, result_text(content, artifact), name, spill_dir)  # may write

    description = tool.description or f"Tool {tool.name} of MCP server {connection.name}."
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[: MAX_DESCRIPTION_CHARS - 3] + "..."
    return StructuredTool(
        name=name,
        description=description,
        args_schema=tool.args_schema,
        coroutine=run,
        metadata={"mcp_server": connection.name, "mcp_tool": tool.name, READ_ONLY: declares_read_only(tool)},
    )


def declares_read_only(tool: BaseTool) -> bool:
    """Whether the server annotates the tool `readOnlyHint: true` (the adapter copies annotations into
    its metadata); such tools run without asking unless the config says otherwise (tools/undeclared.py)."""
    return (tool.metadata or {}).get("readOnlyHint") is True


def send_sdk_logs_to(path: Path) -> None:
    """Keep the MCP SDK's log records (e.g. about a server printing junk on stdout) off the terminal,
    secrets redacted; when `setup_logging` already sends them to the log file, leave them there."""
    if routes_library_logs():
        return
    for logger_name in ("mcp", "langchain_mcp_adapters"):
        logger = logging.getLogger(logger_name)
        if logger.handlers:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.addFilter(RedactSecrets())
        logger.addHandler(handler)
        logger.propagate = False


_shared: list[tuple[str, McpServers]] = []


def shared_servers(servers: dict[str, dict[str, Any]], home: Path) -> McpServers:
    """The servers for this config on the running event loop, shared by every Services (e.g. after /model)."""
    loop = asyncio.get_running_loop()
    key = json.dumps([servers, str(home)], sort_keys=True, default=str)
    _shared[:] = [(k, pool) for k, pool in _shared if not pool.loop.is_closed()]
    for existing_key, pool in _shared:
        if existing_key == key and pool.loop is loop:
            return pool
    pool = McpServers(servers, home)
    _shared.append((key, pool))
    return pool


async def close_all() -> None:
    """Stop every MCP server started on the running event loop (the CLI calls this at exit)."""
    loop = asyncio.get_running_loop()
    closing = [pool for _, pool in _shared if pool.loop is loop]
    await asyncio.gather(*(pool.aclose() for pool in closing))
