"""`/compact`: summarise the middle of a thread now, whatever its size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml_intern.errors import UserError
from ml_intern.graph.accounting import labelled
from ml_intern.graph.context import RunContext
from ml_intern.run_services import services_for
from ml_intern.session.threads import thread_config


@dataclass
class Compaction:
    """What `/compact` did: estimated context tokens before and after."""

    tokens_before: int
    tokens_after: int


async def compact_thread(app: Any, thread_id: str, ctx: RunContext) -> Compaction | None:
    """Summarise all but the recent messages; None when there is nothing to cut."""
    from langgraph.types import Overwrite

    from ml_intern.nodes.compact import context_size, estimate_tokens, summarise

    config = thread_config(thread_id)
    snapshot = await app.aget_state(config)
    if snapshot.interrupts:
        raise UserError("the thread is waiting for an approval: answer it before compacting")
    values = snapshot.values or {}
    messages = values.get("messages", [])
    if not messages:
        return None
    services = await services_for(ctx)
    before = context_size(values)
    keep = min(services.config.compaction.keep_recent_tokens, estimate_tokens(messages) // 4)
    result = await summarise(messages, services.chat_model, keep, services.model.litellm_model)
    if result is None:
        return None
    compacted, usage = result
    after = estimate_tokens(compacted)
    update = {
        "messages": Overwrite(compacted),
        "context_tokens": after,
        "usage": {**labelled(usage, "compaction"), "compactions": 1},
    }
    await app.aupdate_state(config, update, as_node="compact")
    return Compaction(before, after)
