"""The manager's Hub side: create a sandbox Space off the loop (a cancelled caller still gets it deleted),
delete Spaces with retries and say how it went, price the hardware."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ml_intern.graph.events import notice
from ml_intern.secrets import register_secrets
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.jobs.pricing import parse_seconds
from ml_intern.tools.sandbox.making import FREE_HARDWARE, passed_secrets
from ml_intern.tools.sandbox.spaces import TOKEN_SECRET, SandboxSpace, SpaceOps


def not_deleted(space_id: str) -> dict[str, Any]:
    return notice("sandbox", f"could not delete {space_id}: run ml-intern sandboxes --delete")


class SpaceKeeper:
    """Creates and deletes one run's sandbox Spaces; `send` takes the notices (deleted, could not delete)."""

    def __init__(self, env: ToolEnv, ops: SpaceOps, send: Callable[[dict[str, Any]], None]) -> None:
        self.env, self.ops, self.send = env, ops, send
        self.prices: dict[str, float | None] = {}
        # Deletions of Spaces whose making was cancelled while the Hub created them: (space id, deletion).
        self.late: list[tuple[str, asyncio.Future[bool]]] = []

    def price(self, hardware: str) -> float | None:
        """USD per hour of `hardware` (blocking: the Hub's job prices, else the table); None when unknown."""
        if hardware not in self.prices:
            free = hardware == FREE_HARDWARE
            self.prices[hardware] = 0.0 if free else hourly_prices(self.env)[0].get(hardware)
        return self.prices[hardware]

    async def create(self, hardware: str, thread_id: str | None, variables: dict[str, str]) -> SandboxSpace:
        """SpaceOps.create in a thread; a cancelled call still deletes the Space once the thread made it."""
        sleep = None if hardware == FREE_HARDWARE else int(parse_seconds(self.env.config.sandbox.sleep_time))
        secrets = {**passed_secrets(self.env), **variables}
        job = asyncio.ensure_future(asyncio.to_thread(self.ops.create, hardware, thread_id, secrets, sleep))
        try:
            space = await asyncio.shield(job)
        except asyncio.CancelledError:
            job.add_done_callback(self._delete_late)
            raise
        register_secrets({TOKEN_SECRET: space.token})
        return space

    def _delete_late(self, job: asyncio.Future[SandboxSpace]) -> None:
        if not job.cancelled() and job.exception() is None:
            space = job.result()
            register_secrets({TOKEN_SECRET: space.token})
            attempts = self.env.config.sandbox.delete_attempts
            loop = asyncio.get_running_loop()
            self.late.append(
                (space.space_id, loop.run_in_executor(None, self.ops.delete, space.space_id, attempts))
            )

    async def settle_late(self, limit: float) -> None:
        """Wait up to `limit` seconds for the late deletions; say which did not happen."""
        if self.late:
            await asyncio.wait([job for _, job in self.late], timeout=max(0.1, limit))
        for space_id, job in self.late:
            if not (job.done() and not job.exception() and job.result()):
                self.send(not_deleted(space_id))

    async def delete(self, space: SandboxSpace, limit: float) -> bool:
        """Delete `space` in a thread (shielded: a cancelled caller still deletes it); tell how it went."""
        attempts = self.env.config.sandbox.delete_attempts
        job = asyncio.ensure_future(asyncio.to_thread(self.ops.delete, space.space_id, attempts))
        done, _ = await asyncio.shield(asyncio.wait([job], timeout=max(0.1, limit)))
        if not (bool(done) and not job.exception() and job.result()):
            self.send(not_deleted(space.space_id))
            return False
        minutes = (time.time() - space.created_at) / 60 if space.created_at else 0.0
        price = self.prices.get(space.hardware)
        cost = f"about ${price * minutes / 60:.2f}" if price is not None else "price unknown"
        self.send(notice("sandbox", f"deleted {space.space_id} (ran {minutes:.0f} min, {cost})"))
        return True
