"""Terminal rendering for the CLI: the chat's live turn view, approval cards, tables, headless progress.

Only `cli.py` imports this module, and only inside functions, so that `ml-intern --help` stays fast."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ml_intern.cli import STOPPED_REASONS
from ml_intern.graph.accounting import format_cost, format_usage

AGENT_LOGS = ("model", "doom_check", "undo")  # the agent's own progress lines: printed, not spun
PREVIEW_LINES = 15  # lines of a command, script or file shown in an approval card
CHECKBOX = re.compile(r"^\s*[-*]\s+\[([ xX~])\]\s+(.*)$")
CHECK_MARKS = {" ": ("○", ""), "x": ("✔", "green"), "X": ("✔", "green"), "~": ("◐", "yellow")}
HELP = (
    ("/help", "show the commands"),
    ("/undo [N]", "rewind the last N turns (default 1) and the files they changed"),
    ("/compact", "summarise the conversation now, to free context"),
    ("/model [ID]", "show the model, or switch to ID once it answers"),
    ("/new", "start a new thread"),
    ("/threads", "list recent threads"),
    ("/status", "model, thread, turns, tokens and cost"),
    ("/share-traces [public|private]", "show or set the visibility of your uploaded traces"),
    ("/yolo", "approve every call from now on (scheduled jobs are still asked); again to stop"),
    ("/quit", "leave (Ctrl-D too); Ctrl-C cancels a running turn, twice quits"),
)


def short_args(args: dict[str, Any], width: int = 100) -> str:
    """Tool arguments on one line, cut to `width`."""
    text = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())
    text = text.replace("\\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def red(message: str) -> Text:
    return Text(message, style="bold red")


def dim(message: str) -> Text:
    return Text(message, style="dim")


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
    return Text.assemble(
        ("▸ ", "yellow"), (tool, "bold"), "  ", (short_args(args, max(20, width - 8)), "dim")
    )


def tool_result(event: dict[str, Any], width: int) -> RenderableType:
    """A tool's result: a checklist for plans, else one line (red when it failed)."""
    output = str(event.get("output") or "")
    if event.get("tool") == "plan_tool" and event.get("success"):
        return plan_checklist(output)
    lines = [line for line in output.splitlines() if line.strip()]
    first = (lines[0].strip() if lines else "(no output)")[: max(20, width - 16)]
    if not event.get("success"):
        return Text(f"  ✗ {first}", style="red")
    more = f"  (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return dim(f"  ✓ {first}{more}")


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


