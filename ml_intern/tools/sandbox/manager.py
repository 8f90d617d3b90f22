"""The thread's sandbox: made on first use (or preloaded), replaced by `sandbox_create`, deleted at exit.

One making at a time: a background task creates the Space, polls its stage, then its server's health; tool
calls wait for it shielded (a cancelled call does not cancel a making others share) and stream its progress
into their own run. Whatever is cancelled or fails after the Space exists deletes it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable
from contextlib import suppress
from typing import Any

from ml_intern.graph.events import EventSink, notice, tool_log
from ml_intern.secrets import redact, redact_value, register_secrets
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.jobs.pricing import parse_seconds
from ml_intern.tools.sandbox.client import SandboxClient
from ml_intern.tools.sandbox.spaces import (
    FAILED_STAGES,
    RUNNING,
    TOKEN_SECRET,
    SandboxFailed,
    SandboxSpace,
    SpaceOps,
)

FREE_HARDWARE = "cpu-basic"  # Spaces' free hardware (Jobs bill it, Spaces do not)
FIRST_POLL, LONGEST_POLL = 0.5, 5.0  # seconds between stage / health polls: doubling from the first
PROGRESS_EVERY = 15.0  # a progress line at least this often while the stage does not change
HEALTH_TIMEOUT = 180.0  # how long a running Space's server may take to answer its health check
KILL_TIMEOUT = 5.0
CLOSE_LIMIT = 15.0  # aclose never takes longer (exit must go on)
EXTRA_ARGUMENTS = frozenset({"trackio_space_id", "trackio_project"})  # sandbox_create's, passed to the Space
VERBS = {
    "BUILDING": "building",
    "RUNNING_BUILDING": "building",
    "APP_STARTING": "starting",
    "MISSING": "creating",
}


class SandboxManager:
    """One per run (ToolEnv.sandbox in the sandbox runtime)."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.thread_id: str | None = None  # set when the session begins a thread (the Space's variable)
        self.on_event: EventSink | None = None  # where progress goes when no tool call is waiting (session)
        self.ops = SpaceOps(env)
        self._space: SandboxSpace | None = None  # the running sandbox
        self._client: SandboxClient | None = None
        self._making: asyncio.Task[SandboxClient] | None = None
        self._making_hardware = ""
        self._pending: SandboxSpace | None = None  # the Space being made, once created
        self._failed = ""  # why the last making failed
        self._prices: dict[str, float | None] = {}
        self._sinks: list[tuple[Any, EventSink]] = []  # the waiting tool calls' event streams (key, sink)
        # Deletions of Spaces whose making was cancelled while the Hub created them: (space id, deletion).
        self._late: list[tuple[str, asyncio.Future[bool]]] = []
        self._lock = asyncio.Lock()  # one making at a time
        self._choosing = asyncio.Lock()  # one sandbox_create decision at a time
        self._preloaded = self._closed = False

    @property
    def default_hardware(self) -> str:
        return self.env.config.sandbox.hardware

    def preload(self) -> None:
        """Start making the default (cpu-basic) sandbox in the background, once (config sandbox.preload)."""
        if self.env.config.sandbox.preload and not (self._preloaded or self._closed):
            self._preloaded = True
            if self._making is None and self._space is None:
                self._start(self.default_hardware, {})

    async def client(self) -> SandboxClient:
        """The running sandbox's SandboxClient: waits for the one being made, else makes the default one
        (progress as tool_log events); a ToolError when it cannot be made."""
        while True:
            self._check_open()
            if self._making is None and self._client is not None:
                return self._client
            task = self._making or self._start(self.default_hardware, {})
            try:
                return await self._wait(task)
            except asyncio.CancelledError:
                if not task.cancelled() or _cancelling():
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
            if running and running != self.default_hardware:
                return (
                    f"Hardware cannot be changed while {self._current_id()} runs on {running} (its files "
                    "would be lost). Keep working on it, or ask the user to delete it (ml-intern sandboxes "
                    "--delete) and start a new thread."
                )
            replaced = f"Replaced {self._current_id()} on {running}: its files are lost.\n" if running else ""
            old, old_client = self._drop()
            if self._making is not None:
                self._making.cancel()  # its Space is deleted by the making itself
            task = self._start(hardware, _variables(extra), replacing=old)
            await _close(old_client)
            try:
                await self._wait(task)
            except asyncio.CancelledError:
                if _cancelling() and hardware != self.default_hardware:  # nobody else asked for paid hardware
                    task.cancel()
                    await _settle(task, CLOSE_LIMIT)
                if _cancelling():
                    raise
                self._check_open()
                raise ToolError("the sandbox being made was replaced: call sandbox_create again") from None
            return replaced + self._created_text()

    def status(self) -> dict[str, Any]:
        """For /status: space id, hardware, stage, price per hour, running since, cost so far."""
        space = self._pending if self._making else self._space
        hardware = self._making_hardware if self._making else (space.hardware if space else None)
        if self._making:
            stage = "starting"
        elif self._space:
            stage = "running"
        else:
            stage = f"failed: {self._failed}" if self._failed else "none"
        price = self._prices.get(hardware) if hardware else None
        since = space.created_at if space else None
        cost = price * (time.time() - since) / 3600 if price is not None and since else None
        return {
            "runtime": "sandbox",
            "space_id": space.space_id if space else None,
            "hardware": hardware,
            "stage": stage,
            "price_per_hour": price,
            "running_since": since,
            "cost_so_far": cost,
        }

    async def kill(self) -> None:
        """Stop every command running in the sandbox (a cancelled turn); best effort, never raises."""
        if self._client is None or self._making is not None:
            return
        with suppress(Exception):
            await asyncio.wait_for(self._client.call("kill", {}, KILL_TIMEOUT), KILL_TIMEOUT)

    async def aclose(self) -> None:
        """Delete the sandbox (with retries); idempotent, never raises, at most ~CLOSE_LIMIT seconds."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + CLOSE_LIMIT
        try:
            if self._making is not None:
                self._making.cancel()  # the making deletes its Space
                await _settle(self._making, deadline - time.monotonic())
            if self._late:
                await asyncio.wait(
                    [job for _, job in self._late], timeout=max(0.1, deadline - time.monotonic())
                )
            for space_id, job in self._late:
                if not (job.done() and not job.exception() and job.result()):
                    self._send(
                        notice("sandbox", f"could not delete {space_id}: run ml-intern sandboxes --delete")
                    )
            space, client = self._drop()
            await _close(client)
            if space is not None:
                await self._delete(space, deadline - time.monotonic())
        except Exception as exc:  # exit must go on
            self._send(notice("sandbox", f"closing the sandbox failed: {_one_line(exc)}"))

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
                await self._delete(replacing, CLOSE_LIMIT)
            self._progress(f"creating a sandbox on {hardware}")
            await asyncio.to_thread(self._price, hardware)
            space = self._pending = await self._create_space(hardware, variables)
            await self._until_running(space)
            url = await asyncio.to_thread(self.ops.url, space.space_id)
            edge = await asyncio.to_thread(self.ops.edge_token, space.space_id)
            renew = functools.partial(asyncio.to_thread, self.ops.edge_token, space.space_id)
            client = SandboxClient(url, space.token, edge, self.env.hf_endpoint, renew=renew)
            await self._until_healthy(client, space)
        except BaseException as exc:
            await _close(client)
            if space is not None:
                await self._delete(space, CLOSE_LIMIT)
            if isinstance(exc, Exception):
                self._failed = _one_line(exc)
                self._progress(f"the sandbox could not start: {self._failed}")
                raise SandboxFailed(self._failed) from None
            raise
        self._space, self._client = space, client
        self._progress(f"{space.space_id} is running on {hardware}")
        return client

    async def _create_space(self, hardware: str, variables: dict[str, str]) -> SandboxSpace:
        """SpaceOps.create in a thread; a cancelled call still deletes the Space once the thread made it."""
        sleep = None if hardware == FREE_HARDWARE else int(parse_seconds(self.env.config.sandbox.sleep_time))
        secrets = {**self._passed_secrets(), **variables}
        job = asyncio.ensure_future(
            asyncio.to_thread(self.ops.create, hardware, self.thread_id, secrets, sleep)
        )
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
            self._late.append(
                (space.space_id, loop.run_in_executor(None, self.ops.delete, space.space_id, attempts))
            )

    def _passed_secrets(self) -> dict[str, str]:
        """The variables named in `bash.env_passthrough` that are set: the same rule as local bash."""
        environ = {**self.env.environ}
        if self.env.hf_token and "HF_TOKEN" not in environ:
            environ["HF_TOKEN"] = self.env.hf_token
        return {name: environ[name] for name in self.env.config.bash.env_passthrough if environ.get(name)}

    async def _until_running(self, space: SandboxSpace) -> None:
        name, limit = space.space_id.split("/")[-1], parse_seconds(self.env.config.sandbox.start_timeout)
        start = told = time.monotonic()
        last, wait = "", FIRST_POLL
        while True:
            stage, _ = await asyncio.to_thread(self.ops.stage, space.space_id)
            if stage == RUNNING:
                return
            if stage in FAILED_STAGES:
                raise SandboxFailed(f"{space.space_id} stopped with {stage}")
            now = time.monotonic()
            if stage != last or now - told >= PROGRESS_EVERY:
                verb = VERBS.get(stage, stage.lower().replace("_", " "))
                self._progress(f"{verb} {name} on {space.hardware} ({now - start:.0f} s)")
                last, told = stage, now
            if now - start >= limit:
                raise SandboxFailed(f"{space.space_id} was not running after {limit:.0f} s (stage {stage})")
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_POLL)

    async def _until_healthy(self, client: SandboxClient, space: SandboxSpace) -> None:
        start, wait = time.monotonic(), FIRST_POLL
        while True:
            with suppress(Exception):
                if await client.health():
                    return
            if time.monotonic() - start >= HEALTH_TIMEOUT:
                raise SandboxFailed(
                    f"the server of {space.space_id} did not answer in {HEALTH_TIMEOUT:.0f} s"
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_POLL)

    async def _delete(self, space: SandboxSpace, limit: float) -> bool:
        """Delete `space` in a thread (shielded: a cancelled caller still deletes it); tell how it went."""
        attempts = self.env.config.sandbox.delete_attempts
        job = asyncio.ensure_future(asyncio.to_thread(self.ops.delete, space.space_id, attempts))
        done, _ = await asyncio.shield(asyncio.wait([job], timeout=max(0.1, limit)))
        deleted = bool(done) and not job.exception() and job.result()
        if not deleted:
            self._send(
                notice("sandbox", f"could not delete {space.space_id}: run ml-intern sandboxes --delete")
            )
            return False
        minutes = (time.time() - space.created_at) / 60 if space.created_at else 0.0
        price = self._prices.get(space.hardware)
        cost = f"about ${price * minutes / 60:.2f}" if price is not None else "price unknown"
        self._send(notice("sandbox", f"deleted {space.space_id} (ran {minutes:.0f} min, {cost})"))
        return True

    # ---- waiting, events, text ------------------------------------------------------------------------

    async def _wait(self, task: Awaitable[SandboxClient]) -> SandboxClient:
        """The making's client, shielded; its progress streams into this call's run meanwhile."""
        sink = _sink_here() or (self.on_event, self.on_event)
        if sink[1] is not None:
            self._sinks.append(sink)
        try:
            return await asyncio.shield(task)
        except SandboxFailed as exc:
            raise ToolError(
                f"the sandbox could not start: {exc}; the next sandbox call tries a new one"
            ) from None
        finally:
            if sink[1] is not None:
                self._sinks.remove(sink)

    def _progress(self, text: str) -> None:
        self._send(tool_log("sandbox", text))

    def _send(self, event: dict[str, Any]) -> None:
        """To the waiting tool calls' streams, else this code's graph run or the session's sink."""
        event = redact_value(event)
        sinks = list(dict(self._sinks).values()) or [(_sink_here() or (None, self.on_event))[1]]
        for sink in sinks:
            if sink is not None:
                with suppress(Exception):
                    sink(event)

    def _price(self, hardware: str) -> float | None:
        """USD per hour of `hardware` (blocking: the Hub's job prices, else the table); None when unknown."""
        if hardware not in self._prices:
            self._prices[hardware] = (
                0.0 if hardware == FREE_HARDWARE else hourly_prices(self.env)[0].get(hardware)
            )
        return self._prices[hardware]

    def _drop(self) -> tuple[SandboxSpace | None, SandboxClient | None]:
        """Forget the running sandbox: its Space (to delete) and client (to close)."""
        space, client, self._space, self._client = self._space, self._client, None, None
        return space, client

    def _current_id(self) -> str:
        space = self._pending if self._making else self._space
        return space.space_id if space else "the sandbox being made"

    def _created_text(self) -> str:
        space = self._space
        if space is None:
            raise ToolError("the sandbox was deleted while it started: call sandbox_create again")
        price = self._prices.get(space.hardware)
        text = f"Sandbox {space.space_id} is running on {space.hardware} ("
        text += "free" if price == 0 else f"${price:.2f}/h" if price is not None else "price unknown"
        text += (
            ").\nFiles live in /app and are lost when the sandbox is deleted (at exit): push what matters to "
        )
        text += "the Hub."
        if space.hardware != FREE_HARDWARE:
            idle = self.env.config.sandbox.sleep_time
            text += f"\nIt is billed while it runs; after {idle} idle it sleeps and billing stops."
        return text

    def _check_open(self) -> None:
        if self._closed:
            raise ToolError("the sandbox was deleted: the run is ending")


def _variables(extra: dict[str, Any]) -> dict[str, str]:
    """sandbox_create's extra arguments as the sandbox's environment (trackio_project -> TRACKIO_PROJECT)."""
    return {key.upper(): str(value) for key, value in extra.items() if value and key in EXTRA_ARGUMENTS}


def _sink_here() -> tuple[Any, EventSink] | None:
    """The stream of the graph run this code is in, if any, callable from elsewhere: (writer, sink)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):
        return None
    # The writer reads its run's config from the context: called from the making task, it needs it back.
    return writer, functools.partial(contextvars.copy_context().run, writer)


async def _close(client: SandboxClient | None) -> None:
    if client is not None:
        with suppress(Exception):
            await client.aclose()


def _cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())


async def _settle(task: asyncio.Task[Any], limit: float) -> None:
    """Wait up to `limit` seconds for a cancelled task to finish its clean-up."""
    await asyncio.wait([task], timeout=max(0.1, limit))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)
