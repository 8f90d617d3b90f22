"""The agent's state schema: one TypedDict, every key with its reducer and purpose."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph.message import _messages_delta_reducer

# A snapshot of the whole list is written every N message updates; in between only the new
# messages are stored, so checkpoint storage grows linearly with the transcript.
MESSAGE_SNAPSHOT_EVERY = 2000


def add_usage(total: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Sum token counts and costs; a cost of None (unknown price) makes the total unknown."""
    total = dict(total or {})
    for key, value in (new or {}).items():
        if key.endswith("cost_usd"):
            known = total.get(key, 0.0) is not None and value is not None
            total[key] = (total.get(key, 0.0) + value) if known else None
        else:
            total[key] = total.get(key, 0) + value
    return total


class AgentState(TypedDict, total=False):
    """The state of one thread."""

    messages: Annotated[
        list[AnyMessage], DeltaChannel(_messages_delta_reducer, snapshot_frequency=MESSAGE_SNAPSHOT_EVERY)
    ]  # the transcript, stored as deltas
    iterations: int  # model calls made in the current turn
    guards: int  # doom-loop guard messages added in the current turn
    nudges: int  # stall guards added in the current turn
    continuations: int  # unfinished-plan guards added in the current turn
    overflows: int  # context-window overflows met in the current turn
    force_compact: bool  # the last model call overflowed the context: compact before retrying it
    stop_reason: str | None  # why the last turn ended (None while a turn runs)
    approvals: dict[str, dict[str, Any]]  # decisions on the latest pending calls, by tool call id
    context_tokens: int  # prompt tokens of the latest model call: the context size compaction watches
    usage: Annotated[dict[str, Any], add_usage]  # thread totals: input/output/cached tokens, cost_usd
    turn_start_usage: dict[str, Any]  # `usage` as the current turn began; the turn's usage is the difference
    turn_mark: int  # `iterations` at the latest accounting write; a smaller count means a new turn began
    turn_jobs: dict[str, float | None]  # HF jobs started this turn, not seen to end: id -> est. max cost USD
    thread_jobs: dict[str, float | None]  # HF jobs the thread started: id -> est. max cost USD (usage check)
    yolo_reserved: dict[str, float]  # paid calls yolo approved: reply id/call id -> est. cost (the yolo cap)
    usage_check_usd: float  # thread spend at which a chat next asks to go on (absent: config value)
