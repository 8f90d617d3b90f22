"""The headless front-end: one turn (a prompt, or `resume --continue`), its output, then exit."""

from __future__ import annotations

import asyncio
import sys

from ml_intern.errors import TurnFailed, UserError
from ml_intern.session.options import RunOptions
from ml_intern.session.runner import TurnOutcome
from ml_intern.session.session import Session
from ml_intern.terminal.formats import output_for

TRACE_UPLOAD_WAIT_S = 10.0  # how long a headless run gives an opted-in trace upload before exiting


def read_prompt(prompt: str) -> str:
    """The prompt as given, or stdin for "-"; an empty one is a usage error."""
    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        where = "stdin was empty" if prompt == "-" else "the prompt is empty"
        raise UserError(f"{where}: give the task as an argument or pipe it in")
    return text.strip()


async def run_headless(session: Session, options: RunOptions) -> TurnOutcome | None:
    """Run the turn `options` ask for; its outcome, or None when Ctrl-C stopped it."""
    prompt = read_prompt(options.prompt) if options.prompt is not None else ""
    session.on_event = output_for(options.output_format).event
    try:
        await session.start(options, interactive=False)
        ended = await (session.finish() if options.continue_turn else session.send(prompt))
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
        await session.interrupt()
        return None
    except TurnFailed as failed:
        if not failed.resumable:
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
