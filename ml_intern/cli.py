"""The command line: the only module that talks to a human (prompts, rendering, exit codes)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from ml_intern.configs.schema import AgentConfig

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
FINISHED = object()  # `resume --continue` on a turn that was not cut off
TRACE_UPLOAD_WAIT_S = 10.0  # how long a headless run gives an opted-in trace upload before exiting
STOPPED_REASONS = {"max_iterations", "recursion_limit", "budget", "doom_loop", "stalled"}


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
    from ml_intern.errors import UserError

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
CostOpt = Annotated[
    float | None, typer.Option("--max-cost", min=0, help="Stop the turn before it spends more (USD).")
]
TokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", min=1, help="Stop the turn before it uses more tokens.")
]


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
    max_cost: CostOpt = None,
    max_tokens: TokensOpt = None,
) -> None:
    """Start a chat, or run PROMPT headless."""
    options = _options(model, max_iterations, no_stream, output_format, approval, tools)
    options.update(max_cost=max_cost, max_tokens=max_tokens)
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
    max_cost: CostOpt = None,
    max_tokens: TokensOpt = None,
) -> None:
    """Continue a thread with its own model."""
    options = _options(model, max_iterations, no_stream, output_format, approval, tools)
    options.update(max_cost=max_cost, max_tokens=max_tokens)
    if prompt is None and not continue_:
        _exit(_guarded(lambda: _chat({**options, "stream": not no_stream}, thread or "")))
    text = _read_prompt(prompt) if prompt is not None else None
    _exit(_guarded(lambda: _headless(options, thread or "", text, continue_turn=continue_)))


@app.command("undo")
def undo_command(
    thread: Annotated[
        str | None, typer.Argument(help="Thread id or unique prefix (default: the most recent).")
    ] = None,
    turns: Annotated[int, typer.Option("-n", "--turns", min=1, help="How many user turns to rewind.")] = 1,
    output_format: FormatOpt = OutputFormat.text,
) -> None:
    """Rewind the last N user turns of a thread (and the file changes they made)."""
    _exit(_guarded(lambda: _undo(thread, turns, output_format.value)))


@app.command("export")
def export_command(
    thread: Annotated[
        str | None, typer.Argument(help="Thread id or unique prefix (default: the most recent).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="claude-jsonl (Agent Trace Viewer) or json.")
    ] = "claude-jsonl",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE, not stdout.")] = None,
) -> None:
    """Export a thread as Claude Code JSONL (the HF Agent Trace Viewer's format) or JSON, secrets redacted."""
    _exit(_guarded(lambda: _export(thread, fmt, output)))


@app.command("threads")
def threads_command(limit: Annotated[int, typer.Option(help="How many threads to list.")] = 30) -> None:
    """List threads: id, last update, title, turns, model, working directory."""
    _exit(_guarded(lambda: _list_threads(limit)))


@app.command("show")
def show_command(thread: Annotated[str, typer.Argument(help="Thread id or unique prefix.")]) -> None:
    """Print a thread's transcript (tool calls abbreviated)."""
    _exit(_guarded(lambda: _show(thread)))


def main() -> None:
    """Entry point: click's usage errors become one line and exit 2."""
    from typer import Abort
    from typer._click.exceptions import UsageError  # typer vendors click since 0.29

    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        hint = "see ml-intern --help" if exc.ctx is None else f"see {exc.ctx.command_path} --help"
        _print_error(f"{exc.format_message()} ({hint.replace(' run ', ' ')})")
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
    from ml_intern.errors import UserError

    try:
        return asyncio.run(job())
    except UserError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except typer.Exit:
        raise
    except Exception as exc:  # a bug: one line for the user, the traceback only when asked for
        if os.environ.get("ML_INTERN_DEBUG"):
            raise
        _print_error(f"internal error: {type(exc).__name__}: {exc} (ML_INTERN_DEBUG=1 shows the traceback)")
        return EXIT_FAILURE


def _exit(code: int) -> None:
    raise typer.Exit(code)


def _die(message: str, code: int) -> None:
    _print_error(message)
    raise typer.Exit(code)


def _print_error(message: str) -> None:
    """One red line on stderr (plain text when stderr is not a terminal)."""
    from rich.console import Console

    from ml_intern.errors import redact

    Console(stderr=True, highlight=False).print(
        f"ml-intern: error: {redact(message)}", style="bold red", markup=False, soft_wrap=True
    )


def _load_config() -> Any:
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
    return loaded.config


def _model_id(options: dict[str, Any], config: AgentConfig, thread_model: str | None) -> str:
    """`--model`, else the thread's model, else config and credentials (a saved HF token counts)."""
    from ml_intern.model.credentials import adopt_saved_hf_token
    from ml_intern.model.ids import pick_model

    adopt_saved_hf_token(os.environ)
    return pick_model(options["model"] or thread_model, config.model_name, os.environ)


def _context(options: dict[str, Any], config: AgentConfig, model_id: str, interactive: bool) -> Any:
    """Model, tools and run settings for this process."""
    from ml_intern.graph.context import RunContext
    from ml_intern.model.credentials import needs_hf_token
    from ml_intern.services import build_services

    if needs_hf_token(model_id, os.environ):
        raise fail(
            f"{model_id} needs a Hugging Face token: export HF_TOKEN=hf_..., run hf auth login, "
            "or start ml-intern without a prompt to paste one"
        )
    workdir = Path.cwd()
    services = build_services(
        model=model_id,
        workdir=workdir,
        tool_names=options["tools"],
        stream=options["stream"],
        environ=dict(os.environ),
        config=config,
    )
    approval = options["approval"] or config.approval or ("ask" if interactive else "auto")
    if config.yolo_mode and not options["approval"]:
        approval = "auto"
    return RunContext(
        model=model_id,
        workdir=str(workdir),
        approval=approval,
        max_iterations=options["max_iterations"] or config.max_iterations,
        tools=options["tools"],
        stream=options["stream"],
        services=services,
        max_cost_usd=options.get("max_cost"),
        max_tokens=options.get("max_tokens"),
    )


def _open() -> Any:
    """The session on this user's database (an async context manager)."""
    from ml_intern.paths import database_path
    from ml_intern.session.session import open_session

    return open_session(database_path(os.environ))


async def _headless(options: dict[str, Any], thread: str, prompt: str | None, continue_turn: bool) -> int:
    from ml_intern.session.operations import INTERRUPTED, abandon_pending_approval, settle_pending_calls
    from ml_intern.session.runner import continue_turn as continue_input
    from ml_intern.session.runner import new_turn
    from ml_intern.session.runner import outcome as outcome_of
    from ml_intern.session.threads import new_thread_id
    from ml_intern.session.traces import upload_thread_trace
    from ml_intern.terminal.render import HeadlessRenderer

    config = _load_config()
    async with _open() as session:
        stored = await session.threads.find(thread or None) if (thread or prompt is None) else None
        ctx = _context(options, config, _model_id(options, config, stored.model if stored else None), False)
        thread_id = stored.thread_id if stored else new_thread_id()
        renderer = HeadlessRenderer(options["format"], thread_id)
        renderer.event({"type": "thread_started", "thread_id": thread_id, "model": ctx.model})
        try:
            if continue_turn:
                graph_input = await _continue_input(session, thread_id, continue_input())
                if graph_input is FINISHED:  # nothing was cut off: report the turn as it ended
                    outcome = await outcome_of(session.app, {"configurable": {"thread_id": thread_id}})
                else:
                    outcome = await _run(session, thread_id, graph_input, ctx, renderer, title="")
            else:
                if stored:
                    await abandon_pending_approval(session, thread_id)
                outcome = await _run(session, thread_id, new_turn(prompt), ctx, renderer, title=prompt)
        except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
            stopped = await settle_pending_calls(session, thread_id, INTERRUPTED, "interrupted")
            renderer.interrupted(stopped)
            return EXIT_INTERRUPTED
        finally:
            await ctx.services.aclose()
        renderer.finish(outcome)
        upload = await upload_thread_trace(session, thread_id, config, os.environ)
        if upload is not None:
            await asyncio.to_thread(upload.wait, TRACE_UPLOAD_WAIT_S)  # never longer: sharing must not block
        return _exit_code(outcome.stop_reason)


async def _continue_input(session: Any, thread_id: str, fresh: dict[str, Any]) -> Any:
    """Resume from the saved checkpoint when steps are pending, else restart the turn's loop."""
    state = await session.app.aget_state({"configurable": {"thread_id": thread_id}})
    if state.interrupts:
        raise fail(
            f"thread {thread_id} is waiting for an approval: answer it with ml-intern resume {thread_id}"
        )
    if state.next or state.tasks:  # steps in flight when the process died (or a checkpoint write failed)
        return None
    if (state.values or {}).get("stop_reason") == "end_turn":
        return FINISHED
    return fresh


async def _run(session: Any, thread_id: str, graph_input: Any, ctx: Any, renderer: Any, title: str) -> Any:
    from ml_intern.errors import UserError
    from ml_intern.model.errors import explain_model_error
    from ml_intern.paths import database_path

    try:
        return await session.turn(thread_id, graph_input, ctx, renderer.event, title=title)
    except UserError:
        raise
    except (sqlite3.Error, OSError) as exc:  # the database or the disk, not the model
        where = database_path(os.environ)
        message = f"cannot save thread {thread_id} in {where}: {exc}; check disk space and ML_INTERN_HOME"
        renderer.failed(message)
        raise fail(message, EXIT_FAILURE) from None
    except Exception as exc:
        message, code = explain_model_error(exc, ctx.model)
        renderer.failed(message)
        raise fail(f"{message} (thread {thread_id}: ml-intern resume {thread_id} --continue)", code) from None


def _exit_code(stop_reason: str) -> int:
    if stop_reason in STOPPED_REASONS:
        return EXIT_STOPPED
    if stop_reason in ("context_overflow", "interrupted"):
        return EXIT_FAILURE
    return EXIT_OK


# ---- threads ---------------------------------------------------------------------------------------


async def _list_threads(limit: int) -> int:
    from rich.console import Console

    from ml_intern.terminal.render import threads_table

    async with _open() as session:
        rows = await session.threads.list(limit)
    if not rows:
        print('no threads yet: start one with ml-intern "PROMPT"')
        return EXIT_OK
    Console(width=None if sys.stdout.isatty() else 200).print(threads_table(rows, when))  # pipes: full rows
    return EXIT_OK


def when(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


async def _show(thread: str) -> int:
    from ml_intern.terminal.render import transcript_line

    async with _open() as session:
        row = await session.threads.find(thread)
        messages = await session.messages(row.thread_id)
    print(f"thread {row.thread_id} · {row.model} · {row.workdir}")
    for message in messages:
        print(transcript_line(message))
    return EXIT_OK


async def _export(thread: str | None, fmt: str, output: Path | None) -> int:
    from ml_intern.session.export import export_thread

    async with _open() as session:
        text = await export_thread(session, thread, fmt, environ=os.environ)
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror}") from None
    print(f"exported to {output}", file=sys.stderr)
    return EXIT_OK


async def _undo(thread: str | None, turns: int, fmt: str) -> int:
    from ml_intern.session.undo import undo_turns

    async with _open() as session:
        row = await session.threads.find(thread)
        report = await undo_turns(session, row.thread_id, turns)
    if fmt == OutputFormat.text:
        print("\n".join(report.lines()))
    else:
        print(json.dumps(report.event(), default=str))
    return EXIT_OK


# ---- chat ------------------------------------------------------------------------------------------


async def _chat(options: dict[str, Any], thread: str | None) -> int:
    """The interactive chat on a new thread, or on `thread` ("" is the most recent)."""
    from rich.console import Console

    from ml_intern.model.credentials import needs_hf_token
    from ml_intern.session.threads import new_thread_id
    from ml_intern.terminal.chat import Chat

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise fail(
            'the chat needs a terminal: give the task as an argument (or "-" to read stdin) to run headless'
        )
    config = _load_config()
    console = Console(highlight=False)
    async with _open() as session:
        stored = await session.threads.find(thread or None) if thread is not None else None
        model_id = _model_id(options, config, stored.model if stored else None)
        if needs_hf_token(model_id, os.environ):
            await _ask_hf_token(console, model_id)
        ctx = _context(options, config, model_id, interactive=True)
        thread_id = stored.thread_id if stored else new_thread_id()
        chat = Chat(session, ctx, config, console, thread_id)
        try:
            return await chat.run()
        finally:
            await chat.ctx.services.aclose()


async def _ask_hf_token(console: Any, model_id: str) -> None:
    """Offer to paste a Hugging Face token; check it with the Hub and save it as `hf auth login` does."""
    from prompt_toolkit import PromptSession

    from ml_intern.errors import UserError
    from ml_intern.model.credentials import save_hf_token, verify_hf_token
    from ml_intern.terminal.render import red

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    console.print(f"{model_id} runs on Hugging Face and needs an access token; none is set or saved.")
    console.print(
        f"Create one at {endpoint}/settings/tokens and paste it here (hidden), or press Enter to quit."
    )
    asker: Any = PromptSession()
    for _ in range(3):
        try:
            token = (await asker.prompt_async("HF token: ", is_password=True, handle_sigint=False)).strip()
        except (EOFError, KeyboardInterrupt):
            token = ""
        if not token:
            raise fail(f"{model_id} needs a Hugging Face token: export HF_TOKEN=hf_... or run hf auth login")
        try:
            user = await asyncio.to_thread(verify_hf_token, token, endpoint)
            await asyncio.to_thread(save_hf_token, token)
        except (UserError, ValueError) as exc:
            console.print(red(f"{exc}: paste another token, or press Enter to quit"))
            continue
        os.environ["HF_TOKEN"] = token
        console.print(f"Logged in to Hugging Face as {user}; the token is saved for next time.")
        return
    raise fail("no valid Hugging Face token after 3 attempts: check it at " + f"{endpoint}/settings/tokens")
