"""The checkpointer langgraph.json gives LangGraph Server (`checkpointer.path`): ml-intern's Postgres saver
when the database target is a URL (ML_INTERN_DATABASE_URL, or the config's `database_url`), so the server's
runs and the CLI's threads share one history; otherwise the server's own default (`langgraph dev`)."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

NEEDS_URL = (
    "ml-intern's langgraph.json stores checkpoints with ml-intern's saver: set ML_INTERN_DATABASE_URL="
    "postgresql://… (only `langgraph dev` has a default without it)"
)


def shared_url(environ: dict[str, str]) -> str:
    """The Postgres URL threads are shared in ("" when the target is this machine's SQLite file)."""
    from ml_intern.paths import database_target

    target = database_target(environ)
    return target if isinstance(target, str) else ""


def server_default() -> Any:
    """The in-memory runtime's own checkpointer (what `langgraph dev` uses without a `checkpointer` key)."""
    if os.environ.get("LANGGRAPH_RUNTIME_EDITION", "inmem") != "inmem":
        raise RuntimeError(NEEDS_URL)
    runtime = importlib.import_module("langgraph_runtime.checkpoint")  # the server's own, only inside it
    return runtime.Checkpointer()


@asynccontextmanager
async def saver() -> AsyncIterator[Any]:
    """ml-intern's saver on the shared Postgres (set up under its lock), open while the server runs."""
    url = await asyncio.to_thread(shared_url, dict(os.environ))  # the config file: no blocking on the loop
    if not url:
        yield server_default()
        return
    from ml_intern.session.storage import open_storage

    async with open_storage(url) as storage:
        yield storage.saver
