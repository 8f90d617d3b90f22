"""Services for runs that arrive without them (LangGraph Studio and the API server send only plain settings):
built once per distinct setting, off the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from ml_intern.graph.context import RunContext
from ml_intern.model.credentials import adopt_saved_hf_token
from ml_intern.services import Services, build_services

_built: dict[tuple, Services] = {}  # services built for LangGraph Studio runs, one per distinct setting
_building = threading.Lock()  # held by the worker thread that builds, never on the event loop


async def services_for(ctx: RunContext | None) -> Services:
    """The services of `ctx`: the injected ones, else built once per distinct setting, off the event loop.

    LangGraph Studio sends only the plain settings; building reads config files and the working directory,
    which must not block the server's event loop (langgraph-api refuses blocking calls there).
    """
    ctx = ctx or RunContext()
    if ctx.services is None:
        key = (ctx.model, ctx.workdir, tuple(ctx.tools or ()), ctx.stream)
        ctx.services = _built.get(key) or await asyncio.to_thread(_build_once, key, ctx)
    return ctx.services


def _build_once(key: tuple, ctx: RunContext) -> Services:
    """Build the services for `key` unless another run already did (runs in a worker thread)."""
    with _building:
        if key not in _built:
            environ = dict(os.environ)
            adopt_saved_hf_token(environ)  # as the CLI does: a token saved by `hf auth login` counts
            _built[key] = build_services(
                model=ctx.model or None,
                workdir=Path(ctx.workdir or os.getcwd()),
                tool_names=ctx.tools,
                stream=ctx.stream,
                environ=environ,
                config=None,
            )
            _built[key].load_model()  # litellm's import blocks: here, not on the event loop
        return _built[key]
