"""One model call with bounded waits and honest failures: a streamed reply that sends nothing for
`stream_idle_timeout` seconds fails as a transient timeout (model/retry.py retries it); a server that answers
with an HTML page or a reply without a message gets a line saying so, not a provider's traceback text."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables.config import ensure_config, merge_configs

from ml_intern.secrets import redact


class StreamIdleTimeout(Exception):
    """The model server sent no bytes of a streamed reply for `seconds` (transient: retried)."""

    def __init__(self, seconds: float, where: str) -> None:
        super().__init__(f"{where} sent nothing for {seconds:g} s (stream_idle_timeout)")
        self.seconds = seconds


class MalformedReply(Exception):
    """The server answered 200 with a reply that has no message (transient: retried)."""


class NotAnApiResponse(Exception):
    """The server answered with an HTML page: a proxy or captive portal, not the model API (permanent)."""


class ChunkClock(BaseCallbackHandler):
    """Counts the chunks of a streamed reply."""

    run_inline = True  # called in the event loop, with every chunk: no thread hop

    def __init__(self) -> None:
        self.chunks = 0

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.chunks += 1


def server_name(api_base: str | None, model_id: str) -> str:
    """How a line names the server: its base URL (credentials redacted), else the provider."""
    return f"the model server at {redact(api_base)}" if api_base else f"the provider of {model_id}"


async def bounded_call(services: Any, prompt: list, **kwargs: Any) -> Any:
    """`services.bound_model.ainvoke(prompt, **kwargs)` (kwargs reach litellm: effort, cache hints), with the
    idle bound on streamed replies and clear failures."""
    model, where = services.bound_model, server_name(services.model.api_base, services.model.model_id)
    try:
        if not getattr(services.chat_model, "streaming", False):
            return await model.ainvoke(prompt, **kwargs)  # a whole reply: request_timeout bounds it
        return await _streamed(model, prompt, services.config.stream_idle_timeout, where, kwargs)
    except Exception as exc:
        raise _plain(exc, where) from None


def _plain(exc: Exception, where: str) -> Exception:
    """`exc`, or a clearer exception when the server's answer was not an API response."""
    text = str(exc).lower()
    if "<html" in text or "<!doctype html" in text:
        return NotAnApiResponse(f"{where} answered with HTML, not an API response; check the base URL")
    if "invalid response object" in text:
        return MalformedReply(f"{where} sent a reply without a message (message: null)")
    return exc


async def _streamed(model: Any, prompt: list, idle: float, where: str, kwargs: dict[str, Any]) -> Any:
    """The streamed reply; StreamIdleTimeout when no chunk arrives for `idle` seconds. A stream holding
    nothing an API sends (no text, call or usage: an HTML page is no SSE) is asked for again whole."""
    clock = ChunkClock()
    config = merge_configs(ensure_config(), {"callbacks": [clock]})
    call = asyncio.ensure_future(model.ainvoke(prompt, config=config, **kwargs))
    try:
        await _watch(call, clock, idle, where)
    finally:
        if not call.done():
            call.cancel()
            with contextlib.suppress(BaseException):
                await call
    reply = call.result()
    if clock.chunks == 0 or not (reply.content or reply.tool_calls or reply.usage_metadata):
        return await model.ainvoke(prompt, stream=False, **kwargs)
    return reply


async def _watch(call: asyncio.Future, clock: ChunkClock, idle: float, where: str) -> None:
    """Wait for `call`, raising StreamIdleTimeout after `idle` seconds without a chunk. Time the event loop
    spent blocked by this process's own work (litellm's first-call imports) is not the server's silence."""
    tick, quiet = min(0.25, idle / 4), 0.0
    while not call.done():
        before, chunks = time.monotonic(), clock.chunks
        await asyncio.wait({call}, timeout=tick)
        if clock.chunks != chunks:
            quiet = 0.0
            continue
        quiet += min(time.monotonic() - before, 2 * tick)
        if quiet >= idle and not call.done():
            raise StreamIdleTimeout(idle, where)
