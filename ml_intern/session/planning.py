"""The cheap half of start-up, before any thread is opened: the config, the model, the HF token login."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_intern.graph import events
from ml_intern.session.options import RunOptions

if TYPE_CHECKING:
    from ml_intern.configs.schema import AgentConfig
    from ml_intern.session.threads import ThreadInfo

Login = Callable[[str], Awaitable[None]]  # asks the user for a Hugging Face token for a model id


@dataclass(frozen=True)
class StartPlan:
    """What start-up decided before any thread is opened."""

    config: AgentConfig  # the validated config
    model_id: str  # the model to use
    thread_id: str | None  # the stored thread to go on with; None: a new one
    new_id: str | None = None  # the new thread's id when chosen early (the chat's banner shows it)


async def plan_start(
    options: RunOptions,
    environ: MutableMapping[str, str],
    on_event: events.EventSink,
    login: Login | None = None,
    stored: ThreadInfo | None = None,
) -> StartPlan:
    """Read the config (its warnings become notices), pick the model (`login` asks for a missing HF token)."""
    from ml_intern.model.credentials import needs_hf_token
    from ml_intern.session.start import checked_model, choose_model, read_config

    config, warnings = read_config(Path.cwd(), environ)
    for warning in warnings:
        on_event(events.notice("config", warning))
    if stored is None:  # a missing provider key: one line, before any thread
        model_id, picked = checked_model(options, config, environ, login=login is not None)
    else:  # the thread's own model, checked when its services are built
        model_id, picked = choose_model(options, config, stored.model, environ)
    for line in picked:  # e.g. the local server found when no model is configured
        on_event(events.notice("model", line))
    if login is not None and needs_hf_token(model_id, environ):
        await login(model_id)
    return StartPlan(config, model_id, stored.thread_id if stored else None)


def run_in_thread(function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """`function(*args)` in a daemon thread, awaited without blocking the loop (exit never waits for it)."""
    done: Future[Any] = Future()

    def call() -> None:
        try:
            done.set_result(function(*args))
        except BaseException as exc:
            done.set_exception(exc)

    threading.Thread(target=call, name="ml-intern-start", daemon=True).start()
    return asyncio.wrap_future(done)
