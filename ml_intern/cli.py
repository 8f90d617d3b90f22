"""The command line (DESIGN.md "CLI"): options into one RunOptions, open a Session, pick a front-end, map how
it ended to an exit code. Heavy modules are imported inside functions: `ml-intern --help` stays fast."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from ml_intern.errors import EXIT_INTERRUPTED, UserError
from ml_intern.session.options import RunOptions
from ml_intern.terminal.cli_options import (
    ApprovalOpt,
    ContinueHereOpt,
    CostOpt,
    DebugOpt,
    FormatOpt,
    IterOpt,
    ModelOpt,
    NoStreamOpt,
    OutputFormat,
    PromptFirstGroup,
    SandboxOpt,
    ThreadArg,
    ThreadOpt,
    TokensOpt,
    ToolsOpt,
    VerboseOpt,
    VersionOpt,
    run_options,
)
from ml_intern.terminal.cli_session import error_exit, latest_thread_here, with_session

app = typer.Typer(
    cls=PromptFirstGroup, add_completion=True, pretty_exceptions_enable=False, no_args_is_help=False,
    rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]},
    help='An autonomous ML engineering agent.\n\nml-intern [OPTIONS] "PROMPT" runs one turn headless; '
    "ml-intern alone starts a chat.",
)  # fmt: skip


@app.callback()
def root(version: VersionOpt = False) -> None:
    """The options before any command (--version, shell completion)."""


@app.command("run", hidden=True)
def run_command(
    prompt: Annotated[
        str | None,
        typer.Argument(help='The task; "-" reads it from stdin (piped text is added to a PROMPT).'),
    ] = None,
    continue_here: ContinueHereOpt = False,
    model: ModelOpt = None,
    max_iterations: IterOpt = None,
    no_stream: NoStreamOpt = False,
    output_format: FormatOpt = OutputFormat.text,
    approval: ApprovalOpt = None,
    tools: ToolsOpt = None,
    thread: ThreadOpt = None,
    max_cost: CostOpt = None,
    max_tokens: TokensOpt = None,
    sandbox_tools: SandboxOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Start a chat, or run PROMPT headless."""
    if continue_here and thread is not None:
        return error_exit("-c continues this directory's latest thread; --thread names one: drop one")
    return _run(run_options({**locals(), "verbose": verbose or debug}), continue_here)


@app.command("resume")
def resume_command(
    thread: ThreadArg = None,
    prompt: Annotated[str | None, typer.Argument(help="A new message; runs headless.")] = None,
    continue_turn: Annotated[
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
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Continue a thread with its own model."""
    if continue_turn and prompt is not None:
        return error_exit("--continue finishes the cut-off turn and takes no PROMPT: drop one of them")
    return _run(
        run_options({**locals(), "thread": thread or "", "verbose": verbose or debug})
    )  # no THREAD: the most recent


@app.command("undo")
def undo_command(
    thread: ThreadArg = None,
    turns: Annotated[int, typer.Option("-n", "--turns", min=1, help="How many user turns to rewind.")] = 1,
    output_format: FormatOpt = OutputFormat.text,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Rewind the last N user turns of a thread (and the file changes they made)."""
    from ml_intern.terminal import threads as screens

    fmt = output_format.value
    return with_session(verbose or debug, lambda session: screens.print_undo(session, thread, turns, fmt))


@app.command("export")
def export_command(
    thread: ThreadArg = None,
    fmt: Annotated[
        str, typer.Option("--format", help="claude-jsonl (Agent Trace Viewer) or json.")
    ] = "claude-jsonl",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE, not stdout.")] = None,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Export a thread as Claude Code JSONL (the HF Agent Trace Viewer's format) or JSON, secrets redacted."""
    from ml_intern.terminal import threads as screens

    return with_session(verbose or debug, lambda session: screens.write_export(session, thread, fmt, output))


@app.command("threads")
def threads_command(
    limit: Annotated[int, typer.Option(help="How many threads to list.")] = 30,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """List threads: id, last update, title, turns, model, cost, machine, working directory."""
    from ml_intern.terminal import threads as screens

    return with_session(verbose or debug, lambda session: screens.print_threads(session, limit))


@app.command("sandboxes")
def sandboxes_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="With --delete: the sandboxes to delete (names or ids); none: every leftover."),
    ] = None,
    delete_flag: Annotated[
        bool, typer.Option("--delete", help="Delete leftovers: sandboxes no live run on this machine holds.")
    ] = False,
    everywhere: Annotated[
        bool, typer.Option("--all", help="With --delete: also those made on other machines.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --delete NAME: even one that looks held by a live run.")
    ] = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """List your sandbox Spaces (made by --sandbox-tools runs); --delete removes leftovers."""
    from ml_intern.terminal import sandboxes as screens

    return screens.main(list(names or []), delete_flag, everywhere, verbose or debug, force)


@app.command("show")
def show_command(
    thread: Annotated[str, typer.Argument(help="Thread id or unique prefix.")],
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Print a thread's transcript (tool calls abbreviated)."""
    from ml_intern.terminal import threads as screens

    return with_session(verbose or debug, lambda session: screens.print_transcript(session, thread))


db_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Set up the threads' database; copy threads into it."
)
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate_command(verbose: VerboseOpt = False, debug: DebugOpt = False) -> int:
    """Create or update the tables (ml-intern's and LangGraph's); safe to run again, from several machines."""
    from ml_intern.terminal import db

    return db.migrate_main(verbose or debug)


@db_app.command("copy")
def db_copy_command(
    source: Annotated[str, typer.Option("--from", help='"sqlite" (this home\'s file), a file, or a URL.')],
    target: Annotated[
        str | None, typer.Option("--to", help="The database to copy into (default: $ML_INTERN_DATABASE_URL).")
    ] = None,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave threads the target has already; copy the others.")
    ] = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Copy every thread (checkpoints, thread rows, undo records) from one database into another."""
    from ml_intern.terminal import db

    return db.copy_main(source, target, skip_existing, verbose or debug)


def main() -> None:
    """Entry point: click's usage errors become one line and exit 2."""
    from typer import Abort
    from typer._click.exceptions import UsageError  # typer vendors click since 0.29

    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        hint = "see ml-intern --help" if exc.ctx is None else f"see {exc.ctx.command_path} --help"
        code = error_exit(f"{exc.format_message()} ({hint.replace(' run ', ' ')})")
    except Abort:
        code = EXIT_INTERRUPTED
    raise SystemExit(code or 0)


def _run(options: RunOptions, continue_here: bool = False) -> int:
    """The chat, or one headless turn (with `continue_here`, on this directory's latest thread); the exit
    code for how it ended."""
    try:  # usage errors, before ML_INTERN_HOME is touched
        if not options.headless:  # the chat imports nothing heavy before its prompt (terminal/chat.py)
            from ml_intern.terminal.chat import require_terminal

            require_terminal()
        else:
            from ml_intern.terminal.headless import checked_options

            options = checked_options(options)
    except UserError as exc:
        return error_exit(str(exc), exc.exit_code)
    if continue_here:
        thread = with_session(options.verbose, latest_thread_here)
        if not isinstance(thread, str):
            return thread  # none here: the error's exit code
        options = dataclasses.replace(options, thread=thread)
    if options.headless:
        from ml_intern.terminal.headless_turn import headless_turn as front_end
    else:
        from ml_intern.terminal.chat import run_chat as front_end
    return with_session(options.verbose, lambda opening: front_end(opening, options), opening=True)
