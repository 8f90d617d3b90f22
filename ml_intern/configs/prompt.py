"""The system prompt: the packaged workflow text, filled in with this run's directory and tools."""

from __future__ import annotations

import datetime
import platform
from functools import cache
from importlib.resources import files


@cache
def _template(name: str = "system_prompt.md") -> str:
    return files("ml_intern.configs").joinpath(name).read_text(encoding="utf-8")


def system_prompt(workdir: str, tool_names: list[str]) -> str:
    """The system prompt for a run in `workdir` offering `tool_names`."""
    return _template().format(
        workdir=workdir,
        platform=f"{platform.system()} {platform.machine()}",
        date=datetime.date.today().isoformat(),
        tools=", ".join(tool_names) if tool_names else "(none)",
    )


def research_prompt(tool_names: list[str]) -> str:
    """The research sub-agent's system prompt."""
    return _template("research_prompt.md").format(
        date=datetime.date.today().isoformat(), tools=", ".join(tool_names) or "(none)"
    )
