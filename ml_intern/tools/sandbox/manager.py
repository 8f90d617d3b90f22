"""The thread's sandbox: made on first use (or preloaded), replaced by `sandbox_create`, deleted at exit.

One making at a time: a background task creates the Space, polls its stage, then its server's health; tool
calls wait for it shielded (a cancelled call does not cancel a making others share) and stream its progress
into their own run. Whatever is cancelled or fails after the Space exists deletes it. A refusal that asking
again cannot change (HTTP 401/402/403) is remembered; paid hardware is deleted at `sandbox.max_hours`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable
from typing import Any

from ml_intern.graph.events import notice
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.sandbox.client import SandboxClient
from ml_intern.tools.sandbox.keeper import SpaceKeeper
from ml_intern.tools.sandbox.making import (
    cancelling,
    close_client,
    created_text,
    locked_text,
    one_line,
    sandbox_status,
    settle,
    space_variables,
    until_healthy,
    until_running,
)
from ml_intern.tools.sandbox.progress import Progress
from ml_intern.tools.sandbox.spaces import FREE_HARDWARE, SandboxFailed, SandboxRefused, SandboxSpace

CLOSE_LIMIT = 15.0  # aclose never takes longer (exit must go on)


class SandboxManager:
    """One per run (ToolEnv.sandbox in the sandbox runtime)."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.thread_id: str | None = None  # set when the session begins a thread (the Space's variable)
        self.progress = Progress()
        self.keeper = SpaceKeeper(env, self.progress.send)
        self.ops = self.keeper.ops
        self._space: SandboxSpace | None = None  # the running sandbox
        self._client: SandboxClient | None = None
        self._making: asyncio.Task[SandboxClient] | None = None
        self._making_hardware = ""
        self._pending: SandboxSpace | None = None  # the Space being made, once created
        self._failed = ""  # why the last making failed
        self._expiry: asyncio.TimerHandle | None = None  # deletes paid hardware at sandbox.max_hours
        self._expiring: asyncio.Task[bool] | None = None
        self._lock = asyncio.Lock()  # one making at a time
        self._choosing = asyncio.Lock()  # one sandbox_create decision at a time
        self._preloaded = self._closed = False

    def preload(self) -> None:
        """Start making the default (cpu-basic) sandbox in the background, once (config sandbox.preload)."""
        if self.env.config.sandbox.preload and not (self._preloaded or self._closed):
            self._preloaded = True
            if self._making is None and self._space is None:
                self._start(FREE_HARDWARE, {})

    async def client(self) -> SandboxClient:
        """The running sandbox's SandboxClient: waits for the one being made, else makes the default one
        (progress as tool_log events); a ToolError when it cannot be made."""
        while True:
            self._check_open()
            if self._making is None and self._client is not None:
                return self._client
            self.keeper.check_refused(FREE_HARDWARE)
            task = self._making or self._start(FREE_HARDWARE, {})
            try:
                return await self._wait(task)
            except asyncio.CancelledError:
                if not task.cancelled() or cancelling():
                    raise  # our own call was cancelled
                self._forget(task)  # the making was replaced (sandbox_create) or closed: see what is next

    async def create(self, hardware: str, **extra: Any) -> str:
        """sandbox_create: make (or replace the default with) a sandbox on `hardware`; text for the model.
        `extra` (trackio_space_id, trackio_project) reach the sandbox as upper-case environment variables."""
        async with self._choosing:
            self._check_open()
            running = self._making_hardware if self._making else (self._space.hardware if self._space else "")
            if running == hardware:
                await self.client()
                return f"Sandbox already active on {hardware}: {self._current_id()}"
            if running and running != FREE_HARDWARE:
                return locked_text(self._current_id(), running)
            self.keeper.check_refused(hardware)
            replaced = f"Replaced {self._current_id()} on {running}: its files are lost.\n" if running else ""
            old, old_client = self._drop()
            if self._making is not None:
                self._making.cancel()  # its Space is deleted by the making itself
            task = self._start(hardware, space_variables(extra), replacing=old)
            await close_client(old_client)
            try:
                await self._wait(task)
            except asyncio.CancelledError:
                if cancelling() and hardware != FREE_HARDWARE:  # nobody else asked for paid hardware
                    task.cancel()
                    await settle(task, CLOSE_LIMIT)
                if cancelling():
                    raise
                self._check_open()
                raise ToolError("the sandbox being made was replaced: call sandbox_create again") from None
            price = self.keeper.prices.get(self._space.hardware) if self._space else None
            config = self.env.config.sandbox
            return replaced + created_text(self._space, price, config.sleep_time, config.max_hours)

    def status(self) -> dict[str, Any]:
        """For /status: space id, hardware, stage, price per hour, running since, cost so far."""
        space = self._pending if self._making else self._space
        hardware = self._making_hardware if self._making else (space.hardware if space else None)
        stage = "starting" if self._making else "running" if self._space else "none"
        stage = f"failed: {self._failed}" if stage == "none" and self._failed else stage
        return sandbox_status(space, hardware, stage, self.keeper.prices.get(hardware) if hardware else None)

    async def aclose(self) -> None:
        """Delete the sandbox (with retries); idempotent, never raises, at most ~CLOSE_LIMIT seconds."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + CLOSE_LIMIT
        try:
            if self._making is not None:
                self._making.cancel()  # the making deletes its Space (or leaves it to its creating thread)
                await settle(self._making, deadline - time.monotonic())
            space, client = self._drop()
            await close_client(client)
            if space is not None:
                await self.keeper.delete(space, deadline - time.monotonic())
            await settle(self._expiring, deadline - time.monotonic())  # a deletion at max_hours
            await self.keeper.settle_late(deadline - time.monotonic())
        except Exception as exc:  # exit must go on
            self.progress.send(notice("sandbox", f"closing the sandbox failed: {one_line(exc)}"))

    # ---- making ---------------------------------------------------------------------------------------

    def _start(
        self, hardware: str, variables: dict[str, str], replacing: SandboxSpace | None = None
    ) -> asyncio.Task[SandboxClient]:
        # A context of its own: the making outlives the tool call that started it (and that call's stream).
        coro = self._make(hardware, variables, replacing)
        task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        task.add_done_callback(self._forget)  # also when cancelled before it began
        self._making, self._making_hardware, self._pending, self._failed = task, hardware, None, ""
        return task

    def _forget(self, task: asyncio.Task[SandboxClient]) -> None:
        """`task` (a making) has ended: it is no longer the one being made; its failure is retrieved."""
        if task.done() and not task.cancelled():
            task.exception()  # no "exception was never retrieved" for a preload nobody waited for
        if self._making is task:
            self._making, self._pending = None, None

    async def _make(
        self, hardware: str, variables: dict[str, str], replacing: SandboxSpace | None
    ) -> SandboxClient:
        me = asyncio.current_task()
        assert me is not None
        try:
            async with self._lock:
                return await self._make_locked(hardware, variables, replacing)
        finally:
            self._forget(me)

    async def _make_locked(
        self, hardware: str, variables: dict[str, str], replacing: SandboxSpace | None
    ) -> SandboxClient:
        space, client = None, None
        try:
            if replacing is not None:
                await self.keeper.delete(replacing, CLOSE_LIMIT)
            self.progress.log(f"creating a sandbox on {hardware}")
            await asyncio.to_thread(self.keeper.price, hardware)
            space = self._pending = await self.keeper.create(hardware, self.thread_id, variables)
            await until_running(self.ops, self.env, space, self.progress.log)
            url = await asyncio.to_thread(self.ops.url, space.space_id)
            edge = await asyncio.to_thread(self.ops.edge_token, space.space_id)
            renew = functools.partial(asyncio.to_thread, self.ops.edge_token, space.space_id)
            client = SandboxClient(url, space.token, edge, self.env.hf_endpoint, renew=renew)
            await until_healthy(client, space)
        except BaseException as exc:
            await close_client(client)
            if space is not None:
                await self.keeper.delete(space, CLOSE_LIMIT)
            if isinstance(exc, Exception):
                self._failed = one_line(exc)
                self.progress.log(f"the sandbox could not start: {self._failed}")
                if isinstance(exc, SandboxRefused):
                    self.keeper.refuse(hardware, exc)
                    raise
                raise SandboxFailed(self._failed) from None
            raise
        self._space, self._client = space, client
        self.progress.log(f"{space.space_id} is running on {hardware}")
        self._expiry = self.keeper.limit(space, self._expire)
        return client

    def _expire(self, space: SandboxSpace) -> None:
        """Delete `space`, still the running sandbox, at sandbox.max_hours; later calls make a default one."""
        if self._space is space and not self._closed:
            self._expiring = self.keeper.expire(*self._drop())

    # ---- waiting, events, text ------------------------------------------------------------------------

    async def _wait(self, task: Awaitable[SandboxClient]) -> SandboxClient:
        """The making's client, shielded; its progress streams into this call's run meanwhile."""
        with self.progress.watching():
            try:
                return await asyncio.shield(task)
            except SandboxRefused as exc:
                raise ToolError(str(exc)) from None  # the remedy first: asking again changes nothing
            except SandboxFailed as exc:
                line = f"the sandbox could not start: {exc}; the next sandbox call tries a new one"
                raise ToolError(line) from None

    def _drop(self) -> tuple[SandboxSpace | None, SandboxClient | None]:
        """Forget the running sandbox: its Space (to delete) and client (to close)."""
        space, client, self._space, self._client = self._space, self._client, None, None
        if self._expiry is not None:
            self._expiry.cancel()
        return space, client

    def _current_id(self) -> str:
        space = self._pending if self._making else self._space
        return space.space_id if space else "the sandbox being made"

    def _check_open(self) -> None:
        if self._closed:
            raise ToolError("the sandbox was deleted: the run is ending")
