"""The command line: the only module that talks to a human (prompts, rendering, exit codes)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
STOPPED_REASONS = {"max_iterations", "recursion_limit", "budget", "doom_loop"}


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    stream_json = "stream-json"


class Approval(StrEnum):
    ask = "ask"
    auto = "auto"
    deny = "deny"


class PromptFirstGroup(TyperGroup):
    """`ml-intern "PROMPT"` runs the default command; `ml-intern threads` runs a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage("ml-intern", '[OPTIONS] ["PROMPT"]  |  ml-intern COMMAND [ARGS]...')

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Show the options of the default command too: they are what most users type."""
        run = self.commands["run"]
        with ctx.scope(cleanup=False):
            run_ctx = run.make_context("ml-intern", ["--help"], parent=ctx, resilient_parsing=True)
            run.format_options(run_ctx, formatter)
        self.format_commands(ctx, formatter)


app = typer.Typer(
    cls=PromptFirstGroup,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help='An autonomous ML engineering agent.\n\nml-intern [OPTIONS] "PROMPT" runs one turn headless; '
    "ml-intern alone starts a chat.",
)


def fail(message: str, code: int = EXIT_USAGE) -> Exception:
    """A user-facing failure: one line and an exit code."""
    from ml_intern.graph.errors import UserError

    error = UserError(message)
    error.exit_code = code
    return error


ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="litellm model id, e.g. anthropic/claude-sonnet-4-5 or vllm/NAME."),
]
IterOpt = Annotated[
    int | None, typer.Option("--max-iterations", min=1, help="Model calls allowed per turn (default 300).")
]
NoStreamOpt = Annotated[bool, typer.Option("--no-stream", help="Do not stream model output.")]
FormatOpt = Annotated[
    OutputFormat, typer.Option("--output-format", help="Headless output: text, json or stream-json.")
]
ApprovalOpt = Annotated[
    Approval | None,
    typer.Option("--approval", help="ask, auto or deny (default: ask interactive, auto headless)."),
]
ToolsOpt = Annotated[
    str | None, typer.Option("--tools", help="Offer only these tools (comma-separated names).")
]
ThreadOpt = Annotated[str | None, typer.Option("--thread", help="Thread id to continue.")]


@app.command("run", hidden=True)
def run_command(
    prompt: Annotated[str | None, typer.Argument(help='The task; "-" reads it from stdin.')] = None,
    model: ModelOpt = None,
    max_iterations: IterOpt = None,
    no_stream: NoStreamOpt = False,
    output_format: FormatOpt = OutputFormat.text,
    approval: ApprovalOpt = None,
    tools: ToolsOpt = None,
    thread: ThreadOpt = None,
) -> None:
    """Start a chat, or run PROMPT headless."""
    options = _options(model, max_iterations, no_stream, output_format, approval, tools)
    if prompt is None:
        _exit(_guarded(lambda: _chat({**options, "stream": not no_stream}, thread)))
    _exit(_guarded(lambda: _headless(options, thread, _read_prompt(prompt), continue_turn=False)))


@app.command("resume")
def resume_command(
    thread: Annotated[
        str | None, typer.Argument(help="Thread id or unique prefix (default: the most recent).")
    ] = None,
    prompt: Annotated[str | None, typer.Argument(help="A new message; runs headless.")] = None,
    continue_: Annotated[
        bool, typer.Option("--continue", help="Finish a turn that was cut off, headless.")
    ] = False,
    model: ModelOpt = None,
    max_iterations: IterOpt = None,
    no_stream: NoStreamOpt = False,
    output_format: FormatOpt = OutputFormat.text,
    approval: ApprovalOpt = None,
    tools: ToolsOpt = None,
) -> None:
    """Continue a thread with its own model."""
    options = _options(model, max_iterations, no_stream, output_format, approval, tools)
    if prompt is None and not continue_:
        _exit(_guarded(lambda: _chat({**options, "stream": not no_stream}, thread or "")))
    text = _read_prompt(prompt) if prompt is not None else None
    _exit(_guarded(lambda: _headless(options, thread or "", text, continue_turn=continue_)))


@app.command("threads")
def threads_command(limit: Annotated[int, typer.Option(help="How many threads to list.")] = 30) -> None:
    """List threads: id, last update, title, turns, model, working directory."""
    _exit(_guarded(lambda: _list_threads(limit)))


@app.command("show")
def show_command(thread: Annotated[str, typer.Argument(help="Thread id or unique prefix.")]) -> None:
    """Print a thread's transcript."""
    _exit(_guarded(lambda: _show(thread)))


