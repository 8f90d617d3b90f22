"""The chat's view of events: Markdown as it streams, a line per tool call, a spinner while waiting, and
lasting lines for notices, errors, stops and the session's own events."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.text import Text

from ml_intern.terminal.tables import banner
from ml_intern.terminal.text import dim, inert, notice_line, red, short_args

CHECKBOX = re.compile(r"^\s*[-*]\s+\[([ xX~])\]\s+(.*)$")
CHECK_MARKS = {" ": ("○", ""), "x": ("✔", "green"), "X": ("✔", "green"), "~": ("◐", "yellow")}
NOT_RUN = ("rejected", "cancelled", "abandoned")  # call states shown as a line (interrupted: one summary)
CAPPED = "stopped after {} model calls (the iteration cap): send a message to go on"
STOP_HINTS = {
    "doom_loop": "stopped: the model kept repeating the same calls; give it a hint or rephrase",
    "stalled": "stopped: the model gave empty or repeated replies; rephrase, or /model ID",
    "context_overflow": "stopped: the conversation is too long for the model; /compact or /new",
    "budget": "stopped: the turn reached its budget (--max-cost / --max-tokens); send a message to go on",
}


def stop_hint(stop_reason: str, iterations: int) -> str | None:
    """Why a chat turn stopped early and what to do; None when it simply ended."""
    if stop_reason in ("end_turn", "approval_required"):
        return None
    if stop_reason in ("max_iterations", "recursion_limit"):
        return CAPPED.format(iterations)
    return STOP_HINTS.get(stop_reason, f"stopped ({stop_reason})")


def plan_checklist(plan: str) -> Text:
    """A `plan_tool` markdown checklist (`- [ ]`, `- [x]`, `- [~]`) as marked lines."""
    out = Text()
    for line in plan.splitlines():
        match = CHECKBOX.match(line)
        if match:
            mark, style = CHECK_MARKS[match[1]]
            out.append(f"  {mark} {match[2]}\n", style=style)
        elif line.strip():
            out.append(f"  {line.strip()}\n", style="bold")
    out.rstrip()
    return out


def tool_line(tool: str, args: dict[str, Any], width: int) -> Text:
    """One compact line for a tool call: its name and short arguments (a plan shows as its checklist)."""
    if tool == "plan_tool":
        return Text.assemble(("▸ ", "yellow"), (tool, "bold"))
    shown = inert(short_args(args, max(20, width - 8)))
    return Text.assemble(("▸ ", "yellow"), (inert(tool), "bold"), "  ", (shown, "dim"))


def tool_result(event: dict[str, Any], width: int) -> RenderableType:
    """A tool's result: a checklist for plans, else one line (red when it failed)."""
    output = str(event.get("output") or "")
    if event.get("tool") == "plan_tool" and event.get("success"):
        return plan_checklist(output)
    lines = [line for line in output.splitlines() if line.strip()]
    first = inert(lines[0].strip() if lines else "(no output)")[: max(20, width - 16)]
    if not event.get("success"):
        return Text(f"  ✗ {first}", style="red")
    more = f"  (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return dim(f"  ✓ {first}{more}")


def lasting_line(event: dict[str, Any]) -> RenderableType | None:
    """The line an event leaves in the chat's scrollback, if any (tool calls and replies aside)."""
    kind = event.get("type")
    if kind == "tool_log":  # a notice: the agent's own message, kept
        return dim("  " + inert(notice_line(event)))
    if kind == "tool_state_change" and event.get("state") in NOT_RUN:
        return Text(f"  ✗ {inert(event.get('tool') or '')} {event.get('state')}", style="yellow")
    if kind == "compacted":
        return dim(f"  context compacted: {event['tokens_before']:,} → {event['tokens_after']:,} tokens")
    if kind == "error":
        return red(f"error: {inert(event.get('message') or '')}")
    if kind == "ready":
        return banner(event["model"], event["thread_id"], event["workdir"], event.get("tool_runtime"))
    if kind == "new_complete":
        return Text(f"new thread {event['thread_id']}")
    if kind == "resume_complete":
        return dim(f"resumed: {event['turns']} turn(s) so far")
    if kind == "interrupted":
        stopped = event.get("stopped_calls") or 0
        return Text("interrupted" + (f": {stopped} tool call(s) stopped" if stopped else ""), style="yellow")
    if kind == "turn_complete":
        hint = stop_hint(event["stop_reason"], event["iterations"])
        return Text(hint, style="yellow") if hint else None
    return None


