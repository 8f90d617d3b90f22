"""Settling a thread's unanswered tool calls: an approval abandoned by a new message, cancelled at its
question, or left by a turn cut short (the Session's methods for it)."""

from __future__ import annotations

from typing import Any

from ml_intern.graph import events
from ml_intern.graph.events import CallState, EventSink
from ml_intern.session import pending
from ml_intern.session.locks import ThreadLocks
from ml_intern.session.threads import ThreadStore


class Settling:
    """What a Session does with calls no tool answered (a mixin: the Session's fields below)."""

    app: Any
    threads: ThreadStore
    locks: ThreadLocks
    thread_id: str
    on_event: EventSink

    async def pending_approval(self, thread_id: str | None = None) -> dict[str, Any] | None:
        """The approval request the thread waits on (the interrupt payload), if any."""
        return await pending.pending_approval(self.app, thread_id or self.thread_id)

    async def settle(
        self, text: str, stop_reason: str, state: CallState, thread_id: str | None = None
    ) -> int:
        """Answer every unanswered call with `text`, end the turn; how many calls were answered."""
        thread_id = thread_id or self.thread_id
        async with self.locks.writing(thread_id, "settling unanswered calls"):
            calls = await pending.settle_pending_calls(self.app, self.threads, thread_id, text, stop_reason)
        for call in calls:
            self.on_event(events.tool_state_change(call["id"], call["name"], state))
        return len(calls)

    async def abandon_pending_approval(self, thread_id: str | None = None) -> int:
        """Before a new message: the calls of an unanswered approval request are not executed."""
        if await self.pending_approval(thread_id) is None:
            return 0
        return await self.settle(pending.ABANDONED, "abandoned", "abandoned", thread_id)

    async def cancel_approval(self) -> int:
        """Ctrl-C at the approval question: the calls asked about are not executed."""
        return await self.settle(pending.CANCELLED, "interrupted", "cancelled")
