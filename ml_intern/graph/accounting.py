"""Tokens and cost: prices from litellm's table, per-call usage, per-turn totals, the HF jobs a turn started.

A turn is a user message and all it leads to (a headless run is one turn); `resume --continue` starts a fresh
count, as it does for the iteration cap. The per-turn budget that reads these is in graph/budget.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

LABELS = ("research", "compaction")  # usage also counted under `<label>_<key>`


# An HF job as a tool result reports it: started by that call (and not ended yet), seen running, ended.
JobState = Literal["started", "running", "ended"]


class JobReport(TypedDict):
    """What a tool reports about an HF job in its result's artifact, under "job" (the hf_jobs tool does)."""

    id: str
    state: JobState
    max_cost_usd: float | None  # the most it can cost if it runs to its timeout (None: unknown)


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


def call_event(reply: AIMessage, usage: Mapping[str, Any], model: str, kind: str, started: float) -> dict:
    """The `llm_call` event of a reply: model, kind, latency since `started` (monotonic), tokens, cost."""
    import time

    from ml_intern.graph import events

    details = (reply.usage_metadata or {}).get("input_token_details") or {}
    meta = reply.response_metadata or {}
    finish = meta.get("finish_reason") or meta.get("stop_reason")
    latency = int((time.monotonic() - started) * 1000)
    written = {"cache_write_tokens": details.get("cache_creation") or 0}
    return events.llm_call(model, kind, latency, finish, {**usage, **written})


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
    results = latest_results(state.get("messages", []))
    jobs = track_jobs(state.get("turn_jobs") or {} if same else {}, results)
    started = {**(state.get("thread_jobs") or {}), **started_jobs(results)}
    return {"turn_start_usage": start, "turn_jobs": jobs, "turn_mark": iterations, "thread_jobs": started}


def only_changes(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` without the keys whose value would not change (each written key is a stored write)."""
    return {key: value for key, value in update.items() if key not in state or state[key] != value}


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
    """`jobs` (id -> estimated max cost) with the jobs these results report started or ended."""
    running = dict(jobs)
    for result in results:
        artifact = result.artifact if isinstance(result.artifact, dict) else {}
        report: JobReport | None = artifact.get("job")
        if report and report["state"] == "ended":
            running.pop(report["id"], None)
        elif report and report["state"] == "started":
            running[report["id"]] = report["max_cost_usd"]
    return running


def started_jobs(results: list[ToolMessage]) -> dict[str, float | None]:
    """The jobs these results report started (id -> estimated max cost), ended or not."""
    reports = [r.artifact.get("job") for r in results if isinstance(r.artifact, dict)]
    return {job["id"]: job["max_cost_usd"] for job in reports if job and job["state"] == "started"}


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
