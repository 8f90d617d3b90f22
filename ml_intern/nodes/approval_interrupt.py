"""approval_interrupt: ask a human about calls that need approval (DESIGN.md "Approval protocol")."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from ml_intern.graph import events
from ml_intern.graph.budget import (
    CHAT_MODES,
    cap_reason,
    reservation_key,
    thread_spend,
    usage_check_call,
    yolo_spent,
)
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import pending_calls
from ml_intern.graph.state import AgentState
from ml_intern.run_services import services_for
from ml_intern.secrets import unredacted_args
from ml_intern.tools.registry import ApprovalNeed, approval_need

DENIED = "rejected by the approval policy (--approval deny)"
NEVER_AUTO = (
    "never approved automatically (scheduled jobs, changes outside the working directory, credential "
    "reads, tools the config marks `always`); ask the user to run this interactively"
)


def decide_without_asking(mode: str, always_ask: bool) -> dict[str, Any] | None:
    """The decision for a call under `mode`, or None when a human must be asked (ask; yolo: a chat with
    `yolo_mode`, which approves everything but the always-asked calls)."""
    if mode == "deny":
        return {"approved": False, "feedback": DENIED}
    if mode == "auto":
        return {"approved": False, "feedback": NEVER_AUTO} if always_ask else {"approved": True}
    if mode == "yolo" and not always_ask:
        return {"approved": True}
    return None


def parse_resume(value: Any, call_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Decisions for `call_ids` from a resume value: per-call `decisions`, or the `approve` shorthand."""
    value = value if isinstance(value, dict) else {}
    if "decisions" in value:
        given = value["decisions"] or {}
        missing = {"approved": False, "feedback": "no decision was given for this call"}
        return {cid: _decision(given.get(cid, missing)) for cid in call_ids}
    return {cid: _decision(value) for cid in call_ids}


def _decision(raw: Any) -> dict[str, Any]:
    """One decision; `yolo: true` says a front-end's yolo approved it (it counts against the yolo cap)."""
    raw = raw if isinstance(raw, dict) else {}
    approved = bool(raw.get("approved", raw.get("approve", False)))
    decision = {"approved": approved, "feedback": str(raw.get("feedback") or "")}
    return {**decision, "yolo": True} if approved and raw.get("yolo") is True else decision


def call_need(call: dict[str, Any], services: Any) -> ApprovalNeed | None:
    """Whether `call` needs approval; a call of no offered tool needs none (it only gets an error)."""
    tool = services.tools_by_name.get(call["name"])
    if tool is None:
        return None
    # Judge what will run (the model's own arguments), not their redacted, stored form.
    return approval_need(call["name"], unredacted_args(call, keep=True), services.env, tool)


def capped(need: ApprovalNeed, cost: float | None, remaining: float) -> tuple[ApprovalNeed, bool]:
    """The need of a paid call under the yolo cap, and whether yolo may approve it (it fits the cap)."""
    if cost is not None and cost <= remaining:
        return need, True
    return ApprovalNeed(f"{cap_reason(cost, remaining)}. {need.reason}", always_ask=True), False


def usage_check(state: AgentState, config: Any, mode: str, call_ids: list[str]) -> dict[str, Any] | None:
    """The usage check to ask in a chat whose spend reached its threshold; None when not due (or off)."""
    threshold = state.get("usage_check_usd", getattr(config, "usage_threshold_usd", None))
    spent = thread_spend(state)
    if mode not in CHAT_MODES or threshold is None or spent < threshold:
        return None
    check = usage_check_call(spent, threshold)
    while check["id"] in call_ids:  # a model's call id must not take the check's answer
        check["id"] += "_"
    return check


def settle_usage(
    decisions: dict[str, dict[str, Any]], check: dict[str, Any], call_ids: list[str]
) -> dict[str, Any]:
    """Apply the answer to the usage check: approved, the next threshold; rejected, every call rejected and
    the turn ends (stop reason `budget`)."""
    answer = decisions.pop(check["id"])
    if answer["approved"]:
        return {"usage_check_usd": check["args"]["next_check_usd"]}
    feedback = f"not run: the user stopped at the usage check ({check['reason']})"
    decisions.update(dict.fromkeys(call_ids, {"approved": False, "feedback": feedback}))
    return {"usage_check_usd": check["args"]["next_check_usd"], "stop_reason": "budget"}