class ChatRenderer:
    """Draws one turn: Markdown as it streams, a line per tool call, a spinner while waiting, red errors."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.blocks = MarkdownBlocks()
        self.streamed = False  # the current reply arrived as chunks
        self.thinking = True  # the model is working on a reply
        self.running: dict[str, str] = {}  # tool call id -> tool name, for calls still running
        self.last_log = ""  # the latest output line of a running tool
        self.spinner = Spinner("dots", style="cyan")
        self.live: Live | None = None

    def start(self) -> None:
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
            return Markdown(tail) if len(lines) <= room else Text("\n".join(lines[-room:]))
        if self.running:
            names = ", ".join(sorted(set(self.running.values())))
            log = f" · {self.last_log[: self.console.width - len(names) - 20]}" if self.last_log else ""
            self.spinner.update(text=dim(f"running {names}{log}"))
            return self.spinner
        if self.thinking:
            self.spinner.update(text=dim("thinking…"))
            return self.spinner
        return Text("")

    def _print_markdown(self, text: str) -> None:
        if text.strip():
            self.console.print(Markdown(text))

    def print(self, renderable: RenderableType) -> None:
        """Print above the live region, after any finished text."""
        self._print_markdown(self.blocks.flush())
        self.console.print(renderable)

    def event(self, event: dict[str, Any]) -> None:
        """Draw one graph event."""
        kind = event.get("type")
        if kind == "assistant_chunk":  # the live region catches up at its own pace: no redraw per token
            self.streamed, self.thinking = True, False
            self._print_markdown(self.blocks.feed(event.get("content") or ""))
            return
        if kind == "tool_log" and event.get("tool") not in AGENT_LOGS:  # nor per line of tool output
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
        else:
            self._tool_event(kind, event)
        if self.live is not None:
            self.live.refresh()

    def _tool_event(self, kind: Any, event: dict[str, Any]) -> None:
        width = self.console.width
        if kind == "tool_call":
            self.print(tool_line(event["tool"], event.get("args") or {}, width))
            self.running[event["id"]] = event["tool"]
        elif kind == "tool_output":
            self.running.pop(event.get("id", ""), None)
            self.last_log = "" if not self.running else self.last_log
            self.print(tool_result(event, width))
        elif kind == "tool_log":
            self.print(dim(f"  {event['tool']}: {event.get('text', '')}"))
        elif kind == "tool_state_change" and event.get("state") == "rejected":
            self.print(Text(f"  ✗ {event.get('tool')} rejected", style="yellow"))
        elif kind == "compacted":
            self.print(
                dim(f"  context compacted: {event['tokens_before']:,} → {event['tokens_after']:,} tokens")
            )
        elif kind == "error":
            self.print(red(f"error: {event.get('message')}"))


# ---- approvals, status, help, banner --------------------------------------------------------------------


def preview(text: str, prefix: str = "    ") -> Text:
    """The first lines of `text`, indented, saying how many more there are."""
    lines = text.rstrip("\n").splitlines() or [""]
    shown = "\n".join(prefix + line for line in lines[:PREVIEW_LINES])
    more = f"\n{prefix}… (+{len(lines) - PREVIEW_LINES} lines)" if len(lines) > PREVIEW_LINES else ""
    return Text(shown + more)


def job_details(args: dict[str, Any]) -> list[RenderableType]:
    """An hf_jobs run: image, hardware, timeout, schedule, then the script or command."""
    settings = [
        f"{key}: {args[key]}" for key in ("image", "hardware_flavor", "timeout", "schedule") if args.get(key)
    ]
    details: list[RenderableType] = [dim("  " + " · ".join(settings))] if settings else []
    payload = args.get("script") or args.get("command") or ""
    payload = " ".join(map(str, payload)) if isinstance(payload, list) else str(payload)
    if payload:
        details += [dim("  script:" if args.get("script") else "  command:"), preview(payload)]
    return details


def call_details(call: dict[str, Any]) -> list[RenderableType]:
    """What matters about a call before approving it: the command, script or content."""
    args = call.get("args") or {}
    name = call.get("name")
    if name == "bash":
        return [dim("  command:"), preview(str(args.get("command", "")), "    $ ")]
    if name == "hf_jobs":
        return job_details(args)
    if name == "hf_repo_files" and args.get("content"):
        return [dim("  content:"), preview(str(args["content"]))]
    return [dim("  " + short_args(args, 300))]


def approval_card(call: dict[str, Any], index: int, total: int) -> RenderableType:
    """One pending call: tool, why it needs approval, and its details."""
    count = f" {index}/{total}" if total > 1 else ""
    head = Text.assemble(("approval needed", "bold yellow"), count, ": ", (str(call.get("name")), "bold"))
    return Group(head, Text(f"  {call.get('reason') or ''}"), *call_details(call))


APPROVAL_CHOICES = "y approve · n reject · a approve all this session · or type feedback to reject with it"


def approval_decision(answer: str) -> tuple[dict[str, Any], bool]:
    """The decision an answer means, and whether it approves every call from now on ("a")."""
    word = answer.strip().lower()
    if word in ("y", "yes", "a", "all"):
        return {"approved": True, "feedback": ""}, word in ("a", "all")
    return {"approved": False, "feedback": "" if word in ("n", "no") else answer.strip()}, False


def stop_hint(stop_reason: str, iterations: int) -> str | None:
    """Why a chat turn stopped early and what to do; None when it simply ended."""
    if stop_reason in ("end_turn", "approval_required"):
        return None
    capped = f"stopped after {iterations} model calls (the iteration cap): send a message to go on"
    hints = {
        "max_iterations": capped,
        "recursion_limit": capped,
        "doom_loop": "stopped: the model kept repeating the same calls; give it a hint or rephrase",
        "stalled": "stopped: the model gave empty or repeated replies; rephrase, or /model ID",
        "context_overflow": "stopped: the conversation is too long for the model; /compact or /new",
        "budget": "stopped: the turn reached its budget (--max-cost / --max-tokens); send a message to go on",
    }
    return hints.get(stop_reason, f"stopped ({stop_reason})")


def status_text(model: str, status: Any, approval: str, workdir: str) -> Text:
    """The `/status` report."""
    cost = format_cost(status.cost_usd)
    lines = [
        f"model      {model}",
        f"thread     {status.thread_id}",
        f"turns      {status.turns}",
        f"tokens     {status.input_tokens:,} in, {status.cached_tokens:,} of them cached",
        f"           {status.output_tokens:,} out",
        f"cost       {cost}",
        f"last turn  {format_usage(status.turn_usage)}",
        f"context    {status.context_tokens:,} tokens, {status.compactions} compaction(s)",
        f"approval   {approval}",
        f"directory  {workdir}",
    ]
    return Text("\n".join(lines))


def help_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    for command, what in HELP:
        table.add_row(Text(command, style="cyan"), what)
    return table


def banner(model: str, thread_id: str, workdir: str) -> Text:
    return Text.assemble(
        ("ml-intern", "bold"), f" · {model}\n", dim(f"thread {thread_id} · {workdir}\n"),
        dim("/help for commands · Ctrl-C cancels a turn · Ctrl-D quits"),
    )  # fmt: skip


def threads_table(rows: list[Any], when: Any, current: str = "") -> Table:
    """Threads as a table: id, last update, title, turns, model, working directory."""
    table = Table(box=None, header_style="bold")
    for column in ("id", "updated", "title", "turns", "model", "cost", "directory"):
        table.add_column(column, overflow="fold" if column == "title" else "ellipsis", min_width=None)
    table.columns[-1].max_width = 24  # room for titles before long paths
    for row in rows:
        style = "bold" if row.thread_id == current else None
        cells = (row.thread_id, when(row.updated_at), row.title, str(row.turns), row.model,
                 format_cost(row.cost_usd), row.workdir)  # fmt: skip
        table.add_row(*map(Text, cells), style=style)  # Text: a title like "[/x]" is not markup
    return table


def transcript_line(message: Any) -> str:
    """A message of `ml-intern show`: tool calls and results abbreviated."""
    calls = getattr(message, "tool_calls", None) or []
    head = {"human": "user", "ai": "assistant", "tool": f"  [{getattr(message, 'name', '')}]"}.get(
        message.type, message.type
    )
    body = message.text if message.type != "tool" else message.text[:300]
    lines = [f"{head}: {body}".rstrip()] if body or not calls else []
    lines += [f"  → {c['name']} {short_args(c['args'])}" for c in calls]
    return "\n".join(lines)


# ---- headless --------------------------------------------------------------------------------------------


def progress_line(event: dict[str, Any]) -> str | None:
    """A headless progress line on stderr, for the events worth one."""
    kind = event.get("type")
    if kind == "thread_started":
        return f"thread {event['thread_id']} · {event['model']}"
    if kind == "tool_call":
        return f"→ {event['tool']} {short_args(event['args'])}"
    if kind == "tool_output" and not event.get("success"):
        return f"  ✗ {event['output'].splitlines()[0][:200] if event['output'] else ''}"
    if kind in ("error", "compacted"):
        return f"{kind}: {event.get('message') or event}"
    return None


def closing_line(stop_reason: str, thread_id: str) -> str:
    """How to go on with the thread, after a headless turn."""
    if stop_reason == "approval_required":
        return f"waiting for approval: answer with ml-intern resume {thread_id}"
    if stop_reason in STOPPED_REASONS or stop_reason in ("context_overflow", "interrupted"):
        return f"stopped ({stop_reason}): finish with ml-intern resume {thread_id} --continue"
    return f'thread {thread_id}: continue with ml-intern resume {thread_id} "..."'


class HeadlessRenderer:
    """Prints a headless run: progress on stderr and the answer on stdout, or JSON."""

    def __init__(self, fmt: str, thread_id: str) -> None:
        self.fmt = fmt
        self.thread_id = thread_id

    def event(self, event: dict[str, Any]) -> None:
        if self.fmt == "stream-json":
            print(json.dumps(event, default=str), flush=True)
        elif self.fmt == "text":
            line = progress_line(event)
            if line:
                print(line, file=sys.stderr, flush=True)

    def finish(self, outcome: Any) -> None:
        summary = {
            "thread_id": self.thread_id,
            "final_response": outcome.final_response,
            "stop_reason": outcome.stop_reason,
            "iterations": outcome.iterations,
            "usage": {k: v for k, v in outcome.usage.items() if k != "cost_usd"},
            "cost_usd": outcome.usage.get("cost_usd"),
        }
        if outcome.approval:
            self.event({**outcome.approval, "type": "approval_required"})
        self.event({"type": "turn_complete", **summary})
        if self.fmt == "json":
            print(json.dumps(summary, default=str))
        elif self.fmt == "text":
            if outcome.final_response:
                print(outcome.final_response)
            print(f"usage: {format_usage(outcome.usage)}", file=sys.stderr)
            print(closing_line(outcome.stop_reason, self.thread_id), file=sys.stderr)
        self.event({"type": "shutdown"})

    def failed(self, message: str) -> None:
        """A fatal error: an `error` event for JSON readers (text mode prints it once, as the exit line)."""
        if self.fmt == "stream-json":
            self.event({"type": "error", "message": message})

    def interrupted(self, stopped_calls: int) -> None:
        """Ctrl-C: say so, and how to go on."""
        self.event({"type": "interrupted", "thread_id": self.thread_id, "stopped_calls": stopped_calls})
        print(
            f"interrupted: finish the turn with ml-intern resume {self.thread_id} --continue", file=sys.stderr
        )
        self.event({"type": "shutdown"})
