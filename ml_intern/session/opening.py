"""The session opened in the background (after the cheap decisions of session/planning.py), while the chat
already shows its prompt. The heavy modules (langgraph, the tools, then litellm) load in one daemon thread,
one after the other: concurrent imports of the same packages could deadlock, and a user who quits at once must
not wait for an import to finish (nor for `prepare`: only the database connection is never cut short)."""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml_intern.session.session import Session

SESSION_MODULES = (  # what opening a session and building its services import (langgraph, tools)
    "ml_intern.session.session",
    "ml_intern.services",
    "ml_intern.tools.registry",
    "ml_intern.tools.local.confine",
    "ml_intern.configs.prompt",
)
MODEL_MODULES = ("litellm", "langchain_litellm")  # ~3 s: loaded while the user types


def import_in_background(*stages: Iterable[str]) -> list[Future[None]]:
    """Import each stage's modules in order in one thread; a future per stage (its failure, if any).

    Not a daemon: a user who quits while litellm is importing would otherwise leave the thread frozen
    holding the import lock, and the interpreter's finalization (litellm's transport `__del__` reporting
    an error) would wait on that lock forever. Exit waits the rest of the import (≤ ~3 s) instead."""
    futures: list[Future[None]] = [Future() for _ in stages]

    def load() -> None:
        for names, done in zip(stages, futures, strict=True):
            try:
                for name in names:
                    importlib.import_module(name)
            except BaseException as exc:  # the caller sees it when it awaits the stage
                done.set_exception(exc)
            else:
                done.set_result(None)

    threading.Thread(target=load, name="ml-intern-imports").start()
    return futures


class SessionOpening:
    """The session of `database` (a SQLite path or a postgresql:// URL), opened by a background task;
    `await session()` waits for it.

    `prepare` runs on the opened session (e.g. `Session.start`) before `session()` returns it. A failure
    (unknown thread, a database that cannot be opened) is raised by `session()`."""

    def __init__(
        self, database: Path | str, prepare: Callable[[Session], Awaitable[None]] | None = None
    ) -> None:
        self.database, self.prepare = database, prepare
        self.stack = AsyncExitStack()
        self.task: asyncio.Task[Session] | None = None
        self.imports: list[Future[None]] = []  # the session's modules, then litellm's
        self.opening_database = False  # the database connection is being made (never cut short)

    async def __aenter__(self) -> SessionOpening:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.settle()
        await self.stack.aclose()

    async def settle(self) -> Session | None:
        """Stop waiting: an opening still importing is cancelled, one opening the database is let finish
        (a connection cut short would keep the process alive); the session, when it opened."""
        if self.task is None:
            return None
        if not self.task.done() and not self.opening_database:
            self.task.cancel()
        await asyncio.wait({self.task})
        if self.task.cancelled() or self.task.exception() is not None:
            return None
        return self.task.result()

    def start(self, warm_model: bool = True) -> None:
        """Begin opening (once): imports in a thread, then the database and `prepare` in a task."""
        if self.task is None:
            self.imports = import_in_background(SESSION_MODULES, MODEL_MODULES if warm_model else ())
            self.task = asyncio.ensure_future(self._open())

    @property
    def ready(self) -> bool:
        """The session is open and prepared."""
        return self.task is not None and self.task.done() and not self.task.cancelled()

    async def session(self) -> Session:
        """The opened session (`start` first); its failure, raised."""
        assert self.task is not None, "start() first"
        return await asyncio.shield(self.task)  # a cancelled waiter must not cancel the opening

    @property
    def models_loaded(self) -> bool:
        """The background imports (litellm's last) are done."""
        return all(stage.done() for stage in self.imports)

    async def model_loaded(self) -> None:
        """Wait (without blocking the event loop) until the background imports are done."""
        for stage in self.imports:
            await asyncio.wrap_future(stage)

    async def _open(self) -> Session:
        await asyncio.wrap_future(self.imports[0])
        from ml_intern.session.session import open_session

        self.opening_database = True  # only the connection: `prepare` (a login prompt, say) may be cut short
        try:
            session = await self.stack.enter_async_context(open_session(self.database))
        finally:
            self.opening_database = False
        if self.prepare is not None:
            try:
                await self.prepare(session)
            except BaseException:  # cancelled (the user left) or failed: what it began is let go
                await session.close()
                raise
        return session