def main() -> None:
    """Entry point: click's usage errors become one line and exit 2."""
    from typer import Abort
    from typer._click.exceptions import UsageError  # typer vendors click since 0.29

    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        hint = "see ml-intern --help" if exc.ctx is None else f"see {exc.ctx.command_path} --help"
        print(f"ml-intern: error: {exc.format_message()} ({hint.replace(' run ', ' ')})", file=sys.stderr)
        code = EXIT_USAGE
    except Abort:
        code = EXIT_INTERRUPTED
    sys.exit(code or 0)


# ---- running ---------------------------------------------------------------------------------------


def _options(model, max_iterations, no_stream, output_format, approval, tools) -> dict[str, Any]:
    names = [t.strip() for t in tools.split(",") if t.strip()] if tools else None
    return {
        "model": model,
        "max_iterations": max_iterations,
        # Tokens are only worth streaming to someone who watches them arrive: litellm's streaming path
        # costs ~15 ms a call, so headless text and json runs ask for whole replies.
        "stream": not no_stream and output_format == OutputFormat.stream_json,
        "format": output_format.value,
        "approval": approval.value if approval else None,
        "tools": names,
    }


def _read_prompt(prompt: str) -> str:
    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        where = "stdin was empty" if prompt == "-" else "the prompt is empty"
        _die(f"{where}: give the task as an argument or pipe it in", EXIT_USAGE)
    return text.strip()


def _guarded(job: Any) -> int:
    """Run an async job; turn known failures into one line and an exit code."""
    from ml_intern.graph.errors import UserError

    try:
        return asyncio.run(job())
    except UserError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED


def _exit(code: int) -> None:
    raise typer.Exit(code)


def _die(message: str, code: int) -> None:
    _print_error(message)
    raise typer.Exit(code)


def _print_error(message: str) -> None:
    from ml_intern.graph.errors import redact

    print(f"ml-intern: error: {redact(message)}", file=sys.stderr)


def _load_config() -> dict[str, Any]:
    """The validated config; `.env` values fill unset environment variables (never override them)."""
    from ml_intern.configs.loader import ConfigError, load_config

    try:
        loaded = load_config(Path.cwd(), os.environ)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    for warning in loaded.warnings:
        print(f"ml-intern: warning: {warning}", file=sys.stderr)
    for key, value in loaded.env.items():
        os.environ.setdefault(key, value)
    return loaded.config.model_dump()


def _context(options: dict[str, Any], config: dict[str, Any], model: str | None, interactive: bool) -> Any:
    """Model, tools and run settings for this process."""
    from ml_intern.configs.models import pick_model
    from ml_intern.graph.context import RunContext
    from ml_intern.graph.services import build_services

    workdir = Path.cwd()
    model_id = pick_model(options["model"] or model, config.get("model_name"), os.environ)
    services = build_services(
        model=model_id,
        workdir=workdir,
        tool_names=options["tools"],
        stream=options["stream"],
        environ=dict(os.environ),
        config=config,
    )
    approval = options["approval"] or config.get("approval") or ("ask" if interactive else "auto")
    if config.get("yolo_mode") and not options["approval"]:
        approval = "auto"
    return RunContext(
        model=model_id,
        workdir=str(workdir),
        approval=approval,
        max_iterations=options["max_iterations"] or config.get("max_iterations", 300),
        tools=options["tools"],
        stream=options["stream"],
        services=services,
    )


def _open() -> Any:
    """The session on this user's database (an async context manager)."""
    from ml_intern.graph.paths import database_path
    from ml_intern.graph.session import open_session

    return open_session(database_path(os.environ))


