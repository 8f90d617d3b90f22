"""Tables and reports: the banner, /help, /status, thread lists and transcripts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from ml_intern.terminal.text import dim, inert, short_args

HELP = (
    ("/help", "show the commands"),
    ("/undo [N]", "rewind the last N turns (default 1) and the files they changed"),
    ("/compact", "summarise the conversation now, to free context"),
    ("/model [ID]", "show the model and suggestions, or switch to ID once it answers"),
    ("/effort [LEVEL]", "show or set the reasoning effort: minimal, low, medium, high, xhigh, max or off"),
    ("/new", "start a new thread"),
    ("/clear", "clear the screen and start a new thread"),
    ("/threads", "list recent threads"),
    ("/resume [N|ID]", "switch to another thread (number from the list, or id prefix) with its model"),
    ("/status", "model, thread, turns, tokens and cost"),
    ("/share-traces [public|private]", "show or set the visibility of your uploaded traces"),
    (
        "/yolo",
        "approve calls from now on (scheduled jobs, edits outside the boundary, credential reads and tools"
        " set to always are still asked); again to stop",
    ),
    ("/quit", "leave (exit, quit, Ctrl-D too); Ctrl-C cancels a running turn, twice quits"),
)


# Where bash, read, write and edit run (config `tool_runtime`, `--sandbox-tools`), as the banner says it.
RUNTIME_LINES = {
    "local": "tools: local",
    "sandbox": "tools: sandbox (a private HF Space of yours, deleted at exit)",
}


def banner(model: str, thread_id: str, workdir: str, runtime: str | None = None) -> Text:
    """The chat's opening lines; `runtime` (None: not known to the caller, not said) names where tools run."""
    where = RUNTIME_LINES.get(runtime, f"tools: {runtime}") + "\n" if runtime else ""
    return Text.assemble(
        ("ml-intern", "bold"), f" · {model}\n", dim(f"thread {thread_id} · {workdir}\n"), dim(where),
        dim("/help for commands · Ctrl-C cancels a turn · Ctrl-D quits"),
    )  # fmt: skip


def tools_status(tools: Mapping[str, Any], now: float | None = None) -> str:
    """Where the tools run, for /status: "local", or the sandbox (a SandboxManager's `status()`): its Space,
    hardware, stage, price, how long it has run and its cost so far."""
    import time

    from ml_intern.graph.accounting import format_cost

    if tools.get("runtime") != "sandbox":
        return "local"
    space, stage = tools.get("space_id"), tools.get("stage") or "none"
    if not space:
        return f"sandbox: {stage} (deleted at exit)"
    price = tools.get("price_per_hour")
    parts = [f"sandbox {space}", f"on {tools.get('hardware') or '?'}", stage]
    parts.append("price unknown" if price is None else f"{format_cost(price)}/h")
    since = tools.get("running_since")
    if since:
        minutes = max(0, int(((now or time.time()) - since) // 60))
        parts.append(f"running for {minutes} min")
    if tools.get("cost_so_far") is not None:
        parts.append(f"about {format_cost(tools['cost_so_far'])} so far")
    return inert(", ".join(parts))


def help_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    for command, what in HELP:
        table.add_row(Text(command, style="cyan"), what)
    return table


def status_text(model: str, status: Any, approval: str, workdir: str, effort: str = "?") -> Text:
    """The `/status` report."""
    from ml_intern.graph.accounting import format_cost, format_usage

    lines = [
        f"model      {model}",
        f"effort     {effort}",
        f"thread     {status.thread_id}",
        f"turns      {status.turns}",
        f"tokens     {status.input_tokens:,} in, {status.cached_tokens:,} of them cached",
        f"           {status.output_tokens:,} out",
        f"cost       {format_cost(status.cost_usd)}",
        f"last turn  {format_usage(status.turn_usage)}",
        f"context    {status.context_tokens:,} tokens, {status.compactions} compaction(s)",
        f"approval   {approval}",
        f"directory  {workdir}",
        f"tools      {tools_status(status.tools)}",
    ]
    return Text("\n".join(lines))


def effort_text(model: str, preference: str, used: str, accepted: Mapping[str, str | None]) -> Text:
    """The `/effort` report: the preference, what the current model is sent, what it accepted instead."""
    lines = [f"reasoning effort: {preference} (sent to {model}: {used})"]
    lines += [
        f"  {model} refused {asked}: uses {got or 'off'}" for asked, got in accepted.items() if asked != got
    ]
    lines.append("/effort minimal|low|medium|high|xhigh|max|off sets it")
    return Text(inert("\n".join(lines)))


def threads_table(rows: list[Any], when: Callable[[float], str], current: str = "") -> Table:
    """Threads as a table: id, last update, title, turns, model, cost, machine, working directory."""
    from ml_intern.graph.accounting import format_cost

    table = Table(box=None, header_style="bold")
    for column in ("id", "updated", "title", "turns", "model", "cost", "machine", "directory"):
        table.add_column(column, overflow="fold" if column == "title" else "ellipsis", min_width=None)
    table.columns[2].min_width = 20  # a title stays readable at 80 columns; the other columns shrink first
    table.columns[-2].max_width = 16  # machine
    table.columns[-1].max_width = 24  # room for titles before long paths
    for row in rows:
        style = "bold" if row.thread_id == current else None
        cells = (row.thread_id, when(row.updated_at), row.title, str(row.turns), row.model,
                 format_cost(row.cost_usd), row.host or "-", row.workdir)  # fmt: skip
        table.add_row(*(Text(inert(cell)) for cell in cells), style=style)  # Text: "[/x]" is no markup
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
    return inert("\n".join(lines))  # model and tool text: no escape sequence reaches the terminal
