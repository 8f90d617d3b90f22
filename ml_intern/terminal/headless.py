"""The headless front-end: one turn (a prompt, or `resume --continue`), its output, then exit."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import BinaryIO

from ml_intern.errors import EXIT_INTERRUPTED, TurnFailed, UserError
from ml_intern.session.options import RunOptions
from ml_intern.session.runner import TurnOutcome
from ml_intern.session.session import Session
from ml_intern.terminal.formats import output_for

TRACE_UPLOAD_WAIT_S = 10.0  # how long a headless run gives an opted-in trace upload before exiting


def read_stdin(stream: BinaryIO) -> str:
    """stdin as text; bytes that are not UTF-8 become U+FFFD, with a warning (the rest is still the task)."""
    data = stream.read()
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


def checked_options(options: RunOptions) -> RunOptions:
    """`options` with the prompt read (stdin for "-"); usage errors (no terminal for a chat, an empty
    prompt) are found here, before ML_INTERN_HOME is touched."""
    if not options.headless:
        from ml_intern.terminal.chat import require_terminal

        require_terminal()
    elif options.prompt is not None:
        return dataclasses.replace(options, prompt=read_prompt(options.prompt))
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
