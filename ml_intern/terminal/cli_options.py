"""The command line's options: one annotated type per option, shared by the commands in cli.py."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

OutputFormat = StrEnum("OutputFormat", {"text": "text", "json": "json", "stream_json": "stream-json"})
Approval = StrEnum("Approval", {"ask": "ask", "auto": "auto", "deny": "deny"})


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
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show library logs on stderr (they always go to the log file)."),
]
ThreadArg = Annotated[
    str | None, typer.Argument(help="Thread id or unique prefix (default: the most recent).")
]
