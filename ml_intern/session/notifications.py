"""Auto notifications: approval_required, error and turn_complete sent to the destinations that allow them
(`allow_auto_events`), by a background thread, so that delivery never blocks or breaks a turn."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ml_intern.configs.schema import AgentConfig, MessagingConfig
from ml_intern.graph.events import Event, EventSink, notice
from ml_intern.secrets import redact
from ml_intern.tools.notify.slack import DeliveryError, SlackTarget, deliver, format_message, slack_targets

SEVERITY = {"approval_required": "warning", "error": "error", "turn_complete": "success"}
ERROR_CHARS = 500
ANSWER_CHARS = 39_000
EXIT_WAIT_S = 5.0  # at exit, queued messages get this long; then they are dropped with a log line

logger = logging.getLogger("ml_intern.notifications")


def notification_text(event: Event, thread_id: str) -> str | None:
    """What an event says to the user's Slack; None for events (and turn ends) that say nothing there."""
    kind = event.get("type")
    if kind == "approval_required":
        calls = event.get("tool_calls") or []
        names = ", ".join(dict.fromkeys(str(call.get("name", "?")) for call in calls))
        return f"Thread {thread_id} is waiting for approval for {len(calls)} tool call(s). Tools: {names}"
    if kind == "error":
        return f"Thread {thread_id} failed: {redact(str(event.get('message', '')))[:ERROR_CHARS]}"
    if kind == "turn_complete" and event.get("stop_reason") != "approval_required":
        reason = event.get("stop_reason")
        ended = "completed successfully" if reason == "end_turn" else f"stopped ({reason})"
        answer = redact(str(event.get("final_response") or ""))[:ANSWER_CHARS]  # redacted before the cut
        return f"Thread {thread_id} {ended}." + (f"\n\n{answer}" if answer else "")
    return None


@dataclass
class Notifier:
    """One queue of messages and the daemon thread that delivers them to `targets`."""

    targets: dict[str, SlackTarget]
    event_types: frozenset[str]
    pending: queue.Queue[str] = field(default_factory=queue.Queue)
    worker: threading.Thread | None = None

    def event(self, event: Event, thread_id: str, model: str) -> None:
        """Queue the notification `event` calls for, if any; never raises."""
        try:
            kind = str(event.get("type"))
            text = notification_text(event, thread_id) if kind in self.event_types else None
            if text is None:
                return
            metadata = {"thread": thread_id, "model": model}
            self.pending.put(format_message(text, None, SEVERITY[kind], metadata))
            if self.worker is None:
                self.worker = threading.Thread(target=self.deliver_all, name="notifications", daemon=True)
                self.worker.start()
        except Exception as exc:  # a notification must never break the turn
            logger.warning("notification not queued: %s", redact(f"{type(exc).__name__}: {exc}"))

    def deliver_all(self) -> None:
        """The worker: send each queued message to every target, logging failures."""
        while True:
            text = self.pending.get()
            for name, target in self.targets.items():
                try:
                    deliver(target, text)
                except DeliveryError as exc:
                    logger.warning("notification to %s failed: %s", name, exc)
                except Exception as exc:
                    logger.warning("notification to %s failed: %s", name, type(exc).__name__)
            self.pending.task_done()

    def drain(self, timeout: float = EXIT_WAIT_S) -> None:
        """Wait up to `timeout` seconds for queued messages; log how many are dropped."""
        deadline = time.monotonic() + timeout
        while self.pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        if left := self.pending.unfinished_tasks:
            logger.warning("dropped %d notification(s) still queued at exit", left)


_notifiers: dict[str, Notifier] = {}
_lock = threading.Lock()


def notifier_for(config: AgentConfig, environ: Mapping[str, str]) -> Notifier | None:
    """The process's notifier for `config`'s auto-event destinations; None when there are none."""
    targets = slack_targets(config, environ, lambda dest: dest.allow_auto_events)
    if not targets:
        return None
    key = config.messaging.model_dump_json() + str(environ.get("SLACK_API_URL"))
    with _lock:
        if not _notifiers:
            atexit.register(drain_all)
        return _notifiers.setdefault(key, Notifier(targets, frozenset(config.messaging.auto_event_types)))


def drain_all() -> None:
    """At exit: give every notifier's queue its last few seconds, together."""
    deadline = time.monotonic() + EXIT_WAIT_S
    for notifier in list(_notifiers.values()):
        notifier.drain(max(0.0, deadline - time.monotonic()))


_announced: set[str] = set()  # the destination lines this process has shown


def destinations_line(messaging: MessagingConfig) -> str | None:
    """What the enabled destinations receive, in one line; None when nothing is sent anywhere."""
    uses = {
        name: [*(messaging.auto_event_types if dest.allow_auto_events else [])]
        + (["notify tool"] if dest.allow_agent_tool else [])
        for name, dest in messaging.destinations.items()
    }
    parts = [f"{name} ({', '.join(used)})" for name, used in uses.items() if used]
    return "notifications on: " + "; ".join(parts) if messaging.enabled and parts else None


def announce(sink: EventSink, messaging: MessagingConfig) -> None:
    """Show once per process (at its first turn) which destinations are on and what they receive."""
    line = destinations_line(messaging)
    with _lock:
        if line is None or line in _announced:
            return
        _announced.add(line)
    sink(notice("messaging", line))  # the config section that turned them on


def notifying(sink: EventSink, ctx: Any, thread_id: str, environ: Mapping[str, str]) -> EventSink:
    """`sink`, then the notification for events the config asks for (after the front-end showed them);
    the first turn of the process first says which destinations are on."""
    services = getattr(ctx, "services", None)
    if services is not None:
        announce(sink, services.config.messaging)
    notifier = notifier_for(services.config, environ) if services is not None else None
    if notifier is None:
        return sink

    def show_then_notify(event: Event) -> None:
        sink(event)
        notifier.event(event, thread_id, ctx.model)

    return show_then_notify
