"""compact: when the context grows past its budget, summarise the middle of the conversation."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph import events
from ml_intern.graph.accounting import call_event, call_usage, compaction_update
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import emit
from ml_intern.graph.messages import MARK, is_user_turn
from ml_intern.graph.state import AgentState
from ml_intern.graph.turns import turn_opening
from ml_intern.run_services import services_for

SUMMARY_PROMPT = (
    "Summarise this part of an ML engineering agent's session so the agent can continue without it. "
    "Keep: the user's goals and constraints, decisions made, files written and their purpose, commands run "
    "and their outcomes, errors met and how they were fixed, URLs of repos/jobs/datasets, and open next "
    "steps. Be factual and concise; use bullet points."
)
CLIP_EACH = 2_000  # characters of one message kept in the text sent for summarising
OVERSIZED = 50_000  # estimated tokens above which a message kept by compaction becomes a placeholder


def estimate_tokens(messages: list[AnyMessage]) -> int:
    """A cheap token estimate: four characters a token."""
    return sum(len(str(m.content)) + len(str(getattr(m, "tool_calls", ""))) for m in messages) // 4


def context_size(state: AgentState) -> int:
    """The last measured prompt size plus an estimate for what came after the last reply."""
    messages = state.get("messages", [])
    last_reply = max((i for i, m in enumerate(messages) if isinstance(m, AIMessage)), default=-1)
    if last_reply < 0 or not state.get("context_tokens"):
        return estimate_tokens(messages)
    return state["context_tokens"] + estimate_tokens(messages[last_reply + 1 :])


def threshold(config: AgentConfig, window: int | None) -> int:
    """The smaller of the configured token threshold and a fraction of the model's window."""
    settings = config.compaction
    limit = settings.threshold_tokens
    return min(limit, int(window * settings.window_fraction)) if window else limit


async def needs_compaction(state: AgentState, ctx: RunContext | None) -> bool:
    """Whether `compact` has work mid-turn: forced by an overflow, or the context over its threshold."""
    if state.get("force_compact"):
        return True
    services = await services_for(ctx)
    return context_size(state) > threshold(services.config, services.context_window)


def split_for_summary(messages: list[AnyMessage], keep_recent: int) -> tuple[int, int] | None:
    """(start, end) of the middle to summarise: after the first user message, before a recent tail that
    starts on a message boundary never separating a tool call from its result."""
    first = next((i for i, m in enumerate(messages) if is_user_turn(m)), None)
    if first is None:
        return None
    end, kept = len(messages), 0
    for i in range(len(messages) - 1, first, -1):
        kept += estimate_tokens([messages[i]])
        if kept > keep_recent:
            break
        if not isinstance(messages[i], ToolMessage):
            end = i
    return (first + 1, end) if end - (first + 1) >= 2 else None


def render(messages: list[AnyMessage]) -> str:
    """The middle of the conversation as plain text for the summariser."""
    lines = []
    for m in messages:
        text = str(m.content)[:CLIP_EACH]
        calls = " ".join(f"[call {c['name']}({str(c['args'])[:300]})]" for c in getattr(m, "tool_calls", []))
        lines.append(f"[{m.type}] {text} {calls}".rstrip())
    return "\n".join(lines)


def placeholder_for(message: AnyMessage) -> AnyMessage:
    """A kept message over OVERSIZED tokens replaced by a note of what was there (its calls and call id
    stay, so the transcript stays valid); others, and the user's requests, as they are."""
    size = estimate_tokens([message])
    if size <= OVERSIZED or is_user_turn(message):  # the request being worked on stays verbatim
        return message
    name = message.name if isinstance(message, ToolMessage) else None
    what = f"result of {name or 'a tool'}" if isinstance(message, ToolMessage) else f"{message.type} message"
    head = " ".join(str(message.content)[:300].split())
    note = f"[{what} of about {size:,} tokens removed by compaction, too large to keep. It began: {head}]"
    return message.model_copy(update={"content": note})


async def summarise(
    messages: list[AnyMessage], chat_model: Any, keep_recent: int, model: str = ""
) -> tuple[list, dict] | None:
    """The compacted transcript and the usage of the summary call, or None when nothing can be cut."""
    span = split_for_summary(messages, keep_recent)
    if span is None:
        return None
    start, end = span
    prompt = [SystemMessage(content=SUMMARY_PROMPT), HumanMessage(content=render(messages[start:end]))]
    started = time.monotonic()
    reply = await chat_model.ainvoke(prompt)
    usage = call_usage(reply, model)
    emit(call_event(reply, usage, model, "compaction", started))
    summary = HumanMessage(
        content=f"[Summary of the earlier conversation]\n{reply.text}",
        additional_kwargs={MARK: {"summary": True}},
    )
    # The request being worked on stays verbatim even when its turn is summarised.
    current = [m for m in messages[start:end] if is_user_turn(m)][-1:]
    kept = [*messages[:start], summary, *current, *messages[end:]]
    return [placeholder_for(m) for m in kept], usage


async def compact(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Compact when over budget; end the turn if even compaction cannot get under it."""
    opening = turn_opening(state)  # the entry node also opens a turn for clients that send only messages
    state = {**state, **opening}
    services = await services_for(runtime.context)
    budget = threshold(services.config, services.context_window)
    before = context_size(state)
    forced = bool(state.get("force_compact"))
    if before <= budget and not forced:
        return opening
    keep = services.config.compaction.keep_recent_tokens
    # Forced (the model said the context overflowed): its window is smaller than we knew, so keep a
    # quarter of what is there rather than the configured tail.
    keep = min(keep, budget // 2, before // 4 if forced else keep)
    result = await summarise(state["messages"], services.chat_model, keep, services.model.litellm_model)
    after = estimate_tokens(result[0]) if result else before
    if result is None or (after > budget and not forced):
        emit(events.error(f"The conversation ({after} tokens) cannot be compacted under {budget}."))
        return {**opening, "stop_reason": "context_overflow"}
    emit(events.compacted(before, after))
    return {
        **opening,
        "messages": Overwrite(result[0]),
        "context_tokens": after,
        "force_compact": False,
        **compaction_update(state, result[1]),  # labelled compaction_, counted in the turn
    }
