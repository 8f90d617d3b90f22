"""Text every screen shares: inert model text, short arguments, notice wording, error lines."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from rich.console import Console
from rich.text import Text

from ml_intern.secrets import redact

# What can hide or reorder text on a terminal: control characters (C0 but newline and tab, DEL, C1), bidi
# marks, overrides and isolates, zero-width and invisible characters, line/paragraph separators, tag chars.
CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    r"\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def inert(text: str) -> str:
    """Model text made safe to show: control and escape characters written out (`\\x1b`), never sent."""
    return CONTROLS.sub(lambda match: match[0].encode("unicode_escape").decode("ascii"), str(text))


def short_args(args: dict[str, Any], width: int = 100) -> str:
    """Tool arguments on one line, cut to `width`."""
    text = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())
    text = text.replace("\\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def notice_line(event: dict[str, Any]) -> str:
    """An agent notice (`events.notice`: budget, MCP, retries, snapshots) as one line."""
    return f"{event.get('tool')}: {event.get('text', '')}"


def when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def red(message: str) -> Text:
    return Text(message, style="bold red")


def dim(message: str) -> Text:
    return Text(message, style="dim")


def print_error(message: str) -> None:
    """One red line on stderr (plain text when stderr is not a terminal); inert: it may name what a shared
    database holds (a lock holder's host)."""
    Console(stderr=True, highlight=False).print(
        f"ml-intern: error: {inert(redact(message))}", style="bold red", markup=False, soft_wrap=True
    )
