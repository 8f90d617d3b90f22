"""The command line's options: one annotated type per option, shared by the commands in cli.py, and the
command group that runs the default command when the first word is no command."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ml_intern.session.options import RunOptions

OutputFormat = StrEnum("OutputFormat", {"text": "text", "json": "json", "stream_json": "stream-json"})
Approval = StrEnum("Approval", {"ask": "ask", "auto": "auto", "deny": "deny"})


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="e.g. anthropic/claude-sonnet-4-5, moonshotai/Kimi-K2.6:novita (HF router) or ollama/NAME.",
    ),
]


def iterations(value: int | None) -> int | None:
    """`--max-iterations N`: a negative N means unlimited (as the original's -1), 0 is refused."""
    from ml_intern.configs.schema import UNLIMITED_ITERATIONS  # pydantic: not before it is needed

    if value is not None and value < 0:
        return UNLIMITED_ITERATIONS
    if value == 0:
        raise typer.BadParameter("0 allows no model call: give N >= 1, or -1 for unlimited")
    return value


IterOpt = Annotated[
    int | None,
    typer.Option(
        "--max-iterations",
        callback=iterations,
        help="Model calls allowed per turn (default 300; -1: unlimited).",
    ),
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
SandboxOpt = Annotated[
    bool,
    typer.Option(
        "--sandbox-tools",
        help="Run bash, read, write and edit in a private Hugging Face Space (a new thread; tool_runtime).",
    ),
]
CostOpt = Annotated[
    float | None,
    typer.Option("--max-cost", "--max-budget-usd", min=0, help="Stop the turn before it spends more (USD)."),
]
TokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", min=1, help="Stop the turn before it uses more tokens.")
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show library logs on stderr (they always go to the log file)."),
]


def enable_debug(value: bool) -> bool:
    """`--debug`: set ML_INTERN_DEBUG (DEBUG level logs, tracebacks for internal errors) for this process."""
    if value:
        os.environ["ML_INTERN_DEBUG"] = "1"
    return value


DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        callback=enable_debug,
        help="Library logs on stderr at DEBUG level, and tracebacks for internal errors.",
    ),
]
ContinueHereOpt = Annotated[
    bool,
    typer.Option("--continue", "-c", help="Continue the most recent thread started in this directory."),
]


def show_version(value: bool) -> None:
    """`--version`: print the installed package's version and stop."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("ml-intern")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from ml_intern import __version__ as number
        typer.echo(f"ml-intern {number}")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option("--version", "-V", callback=show_version, is_eager=True, help="Print the version and exit."),
]
ThreadArg = Annotated[
    str | None, typer.Argument(help="Thread id or unique prefix (default: the most recent).")
]


def run_options(given: dict[str, Any]) -> RunOptions:
    """One RunOptions from a command's parameters: choices as their values, `--tools` split, the parameters
    that are no run option (`-c`, `--debug`) left out."""
    given = {name: value for name, value in given.items() if name in RunOptions.__dataclass_fields__}
    given["output_format"] = given["output_format"].value
    given["approval"] = given["approval"].value if given["approval"] else None
    return RunOptions(**{**given, "tools": tool_names(given["tools"])})


def tool_names(value: str | None) -> tuple[str, ...] | None:
    """`--tools a, b` as names; None when not given."""
    return tuple(name.strip() for name in value.split(",") if name.strip()) if value else None


class PromptFirstGroup(TyperGroup):
    """`ml-intern "PROMPT"` runs the default command; `ml-intern threads` runs a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        own = {name for param in self.get_params(ctx) for name in param.opts}  # --help, --version, completion
        completing_first_word = ctx.resilient_parsing and not args
        if not completing_first_word and (not args or args[0] not in {*self.commands, *own}):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """The first word completes to a command, or to an option of the group or of the default command."""
        items = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            run = self.commands["run"]
            items += run.shell_complete(
                run.make_context("run", [], parent=ctx, resilient_parsing=True), incomplete
            )
        return items

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage("ml-intern", '[OPTIONS] ["PROMPT"]  |  ml-intern COMMAND [ARGS]...')

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Show the options of the default command too: they are what most users type."""
        run = self.commands["run"]
        with ctx.scope(cleanup=False):
            run_ctx = run.make_context("ml-intern", ["--help"], parent=ctx, resilient_parsing=True)
            run.format_options(run_ctx, formatter)
        rows = [
            row
            for param in self.get_params(ctx)
            if param.name != "help" and (row := param.get_help_record(ctx))
        ]
        with formatter.section("Other options"):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)
