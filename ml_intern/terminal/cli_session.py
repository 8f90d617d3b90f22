"""How a CLI command runs on the user's session: library logs to the log file, the session opened, any
failure turned into one line and an exit code (cli.py's commands call these)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ml_intern.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError

if TYPE_CHECKING:
    from ml_intern.session.opening import SessionOpening
    from ml_intern.session.session import Session

T = TypeVar("T")  # what a job on the session returns (an exit code, or None for success; a thread id)


async def latest_thread_here(session: Session) -> str:
    """`ml-intern -c`: the id of the latest thread started in the current directory (a UserError if none)."""
    here = Path.cwd()
    info = await session.threads.latest_in(here)
    if info is None:
        raise UserError(
            f'no thread was started in {here.resolve()} yet: run ml-intern "PROMPT" (or ml-intern threads)'
        )
    return info.thread_id


def with_session(
    verbose: bool,
    job: Callable[[Session], Awaitable[T]] | Callable[[SessionOpening], Awaitable[T]],
    opening: bool = False,
) -> T | int:
    """Send library logs to the log file, run `job` on the user's session (with `opening`, on the
    SessionOpening that opens it in the background: the chat); failures become one line."""
    from ml_intern.paths import database_target
    from ml_intern.session.opening import SessionOpening
    from ml_intern.session.start import prepare_process

    async def opened(target: Path | str) -> T:
        async with SessionOpening(target) as later:
            if not opening:
                later.start(warm_model=False)
            return await job(later if opening else await later.session())  # type: ignore[arg-type]

    def run() -> T | int:
        import asyncio  # here: `--help` does not need it

        prepare_process(os.environ, verbose)
        return asyncio.run(opened(database_target(os.environ))) or EXIT_OK

    return one_line_failures(run)


def one_line_failures(run: Callable[[], T]) -> T | int:
    """`run()`'s result, or a failure as one line and its exit code (a bug's traceback only with
    ML_INTERN_DEBUG): how every command ends."""
    try:
        return run()
    except UserError as exc:
        return error_exit(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return error_exit("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: one line for the user, the traceback only when asked for
        if os.environ.get("ML_INTERN_DEBUG"):
            raise
        line = f"internal error: {type(exc).__name__}: {exc} (ML_INTERN_DEBUG=1 shows the traceback)"
        return error_exit(line, EXIT_FAILURE)


def error_exit(message: str, exit_code: int = EXIT_USAGE) -> int:
    """Print `message` as the one error line; the exit code to return."""
    from ml_intern.terminal.text import print_error

    print_error(message)
    return exit_code
