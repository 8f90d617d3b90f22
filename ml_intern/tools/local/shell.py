"""The `bash` tool: run a shell command in the working directory without blocking the event loop."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import os
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph import events
from ml_intern.secrets import redact
from ml_intern.tools.base import ToolEnv, ToolError, emit
from ml_intern.tools.local.output import OutputCollector

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 1800
READ_CHUNK = 65_536
MAX_PENDING_LINE = 8_192  # flush a line that has no newline yet (progress bars) past this size
DRAIN_SECONDS = 1.0  # how long to keep reading after bash exits (background jobs may hold the pipe)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\].*?\x07")
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


def record_lines(lines: list[str], output: OutputCollector) -> None:
    """Strip terminal escapes, stream each line as a progress event and keep it."""
    for line in lines:
        if output.detached:
            return
        line = redact(ANSI_ESCAPE.sub("", line))  # before the tool_log, the spill file and the result
        emit(events.tool_log("bash", line.rstrip("\n")))
        output.add(line)


def read_pipe(fd: int, deliver: Callable[[list[str]], None]) -> None:
    """Blocking (runs in a thread): read the pipe until EOF, handing over complete lines."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    with open(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(READ_CHUNK):
            *lines, pending = (pending + decoder.decode(chunk)).split("\n")
            lines = [line + "\n" for line in lines]
            if len(pending) > MAX_PENDING_LINE:
                lines, pending = [*lines, pending], ""
            if lines:
                deliver(lines)
    if pending := pending + decoder.decode(b"", final=True):
        deliver([pending])


def start_reader(fd: int, output: OutputCollector) -> asyncio.Future[None]:
    """Read `fd` in a daemon thread (background jobs may hold it open for hours); the future marks EOF."""
    loop, context = asyncio.get_running_loop(), contextvars.copy_context()  # context: for emit()
    eof = loop.create_future()

    def call_in_loop(callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens any more
            loop.call_soon_threadsafe(callback, *args, context=context)

    def deliver(lines: list[str]) -> None:
        if not output.detached:
            call_in_loop(record_lines, lines, output)

    def mark_eof() -> None:
        if not eof.done():
            eof.set_result(None)

    def read_all() -> None:
        read_pipe(fd, deliver)
        call_in_loop(mark_eof)

    threading.Thread(target=read_all, name="bash-output", daemon=True).start()
    return eof


def kill_process_group(proc: asyncio.subprocess.Process) -> None:
    """Kill the command and everything it started (it leads its own session and process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def finish_reading(eof: asyncio.Future[None], output: OutputCollector) -> None:
    """Let the reader catch up; if background jobs keep the pipe open, stop recording their output."""
    await asyncio.wait({eof}, timeout=DRAIN_SECONDS)
    if not eof.done():
        output.add("\n[background processes still hold the output open; their later output is discarded]\n")
        output.detached = True


async def spawn(command: str, cwd: Path) -> tuple[asyncio.subprocess.Process, int]:
    """Start `/bin/bash -c command` in its own session; return it and the read end of its output pipe."""
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/bash", "-c", command, cwd=cwd, env={**os.environ, **CHILD_ENV},
            stdin=asyncio.subprocess.DEVNULL, stdout=write_fd, stderr=write_fd, start_new_session=True,
        )  # fmt: skip
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


async def run_command(command: str, cwd: Path, timeout: int, spill_dir: Path) -> str:
    """Run `command` with a timeout; kill its process group on timeout or cancellation."""
    await asyncio.to_thread(spill_dir.mkdir, parents=True, exist_ok=True)  # for a spill file; off the loop
    proc, read_fd = await spawn(command, cwd)
    output = OutputCollector(spill_dir)
    eof = start_reader(read_fd, output)
    try:
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            kill_process_group(proc)
            await finish_reading(eof, output)
            raise ToolError(
                f"{output.finish()}\n\nCommand timed out after {timeout}s and was killed with its child "
                "processes. For long-running commands, run in the background and poll:\n"
                "  nohup <command> > /tmp/output.log 2>&1 & echo $!\n  tail -n 50 /tmp/output.log"
            ) from None
        await finish_reading(eof, output)
    except asyncio.CancelledError:
        kill_process_group(proc)
        output.detached = True
        output.close()
        await proc.wait()
        raise
    text = output.finish().rstrip("\n") or "(no output)"
    return text if code == 0 else f"{text}\n\nexit code {code}"


def needs_approval(args: dict, config: AgentConfig) -> str | None:
    """Commands matching a configured `bash.approval_patterns` regex (destructive outside the workdir)."""
    command = str(args.get("command", ""))
    if config.bash.matched_approval_pattern(command) is None:
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
        return await run_command(command, cwd, timeout, env.home / "outputs")

    return [
        StructuredTool.from_function(
            coroutine=bash, name="bash", description=BASH_DESCRIPTION, args_schema=BashArgs
        )
    ]
