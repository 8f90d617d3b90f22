"""Headless output, one event consumer per `--output-format`: text, json, stream-json."""

from __future__ import annotations

import json
import sys
from typing import Any

from ml_intern.errors import FAILED_REASONS, STOPPED_REASONS
from ml_intern.graph.accounting import format_usage
from ml_intern.terminal.text import inert, notice_line, short_args

SUMMARY_FIELDS = ("thread_id", "final_response", "stop_reason", "iterations", "usage", "cost_usd")


def progress_line(event: dict[str, Any]) -> str | None:
    """A headless progress line on stderr, for the events worth one (model text made inert)."""
    line = _progress_text(event)
    return inert(line) if line is not None else None


def _progress_text(event: dict[str, Any]) -> str | None:
    kind = event.get("type")
    if kind == "thread_started":
        return f"thread {event['thread_id']} · {event['model']}"
    if kind == "tool_call":
        return f"→ {event['tool']} {short_args(event['args'])}"
    if kind == "tool_output" and not event.get("success"):
        return f"  ✗ {event['output'].splitlines()[0][:200] if event['output'] else ''}"
    # Notices, and a sandbox's progress (one line per stage, or per 15 s, while it builds).
    if kind == "tool_log" and (event.get("notice") or event.get("progress")):
        return notice_line(event)
    if kind == "compacted":
        return f"compacted: {event['tokens_before']:,} → {event['tokens_after']:,} tokens"
    return None


def closing_line(stop_reason: str, thread_id: str) -> str:
    """How to go on with the thread, after a headless turn."""
    if stop_reason == "approval_required":
        return f"waiting for approval: answer with ml-intern resume {thread_id}"
    if stop_reason in STOPPED_REASONS or stop_reason in FAILED_REASONS:
        return f"stopped ({stop_reason}): finish with ml-intern resume {thread_id} --continue"
    return f'thread {thread_id}: continue with ml-intern resume {thread_id} "..."'


def summary(event: dict[str, Any]) -> dict[str, Any]:
    """The `json` output: a `turn_complete` event without its type."""
    return {key: event[key] for key in SUMMARY_FIELDS}


def say(line: str) -> None:
    print(inert(line), file=sys.stderr, flush=True)  # error lines may name a shared database's rows


def say_interrupted(event: dict[str, Any]) -> None:
    """Ctrl-C, in every format: how to go on."""
    thread_id = event["thread_id"]
    say(f"interrupted: finish the turn with ml-intern resume {thread_id} --continue")


class TextOutput:
    """`text`: progress, notices and usage on stderr; the final answer on stdout.

    An error line waits for the next event: when the run ends on it (`shutdown` follows), the run's exit line
    reports it instead, so that it is printed once."""

    def __init__(self) -> None:
        self.held: str | None = None  # an error line not printed yet

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if self.held is not None and kind != "shutdown":
            say(self.held)
        self.held = None
        if kind == "error":
            self.held = f"error: {event.get('message')}"
        elif kind == "turn_complete":
            self._finish(event)
        elif kind == "interrupted":
            say_interrupted(event)
        elif line := progress_line(event):
            say(line)

    def _finish(self, event: dict[str, Any]) -> None:
        if event["final_response"]:
            print(event["final_response"], flush=True)
        usage, cost = event["usage"], event["cost_usd"]
        say(f"usage: {format_usage({**usage, 'cost_usd': cost} if usage or cost is not None else {})}")
        say(closing_line(event["stop_reason"], event["thread_id"]))


class JsonOutput:
    """`json`: one object on stdout when the turn ends."""

    def event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "turn_complete":
            print(json.dumps(summary(event), default=str), flush=True)
        elif event.get("type") == "interrupted":
            say_interrupted(event)


class StreamJsonOutput:
    """`stream-json`: every event as one JSON object per line on stdout."""

    def event(self, event: dict[str, Any]) -> None:
        print(json.dumps(event, default=str), flush=True)
        if event.get("type") == "interrupted":
            say_interrupted(event)


OUTPUTS = {"text": TextOutput, "json": JsonOutput, "stream-json": StreamJsonOutput}


def output_for(output_format: str) -> TextOutput | JsonOutput | StreamJsonOutput:
    return OUTPUTS[output_format]()
