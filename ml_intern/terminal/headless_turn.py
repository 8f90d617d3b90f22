"""A headless run from the start: the model checked before the database is opened (a missing key is one line
and no thread), then the one turn and its exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from ml_intern.errors import EXIT_INTERRUPTED, UserError, exit_code_for
from ml_intern.session.options import RunOptions

if TYPE_CHECKING:
    from ml_intern.session.opening import SessionOpening


async def headless_turn(opening: SessionOpening, options: RunOptions) -> int:
    """Check the model, open the session, run the turn `options` ask for; the exit code for how it ended.
    SIGTERM (`kill`, `docker stop`) ends it as Ctrl-C does: the session closes (its sandbox deleted)."""
    loop, main = asyncio.get_running_loop(), asyncio.current_task()
    terminated: list[bool] = []

    def terminate() -> None:  # once: a second SIGTERM must not cut the sandbox's deletion short
        if not terminated and main is not None:
            terminated.append(True)
            main.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await _headless_turn(opening, options)
    except asyncio.CancelledError:
        if not terminated:
            raise
        raise UserError("terminated", EXIT_INTERRUPTED) from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _headless_turn(opening: SessionOpening, options: RunOptions) -> int:
    from ml_intern.session.start import preflight_model
    from ml_intern.terminal.headless import run_headless
    from ml_intern.terminal.text import inert

    checked, notices = preflight_model(options, os.environ)
    for line in notices:  # e.g. the local server picked when no model is configured (it names the server)
        print(f"model: {inert(line)}", file=sys.stderr)
    opening.start(warm_model=False)
    ended = await run_headless(await opening.session(), checked)
    return EXIT_INTERRUPTED if ended is None else exit_code_for(ended.stop_reason)
