"""The system prompt: the packaged workflow text, filled in with this run's directory, tools and the index of
the teachings (configs/teachings/*.md, read through the `teachings` tool)."""

from __future__ import annotations

import datetime
import platform
from functools import cache
from importlib.resources import files

HEADLESS = (
    "\n# Headless\nNo one will answer: never reply with text only while work remains (it ends the run). "
    "Given a time budget, use all of it to improve the result; keep ~10 min for the final eval and save.\n"
)
# Lines naming a tool, added only when that tool is offered (a model must not call a tool it lacks).
PLAN_RULE = "\n- Use plan_tool for multi-step work; never mark failed work completed."
TEACHINGS = "\n# Teachings\nRead teachings(topic) before the work it covers: {index}.\n"


@cache
def _template(name: str = "system_prompt.md") -> str:
    return files("ml_intern.configs").joinpath(name).read_text(encoding="utf-8")


@cache
def teachings() -> dict[str, str]:
    """Topic -> the guide's text, from the packaged Markdown files, in name order."""
    folder = files("ml_intern.configs").joinpath("teachings")
    found = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".md")), key=lambda e: e.name)
    return {entry.name[:-3]: entry.read_text(encoding="utf-8") for entry in found}


def teaching_index() -> str:
    """Every topic with its title: 'data_audit (auditing a dataset); ...'."""
    return "; ".join(f"{topic} ({_title(text)})" for topic, text in teachings().items())


def _title(text: str) -> str:
    return text.split("\n", 1)[0].lstrip("# ").strip().lower()


def tools_line(tool_names: list[str]) -> str:
    """The tool count, naming the tools that are not built in (MCP and custom ones)."""
    from ml_intern.tools.registry import declared_facts

    extra = [name for name in tool_names if name not in declared_facts()]
    return f"{len(tool_names)} tools" + (f", incl. {', '.join(extra)}" if extra else "")


def system_prompt(workdir: str, tool_names: list[str], headless: bool = False) -> str:
    """The system prompt for a run in `workdir` offering `tool_names`; `headless` adds the autonomy rules."""
    now = datetime.datetime.now().astimezone()
    return _template().format(
        workdir=workdir,
        platform=f"{platform.system()} {platform.machine()}",
        plan=PLAN_RULE if "plan_tool" in tool_names else "",
        teachings=TEACHINGS.format(index=teaching_index()) if "teachings" in tool_names else "",
        headless=HEADLESS if headless else "",
        now=now.strftime("%Y-%m-%d, timezone %Z (UTC%z)"),  # no clock time: a resumed thread keeps its cache
        tools=tools_line(tool_names),
    )


def research_prompt(tool_names: list[str]) -> str:
    """The research sub-agent's system prompt."""
    return _template("research_prompt.md").format(
        date=datetime.date.today().isoformat(), tools=", ".join(tool_names) or "(none)"
    )
