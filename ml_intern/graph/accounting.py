"""Tokens and cost: prices from litellm's table, per-call usage, per-turn totals and the per-turn budget.

A turn is a user message and all it leads to (a headless run is one turn); `resume --continue` starts a fresh
count, as it does for the iteration cap. Before each model call of the agent loop the call is estimated (the
last prompt and reply plus ~chars/4 of what came since, at the model's input price, plus an output allowance).
The turn stops (stop reason `budget`) before a call that would take it over `max_tokens` (input + output
tokens of all its calls, research and compaction included) or `max_cost_usd` (their cost plus the estimated
maximum cost of the HF jobs it started and has not seen end).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from ml_intern.configs.schema import AgentConfig

OUTPUT_ALLOWANCE = 1_000  # output tokens assumed for the next call when checking the budget
LABELS = ("research", "compaction")  # usage also counted under `<label>_<key>`
# What the hf_jobs tool answers (ml_intern/tools/jobs/ops.py): a job left running, a job that ended.
JOB_RUNNING = re.compile(r"Job (?:submitted: (\S+)|(\S+) is still )")
JOB_ENDED = re.compile(r"Job (\S+?):? (?:finished:|cancelled\.|(?:COMPLETED|CANCELED|ERROR|DELETED)\b)")
JOB_ESTIMATE = re.compile(r"est\. at most \$([0-9]+(?:\.[0-9]+)?)")


def _price_table() -> dict[str, Any]:
    """litellm's bundled price table (imported lazily: litellm takes seconds to import)."""
    import litellm

    return litellm.model_cost


def is_priced(model: str) -> bool:
    """Whether litellm's table has a price for `model` (by its full id, or its name under that provider)."""
    table = _price_table()
    provider, _, name = model.partition("/")
    entry = table.get(model) or table.get(name) or {}
    known_here = model in table or entry.get("litellm_provider") == provider
    return known_here and entry.get("input_cost_per_token") is not None


def price(
    model: str, input_tokens: int, output_tokens: int, cached: int = 0, written: int = 0
) -> float | None:
    """USD for one call (cached input at the cache-read price); None when the table has no price."""
    if not model or not is_priced(model):
        return None
    import litellm

    try:
        prompt, completion = litellm.cost_per_token(
            model=model,
            prompt_tokens=input_tokens,
            completion_tokens=output_tokens,
            cache_read_input_tokens=cached,
            cache_creation_input_tokens=written,
        )
    except Exception:  # a table entry litellm cannot use
        return None
    return prompt + completion


def call_usage(reply: AIMessage, model: str = "") -> dict[str, Any]:
    """Tokens and cost of one reply: priced from the table, else the provider's non-zero figure, else None."""
    meta = reply.usage_metadata or {}
    details = meta.get("input_token_details") or {}
    tokens_in, tokens_out = meta.get("input_tokens", 0), meta.get("output_tokens", 0)
    cached = details.get("cache_read") or 0
    cost = price(model, tokens_in, tokens_out, cached, details.get("cache_creation") or 0) if meta else None
    if cost is None:  # litellm reports 0.0 for some models it cannot price: that is unknown, not free
        cost = (reply.response_metadata or {}).get("response_cost") or None
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cached_tokens": cached,
        "calls": 1,
        "cost_usd": cost,
    }


def labelled(usage: Mapping[str, Any], label: str) -> dict[str, Any]:
    """`usage` counted in the totals and again under `<label>_` keys (research, compaction)."""
    return {**usage, **{f"{label}_{key}": value for key, value in usage.items()}}


def compaction_update(state: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
    """The state update recording a compaction call: labelled usage, counted in the current turn."""
    return {"usage": {**labelled(usage, "compaction"), "compactions": 1}, **open_turn(state)}


def open_turn(state: Mapping[str, Any]) -> dict[str, Any]:
    """The turn's accounting keys: kept within a turn, restarted once `iterations` fell below the mark
    (a new turn or a continuation reset it), with the HF jobs the latest tool results started or ended.
    Every write sets the mark to `iterations` as it leaves the node, so within a turn mark <= iterations."""
    iterations = state.get("iterations", 0)
    same = "turn_start_usage" in state and iterations >= state.get("turn_mark", 0)
    start = state["turn_start_usage"] if same else dict(state.get("usage") or {})
    jobs = track_jobs(state.get("turn_jobs") or {} if same else {}, latest_results(state.get("messages", [])))
    return {"turn_start_usage": start, "turn_jobs": jobs, "turn_mark": iterations}


def latest_results(messages: list[AnyMessage]) -> list[ToolMessage]:
    """The tool results after the last assistant message."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, ToolMessage):
            results.insert(0, message)
    return results


def track_jobs(jobs: Mapping[str, float | None], results: list[ToolMessage]) -> dict[str, float | None]:
    """`jobs` (id -> estimated max cost) with the jobs these hf_jobs results started or ended."""
    running = dict(jobs)
    for result in results:
        text = str(result.content) if result.name == "hf_jobs" else ""
        if ended := JOB_ENDED.match(text):
            running.pop(ended[1], None)
        elif started := JOB_RUNNING.match(text):
            estimate = JOB_ESTIMATE.search(text)
            running[started[1] or started[2]] = float(estimate[1]) if estimate else None
    return running


def usage_since(now: Mapping[str, Any], start: Mapping[str, Any]) -> dict[str, Any]:
    """Usage accrued from `start` to `now`; a cost is None when unknown at either end, 0 without calls."""
    spent: dict[str, Any] = {}
    for key, value in now.items():
        before = start.get(key, 0)
        if key.endswith("cost_usd"):
            calls_key = key.removesuffix("cost_usd") + "calls"
            calls = now.get(calls_key, 0) - start.get(calls_key, 0)
            known = value is not None and before is not None
            spent[key] = 0.0 if not calls else round(value - before, 10) if known else None
        else:
            spent[key] = value - before
    return {k: v for k, v in spent.items() if v != 0 or (not k.startswith(LABELS) and k != "compactions")}


def turn_usage(values: Mapping[str, Any]) -> dict[str, Any]:
    """Usage of the thread's latest turn, from its saved state values (none yet if it began after the last
    accounting write, e.g. its first call failed)."""
    usage = values.get("usage") or {}
    began_since = values.get("iterations", 0) < values.get("turn_mark", 0)
    return usage_since(usage, usage if began_since else values.get("turn_start_usage") or {})


def usage_report(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The latest turn's usage and the thread's totals (JSON-ready)."""
    return {"turn": turn_usage(values), "thread": dict(values.get("usage") or {})}


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


def format_cost(cost: float | None) -> str:
    """$0.0123, $4.56 or 'unknown' (never $0 for an unknown price)."""
    if cost is None:
        return "unknown"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def format_usage(usage: Mapping[str, Any]) -> str:
    """One line of tokens, calls and cost, with the research and compaction shares."""
    line = (
        f"{usage.get('input_tokens', 0):,} tokens in ({usage.get('cached_tokens', 0):,} cached), "
        f"{usage.get('output_tokens', 0):,} out, {usage.get('calls', 0)} model call(s), "
        f"cost {format_cost(usage.get('cost_usd', 0.0))}"
    )
    shares = [
        f"{label} {usage[label + '_calls']} call(s) {format_cost(usage.get(label + '_cost_usd', 0.0))}"
        for label in LABELS
        if usage.get(label + "_calls")
    ]
    return line + (f" (incl. {', '.join(shares)})" if shares else "")