async def _headless(options: dict[str, Any], thread: str, prompt: str | None, continue_turn: bool) -> int:
    from ml_intern.graph.runner import continue_turn as continue_input
    from ml_intern.graph.runner import new_turn
    from ml_intern.graph.threads import new_thread_id

    config = _load_config()
    async with _open() as session:
        stored = await session.threads.find(thread or None) if (thread or prompt is None) else None
        ctx = _context(options, config, stored.model if stored else None, interactive=False)
        thread_id = stored.thread_id if stored else new_thread_id()
        renderer = HeadlessRenderer(options["format"], thread_id)
        renderer.event({"type": "thread_started", "thread_id": thread_id, "model": ctx.model})
        if continue_turn:
            graph_input = await _continue_input(session, thread_id, continue_input())
            outcome = await _run(session, thread_id, graph_input, ctx, renderer, title="")
        else:
            outcome = await _run(session, thread_id, new_turn(prompt), ctx, renderer, title=prompt)
        return renderer.finish(outcome)


async def _continue_input(session: Any, thread_id: str, fresh: dict[str, Any]) -> Any:
    """Resume from the saved checkpoint when steps are pending, else restart the turn's loop."""
    state = await session.app.aget_state({"configurable": {"thread_id": thread_id}})
    if state.interrupts:
        raise fail(
            f"thread {thread_id} is waiting for an approval: answer it with ml-intern resume {thread_id}"
        )
    return None if state.next else fresh


async def _run(session: Any, thread_id: str, graph_input: Any, ctx: Any, renderer: Any, title: str) -> Any:
    from ml_intern.graph.errors import UserError, explain_model_error

    try:
        return await session.turn(thread_id, graph_input, ctx, renderer.event, title=title)
    except UserError:
        raise
    except Exception as exc:
        message, code = explain_model_error(exc, ctx.model)
        renderer.event({"type": "error", "message": message})
        raise fail(f"{message} (thread {thread_id}: ml-intern resume {thread_id} --continue)", code) from None


class HeadlessRenderer:
    """Prints a headless run: progress on stderr and the answer on stdout, or JSON."""

    def __init__(self, fmt: str, thread_id: str) -> None:
        self.fmt = fmt
        self.thread_id = thread_id

    def event(self, event: dict[str, Any]) -> None:
        if self.fmt == "stream-json":
            print(json.dumps(event, default=str), flush=True)
        elif self.fmt == "text":
            line = _progress_line(event)
            if line:
                print(line, file=sys.stderr, flush=True)

    def finish(self, outcome: Any) -> int:
        code = _exit_code(outcome.stop_reason)
        summary = {
            "thread_id": self.thread_id,
            "final_response": outcome.final_response,
            "stop_reason": outcome.stop_reason,
            "iterations": outcome.iterations,
            "usage": {k: v for k, v in outcome.usage.items() if k != "cost_usd"},
            "cost_usd": outcome.usage.get("cost_usd"),
        }
        if outcome.approval:
            self.event({"type": "approval_required", **outcome.approval})
        self.event({"type": "turn_complete", **summary})
        if self.fmt == "json":
            print(json.dumps(summary, default=str))
        elif self.fmt == "text":
            if outcome.final_response:
                print(outcome.final_response)
            print(_closing_line(outcome.stop_reason, self.thread_id), file=sys.stderr)
        self.event({"type": "shutdown"})
        return code


def _progress_line(event: dict[str, Any]) -> str | None:
    kind = event.get("type")
    if kind == "thread_started":
        return f"thread {event['thread_id']} · {event['model']}"
    if kind == "tool_call":
        return f"→ {event['tool']} {_short_args(event['args'])}"
    if kind == "tool_output" and not event.get("success"):
        return f"  ✗ {event['output'].splitlines()[0][:200] if event['output'] else ''}"
    if kind in ("error", "compacted"):
        return f"{kind}: {event.get('message') or event}"
    return None