class MarkdownBlocks:
    """Streamed Markdown split into finished blocks (printed once) and the open tail (drawn live)."""

    def __init__(self) -> None:
        self.tail = ""

    def feed(self, chunk: str) -> str:
        """Add `chunk`; return the text of blocks it finished ("" when none)."""
        self.tail += chunk
        cut = self._last_boundary()
        done, self.tail = self.tail[:cut], self.tail[cut:]
        return done.strip("\n")

    def flush(self) -> str:
        """Everything still open, as a finished block."""
        rest, self.tail = self.tail, ""
        return rest.strip("\n")

    def _last_boundary(self) -> int:
        """End of the last blank line or closing code fence outside a code block."""
        in_fence, position, cut = False, 0, 0
        for line in self.tail.split("\n")[:-1]:  # complete lines only
            position += len(line) + 1
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                in_fence = not in_fence
                cut = cut if in_fence else position
            elif not stripped and not in_fence:
                cut = position
        return cut


class ChatView:
    """The chat's event consumer; between `start` and `stop` (a turn) it also draws a live region."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.spinner = Spinner("dots", style="cyan")
        self._reset()

    def _reset(self) -> None:
        self.blocks = MarkdownBlocks()
        self.streamed = False  # the current reply arrived as chunks
        self.thinking = True  # the model is working on a reply
        self.running: dict[str, str] = {}  # tool call id -> tool name, for calls still running
        self.last_log = ""  # the latest output line of a running tool

    def start(self) -> None:
        """A turn begins: draw its live region."""
        self._reset()
        self.live = Live(
            console=self.console, refresh_per_second=8, transient=True, get_renderable=self._view
        )
        self.live.start()

    def stop(self) -> None:
        self._print_markdown(self.blocks.flush())
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _view(self) -> RenderableType:
        """What the live region shows: the open paragraph, else a spinner saying what is running."""
        tail = self.blocks.tail
        if tail.strip():
            lines = tail.splitlines()
            room = max(3, self.console.height - 3)
            return Markdown(inert(tail)) if len(lines) <= room else Text(inert("\n".join(lines[-room:])))
        if self.running:
            names = ", ".join(sorted(set(self.running.values())))
            log = f" · {self.last_log[: self.console.width - len(names) - 20]}" if self.last_log else ""
            self.spinner.update(text=dim(f"running {names}{inert(log)}"))
            return self.spinner
        if self.thinking:
            self.spinner.update(text=dim("thinking…"))
            return self.spinner
        return Text("")

    def _print_markdown(self, text: str) -> None:
        if text.strip():
            self.console.print(Markdown(inert(text)))

    def print(self, renderable: RenderableType) -> None:
        """Print above the live region, after any finished text."""
        self._print_markdown(self.blocks.flush())
        self.console.print(renderable)

    def event(self, event: dict[str, Any]) -> None:
        """Draw one event."""
        kind = event.get("type")
        if kind == "assistant_chunk":  # the live region catches up at its own pace: no redraw per token
            self.streamed, self.thinking = True, False
            self._print_markdown(self.blocks.feed(event.get("content") or ""))
            return
        if kind == "tool_log" and not event.get("notice"):  # a running tool's output: flashed, not kept
            self.last_log = str(event.get("text") or "").strip() or self.last_log
            return
        if kind == "processing":
            self.thinking = True
        elif kind == "assistant_message":
            self.thinking = False
            self._print_markdown(self.blocks.flush() if self.streamed else event.get("content") or "")
            self.streamed = False
        elif kind == "assistant_stream_end":
            self._print_markdown(self.blocks.flush())
        elif kind in ("tool_call", "tool_output"):
            self._tool_event(event)
        elif (line := lasting_line(event)) is not None:
            self.print(line)
        if self.live is not None:
            self.live.refresh()

    def _tool_event(self, event: dict[str, Any]) -> None:
        width = self.console.width
        if event["type"] == "tool_call":
            self.print(tool_line(event["tool"], event.get("args") or {}, width))
            self.running[event["id"]] = event["tool"]
            return
        self.running.pop(event.get("id", ""), None)
        self.last_log = "" if not self.running else self.last_log
        self.print(tool_result(event, width))
