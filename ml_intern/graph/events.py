"""Events streamed to the CLI and Studio (DESIGN.md "CLI": the stream-json types)."""

from __future__ import annotations

from typing import Any

from ml_intern.secrets import redact_value


def emit(event: dict[str, Any]) -> None:
    """Send `event` (a dict with a "type") to the graph's custom stream; a no-op outside a graph run."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):  # called outside a graph run
        return
    writer(redact_value(event))
