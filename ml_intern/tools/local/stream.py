"""Running a command for a tool: its combined output streamed as progress events, kept within bounds (spilled
to a file past the cap), its process group killed on timeout or cancellation."""

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

from ml_intern.graph import events
from ml_intern.secrets import redact
from ml_intern.tools.base import ToolError, emit
from ml_intern.tools.local.output import OutputCollector

READ_CHUNK = 65_536
MAX_PENDING_LINE = 8_192  # flush a line that has no newline yet (progress bars) past this size
DRAIN_SECONDS = 1.0  # how long to keep reading after the command exits (background jobs may hold the pipe)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\].*?\x07")


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


async def spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, int]:
    """Start `argv` in its own session; return it and the read end of its output pipe."""
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=write_fd, stderr=write_fd, start_new_session=True,
        )  # fmt: skip
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


async def run_command(argv: list[str], cwd: Path, env: dict[str, str], timeout: int, spill_dir: Path) -> str:
    """Run `argv` with a timeout; kill its process group on timeout or cancellation."""
    await asyncio.to_thread(spill_dir.mkdir, parents=True, exist_ok=True)  # for a spill file; off the loop
    proc, read_fd = await spawn(argv, cwd, env)
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
