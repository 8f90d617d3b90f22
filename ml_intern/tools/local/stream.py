"""Running a command for a tool: its combined output kept within bounds (spilled to a file past the cap) and
shown as a few progress events a second, its process group killed on timeout or cancellation.

A reader thread does the work per byte (decoding, cleaning, the spill file); the event loop only receives the
coalesced progress lines, so neither its queue nor memory grows with the output."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ml_intern.graph import events
from ml_intern.tools.base import ToolError, emit
from ml_intern.tools.local.output import OutputCollector, clean

READ_CHUNK = 65_536
DRAIN_SECONDS = 1.0  # how long to keep reading after the command exits (background jobs may hold the pipe)
MAX_LINE = 8_192  # a progress line longer than this is not shown (its start is gone)
LINE_ENDS = "\n\r"  # a progress bar's frames end in a carriage return
TIMED_OUT = (  # after the output (the sandbox's bash says it too)
    "\n\nCommand timed out after {timeout}s and was killed with its child processes. For long-running "
    "commands, run in the background and poll:\n  nohup <command> > /tmp/output.log 2>&1 & echo $!\n"
    "  tail -n 50 /tmp/output.log"
)


def last_lines(text: str, count: int, whole_start: bool) -> list[str]:
    """The last `count` non-blank, ended lines of `text`, cleaned; its first line only if `whole_start`."""
    lines: list[str] = []
    end = max(map(text.rfind, LINE_ENDS))
    for _ in range(count * 4):  # a run of blank lines ends the search
        if end < 0 or len(lines) == count:
            break
        start = max(text.rfind(sep, 0, end) for sep in LINE_ENDS)
        line = clean(text[start + 1 : end])
        if line.strip() and (start >= 0 or whole_start) and len(line) <= MAX_LINE:
            lines.append(line)
        end = start
    return lines[::-1]


class LatestLines:
    """Finds the latest complete lines in a stream of output, for progress events."""

    def __init__(self) -> None:
        self.partial = ""  # after the last line end, its last MAX_LINE characters
        self.partial_whole = True  # whether `partial` starts where its line does

    def feed(self, text: str, count: int) -> list[str]:
        """The last `count` lines that `text` completes."""
        text = self.partial + text
        end = max(map(text.rfind, LINE_ENDS)) + 1
        lines = last_lines(text[:end], count, self.partial_whole) if end else []
        whole, rest = end > 0 or self.partial_whole, text[end:]
        self.partial, self.partial_whole = rest[-MAX_LINE:], whole and len(rest) <= MAX_LINE
        return lines


RATE = 4.0  # progress events a second, once the burst is spent
BURST = 8  # events shown at once (a short command's lines all appear)


class Progress:
    """Output lines as progress events, coalesced: a burst, then RATE a second, the latest line winning.

    The reader thread offers lines; the event loop emits them (in the caller's context, for emit())."""

    def __init__(self) -> None:
        self.loop, self.context = asyncio.get_running_loop(), contextvars.copy_context()
        self.lock = threading.Lock()
        self.waiting: deque[str] = deque(maxlen=BURST)
        self.scheduled = False  # an emit is due on the loop: the reader need not ask again
        self.closed = False
        self.tokens, self.stamp = float(BURST), time.monotonic()

    def call_in_loop(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the event loop soon (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens any more
            self.loop.call_soon_threadsafe(callback, context=self.context)

    def offer(self, lines: list[str]) -> None:
        """Lines the command printed (reader thread); only the latest ones may be shown."""
        if not lines:
            return
        with self.lock:
            self.waiting.extend(lines)
            if self.scheduled or self.closed:
                return
            self.scheduled = True
        self.call_in_loop(self._emit_due)

    def _emit_due(self) -> None:
        if self.closed:
            return
        now = time.monotonic()
        self.tokens, self.stamp = min(BURST, self.tokens + (now - self.stamp) * RATE), now
        if self.tokens < 1:
            self.loop.call_later((1 - self.tokens) / RATE, self._emit_due, context=self.context)
            return
        self._emit(int(self.tokens))

    def _emit(self, count: int) -> None:
        with self.lock:
            lines = list(self.waiting)[-count:]
            self.waiting.clear()
            self.scheduled = False
        self.tokens -= len(lines)
        for line in lines:
            emit(events.tool_log("bash", line))

    def close(self, final: bool = True) -> None:
        """No more events; first show the latest waiting line(s) if `final`."""
        if not self.closed and final:
            self._emit(max(1, int(self.tokens)))
        self.closed = True


def read_pipe(fd: int, output: OutputCollector, progress: Progress) -> None:
    """Blocking (runs in a thread): read the pipe until EOF into `output`, offering lines to `progress`."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    latest = LatestLines()
    with open(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(READ_CHUNK):
            if output.detached:
                continue  # background jobs still write: drain the pipe so they never block
            # Progress shows released text only: redacted with the context of the whole stream (a private
            # key's body lines are not secret-shaped one by one).
            progress.offer(latest.feed(output.feed(decoder.decode(chunk)), BURST))
    rest = output.feed(decoder.decode(b"", final=True)) + output.end_of_output()
    progress.offer(latest.feed(rest + ("\n" if latest.partial or rest else ""), BURST))


def start_reader(fd: int, output: OutputCollector, progress: Progress) -> asyncio.Future[None]:
    """Read `fd` in a daemon thread (background jobs may hold it open for hours); the future marks EOF."""
    loop = asyncio.get_running_loop()
    eof = loop.create_future()

    def mark_eof() -> None:
        if not eof.done():
            eof.set_result(None)

    def read_all() -> None:
        try:
            read_pipe(fd, output, progress)
        finally:
            progress.call_in_loop(mark_eof)

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
        note = "\n[background processes still hold the output open; their later output is discarded]\n"
        output.detach(note)


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
    output, progress = OutputCollector(spill_dir), Progress()
    eof = start_reader(read_fd, output, progress)
    try:
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            kill_process_group(proc)
            await finish_reading(eof, output)
            progress.close()
            raise ToolError(output.finish() + TIMED_OUT.format(timeout=timeout)) from None
        await finish_reading(eof, output)
        progress.close()
    except asyncio.CancelledError:
        kill_process_group(proc)
        progress.close(final=False)
        output.detached = True  # before close(): the reader stops writing the spill file
        output.close()
        await proc.wait()
        raise
    return command_text(output.finish().rstrip("\n"), code)


def command_text(output: str, code: int | None) -> str:
    """A finished command's result as bash shows it: its output, and its exit code unless 0 (None: killed)."""
    text = output or "(no output)"
    return text if code == 0 else f"{text}\n\nexit code {'unknown (killed)' if code is None else code}"
