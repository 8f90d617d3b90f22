"""Failures the user can fix (one line each), and the exit codes of DESIGN.md "CLI", in one place."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the model unreachable after retries, the database unwritable, an unexpected error
EXIT_USAGE = 2  # a bad flag, an unknown thread, missing credentials, a bad config
EXIT_STOPPED = 3  # the iteration cap, a budget, a doom loop, or a headless turn waiting for approval
EXIT_INTERRUPTED = 130  # Ctrl-C

STOPPED_REASONS = {"max_iterations", "recursion_limit", "budget", "doom_loop", "stalled"}
FAILED_REASONS = {"context_overflow", "interrupted"}  # the turn ended without finishing its work


class UserError(Exception):
    """A failure the user can fix: printed as one line, exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TurnFailed(UserError):
    """A turn broke off (the model or the database failed); `resumable`: `resume --continue` can finish it."""

    def __init__(self, message: str, exit_code: int, resumable: bool) -> None:
        super().__init__(message, exit_code)
        self.resumable = resumable


def exit_code_for(stop_reason: str) -> int:
    """The exit code of a headless turn that ended with `stop_reason`."""
    if stop_reason in STOPPED_REASONS or stop_reason == "approval_required":
        return EXIT_STOPPED
    if stop_reason in FAILED_REASONS:
        return EXIT_FAILURE
    return EXIT_OK
