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

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def headless_turn(opening: SessionOpening, options: RunOptions) -> int:
    """Check the model, open the session, run the turn `options` ask for; the exit code for how it ended.
    Ctrl-C, SIGTERM (`kill`, `docker stop`) and SIGHUP (the terminal closed) cancel the run: the turn's calls
    are settled and the session closes (its sandbox deleted). The first signal counts: later ones are ignored
    until the session is closed (they must not cut the sandbox's deletion short)."""
    loop, main = asyncio.get_running_loop(), asyncio.current_task()
    came: list[int] = []

    def stop(signum: int) -> None:
        if not came and main is not None:
            came.append(signum)
            main.cancel()

    for signum in SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await _headless_turn(opening, options)
    except asyncio.CancelledError:
        if not came:
            raise
        said = "interrupted" if came[0] == signal.SIGINT else "terminated"
        raise UserError(said, EXIT_INTERRUPTED) from None
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)


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
