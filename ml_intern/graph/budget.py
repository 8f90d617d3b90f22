"""The per-turn budget: before each model call of the agent loop, stop the turn if the call would cross it.

The call is estimated (the last prompt and reply plus ~chars/4 of what came since, at the model's input price,
plus an output allowance). The turn stops (stop reason `budget`) before a call that would take it over
`max_tokens` (input + output tokens of all its calls, research and compaction included) or `max_cost_usd`
(their cost plus the estimated maximum cost of the HF jobs it started and has not seen end).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph.accounting import price, started_jobs, usage_since

OUTPUT_ALLOWANCE = 1_000  # output tokens assumed for the next call when checking the budget


def budget_limits(ctx: Any, config: AgentConfig) -> tuple[float | None, int | None]:
    """The per-turn cost and token budgets: the run's settings, else the config's."""
    cost = ctx.max_cost_usd if ctx.max_cost_usd is not None else config.max_cost_usd
    tokens = ctx.max_tokens if ctx.max_tokens is not None else config.max_tokens
    return cost, tokens


def _chars(messages: list[AnyMessage]) -> int:
    return sum(len(str(m.content)) + len(str(getattr(m, "tool_calls", None) or "")) for m in messages)


def _schema_chars(tool: Any) -> int:
    try:
        return len(tool.description or "") + len(json.dumps(tool.args))
    except Exception:  # a tool without a JSON-able schema: its description is the estimate
        return len(str(getattr(tool, "description", "")))


def next_prompt_tokens(state: Mapping[str, Any], prompt: list[AnyMessage], tools: list[Any]) -> int:
    """The next prompt's size: the last call's prompt and reply plus ~chars/4 of what came since; before the
    thread's first call, ~chars/4 of the whole prompt and the tool schemas."""
    messages = state.get("messages", [])
    last = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], AIMessage)), None)
    if last is None or not state.get("context_tokens"):
        return (_chars(prompt) + sum(_schema_chars(tool) for tool in tools)) // 4
    return state["context_tokens"] + _chars(messages[last + 1 :]) // 4


def budget_stop(
    state: Mapping[str, Any], turn: Mapping[str, Any], next_tokens: int, model: str, limits: tuple[Any, Any]
) -> str | None:
    """Why the next call (`next_tokens` of prompt) would take the turn over its budget; None if it fits."""
    max_cost, max_tokens = limits
    spent = usage_since(state.get("usage") or {}, turn["turn_start_usage"])
    if max_tokens is not None and (stop := token_stop(spent, next_tokens, max_tokens)):
        return stop
    jobs = turn.get("turn_jobs") or {}
    return cost_stop(spent, jobs, next_tokens, model, max_cost) if max_cost is not None else None


def token_stop(spent: Mapping[str, Any], next_tokens: int, limit: int) -> str | None:
    """The message when the turn's tokens and the next call's would pass `limit`; else None."""
    used = spent.get("input_tokens", 0) + spent.get("output_tokens", 0)
    needed = next_tokens + OUTPUT_ALLOWANCE
    if used + needed <= limit:
        return None
    return (
        f"Token budget reached: this turn used {used:,} tokens and the next model call needs about "
        f"{needed:,} more, over the limit of {limit:,} per turn (max_tokens)."
    )


def cost_stop(
    spent: Mapping[str, Any], jobs: Mapping[str, float | None], next_tokens: int, model: str, limit: float
) -> str | None:
    """The message when the turn's cost, its running jobs and the next call would pass `limit`; else None."""
    calls = spent.get("cost_usd")
    if calls is None:  # a call without a price this turn: count the turn's tokens at the model's price
        calls = price(model, spent.get("input_tokens", 0), spent.get("output_tokens", 0)) or 0.0
    committed = sum(cost or 0.0 for cost in jobs.values())  # running jobs at their most
    upcoming = price(model, next_tokens, OUTPUT_ALLOWANCE) or 0.0
    if calls + committed + upcoming <= limit:
        return None
    held = f" plus up to ${committed:.2f} for {len(jobs)} running HF job(s)" if jobs else ""
    return (
        f"Cost budget reached: this turn spent ${calls:.4f}{held} and the next model call would add about "
        f"${upcoming:.4f}, over the limit of ${limit:.2f} per turn (max_cost_usd)."
    )


# ---- a chat's cost controls: the yolo cap on paid calls, the usage check (DESIGN.md "Approval protocol") --

CHAT_MODES = ("ask", "yolo")  # a person is there to answer; headless auto/deny never pause for these
USAGE_CALL = "usage_threshold"  # the synthetic call of the usage check in an approval payload


def reservation_key(reply_id: str | None, call_id: str, reserved: Mapping[str, float]) -> str:
    """Where yolo reserves a paid call: under the id of the reply that made it (ours, not the model's) and
    its call id; a reply without an id gets a new number, so a reused call id never takes an older key."""
    return f"{reply_id}/{call_id}" if reply_id else f"#{len(reserved)}/{call_id}"


def released(messages: list[AnyMessage]) -> set[str]:
    """The reservation keys of paid calls that failed without starting a job (what they reserved is free)."""
    keys: set[str] = set()
    reply_id = None
    for message in messages:
        if isinstance(message, AIMessage):
            reply_id = message.id
        elif isinstance(message, ToolMessage) and reply_id and message.status == "error":
            failed_early = not started_jobs([message])  # a job it started is paid for: keep its reservation
            if failed_early:
                keys.add(f"{reply_id}/{message.tool_call_id}")
    return keys


def yolo_spent(state: Mapping[str, Any]) -> float:
    """Estimates of the paid calls yolo approved in this thread, less those that failed without starting a
    job (released); a reservation whose result compaction removed stays spent."""
    free = released(state.get("messages", []))
    reserved = state.get("yolo_reserved") or {}
    return round(sum(cost for key, cost in reserved.items() if key not in free), 6)


def cap_reason(cost: float | None, remaining: float) -> str:
    """Why yolo may not approve a paid call: over the remaining cap, or no estimate."""
    remaining = max(remaining, 0.0)  # a cap lowered below what was spent leaves nothing
    if cost is None:
        return f"Estimated cost unknown: yolo approves paid calls only within its cap (${remaining:.2f} left)"
    return f"Estimated cost ${cost:.2f} exceeds the remaining yolo cap ${remaining:.2f}"


def thread_spend(state: Mapping[str, Any]) -> float:
    """The thread's cost so far: its model calls (unknown prices count 0) and the HF jobs it started, each at
    its estimated maximum."""
    calls = (state.get("usage") or {}).get("cost_usd") or 0.0
    return round(calls + sum(cost or 0.0 for cost in (state.get("thread_jobs") or {}).values()), 6)


def next_check(spent: float, threshold: float) -> float:
    """The next usage check after one at `threshold`: doubled until past `spent` (5 -> 10 -> 20 ...)."""
    while threshold <= spent:
        threshold *= 2
    return threshold


def usage_check_call(spent: float, threshold: float) -> dict[str, Any]:
    """The usage check as a synthetic call of an approval payload (always asked)."""
    after = next_check(spent, threshold)
    reason = f"This thread has spent ${spent:.2f}. Continue? (next check at ${after:.2f})"
    args = {"spent_usd": spent, "next_check_usd": after}
    return {"id": USAGE_CALL, "name": USAGE_CALL, "args": args, "reason": reason, "always_ask": True}
