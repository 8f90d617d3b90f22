"""Every shape a custom tool may take, and a few mistakes."""

from __future__ import annotations

from langchain_core.tools import BaseTool, tool

from ml_intern.tools.base import ToolEnv


def word_count(text: str) -> str:
    """Count the words in `text`."""
    return str(len(text.split()))


async def shout_back(text: str, times: int = 1) -> str:
    """Return `text` in capitals, `times` times."""
    return text.upper() * times


@tool
def reverse_text(text: str) -> str:
    """Reverse `text`."""
    return text[::-1]


def make_tools(env: ToolEnv) -> list[object]:
    """A factory: tools that need the run's environment."""

    def workdir_name() -> str:
        """The name of the working directory."""
        return env.workdir.name

    return [workdir_name, reverse_text]


def undocumented(text: str) -> str:
    return text


def read(path: str) -> str:
    """A tool whose name is taken by a built-in."""
    return path


def failing_factory(env: ToolEnv) -> list[BaseTool]:
    """A factory that fails."""
    raise RuntimeError("cannot reach the license server")


NOT_A_TOOL = 42
