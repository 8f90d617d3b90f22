"""Where a sandbox's progress and notices go: the tool calls waiting on its making (each in its own graph
run), else the graph run of the code that sends, else the session's sink (a preload, exit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ml_intern.graph.events import EventSink, tool_log
from ml_intern.secrets import redact_value
from ml_intern.tools.sandbox.making import sink_here


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
        self.send(tool_log("sandbox", text))

    def send(self, event: dict[str, Any]) -> None:
        event = redact_value(event)
        sinks = list(dict(self.sinks).values()) or [(sink_here() or (None, self.on_event))[1]]
        for sink in sinks:
            if sink is not None:
                with suppress(Exception):
                    sink(event)
