"""The manager's Hub side: create a sandbox Space in a worker thread that deletes it itself when its caller
is gone (a cancelled making, the run ending), delete Spaces and say how it went, price the hardware."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from ml_intern.graph.events import notice
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.jobs.pricing import parse_seconds
from ml_intern.tools.sandbox.client import SandboxClient
from ml_intern.tools.sandbox.making import close_client, hours, passed_secrets
from ml_intern.tools.sandbox.spaces import FREE_HARDWARE, SandboxRefused, SandboxSpace, SpaceOps

DELETE_LIMIT = 15.0  # seconds a deletion is waited for (its thread may go on: each request is bounded)


def not_deleted(space_id: str) -> dict[str, Any]:
    return notice("sandbox", f"could not delete {space_id}: run ml-intern sandboxes --delete")


class Creation:
    """One SpaceOps.create in a worker thread. Abandoned by its caller, it deletes the Space it made in that
    same thread: no event loop (which may be shutting down) is needed for that."""

    def __init__(self, ops: SpaceOps) -> None:
        self.ops, self.lock = ops, threading.Lock()
        self.space_id = ""  # known once the thread picked it
        self.abandoned = False
        self.handed: SandboxSpace | None = None  # the Space handed to the caller (not abandoned in time)
        self.deleted: bool | None = None  # abandoned after making it: whether the thread deleted it

    def run(
        self, hardware: str, thread_id: str | None, secrets: dict[str, str], sleep: int | None
    ) -> SandboxSpace:
        self.space_id = self.ops.new_id()
        # SpaceOps.create registers the server's token as a secret (redacted) before anything else.
        space = self.ops.create(hardware, thread_id, secrets, sleep, space_id=self.space_id)
        with self.lock:
            if not self.abandoned:
                self.handed = space
                return space
        self.deleted = self.ops.delete_quietly(space.space_id)
        return space

    def abandon(self) -> SandboxSpace | None:
        """The caller is gone: the thread deletes what it makes; the Space it handed over already, if any
        (the caller's to delete)."""
        with self.lock:
            self.abandoned = True
            return self.handed


class SpaceKeeper:
    """Creates and deletes one run's sandbox Spaces; `send` takes the notices (deleted, could not delete)."""

    def __init__(
        self, env: ToolEnv, send: Callable[[dict[str, Any]], None], ops: SpaceOps | None = None
    ) -> None:
        self.env, self.ops, self.send = env, ops or SpaceOps(env), send
        self.prices: dict[str, float | None] = {}
        # Creations abandoned while their thread ran (it deletes what it makes): each with its thread's job.
        self.late: list[tuple[Creation, asyncio.Future[SandboxSpace]]] = []
        self.refused: dict[str, str] = {}  # hardware ("" for any) -> the Hub's lasting refusal, one line

    def refuse(self, hardware: str, refusal: SandboxRefused) -> None:
        """Remember a refusal (billing: for this hardware; the token: for any) and tell the user, once."""
        key = hardware if refusal.status == 402 else ""
        if key not in self.refused:
            self.refused[key] = str(refusal)
            self.send(notice("sandbox", str(refusal)))

    def check_refused(self, hardware: str) -> None:
        """A ToolError with the refusal that making a sandbox on `hardware` would meet again, if any."""
        refusal = self.refused.get("") or self.refused.get(hardware)
        if refusal:
            raise ToolError(refusal)

    def price(self, hardware: str) -> float | None:
        """USD per hour of `hardware` (blocking: the Hub's job prices, else the table); None when unknown."""
        if hardware not in self.prices:
            free = hardware == FREE_HARDWARE
            self.prices[hardware] = 0.0 if free else hourly_prices(self.env)[0].get(hardware)
        return self.prices[hardware]

    async def create(self, hardware: str, thread_id: str | None, variables: dict[str, str]) -> SandboxSpace:
        """SpaceOps.create in a thread; a cancelled call leaves the Space to that thread to delete (or deletes
        it here when the thread had handed it over)."""
        sleep = None if hardware == FREE_HARDWARE else int(parse_seconds(self.env.config.sandbox.sleep_time))
        secrets = {**passed_secrets(self.env), **variables}
        creation = Creation(self.ops)
        job = asyncio.ensure_future(asyncio.to_thread(creation.run, hardware, thread_id, secrets, sleep))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            handed = creation.abandon()
            if handed is None:
                self.late.append((creation, job))
                job.add_done_callback(retrieve)
            else:
                await self.delete(handed, DELETE_LIMIT)
            raise

    async def settle_late(self, limit: float) -> None:
        """Wait up to `limit` seconds for the abandoned creations' threads; say what they deleted or not."""
        late, self.late = self.late, []
        if late:
            await asyncio.wait([job for _, job in late], timeout=max(0.1, limit))
        for creation, job in late:
            if not job.done():  # still creating or deleting: its thread goes on, the run ends first
                self.send(not_deleted(creation.space_id or "the sandbox being created"))
            elif not job.cancelled() and job.exception() is None:
                if creation.deleted:
                    self.send(deleted(job.result(), self.prices.get(job.result().hardware)))
                else:
                    self.send(not_deleted(creation.space_id))

    def limit(
        self, space: SandboxSpace, expire: Callable[[SandboxSpace], None]
    ) -> asyncio.TimerHandle | None:
        """Paid hardware: call `expire(space)` once it is sandbox.max_hours old (its cost is bounded)."""
        if space.hardware == FREE_HARDWARE:
            return None
        left = space.created_at + self.env.config.sandbox.max_hours * 3600 - time.time()
        return asyncio.get_running_loop().call_later(max(0.0, left), expire, space)

    def expire(self, space: SandboxSpace | None, client: SandboxClient | None) -> asyncio.Task[bool] | None:
        """Delete `space` (the manager dropped it) now, saying it reached sandbox.max_hours: the task."""
        if space is None:
            return None
        why = f"it reached sandbox.max_hours ({hours(self.env.config.sandbox.max_hours)})"

        async def expire() -> bool:
            await close_client(client)
            return await self.delete(space, DELETE_LIMIT, why)

        return asyncio.get_running_loop().create_task(expire(), context=contextvars.Context())

    async def delete(self, space: SandboxSpace, limit: float, why: str = "") -> bool:
        """Delete `space` in a thread (shielded: a cancelled caller still deletes it); tell how it went."""
        job = asyncio.ensure_future(asyncio.to_thread(self.ops.delete, space.space_id))
        job.add_done_callback(retrieve)
        try:
            done, _ = await asyncio.shield(asyncio.wait([job], timeout=max(0.1, limit)))
        except asyncio.CancelledError:  # the run ends first: its thread goes on, unseen
            self.send(not_deleted(space.space_id))
            raise
        if not (bool(done) and not job.exception() and job.result()):
            self.send(not_deleted(space.space_id))
            return False
        self.send(deleted(space, self.prices.get(space.hardware), why))
        return True


def deleted(space: SandboxSpace, price: float | None, why: str = "") -> dict[str, Any]:
    """The notice of a deleted sandbox: why, how long it ran, about what it cost."""
    minutes = (time.time() - space.created_at) / 60 if space.created_at else 0.0
    cost = f"about ${price * minutes / 60:.2f}" if price is not None else "price unknown"
    return notice(
        "sandbox", f"deleted {space.space_id}{': ' + why if why else ''} (ran {minutes:.0f} min, {cost})"
    )


def retrieve(job: asyncio.Future[Any]) -> None:
    """No "exception was never retrieved" for a job nobody waits for any more (its outcome is told)."""
    if not job.cancelled():
        job.exception()
