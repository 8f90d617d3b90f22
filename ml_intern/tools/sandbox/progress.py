"""Where a sandbox's progress and notices go: the tool calls waiting on its making (each in its own graph
run), else the graph run of the code that sends, else the session's sink (a preload, exit)."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ml_intern.graph.events import EventSink, progress
from ml_intern.secrets import redact_value


def sink_here() -> tuple[Any, EventSink] | None:
    """The stream of the graph run this code is in, if any, callable from elsewhere: (writer, sink)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):
        return None
    # The writer reads its run's config from the context: called from the making task, it needs it back.
    return writer, functools.partial(contextvars.copy_context().run, writer)


class Progress:
    """The manager's event fan-out (every event redacted)."""

    def __init__(self) -> None:
        self.on_event: EventSink | None = None  # the session's sink: when no graph run listens
        self.sinks: list[tuple[Any, EventSink]] = []  # the waiting tool calls' streams (key, sink)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """While the caller waits, the events go to its graph run too."""
        sink = sink_here() or (self.on_event, self.on_event)
        if sink[1] is not None:
            self.sinks.append(sink)
        try:
            yield
        finally:
            if sink[1] is not None:
                self.sinks.remove(sink)

    def log(self, text: str) -> None:
        self.send(progress("sandbox", text))

    def send(self, event: dict[str, Any]) -> None:
        event = redact_value(event)
        sinks = list(dict(self.sinks).values()) or [(sink_here() or (None, self.on_event))[1]]
        for sink in sinks:
            if sink is not None:
                with suppress(Exception):
                    sink(event)
