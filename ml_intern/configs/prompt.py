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
# The sandbox runtime (config `tool_runtime`): where the model's bash, read, write and edit act, instead of
# the local working directory; the template's "You work in {workdir} on {platform}." names the sandbox.
SANDBOX_WORKDIR, SANDBOX_PLATFORM = "/app", "a private Hugging Face Space (your sandbox)"
SANDBOX = (
    "\n# Sandbox\nbash, read, write and edit run in the sandbox (Debian, Python 3.12, uv, git; "
    "CPU basic{create}), never on the user's machine: the user's local files are not reachable. "
    "Its files are lost when it is deleted (at exit; a resumed thread gets a new, empty one): "
    "push what matters to the Hub.\n"
)
SANDBOX_CREATE = " unless sandbox_create asks for more, which costs money and needs approval"


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


def system_prompt(workdir: str, tool_names: list[str], headless: bool = False, runtime: str = "local") -> str:
    """The system prompt for a run in `workdir` offering `tool_names`; `headless` adds the autonomy rules;
    `runtime` "sandbox": the tools work in the sandbox's /app, not in `workdir`."""
    now = datetime.datetime.now().astimezone()
    sandbox = runtime == "sandbox"
    where = SANDBOX.format(create=SANDBOX_CREATE if "sandbox_create" in tool_names else "") if sandbox else ""
    return _template().format(
        workdir=SANDBOX_WORKDIR if sandbox else workdir,
        platform=SANDBOX_PLATFORM if sandbox else f"{platform.system()} {platform.machine()}",
        plan=PLAN_RULE if "plan_tool" in tool_names else "",
        teachings=TEACHINGS.format(index=teaching_index()) if "teachings" in tool_names else "",
        sandbox=where,
        headless=HEADLESS if headless else "",
        now=now.strftime("%Y-%m-%d, timezone %Z (UTC%z)"),  # no clock time: a resumed thread keeps its cache
        tools=tools_line(tool_names),
    )


def research_prompt(tool_names: list[str]) -> str:
    """The research sub-agent's system prompt."""
    return _template("research_prompt.md").format(
        date=datetime.date.today().isoformat(), tools=", ".join(tool_names) or "(none)"
    )
