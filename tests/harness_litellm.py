"""One turn in-process through the real model path: ChatLiteLLM -> litellm -> HTTP -> a scripted local server
(`tests/fakes/llm_server.py`), on the sandbox's database; and readers of the requests the server received."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph.context import RunContext
from ml_intern.services import build_services
from ml_intern.session.runner import TurnOutcome, new_turn
from ml_intern.session.session import open_session
from tests.harness import Sandbox
from tests.harness_cli import MODEL, QUICK_RETRIES

THREAD = "fault-thread"
CONTEXT_OVERFLOW = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9120 tokens. "
    "Please reduce the length of the messages."
)


def agent_config(**sections: Any) -> dict[str, Any]:
    """The validated default config with quick retries and `sections` overridden."""
    return AgentConfig(**{"retries": QUICK_RETRIES, **sections}).model_dump()


@dataclass
class RealTurn:
    """What one turn did: its outcome (or the exception it raised), the events, the saved transcript."""

    outcome: TurnOutcome | None
    error: Exception | None
    events: list[dict[str, Any]]
    messages: list[AnyMessage]

    def logs(self, tool: str = "model") -> list[str]:
        return [e["text"] for e in self.events if e["type"] == "tool_log" and e.get("tool") == tool]


async def run_real_turn(
    base_url: str,
    sandbox: Sandbox,
    graph_input: Any,
    config: dict[str, Any] | None = None,
    stream: bool = False,
    tools: tuple[str, ...] = ("bash",),
) -> RealTurn:
    """Run one turn of THREAD on the sandbox's database, the model served at `base_url`."""
    environ = {"VLLM_BASE_URL": base_url, "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    services = build_services(
        model=MODEL,
        workdir=sandbox.workdir,
        tool_names=list(tools),
        stream=stream,
        environ=environ,
        config=config or agent_config(),
    )
    ctx = RunContext(
        model=MODEL, workdir=str(sandbox.workdir), approval="auto", stream=stream, services=services
    )
    if isinstance(graph_input, str):
        graph_input = new_turn(graph_input)
    events: list[dict[str, Any]] = []
    outcome, error = None, None
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        try:
            outcome = await session.turn(THREAD, graph_input, ctx, events.append, title="fault test")
        except Exception as exc:  # the fault under test: kept for the assertions
            error = exc
        messages = await session.messages(THREAD)
    return RealTurn(outcome, error, events, messages)


def sent(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, content) of the messages one request carried, system prompt excluded."""
    return [(m["role"], m.get("content") or "") for m in request["messages"][1:]]


def unanswered_calls(request: dict[str, Any]) -> list[str]:
    """Ids of assistant tool calls not answered before the next non-tool message of a request."""
    missing: list[str] = []
    open_ids: list[str] = []
    for message in request["messages"]:
        if message["role"] == "tool":
            open_ids = [i for i in open_ids if i != message["tool_call_id"]]
            continue
        missing += open_ids
        open_ids = [c["id"] for c in message.get("tool_calls") or []]
    return missing + open_ids
