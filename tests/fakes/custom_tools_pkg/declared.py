"""Custom tools that say whether they change anything (tests/test_custom_tools.py, approval part)."""

from __future__ import annotations

from langchain_core.tools import StructuredTool

RAN: list[str] = []  # names of the tools that ran, in order


def count_lines(text: str) -> str:
    """Count the lines of `text`."""
    RAN.append("count_lines")
    return str(len(text.splitlines()))


count_lines.read_only = True  # type: ignore[attr-defined]


def _peek(text: str) -> str:
    """The first word of `text`."""
    RAN.append("peek")
    return text.split()[0]


peek = StructuredTool.from_function(func=_peek, name="peek", metadata={"read_only": True})


def wipe(path: str) -> str:
    """Delete `path` (it only records that it ran)."""
    RAN.append("wipe")
    return f"wiped {path}"
