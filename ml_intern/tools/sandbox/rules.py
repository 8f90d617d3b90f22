"""Approval and cost of the sandbox tools (the registry reads them through the facts in `__init__`)."""

from __future__ import annotations

from typing import Any

from ml_intern.tools.base import ToolEnv


def bash_needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """A sandbox command: asked only when it matches a `bash.approval_patterns` regex (STUB: helper C)."""
    return None


def create_needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """Hardware other than the free cpu-basic: asked, with its hourly price (STUB: helper C)."""
    return None


def create_cost(args: dict[str, Any], env: ToolEnv) -> tuple[bool, float | None]:
    """(paid, one hour at the hardware's price) for the yolo cap (STUB: helper C)."""
    return False, None
