"""The steps of making a sandbox that need no manager state: the secrets it gets, waiting for its stage and
its server, what the model is told; and the asyncio helpers the manager shares."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ml_intern.secrets import redact
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.hub.failures import first_line
from ml_intern.tools.jobs.pricing import parse_seconds
from ml_intern.tools.sandbox.client import SandboxClient
from ml_intern.tools.sandbox.spaces import (
    FAILED_STAGES,
    FREE_HARDWARE,
    RUNNING,
    SandboxFailed,
    SandboxSpace,
    SpaceOps,
)

FIRST_POLL, LONGEST_POLL = 0.5, 5.0  # seconds between stage / health polls: doubling from the first
PROGRESS_EVERY = 15.0  # a progress line at least this often while the stage does not change
HEALTH_TIMEOUT = 180.0  # how long a running Space's server may take to answer its health check
EXTRA_ARGUMENTS = frozenset({"trackio_space_id", "trackio_project"})  # sandbox_create's, passed to the Space
VERBS = {
    "BUILDING": "building",
    "RUNNING_BUILDING": "building",
    "APP_STARTING": "starting",
    "MISSING": "creating",
}


def passed_secrets(env: ToolEnv) -> dict[str, str]:
    """The variables named in `bash.env_passthrough` that are set: the same rule as local bash."""
    environ = {**env.environ}
    if env.hf_token and "HF_TOKEN" not in environ:
        environ["HF_TOKEN"] = env.hf_token
    return {name: environ[name] for name in env.config.bash.env_passthrough if environ.get(name)}


async def until_running(
    ops: SpaceOps, env: ToolEnv, space: SandboxSpace, progress: Callable[[str], None]
) -> None:
    """Poll the Space's stage until it runs (a SandboxFailed when it fails or takes too long)."""
    name, limit = space.space_id.split("/")[-1], parse_seconds(env.config.sandbox.start_timeout)
    start = told = time.monotonic()
    last, wait = "", FIRST_POLL
    while True:
        stage, _ = await asyncio.to_thread(ops.stage, space.space_id)
        if stage == RUNNING:
            return
        if stage in FAILED_STAGES:
            raise SandboxFailed(f"{space.space_id} stopped with {stage}")
        now = time.monotonic()
        if stage != last or now - told >= PROGRESS_EVERY:
            verb = VERBS.get(stage, stage.lower().replace("_", " "))
            progress(f"{verb} {name} on {space.hardware} ({now - start:.0f} s)")
            last, told = stage, now
        if now - start >= limit:
            raise SandboxFailed(f"{space.space_id} was not running after {limit:.0f} s (stage {stage})")
        await asyncio.sleep(wait)
        wait = min(wait * 2, LONGEST_POLL)


async def until_healthy(client: SandboxClient, space: SandboxSpace) -> None:
    """Poll the running Space's server until it answers its health check."""
    start, wait = time.monotonic(), FIRST_POLL
    while True:
        with suppress(Exception):
            if await client.health():
                return
        if time.monotonic() - start >= HEALTH_TIMEOUT:
            raise SandboxFailed(f"the server of {space.space_id} did not answer in {HEALTH_TIMEOUT:.0f} s")
        await asyncio.sleep(wait)
        wait = min(wait * 2, LONGEST_POLL)


def created_text(space: SandboxSpace | None, price: float | None, idle: str, max_hours: float) -> str:
    """What sandbox_create tells the model about the sandbox it made (paid: its sleep and its age limit)."""
    if space is None:
        raise ToolError("the sandbox was deleted while it started: call sandbox_create again")
    text = f"Sandbox {space.space_id} is running on {space.hardware} ("
    text += "free" if price == 0 else f"${price:.2f}/h" if price is not None else "price unknown"
    text += ").\nFiles live in /app and are lost when the sandbox is deleted (at exit): push what matters to "
    text += "the Hub."
    if space.hardware != FREE_HARDWARE:
        text += f"\nIt is billed while it runs; after {idle} idle it sleeps: billing stops and its files are "
        text += f"lost.\nIt is deleted {hours(max_hours)} after it was made (sandbox.max_hours); the sandbox "
        text += "tools then use a new cpu-basic one."
    return text


def locked_text(space_id: str, hardware: str) -> str:
    """Why sandbox_create does not replace a paid sandbox."""
    return (
        f"Hardware cannot be changed while {space_id} runs on {hardware} (its files would be lost). Keep "
        "working on it, or ask the user to delete it (ml-intern sandboxes --delete) and start a new thread."
    )


def hours(value: float) -> str:
    """sandbox.max_hours as the notices say it: "2 h", "0.5 h"."""
    return f"{value:g} h"


def sandbox_status(
    space: SandboxSpace | None, hardware: str | None, stage: str, price: float | None
) -> dict[str, Any]:
    """For /status: space id, hardware, stage, price per hour, running since, cost so far."""
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


def space_variables(extra: dict[str, Any]) -> dict[str, str]:
    """sandbox_create's extra arguments as the sandbox's environment (trackio_project -> TRACKIO_PROJECT)."""
    return {key.upper(): str(value) for key, value in extra.items() if value and key in EXTRA_ARGUMENTS}


async def close_client(client: SandboxClient | None) -> None:
    if client is not None:
        with suppress(Exception):
            await client.aclose()


def cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())


async def settle(task: asyncio.Task[Any] | None, limit: float) -> None:
    """Wait up to `limit` seconds for a (cancelled) task to finish its clean-up."""
    if task is not None:
        await asyncio.wait([task], timeout=max(0.1, limit))


def one_line(exc: BaseException) -> str:
    return redact(first_line(exc))
