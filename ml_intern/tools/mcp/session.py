"""One MCP server connection, held open for the whole run by a background task.

anyio cancel scopes (inside the MCP transports) must be exited by the task that entered them, so one task per
server enters the transport and the session, lists the tools, and waits until it is told to stop; tool calls
from any task of the same event loop go through the open session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from langchain_core.tools import BaseTool, ToolException
from mcp import ClientSession, McpError, StdioServerParameters
from mcp.types import CONNECTION_CLOSED

from ml_intern.graph import events
from ml_intern.tools.base import ToolError, emit
from ml_intern.tools.mcp.stderr_log import RedactedLog

CLOSE_TIMEOUT_S = 10  # the stdio transport itself waits 2 s for an exit, then terminates the process tree
CONNECTION_LOST = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, EOFError)


def first_cause(exc: BaseException) -> BaseException:
    """The first leaf exception of an exception group (anyio wraps transport failures in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_failure(exc: BaseException) -> str:
    """`Type: message` on one line."""
    cause = first_cause(exc)
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0][:300]}" if lines else type(cause).__name__


def connection_lost(exc: BaseException) -> bool:
    """Whether a failed call means the server or its connection is gone (rather than a bad call)."""
    cause = first_cause(exc)
    if isinstance(cause, McpError):
        return cause.error.code == CONNECTION_CLOSED
    return isinstance(cause, CONNECTION_LOST + (ConnectionError, OSError))


class McpConnection:
    """One configured MCP server: started once, its tools listed once, its session shared by every call."""

    def __init__(self, name: str, settings: dict[str, Any], log_path: Path) -> None:
        self.name = name
        self.settings = settings  # one validated `mcpServers` entry (configs/schema.py McpServer)
        self.log_path = log_path  # a stdio server's stderr goes here, never to the terminal
        self.tools: list[BaseTool] = []  # the adapter's tools, bound to the open session
        self.failure: str | None = None  # why the server cannot be used, once it cannot
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reported = False  # the failure was reported (startup failures are reported by the caller)
        self._stderr_log: RedactedLog | None = None  # a stdio server's stderr, copied to log_path

    async def start(self) -> None:
        """Start the server and list its tools within the configured timeout; on failure set `failure`."""
        self._task = asyncio.create_task(self._hold(), name=f"mcp-server-{self.name}")
        timeout = float(self.settings.get("timeout") or 30)
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            self.failure = f"did not start within {timeout:g} s"
            self._task.cancel()
            await asyncio.wait({self._task})

    async def _hold(self) -> None:
        """The background task: open the session, list the tools, keep both open until `close`."""
        try:
            async with self._session() as session:
                await session.initialize()
                from langchain_mcp_adapters.tools import load_mcp_tools

                self.tools = await load_mcp_tools(session, server_name=self.name)
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            self.failure = self.failure or "stopped"
            raise
        except Exception as exc:
            self.failure = self.failure or describe_failure(exc) + self._log_hint()
        finally:
            if not self._stop.is_set():
                self.failure = self.failure or "the server closed the connection" + self._log_hint()
            self._ready.set()
            self._closed.set()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[ClientSession]:
        """An uninitialised session over the configured transport."""
        settings = self.settings
        if settings["transport"] != "stdio":
            from langchain_mcp_adapters.sessions import create_session

            transport = "streamable_http" if settings["transport"] == "http" else "sse"
            connection = {"transport": transport, "url": settings["url"], "headers": settings.get("headers")}
            async with create_session(connection) as session:  # type: ignore[arg-type]
                yield session
            return
        from mcp.client.stdio import stdio_client

        # Only the configured variables (the SDK adds PATH, HOME, USER, SHELL, TERM, LOGNAME): no credentials.
        params = StdioServerParameters(
            command=settings["command"],
            args=list(settings.get("args") or []),
            env=dict(settings.get("env") or {}),
            cwd=settings.get("cwd"),
        )
        self._stderr_log = log = await asyncio.to_thread(self._open_log)  # file I/O off the event loop
        try:
            async with stdio_client(params, errlog=log.stderr) as (read, write):
                log.started()
                async with ClientSession(read, write) as session:
                    yield session
        finally:
            log.started()  # closes our end of the pipe if the server never started

    def _open_log(self) -> RedactedLog:
        """The server's stderr log (redacted), appended to, headed by a line naming this start."""
        command = " ".join([self.settings["command"], *(self.settings.get("args") or [])])
        header = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting MCP server {self.name}: {command}\n"
        return RedactedLog(self.log_path, header)

    def _log_hint(self) -> str:
        return f" (server log: {self.log_path})" if self.settings["transport"] == "stdio" else ""

    async def call(self, tool: BaseTool, arguments: dict[str, Any]) -> tuple[Any, Any]:
        """Call `tool` over the open session: (content blocks, artifact); a ToolError when it fails."""
        if self.failure:
            self.lost("the connection closed")
            raise ToolError(self.unavailable())
        call = asyncio.ensure_future(tool.coroutine(**arguments))  # type: ignore[misc]
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({call, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not call.done():
                call.cancel()
        if not call.done() or call.cancelled():
            self.lost("the connection closed")
            raise ToolError(self.unavailable())
        try:
            return call.result()
        except ToolException as exc:  # the MCP tool reported an error (isError): the model reads it
            raise ToolError(str(exc)) from None
        except Exception as exc:
            if not connection_lost(exc):
                raise
            self.lost(describe_failure(exc))
            raise ToolError(self.unavailable()) from None

    def lost(self, reason: str) -> None:
        """The server went away mid-run: say so once, and let the background task clean up."""
        if self.failure is None:
            self.failure = f"stopped during the run ({reason}){self._log_hint()}"
        if not self._reported:
            self._reported = True
            emit(events.notice("mcp", f"MCP server {self.name}: {self.failure}"))
        self._stop.set()

    def mark_reported(self) -> None:
        """The caller has reported the start-up failure; calls must not report it again."""
        self._reported = True

    def unavailable(self) -> str:
        """What a call to one of this server's tools answers once the server is unusable."""
        return (
            f"MCP server '{self.name}' is not available: {self.failure}. Its tools cannot be used in this "
            "run; carry on without them or ask the user to fix the server."
        )

    async def close(self) -> None:
        """Stop the server (stdio: close its stdin, then terminate it) and end the background task."""
        self._stop.set()
        self._reported = True
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT_S)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})
        if self._stderr_log is not None:  # the server's last lines reach the log before the run ends
            await asyncio.to_thread(self._stderr_log.close)
        self.failure = self.failure or "closed at the end of the run"
