"""A headless run from the start: the model checked before the database is opened (a missing key is one line
and no thread), then the one turn and its exit code."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ml_intern.errors import EXIT_INTERRUPTED, exit_code_for
from ml_intern.session.options import RunOptions

if TYPE_CHECKING:
    from ml_intern.session.opening import SessionOpening


async def headless_turn(opening: SessionOpening, options: RunOptions) -> int:
    """Check the model, open the session, run the turn `options` ask for; the exit code for how it ended."""
    from ml_intern.session.start import preflight_model
    from ml_intern.terminal.headless import run_headless
    from ml_intern.terminal.text import inert

    checked, notices = preflight_model(options, os.environ)
    for line in notices:  # e.g. the local server picked when no model is configured (it names the server)
        print(f"model: {inert(line)}", file=sys.stderr)
    opening.start(warm_model=False)
    ended = await run_headless(await opening.session(), checked)
    return EXIT_INTERRUPTED if ended is None else exit_code_for(ended.stop_reason)
