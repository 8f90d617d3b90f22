"""The run's sandbox as the session sees it: which thread it works for, where its notices go, moving it to
rebuilt services, its status (the sandbox itself: tools/sandbox/manager.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import EventSink
from ml_intern.session.threads import ThreadInfo
from ml_intern.tools.base import Runtime, ToolEnv


def tool_env(ctx: RunContext | None) -> ToolEnv | None:
    """The ToolEnv the run's tools were built with (None: no services, or stand-ins without one)."""
    return getattr(ctx.services, "env", None) if ctx is not None else None


def runtime_of(ctx: RunContext | None) -> Runtime:
    """Where the run's bash, read, write and edit run."""
    env = tool_env(ctx)
    return env.runtime if env is not None else "local"


def check_runtime(thread: ThreadInfo, runtime: Runtime) -> None:
    """`/resume` of a thread whose tools run elsewhere than the chat's: one line (resume it anew)."""
    if thread.tool_runtime != runtime:
        where = {"local": "locally", "sandbox": "in a sandbox"}
        raise UserError(
            f"thread {thread.thread_id} runs its tools {where.get(thread.tool_runtime, thread.tool_runtime)} "
            f"and this chat {where[runtime]}: leave and run ml-intern resume {thread.thread_id}"
        )


def move_sandbox(source: RunContext, target: RunContext | None) -> None:
    """Give `target`'s services the sandbox of `source`'s (rebuilt services: /model, /resume of a thread of
    another model), so that the run has one sandbox and closing `source` does not delete it."""
    old, new = tool_env(source), tool_env(target)
    if source is not target and old is not None and new is not None and old.sandbox is not None:
        new.sandbox, old.sandbox = old.sandbox, None  # `new`'s own manager never made anything


def name_sandbox(
    ctx: RunContext | None, thread_id: str, on_event: EventSink | None = None, preload: bool = False
) -> None:
    """The run's sandbox works for `thread_id` now (the variable of a Space made later) and tells `on_event`
    what no tool call waits for (a preload's progress, its deletion at exit); with `preload`, it starts being
    made in the background (config sandbox.preload)."""
    sandbox = getattr(tool_env(ctx), "sandbox", None)
    if sandbox is not None:
        sandbox.thread_id = thread_id
        if on_event is not None:
            sandbox.progress.on_event = on_event
        if preload:
            sandbox.preload()


def tools_status(ctx: RunContext | None) -> dict[str, Any]:
    """Where the run's tools run, for /status: {"runtime": "local"} or the sandbox manager's status()."""
    sandbox = getattr(tool_env(ctx), "sandbox", None)
    return sandbox.status() if sandbox is not None else {"runtime": "local"}


async def to_the_end(work: Awaitable[None]) -> None:
    """Await `work` to its end even when cancelled meanwhile (a signal during exit), then raise the cancel.
    For bounded work only (the sandbox's deletion): what runs as the process exits must not be cut short."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = cancelled or not task.done()
    if cancelled:
        raise asyncio.CancelledError
    task.result()
