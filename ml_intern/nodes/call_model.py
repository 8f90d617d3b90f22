"""call_model: send the transcript to the model and record its reply and usage."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, SystemMessage
from langgraph.runtime import Runtime

from ml_intern.graph import events
from ml_intern.graph.accounting import call_event, call_usage, only_changes, open_turn, price
from ml_intern.graph.budget import budget_limits, budget_stop, next_prompt_tokens
from ml_intern.graph.context import RunContext, current_thread_id
from ml_intern.graph.events import emit
from ml_intern.graph.messages import model_view, replayable, with_unique_call_ids
from ml_intern.graph.state import AgentState
from ml_intern.model.bounded import bounded_call
from ml_intern.model.caching import bound_tools, cached_request
from ml_intern.model.effort import merged_kwargs, with_effort
from ml_intern.model.errors import is_context_overflow
from ml_intern.model.retry import RetryPolicy, with_retries
from ml_intern.run_services import services_for
from ml_intern.secrets import redact_call_args, redact_exception, redact_value


def with_record(reply: AIMessage, usage: dict[str, Any]) -> AIMessage:
    """The reply carrying its cost and time, for traces (its tokens are in usage_metadata already)."""
    metadata = {**reply.response_metadata, "cost_usd": usage["cost_usd"], "created_at": time.time()}
    return reply.model_copy(update={"response_metadata": metadata})


def over_budget(
    state: AgentState, turn: dict[str, Any], prompt: list, ctx: RunContext, services: Any
) -> str | None:
    """Why the next call would cross the turn's budget (None: go ahead); warns once if it cannot be priced."""
    limits = budget_limits(ctx, services.config)
    if limits == (None, None):
        return None
    model = services.model.litellm_model
    if limits[0] is not None and not state.get("iterations") and price(model, 1, 1) is None:
        text = f"no price known for {model}: the cost budget counts only HF jobs"
        emit(events.notice("budget", text))
    return budget_stop(state, turn, next_prompt_tokens(state, prompt, services.tools), model, limits)


def redact_reply(reply: AIMessage) -> AIMessage:
    """The reply with any credential the model echoed replaced, before it is stored or shown; the calls still
    run with the model's own arguments (kept in memory: secrets.unredacted_args)."""
    update = {
        "content": redact_value(reply.content),
        "tool_calls": [{**c, "args": redact_call_args(c["id"], c["args"])} for c in reply.tool_calls],
        "additional_kwargs": redact_value(reply.additional_kwargs),
    }
    unchanged = all(update[key] == getattr(reply, key) for key in update)
    return reply if unchanged else reply.model_copy(update=update)


def overflowed(state: AgentState) -> dict[str, Any]:
    """The context was too large for the model: compact and retry once, then give up on the turn."""
    if state.get("overflows", 0) >= 1:
        emit(events.error("The conversation is too long for the model, even compacted."))
        return {"stop_reason": "context_overflow"}
    emit(events.notice("model", "context window exceeded: compacting, then retrying"))
    return {"overflows": state.get("overflows", 0) + 1, "force_compact": True}


def bad_signature(exc: BaseException) -> bool:
    """The provider refused a replayed thinking block ("Invalid `signature` in `thinking` block")."""
    text = str(exc).lower()
    return "signature" in text and "thinking" in text


def model_prompt(state: AgentState, services: Any) -> list:
    """The system prompt and the transcript as this call replays it (graph/messages.replayable)."""
    view = replayable(model_view(state["messages"]), services.refused_thinking)
    return [SystemMessage(content=services.prompt), *view]


async def ask_model(state: AgentState, ctx: RunContext, services: Any, prompt: list) -> AIMessage:
    """The model's reply to `prompt`, with cache hints and reasoning effort (a refused level heals), retried
    on transient faults. A refused thinking signature is retried once without the signed thinking of every
    message so far, which later calls of these services no longer replay either."""
    policy, thread = RetryPolicy.from_config(services.config), current_thread_id()

    async def attempt(messages: list) -> AIMessage:
        sent, hints = cached_request(services.model, messages, bound_tools(services.bound_model), thread)

        async def once(effort: dict[str, Any]) -> AIMessage:
            kwargs = merged_kwargs(hints, effort)
            return await with_retries(lambda: bounded_call(services, sent, **kwargs), policy)

        reply, _ = await with_effort(services.model, ctx.reasoning_effort, services.effort_cache, once)
        return reply

    try:
        return await attempt(prompt)
    except Exception as exc:
        signed = {m.id for m in state["messages"] if isinstance(m, AIMessage)} - services.refused_thinking
        if not bad_signature(exc) or not signed:  # none left to drop: the retry would be refused again
            raise
    services.refused_thinking |= signed
    emit(events.notice("model", "the provider refused a replayed thinking block: retrying without thinking"))
    return await attempt(model_prompt(state, services))


async def call_model(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Call the model once, unless the turn has used up its iterations."""
    ctx = runtime.context or RunContext()
    iterations = state.get("iterations", 0)
    if iterations >= ctx.max_iterations:
        return {"stop_reason": "max_iterations"}
    services = await services_for(ctx)
    await services.start()  # MCP servers, once per run; a no-op afterwards
    turn = open_turn(state)
    prompt = model_prompt(state, services)
    stop = over_budget(state, turn, prompt, ctx, services)
    turn = only_changes(state, turn)
    if stop:
        emit(events.error(stop))
        return {**turn, "stop_reason": "budget"}
    emit(events.processing(iterations + 1))
    started = time.monotonic()
    try:
        reply = await ask_model(state, ctx, services, prompt)
    except Exception as exc:
        if not is_context_overflow(exc):
            redact_exception(exc)
            raise
        return {**turn, **overflowed(state)}
    model = services.model.litellm_model
    usage = call_usage(reply, model)
    emit(call_event(reply, usage, model, "main", started))
    reply = with_record(redact_reply(with_unique_call_ids(reply, state["messages"])), usage)
    emit(events.assistant_message(reply.text, len(reply.tool_calls)))
    return {
        **turn,
        "messages": [reply],
        "iterations": iterations + 1,
        "turn_mark": iterations + 1,
        "usage": usage,
        "context_tokens": usage["input_tokens"] + usage["output_tokens"],
    }
