"""Run one turn of a thread: stream the graph, translate what it yields into events, report the outcome."""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from ml_intern.errors import EXIT_FAILURE, TurnFailed, UserError
from ml_intern.graph import events
from ml_intern.graph.accounting import turn_usage
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import EventSink
from ml_intern.graph.routing import recursion_limit
from ml_intern.graph.turns import continue_turn, new_turn
from ml_intern.model.errors import explain_model_error
from ml_intern.secrets import StreamRedactor, redact
from ml_intern.session.threads import thread_config

if TYPE_CHECKING:
    from ml_intern.session.storage import Storage

__all__ = [  # the graph inputs of a turn are re-exported: callers of run_turn need them
    "FINISHED", "EventSink", "TurnOutcome", "continue_turn", "new_turn", "outcome", "resume_with",
    "run_turn", "turn_failure", "unfinished_input",
]  # fmt: skip

FINISHED = object()  # `resume --continue` on a turn that was not cut off

DISK_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO, errno.EDQUOT}  # storage, not model


@dataclass
class TurnOutcome:
    """How a turn ended."""

    stop_reason: str  # end_turn, max_iterations, doom_loop, context_overflow, approval_required, ...
    final_response: str = ""  # the text of the last assistant message
    iterations: int = 0  # model calls made in the turn
    usage: dict[str, Any] = field(default_factory=dict)  # this turn's tokens and cost
    thread_usage: dict[str, Any] = field(default_factory=dict)  # the thread's totals
    approval: dict[str, Any] | None = None  # the interrupt payload when a human must approve calls

    def completed(self, thread_id: str) -> events.Event:
        """The `turn_complete` event (the fields of the `json` output format)."""
        usage = {key: value for key, value in self.usage.items() if key != "cost_usd"}
        cost = self.usage.get("cost_usd")
        return events.turn_complete(
            thread_id, self.final_response, self.stop_reason, self.iterations, usage, cost
        )


def resume_with(decisions: dict[str, Any]) -> Command:
    """The graph input that answers a pending approval (DESIGN.md resume value)."""
    return Command(resume=decisions)


def run_config(thread_id: str, ctx: RunContext) -> dict[str, Any]:
    """The thread's config for a run, with LangGraph's step limit derived from the iteration cap."""
    return {**thread_config(thread_id), "recursion_limit": recursion_limit(ctx.max_iterations)}


async def run_turn(
    app: Any, thread_id: str, graph_input: Any, ctx: RunContext, on_event: EventSink
) -> TurnOutcome:
    """Stream `graph_input` through the graph for `thread_id`, sending events to `on_event`."""
    config = run_config(thread_id, ctx)
    streamed, redactor = False, StreamRedactor()
    try:
        async for mode, chunk in app.astream(
            graph_input, config, context=ctx, stream_mode=["messages", "custom"], durability="sync"
        ):
            if mode == "custom":
                if chunk.get("type") == "assistant_message" and (rest := redactor.flush()):
                    on_event(events.assistant_chunk(rest))
                on_event(chunk)
            elif _is_reply_chunk(chunk) and chunk[0].text:
                streamed = True
                if text := redactor.feed(chunk[0].text):
                    on_event(events.assistant_chunk(text))
    except GraphRecursionError:
        forced: str | None = "recursion_limit"
    else:
        forced = None
    if rest := redactor.flush():
        on_event(events.assistant_chunk(rest))
    if streamed:
        on_event(events.assistant_stream_end())
    return await outcome(app, config, forced)


def _is_reply_chunk(chunk: Any) -> bool:
    message, metadata = chunk
    return isinstance(message, AIMessageChunk) and metadata.get("langgraph_node") == "call_model"


async def outcome(app: Any, config: dict[str, Any], forced_reason: str | None = None) -> TurnOutcome:
    """Read the thread's saved state after a run."""
    snapshot = await app.aget_state(config)
    values = snapshot.values or {}
    approval = next((i.value for i in snapshot.interrupts if isinstance(i.value, dict)), None)
    reason = forced_reason or (
        "approval_required" if approval else values.get("stop_reason") or "interrupted"
    )
    replies = [m for m in values.get("messages", []) if isinstance(m, AIMessage)]
    return TurnOutcome(
        stop_reason=reason,
        final_response=replies[-1].text if replies else "",
        iterations=values.get("iterations", 0),
        usage=turn_usage(values),
        thread_usage=values.get("usage") or {},
        approval=approval,
    )


async def unfinished_input(app: Any, thread_id: str) -> Any:
    """What `resume --continue` sends: None to go on from the saved checkpoint when steps were in flight,
    a continuation when the turn stopped early, FINISHED when it had ended."""
    state = await app.aget_state(thread_config(thread_id))
    if state.interrupts:
        raise UserError(
            f"thread {thread_id} is waiting for an approval: answer it with ml-intern resume {thread_id}"
        )
    if state.next or state.tasks:  # steps in flight when the process died (or a checkpoint write failed)
        return None
    if (state.values or {}).get("stop_reason") == "end_turn":
        return FINISHED
    return continue_turn()


def turn_failure(exc: Exception, thread_id: str, ctx: RunContext, storage: Storage | None) -> TurnFailed:
    """A turn of `ctx`'s model that raised `exc`, as one line and an exit code."""
    where = f"cannot save thread {thread_id} in {storage.where if storage else 'the database'}"
    if type(exc).__module__.startswith("psycopg"):  # Postgres (imported only when used): not the model
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        line = f"{where}: {redact(first)}; check the database server and ML_INTERN_DATABASE_URL"
        return TurnFailed(line, EXIT_FAILURE, False)
    if isinstance(exc, sqlite3.Error) or getattr(exc, "errno", None) in DISK_ERRORS:  # not the model
        return TurnFailed(f"{where}: {exc}; check disk space and ML_INTERN_HOME", EXIT_FAILURE, False)
    kind = ctx.services.model.kind if ctx.services is not None else None  # the router's lines for its calls
    message, code = explain_model_error(exc, ctx.model, kind)
    return TurnFailed(message, code, True)
