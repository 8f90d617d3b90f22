"""The headless front-end: one turn (a prompt, or `resume --continue`), its output, then exit."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import stat
import sys
import time
from typing import Any, BinaryIO

from ml_intern.errors import EXIT_INTERRUPTED, TurnFailed, UserError
from ml_intern.session.options import RunOptions
from ml_intern.session.runner import TurnOutcome
from ml_intern.session.session import Session
from ml_intern.terminal.formats import output_for

TRACE_UPLOAD_WAIT_S = 10.0  # how long a headless run gives an opted-in trace upload before exiting
PIPED_LIMIT = 200_000  # bytes of piped stdin added to a PROMPT; the rest is cut, with a note
PIPE_WAIT_S = 1.0  # how long a stdin that is no pipe nor file (a socket) may stay silent before it is left
PIPE_NOTE_S = 2.0  # after this long without the end of a pipe, say that stdin is being read


def read_stdin(stream: BinaryIO) -> str:
    """stdin as text; bytes that are not UTF-8 become U+FFFD, with a warning (the rest is still the task)."""
    return decoded(stream.read())


def decoded(data: bytes) -> str:
    """`data` as text; bytes that are not UTF-8 become U+FFFD, with a warning."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        replaced = text.count("\ufffd") - data.decode("utf-8", "ignore").count("\ufffd")
        print(
            f"ml-intern: warning: stdin is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}):"
            f" {replaced} invalid sequence(s) replaced with U+FFFD",
            file=sys.stderr,
        )
        return text


def read_prompt(prompt: str) -> str:
    """The prompt as given, or stdin for "-"; an empty one is a usage error."""
    stdin = getattr(sys.stdin, "buffer", None)  # a test's text-only stdin has no bytes to check
    text = (read_stdin(stdin) if stdin else sys.stdin.read()) if prompt == "-" else prompt
    if not text.strip():
        where = "stdin was empty" if prompt == "-" else "the prompt is empty"
        raise UserError(f"{where}: give the task as an argument or pipe it in")
    return text.strip()


def piped_bytes(stdin: Any) -> bytes | None:
    """What was piped to stdin (up to PIPED_LIMIT + 1 bytes); None for a terminal or no stdin. A pipe or a
    file is read to its end, as every Unix filter does (`make 2>&1 | ml-intern "why?"` however slow make is);
    any other stdin (an inherited socket a parent never closes) is left unread when silent for PIPE_WAIT_S."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):  # a test's stand-in, or stdin closed
        return None
    if os.isatty(fd):
        return None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)) and not select.select([fd], [], [], PIPE_WAIT_S)[0]:
        print(f"ml-intern: note: stdin sent nothing in {PIPE_WAIT_S:g} s: not read", file=sys.stderr)
        return None
    return read_to_end(fd)


def read_to_end(fd: int) -> bytes:
    """`fd` to its end, keeping the first PIPED_LIMIT bytes and a chunk more (the rest is drained, so the
    writer finishes rather than dying of a closed pipe); after PIPE_NOTE_S without the end, one line says
    what is awaited."""
    chunks, size, note_at = [], 0, time.monotonic() + PIPE_NOTE_S
    while True:
        if note_at and not select.select([fd], [], [], max(0.0, note_at - time.monotonic()))[0]:
            print("ml-intern: reading stdin… (Ctrl-D / end the pipe)", file=sys.stderr, flush=True)
            note_at = 0.0
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        if size <= PIPED_LIMIT:
            chunks.append(chunk)
            size += len(chunk)


def with_piped_text(prompt: str, data: bytes) -> str:
    """`cat log | ml-intern "why?"`: the prompt, then the piped text fenced (cut to PIPED_LIMIT bytes)."""
    end = min(len(data), PIPED_LIMIT)
    while 0 < end < len(data) and data[end] & 0xC0 == 0x80:  # never cut a UTF-8 character in two
        end -= 1
    text = decoded(data[:end]).rstrip()
    fence = "```"
    while fence in text:
        fence += "`"
    cut = f"\n(stdin was cut to its first {PIPED_LIMIT // 1000} KB)" if len(data) > PIPED_LIMIT else ""
    return f"{prompt}\n\n{fence}\n{text}\n{fence}{cut}"


def prompt_with_stdin(prompt: str) -> str:
    """`prompt` read (stdin for "-"), plus any text piped to stdin next to a PROMPT argument."""
    text = read_prompt(prompt)
    if prompt == "-":
        return text
    try:
        data = piped_bytes(sys.stdin)
    except KeyboardInterrupt:
        raise UserError("interrupted while reading stdin", EXIT_INTERRUPTED) from None
    return with_piped_text(text, data) if data and data.strip() else text


def checked_options(options: RunOptions) -> RunOptions:
    """`options` with the prompt read (stdin for "-"); usage errors (no terminal for a chat, an empty
    prompt) are found here, before ML_INTERN_HOME is touched."""
    if not options.headless:
        from ml_intern.terminal.chat import require_terminal

        require_terminal()
    elif options.prompt is not None:
        return dataclasses.replace(options, prompt=prompt_with_stdin(options.prompt))
    return options


async def was_saved(session: Session) -> bool:
    """Whether the current thread has a saved transcript (what `resume --continue` needs)."""
    return bool(session.thread_id) and bool(await session.messages())


async def run_headless(session: Session, options: RunOptions) -> TurnOutcome | None:
    """Run the turn `options` ask for (its prompt read already: cli.py); its outcome, or None after Ctrl-C."""
    session.on_event = output_for(options.output_format).event
    try:
        await session.start(options, interactive=False)
        ended = await (session.finish() if options.continue_turn else session.send(options.prompt or ""))
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
        if not await was_saved(session):
            line = "interrupted before the thread was saved: nothing to resume"
            raise UserError(line, EXIT_INTERRUPTED) from None
        await session.interrupt()
        return None
    except TurnFailed as failed:
        if not failed.resumable or not await was_saved(session):
            raise
        thread_id = session.thread_id
        hint = f"(thread {thread_id}: ml-intern resume {thread_id} --continue)"
        raise TurnFailed(f"{failed} {hint}", failed.exit_code, True) from None
    finally:
        await session.close()
    upload = await session.share_trace()
    if upload is not None:
        await asyncio.to_thread(upload.wait, TRACE_UPLOAD_WAIT_S)  # never longer: sharing must not block
    return ended
