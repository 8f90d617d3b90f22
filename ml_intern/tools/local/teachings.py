"""Placeholder: filled in by issue 13."""

from __future__ import annotations

from typing import Any

from ml_intern.tools.base import ToolEnv


def make_tools(env: ToolEnv) -> list[Any]:
    return []
