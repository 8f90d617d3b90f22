"""Operations the chat's slash commands need, with no terminal code: compact, switch model, status, settle
pending tool calls."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.graph.accounting import labelled, turn_usage
from ml_intern.graph.context import RunContext, services_of
from ml_intern.graph.messages import is_user_turn, pending_calls, tool_result
from ml_intern.model.errors import explain_model_error

INTERRUPTED = "Interrupted by the user (Ctrl-C) before this call finished; it may have partly run."
ABANDONED = "Not executed: the user sent a new message instead of answering the approval request."
CANCELLED = "Not executed: the user cancelled the turn (Ctrl-C) instead of answering the approval request."
MODEL_CHECK_PROMPT = "Reply with the single word OK."
MODEL_CHECK_TIMEOUT_S = 60.0


def thread_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


async def pending_approval(session: Any, thread_id: str) -> dict[str, Any] | None:
    """The approval request the thread is waiting on (the interrupt payload), if any."""
    snapshot = await session.app.aget_state(thread_config(thread_id))
    return next((i.value for i in snapshot.interrupts if isinstance(i.value, dict)), None)


async def settle_pending_calls(session: Any, thread_id: str, text: str, stop_reason: str) -> int:
    """Answer every unanswered tool call with `text` and end the turn with `stop_reason`.

    Written as if `call_model` had stopped the turn, so the thread has no pending step or interrupt and the
    next message (or `resume --continue`) starts cleanly. Returns how many calls were answered."""
    config = thread_config(thread_id)
    snapshot = await session.app.aget_state(config)
    values = snapshot.values or {}
    if not values.get("messages"):
        return 0
    calls = pending_calls(values["messages"])
    update: dict[str, Any] = {"stop_reason": stop_reason, "approvals": {}}
    if calls:
        update["messages"] = [tool_result(call, text, "error") for call in calls]
    await session.app.aupdate_state(config, update, as_node="call_model")
    await session.threads.end_turn(thread_id, stop_reason, values.get("usage") or {})
    return len(calls)


async def abandon_pending_approval(session: Any, thread_id: str) -> int:
    """Before a new message: answer the calls of an unanswered approval request as not executed."""
    if await pending_approval(session, thread_id) is None:
        return 0
    return await settle_pending_calls(session, thread_id, ABANDONED, "abandoned")


@dataclass
class Compaction:
    """What `/compact` did: estimated context tokens before and after."""

    tokens_before: int
    tokens_after: int

    def event(self) -> dict[str, Any]:
        return {"type": "compacted", "tokens_before": self.tokens_before, "tokens_after": self.tokens_after}


async def compact_now(session: Any, thread_id: str, ctx: RunContext) -> Compaction | None:
    """Summarise the middle of the thread now, whatever its size; None when there is nothing to cut."""
    from langgraph.types import Overwrite

    from ml_intern.nodes.compact import context_size, estimate_tokens, summarise

    config = thread_config(thread_id)
    snapshot = await session.app.aget_state(config)
    if snapshot.interrupts:
        raise UserError("the thread is waiting for an approval: answer it before compacting")
    values = snapshot.values or {}
    messages = values.get("messages", [])
    if not messages:
        return None
    services = services_of(ctx)
    before = context_size(values)
    configured = services.config.compaction.keep_recent_tokens
    keep = min(configured, estimate_tokens(messages) // 4)
    result = await summarise(messages, services.chat_model, keep)
    if result is None:
        return None
    compacted, usage = result
    after = estimate_tokens(compacted)
    update = {
        "messages": Overwrite(compacted),
        "context_tokens": after,
        "usage": {**labelled(usage, "compaction"), "compactions": 1},
    }
    await session.app.aupdate_state(config, update, as_node="compact")
    return Compaction(before, after)


def rebuild_context(
    ctx: RunContext, model_id: str, config: AgentConfig, environ: Mapping[str, str]
) -> RunContext:
    """The same run settings with services built for `model_id` (the model is not called)."""
    from ml_intern.services import build_services

    services = build_services(
        model=model_id,
        workdir=Path(ctx.workdir),
        tool_names=ctx.tools,
        stream=ctx.stream,
        environ=dict(environ),
        config=config,
    )
    return dataclasses.replace(ctx, model=model_id, services=services)


async def check_model(ctx: RunContext) -> None:
    """Make one tiny call to the context's model; raise a UserError saying why it did not answer."""
    try:
        chat_model = services_of(ctx).chat_model
        prompt = [HumanMessage(content=MODEL_CHECK_PROMPT)]
        await asyncio.wait_for(chat_model.ainvoke(prompt, max_tokens=16), MODEL_CHECK_TIMEOUT_S)
    except UserError:
        raise
    except TimeoutError:
        raise UserError(f"{ctx.model} did not answer within {MODEL_CHECK_TIMEOUT_S:.0f}s") from None
    except Exception as exc:
        message, code = explain_model_error(exc, ctx.model)
        error = UserError(message)
        error.exit_code = code
        raise error from None


async def switch_model(
    ctx: RunContext, model_id: str, config: AgentConfig, environ: Mapping[str, str]
) -> RunContext:
    """A context for `model_id` once it has answered a check call; `ctx` itself is never changed."""
    candidate = rebuild_context(ctx, model_id, config, environ)
    await check_model(candidate)
    return candidate


@dataclass
class ThreadStatus:
    """What `/status` reports about a thread."""

    thread_id: str
    turns: int  # messages the user typed
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None  # None: some call's price is unknown
    context_tokens: int  # size of the latest prompt: what compaction watches
    compactions: int
    turn_usage: dict[str, Any] = field(default_factory=dict)  # tokens and cost of the latest turn


async def thread_status(session: Any, thread_id: str) -> ThreadStatus:
    """Turns, token totals and cost of `thread_id`, read from its saved state."""
    snapshot = await session.app.aget_state(thread_config(thread_id))
    values = snapshot.values or {}
    usage = values.get("usage") or {}
    return ThreadStatus(
        thread_id=thread_id,
        turns=sum(1 for m in values.get("messages", []) if is_user_turn(m)),
        input_tokens=usage.get("input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        cached_tokens=usage.get("cached_tokens", 0),
        cost_usd=usage.get("cost_usd", 0.0 if not usage else None),
        context_tokens=values.get("context_tokens", 0),
        compactions=usage.get("compactions", 0),
        turn_usage=turn_usage(values),
    )