def _short_args(args: dict[str, Any], width: int = 100) -> str:
    text = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())
    text = text.replace("\\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _exit_code(stop_reason: str) -> int:
    if stop_reason in STOPPED_REASONS:
        return EXIT_STOPPED
    if stop_reason in ("context_overflow", "interrupted"):
        return EXIT_FAILURE
    return EXIT_OK


def _closing_line(stop_reason: str, thread_id: str) -> str:
    if stop_reason == "approval_required":
        return f"waiting for approval: answer with ml-intern resume {thread_id}"
    if stop_reason in STOPPED_REASONS or stop_reason in ("context_overflow", "interrupted"):
        return f"stopped ({stop_reason}): finish with ml-intern resume {thread_id} --continue"
    return f'thread {thread_id}: continue with ml-intern resume {thread_id} "..."'


# ---- threads ---------------------------------------------------------------------------------------


async def _list_threads(limit: int) -> int:
    from rich.console import Console
    from rich.table import Table

    async with _open() as session:
        rows = await session.threads.list(limit)
    if not rows:
        print('no threads yet: start one with ml-intern "PROMPT"')
        return EXIT_OK
    table = Table(box=None, header_style="bold")
    for column in ("id", "updated", "title", "turns", "model", "directory"):
        table.add_column(column, overflow="fold" if column == "title" else "ellipsis")
    for row in rows:
        table.add_row(row.thread_id, _when(row.updated_at), row.title, str(row.turns), row.model, row.workdir)
    Console().print(table)
    return EXIT_OK


def _when(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


async def _show(thread: str) -> int:
    async with _open() as session:
        row = await session.threads.find(thread)
        messages = await session.messages(row.thread_id)
    print(f"thread {row.thread_id} · {row.model} · {row.workdir}")
    for message in messages:
        print(_transcript_line(message))
    return EXIT_OK


def _transcript_line(message: Any) -> str:
    calls = getattr(message, "tool_calls", None) or []
    head = {"human": "user", "ai": "assistant", "tool": f"  [{getattr(message, 'name', '')}]"}.get(
        message.type, message.type
    )
    body = message.text if message.type != "tool" else message.text[:300]
    lines = [f"{head}: {body}".rstrip()] if body or not calls else []
    lines += [f"  → {c['name']} {_short_args(c['args'])}" for c in calls]
    return "\n".join(lines)


# ---- chat ------------------------------------------------------------------------------------------


async def _chat(options: dict[str, Any], thread: str | None) -> int:
    """A plain interactive loop (the richer terminal UI builds on it)."""
    from ml_intern.graph.runner import new_turn, resume_with
    from ml_intern.graph.threads import new_thread_id

    config = _load_config()
    async with _open() as session:
        stored = await session.threads.find(thread or None) if thread is not None else None
        ctx = _context(options, config, stored.model if stored else None, interactive=True)
        thread_id = stored.thread_id if stored else new_thread_id()
        print(f"ml-intern · {ctx.model} · thread {thread_id} · {ctx.workdir}", file=sys.stderr)
        renderer = HeadlessRenderer("text", thread_id)
        while True:
            try:
                text = input("> ").strip()
            except EOFError:
                return EXIT_OK
            if text in ("/quit", "/exit"):
                return EXIT_OK
            if not text:
                continue
            outcome = await _run(session, thread_id, new_turn(text), ctx, renderer, title=text)
            while outcome.approval:
                outcome = await _run(
                    session, thread_id, resume_with(_ask(outcome.approval)), ctx, renderer, ""
                )
            print(outcome.final_response)


def _ask(approval: dict[str, Any]) -> dict[str, Any]:
    """Ask about each pending call: y approves, n rejects, other text rejects with that feedback."""
    decisions = {}
    for call in approval["tool_calls"]:
        answer = input(f"approve {call['name']}? {call['reason']} [y/n/feedback] ").strip()
        approved = answer.lower() in ("y", "yes")
        feedback = "" if answer.lower() in ("y", "yes", "n", "no") else answer
        decisions[call["id"]] = {"approved": approved, "feedback": feedback}
    return {"decisions": decisions}