def triage(
    state: AgentState,
    calls: list[dict[str, Any]],
    needs: list[ApprovalNeed | None],
    ctx: RunContext,
    services: Any,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """The decisions made without asking, the calls to ask about, and the paid calls yolo may approve
    (reserved in call order against the remaining yolo cap)."""
    cap = getattr(services.config, "yolo_cost_cap_usd", None)
    remaining = None if cap is None or ctx.approval not in CHAT_MODES else cap - yolo_spent(state)
    decisions: dict[str, dict[str, Any]] = {}
    ask: list[dict[str, Any]] = []
    estimates: dict[str, float] = {}
    for call, need in zip(calls, needs, strict=True):
        if need is None:
            continue
        if need.paid and remaining is not None:
            cost = need.cost_usd
            need, fits = capped(need, cost, remaining - sum(estimates.values()))
            if fits:
                estimates[call["id"]] = cost or 0.0
        decision = decide_without_asking(ctx.approval, need.always_ask)
        if decision is None:
            ask.append(events.pending_call(call, need.reason, need.always_ask))
        else:
            by_yolo = ctx.approval == "yolo" and decision["approved"]
            decisions[call["id"]] = {**decision, "yolo": True} if by_yolo else decision
    return decisions, ask, estimates


async def needs_a_decision(state: AgentState, ctx: RunContext) -> bool:
    """Whether approval_interrupt has work: a pending call that needs approval, or a chat's usage check that
    is due. When it has none, the calls go straight to execute_tools (which asks the registry again before
    running a call without a decision, so nothing that needs approval runs unasked)."""
    services = await services_for(ctx)
    await services.start()
    calls = pending_calls(state["messages"])
    if usage_check(state, services.config, ctx.approval, [call["id"] for call in calls]):
        return True
    needs = await asyncio.to_thread(lambda: [call_need(call, services) for call in calls])
    return any(need is not None for need in needs)


async def approval_interrupt(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Decide every pending call that needs approval; interrupt only when a human must answer (a chat's
    usage check included).

    Nothing before `interrupt()` may have side effects: on resume the node runs again from the top."""
    ctx = runtime.context or RunContext()
    services = await services_for(ctx)
    await services.start()  # idempotent; a resumed thread must see its MCP tools and what they declare
    calls = pending_calls(state["messages"])
    # Rules may read local files (an upload's preview): off the event loop.
    needs = await asyncio.to_thread(lambda: [call_need(call, services) for call in calls])
    decisions, ask, estimates = triage(state, calls, needs, ctx, services)
    call_ids = [call["id"] for call in calls]
    check = usage_check(state, services.config, ctx.approval, call_ids)
    update: dict[str, Any] = {}
    asked = [*ask, *([check] if check else [])]
    if asked:
        answer = interrupt(events.approval_request(asked))
        decisions.update(parse_resume(answer, [call["id"] for call in asked]))
        if check:
            update = settle_usage(decisions, check, call_ids)
    return {"approvals": decisions, **update, **reservations(state, decisions, estimates)}


def reservations(
    state: AgentState, decisions: dict[str, dict[str, Any]], estimates: dict[str, float]
) -> dict[str, Any]:
    """The yolo reservations with the paid calls approved by yolo in this batch, each under a key the model
    cannot choose; an existing reservation is never replaced (nothing new: no update)."""
    reserved = dict(state.get("yolo_reserved") or {})
    reply = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
    for call_id, cost in estimates.items():
        if decisions.get(call_id, {}).get("yolo"):
            reserved.setdefault(reservation_key(reply.id if reply else None, call_id, reserved), cost)
    return {"yolo_reserved": reserved} if reserved != (state.get("yolo_reserved") or {}) else {}
