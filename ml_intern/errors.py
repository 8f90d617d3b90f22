"""Failures the user can fix: one line and an exit code."""

from __future__ import annotations

from ml_intern.secrets import redact

__all__ = ["UserError", "redact"]


RUNTIME_FAILURE = 1
USAGE_ERROR = 2


class UserError(Exception):
    """A failure the user can fix: printed as one line, exits with `exit_code`."""

    exit_code = USAGE_ERROR
