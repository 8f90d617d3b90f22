"""approval_interrupt: ask a human about calls that need approval (DESIGN.md "Approval protocol")."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import pending_calls
from ml_intern.graph.state import AgentState
from ml_intern.secrets import unredacted_args
from ml_intern.services import services_for
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
    raw = raw if isinstance(raw, dict) else {}
    approved = bool(raw.get("approved", raw.get("approve", False)))
    return {"approved": approved, "feedback": str(raw.get("feedback") or "")}


def call_need(call: dict[str, Any], services: Any) -> ApprovalNeed | None:
    """Whether `call` needs approval; a call of no offered tool needs none (it only gets an error)."""
    tool = services.tools_by_name.get(call["name"])
    if tool is None:
        return None
    # Judge what will run (the model's own arguments), not their redacted, stored form.
    return approval_need(call["name"], unredacted_args(call, keep=True), services.env, tool)


async def approval_interrupt(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Decide every pending call that needs approval; interrupt only when a human must answer.

    Nothing before `interrupt()` may have side effects: on resume the node runs again from the top."""
    ctx = runtime.context or RunContext()
    services = await services_for(ctx)
    await services.start()  # idempotent; a resumed thread must see its MCP tools and what they declare
    calls = pending_calls(state["messages"])
    # Rules may read local files (an upload's preview): off the event loop.
    needs = await asyncio.to_thread(lambda: [call_need(call, services) for call in calls])
    decisions: dict[str, dict[str, Any]] = {}
    ask: list[dict[str, Any]] = []
    for call, need in zip(calls, needs, strict=True):
        if need is None:
            continue
        decision = decide_without_asking(ctx.approval, need.always_ask)
        if decision is None:
            ask.append(events.pending_call(call, need.reason, need.always_ask))
        else:
            decisions[call["id"]] = decision
    if ask:
        answer = interrupt(events.approval_request(ask))
        decisions.update(parse_resume(answer, [call["id"] for call in ask]))
    return {"approvals": decisions}
