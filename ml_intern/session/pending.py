"""Tool calls left unanswered (an approval not given, a turn cut off by Ctrl-C): find them and settle them."""

from __future__ import annotations

from typing import Any

from ml_intern.graph.messages import pending_calls, tool_result
from ml_intern.session.threads import ThreadStore, thread_config

INTERRUPTED = "Interrupted by the user (Ctrl-C) before this call finished; it may have partly run."
ABANDONED = "Not executed: the user sent a new message instead of answering the approval request."
CANCELLED = "Not executed: the user cancelled the turn (Ctrl-C) instead of answering the approval request."


async def pending_approval(app: Any, thread_id: str) -> dict[str, Any] | None:
    """The approval request the thread is waiting on (the interrupt payload), if any."""
    snapshot = await app.aget_state(thread_config(thread_id))
    return next((i.value for i in snapshot.interrupts if isinstance(i.value, dict)), None)


async def settle_pending_calls(
    app: Any, threads: ThreadStore, thread_id: str, text: str, stop_reason: str
) -> list[dict[str, Any]]:
    """Answer every unanswered tool call with `text` and end the turn with `stop_reason`; the calls answered.

    Written as if `call_model` had stopped the turn, so the thread has no pending step or interrupt and the
    next message (or `resume --continue`) starts cleanly."""
    config = thread_config(thread_id)
    snapshot = await app.aget_state(config)
    values = snapshot.values or {}
    if not values.get("messages"):
        return []
    calls = pending_calls(values["messages"])
    update: dict[str, Any] = {"stop_reason": stop_reason, "approvals": {}}
    if calls:
        update["messages"] = [tool_result(call, text, "error") for call in calls]
    await app.aupdate_state(config, update, as_node="call_model")
    await threads.end_turn(thread_id, stop_reason, values.get("usage") or {})
    return calls
