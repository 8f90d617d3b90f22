"""call_model: send the transcript to the model and record its reply and usage."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, SystemMessage
from langgraph.runtime import Runtime

from ml_intern.graph.context import RunContext, services_of
from ml_intern.graph.events import emit
from ml_intern.graph.messages import model_view
from ml_intern.graph.retry import RetryPolicy, with_retries
from ml_intern.graph.secrets import redact_value
from ml_intern.graph.state import AgentState


def usage_of(reply: AIMessage) -> dict[str, Any]:
    """Tokens and cost of one reply; cost is None when the price is unknown."""
    meta = reply.usage_metadata or {}
    cached = (meta.get("input_token_details") or {}).get("cache_read", 0)
    cost = (reply.response_metadata or {}).get("response_cost")
    return {
        "input_tokens": meta.get("input_tokens", 0),
        "output_tokens": meta.get("output_tokens", 0),
        "cached_tokens": cached or 0,
        "calls": 1,
        "cost_usd": cost,
    }


def redact_reply(reply: AIMessage) -> AIMessage:
    """The reply with any credential the model echoed replaced, before it is stored or shown."""
    update = {
        "content": redact_value(reply.content),
        "tool_calls": [{**call, "args": redact_value(call["args"])} for call in reply.tool_calls],
        "additional_kwargs": redact_value(reply.additional_kwargs),
    }
    unchanged = all(update[key] == getattr(reply, key) for key in update)
    return reply if unchanged else reply.model_copy(update=update)


def overflowed(state: AgentState) -> dict[str, Any]:
    """The context was too large for the model: compact and retry once, then give up on the turn."""
    if state.get("overflows", 0) >= 1:
        emit({"type": "error", "message": "The conversation is too long for the model, even compacted."})
        return {"stop_reason": "context_overflow"}
    emit({"type": "tool_log", "tool": "model", "text": "context window exceeded: compacting, then retrying"})
    return {"overflows": state.get("overflows", 0) + 1, "force_compact": True}


async def call_model(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Call the model once, unless the turn has used up its iterations."""
    ctx = runtime.context or RunContext()
    iterations = state.get("iterations", 0)
    if iterations >= ctx.max_iterations:
        return {"stop_reason": "max_iterations"}
    services = services_of(ctx)
    emit({"type": "processing", "iteration": iterations + 1})
    prompt = [SystemMessage(content=services.prompt), *model_view(state["messages"])]
    policy = RetryPolicy.from_config(services.config)
    try:
        reply = await with_retries(
            lambda: services.bound_model.ainvoke(prompt),
            policy,
            lambda text: emit({"type": "tool_log", "tool": "model", "text": text}),
        )
    except Exception as exc:
        if type(exc).__name__ != "ContextWindowExceededError":
            raise
        return overflowed(state)
    reply = redact_reply(reply)
    usage = usage_of(reply)
    emit({"type": "assistant_message", "content": reply.text, "tool_calls": len(reply.tool_calls)})
    return {
        "messages": [reply],
        "iterations": iterations + 1,
        "usage": usage,
        "context_tokens": usage["input_tokens"] + usage["output_tokens"],
    }
