"""The `bash` tool: run a shell command in the working directory without blocking the event loop."""

from __future__ import annotations

import os

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.local.stream import run_command

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 1800
CHILD_ENV = {"PYTHONUNBUFFERED": "1", "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}

BASH_DESCRIPTION = (
    "Run a shell command (/bin/bash -c) in the working directory; returns combined stdout/stderr and the "
    "exit code. Use read/write/edit for files, not cat/sed/echo. Each call is independent (chain with &&); "
    "independent commands can be separate calls in parallel. For long runs (training), start in the "
    "background and poll: `nohup CMD > run.log 2>&1 & echo $!`, then `tail -n 50 run.log`. "
    f"Timeout default {DEFAULT_TIMEOUT}s, max {MAX_TIMEOUT}s."
)


class BashArgs(BaseModel):
    command: str = Field(description="The shell command to execute.")
    description: str = Field("", description="Short description (5-10 words, active voice).")
    work_dir: str = Field("", description="Directory to run in (default: the working directory).")
    timeout: int = Field(0, description=f"Seconds (0: default {DEFAULT_TIMEOUT}, max {MAX_TIMEOUT}).")


def needs_approval(args: dict, env: ToolEnv) -> str | None:
    """Commands matching a configured `bash.approval_patterns` regex (destructive outside the workdir)."""
    command = str(args.get("command", ""))
    if env.config.bash.matched_approval_pattern(command) is None:
        return None
    return f"shell command that may be destructive outside the working directory: {command[:200]}"


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build the `bash` tool bound to the run's working directory."""
    default_timeout = env.config.bash.timeout

    async def bash(command: str, description: str = "", work_dir: str = "", timeout: int = 0) -> str:
        if not command.strip():
            raise ToolError("No command provided.")
        cwd = (env.workdir / work_dir).resolve() if work_dir else env.workdir
        if not cwd.is_dir():
            raise ToolError(f"work_dir is not an existing directory: {cwd}")
        timeout = min(max(timeout or default_timeout, 1), MAX_TIMEOUT)
        argv, child_env = ["/bin/bash", "-c", command], {**os.environ, **CHILD_ENV}
        return await run_command(argv, cwd, child_env, timeout, env.home / "outputs")

    return [
        StructuredTool.from_function(
            coroutine=bash, name="bash", description=BASH_DESCRIPTION, args_schema=BashArgs
        )
    ]
