"""The run context: the settings a run is started with (the services built from them live in services.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic.json_schema import SkipJsonSchema


@dataclass
class RunContext:
    """Per-run settings: plain fields, so LangGraph Studio can send them as JSON; `services` comes later."""

    model: str = ""  # model id (litellm, router or local); empty: picked from config and credentials
    reasoning_effort: str | None = "high"  # the highest effort to ask for (config, /effort); None: off
    workdir: str = ""  # the user's working directory; empty: the process's current directory
    approval: str = "ask"  # ask | auto | deny | yolo (a chat with yolo_mode: always-asked calls still asked)
    max_iterations: int = 300  # model calls allowed per turn
    tools: list[str] | None = None  # offer only these tool names (None: all)
    max_cost_usd: float | None = None  # per-turn cost budget in USD (None: config `max_cost_usd`)
    max_tokens: int | None = None  # per-turn budget of input + output tokens (None: config `max_tokens`)
    stream: bool = True  # stream model output token by token
    # The built `ml_intern.services.Services` (the CLI and tests inject them; else
    # `run_services.services_for` builds them). Typed loosely: graph/ must not import services.py, which
    # imports the tools built on graph/.
    services: SkipJsonSchema[Any] = field(default=None, repr=False)  # not in Studio's context form
    # The call journal of the user turn (ml_intern.session.journal.CallJournal), set by Session.turn: local
    # tool calls record what they change, so undo reverts exactly that. None (Studio): calls are not recorded.
    journal: SkipJsonSchema[Any] = field(default=None, repr=False)


def current_context() -> RunContext | None:
    """The running graph's context; None outside a run, in a state update `as_node` (LangGraph gives it no
    runtime) or in a run started without a context (Studio, the SDK)."""
    from langgraph.runtime import get_runtime

    try:
        runtime = get_runtime()
    except RuntimeError:  # called outside a LangGraph run
        return None
    return runtime.context if runtime is not None else None


def current_thread_id() -> str | None:
    """The LangGraph thread the running node or tool belongs to; None outside a run."""
    try:
        from langgraph.config import get_config

        return (get_config().get("configurable") or {}).get("thread_id")
    except RuntimeError:  # called outside a LangGraph run
        return None
