"""The `notify` tool: a message to the Slack destinations the config lets the agent use (`allow_agent_tool`).
Offered only when messaging is enabled and such a destination exists, so it costs nothing otherwise."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.tools import StructuredTool

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.notify.slack import DeliveryError, SlackTarget, deliver, format_message, slack_targets

MAX_NAMES = 10  # destinations one call may name
SHOWN_CHARS = 1_000  # of the text sent, quoted in the result so that the user sees what went out
DESCRIPTION = "Send a message to the user's Slack ({names}). Use only when asked."


async def send_to(target: SlackTarget, text: str) -> str:
    """One destination's result line: "sent" or "failed (reason)"."""
    try:
        await asyncio.to_thread(deliver, target, text)
    except DeliveryError as exc:
        return f"{target.name}: failed ({exc})"
    return f"{target.name}: sent"


def quoted(text: str) -> str:
    """The text sent, as a quote of at most SHOWN_CHARS characters."""
    shown = text[:SHOWN_CHARS] + (
        f"… [{len(text) - SHOWN_CHARS:,} more characters]" if len(text) > SHOWN_CHARS else ""
    )
    return "\n".join(f"> {line}" for line in shown.splitlines())


def make_tools(env: ToolEnv) -> list[Any]:
    """The notify tool, when at least one enabled destination allows it; else none."""
    targets = slack_targets(env.config, env.environ, lambda dest: dest.allow_agent_tool)
    if not targets:
        return []

    async def notify(
        destinations: list[str],
        message: str,
        title: str = "",  # hidden from the schema (TOOL_FACTS): a bold first line says as much
        severity: Literal["info", "success", "warning", "error"] = "info",
    ) -> str:
        names = list(dict.fromkeys(name.strip() for name in destinations if name.strip()))[:MAX_NAMES]
        if not names:
            raise ToolError(f"Name at least one destination: {', '.join(targets)}.")
        if not message.strip():
            raise ToolError("'message' must not be empty.")
        text = format_message(message, title, severity, {})
        lines = [
            await send_to(targets[name], text)
            if name in targets
            else f"{name}: failed (not a destination the agent may use; allowed: {', '.join(targets)})"
            for name in names
        ]
        sent = any(line.endswith(": sent") for line in lines)
        return "\n".join(lines) + (f"\n\nText sent:\n{quoted(text)}" if sent else "")

    return [
        StructuredTool.from_function(
            coroutine=notify, name="notify", description=DESCRIPTION.format(names=", ".join(targets))
        )
    ]
