"""The compiled graph in-process on a SQLite file, driven by a scripted chat model (no HTTP, no litellm):
`open_agent` and readers of what a turn saved. Also the compaction tests' first turn and services with MCP
servers, which other test files reuse."""

from __future__ import annotations

import itertools
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.configs.loader import default_config
from ml_intern.configs.schema import McpServer
from ml_intern.graph.context import RunContext
from ml_intern.model.ids import ModelSpec
from ml_intern.services import Services, build_services
from ml_intern.session.runner import TurnOutcome, continue_turn, new_turn, resume_with
from ml_intern.session.session import Session, open_session
from tests.fakes.chat_model import ScriptedChatModel
from tests.harness import FAKE_MCP_SERVER

THREAD = "thread-1"
SYSTEM_PROMPT = "You are the test agent."
_call_ids = itertools.count(1)


def calls(*pairs: tuple[str, dict[str, Any]], text: str = "") -> AIMessage:
    """An assistant reply calling tools, with unique call ids."""
    return AIMessage(
        content=text,
        tool_calls=[
            {"name": name, "args": args, "id": f"call_{next(_call_ids)}", "type": "tool_call"}
            for name, args in pairs
        ],
    )


def make_tool(coroutine: Callable[..., Any], name: str | None = None) -> BaseTool:
    """A LangChain tool from an async function (its docstring is the description)."""
    return StructuredTool.from_function(coroutine=coroutine, name=name or coroutine.__name__)


async def echo(value: str) -> str:
    """Echo the value."""
    return f"echo:{value}"


@dataclass
class Agent:
    """A compiled graph on a SQLite file, driven by a scripted model."""

    session: Session
    model: ScriptedChatModel
    ctx: RunContext
    db: Path
    events: list[dict[str, Any]] = field(default_factory=list)

    async def run(self, graph_input: Any, thread: str = THREAD, title: str = "") -> TurnOutcome:
        return await self.session.turn(thread, graph_input, self.ctx, self.events.append, title=title)

    async def send(self, prompt: str, thread: str = THREAD) -> TurnOutcome:
        """Start a user turn."""
        return await self.run(new_turn(prompt), thread, title=prompt)

    async def resume(self, value: dict[str, Any], thread: str = THREAD) -> TurnOutcome:
        """Answer a pending approval."""
        return await self.run(resume_with(value), thread)

    async def continue_(self, thread: str = THREAD) -> TurnOutcome:
        return await self.run(continue_turn(), thread)

    def event_types(self) -> list[str]:
        return [event["type"] for event in self.events]


@asynccontextmanager
async def open_agent(
    db: Path,
    answers: list[Any],
    tools: list[BaseTool] | None = None,
    config: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Agent]:
    """An Agent whose model plays `answers`; `settings` are RunContext fields (approval, ...)."""
    model = ScriptedChatModel(answers)
    services = Services(
        model=ModelSpec(model_id="test/scripted", litellm_model="test/scripted"),
        chat_model=model,
        tools=[make_tool(echo)] if tools is None else tools,
        config=config or {},
        prompt=SYSTEM_PROMPT,
    )
    ctx = RunContext(model="test/scripted", workdir=str(db.parent), services=services, **settings)
    async with open_session(db) as session:
        yield Agent(session=session, model=model, ctx=ctx, db=db)


async def saved_snapshot(db: Path, thread: str = THREAD) -> Any:
    """The thread's state as a fresh process would load it from the SQLite file."""
    async with open_session(db) as session:
        return await session.app.aget_state({"configurable": {"thread_id": thread}})


async def saved_messages(db: Path, thread: str = THREAD) -> list[AnyMessage]:
    return (await saved_snapshot(db, thread)).values["messages"]


def thread_row(db: Path, thread: str = THREAD) -> dict[str, Any]:
    """The thread's metadata row, read with plain sqlite3."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM ml_intern_threads WHERE thread_id = ?", (thread,)).fetchone()
    assert row is not None, f"no ml_intern_threads row for {thread}"
    return dict(row)


def old_sqlite_database(path: Path, *inserts: str) -> None:
    """A SQLite file as ml-intern left it before numbered migrations, then `inserts` run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn, conn:  # closed, not left to the GC
        conn.execute(
            "CREATE TABLE ml_intern_threads (thread_id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '',"
            " model TEXT NOT NULL DEFAULT '', workdir TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, turns INTEGER NOT NULL DEFAULT 0, stop_reason TEXT,"
            " input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,"
            " cost_usd REAL)"
        )
        conn.execute(
            "CREATE TABLE ml_intern_undo_turns (thread_id TEXT NOT NULL, base_checkpoint TEXT NOT NULL,"
            " workdir TEXT NOT NULL, started_at REAL NOT NULL, PRIMARY KEY (thread_id, base_checkpoint))"
        )
        for insert in inserts:
            conn.execute(insert)


def kinds(messages: list[AnyMessage]) -> list[str]:
    return [message.type for message in messages]


def tool_messages(messages: list[AnyMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def assert_every_call_answered(messages: list[AnyMessage]) -> None:
    """Each tool call has exactly one result, placed before the next non-tool message."""
    open_ids: list[str] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in open_ids, f"result for no open call: {message.tool_call_id}"
            open_ids.remove(message.tool_call_id)
            continue
        assert not open_ids, f"calls {open_ids} unanswered before a {message.type} message"
        open_ids = [c["id"] for c in message.tool_calls] if isinstance(message, AIMessage) else []
    assert not open_ids, f"calls {open_ids} unanswered at the end"


# ---- a first turn for the compaction tests -----------------------------------------------------------------

TASK = "TASK: train a small text classifier on imdb and report accuracy."
TINY = {"compaction": {"threshold_tokens": 1_200, "keep_recent_tokens": 400}}


async def read_page(number: int) -> str:
    """Read a page of documentation."""
    return f"page {number}: " + "lorem ipsum " * 170  # ~2 KB


async def save(path: str, content: str) -> str:
    """Save a file."""
    return f"saved {path}"


TOOLS = [make_tool(read_page), make_tool(save)]


async def first_turn(db: Path, task: str = TASK) -> None:
    """A turn under the default budget: three 2 KB pages read, then a 3 KB file saved (small result)."""
    answers = [
        calls(("read_page", {"number": 1})),
        calls(("read_page", {"number": 2})),
        calls(("read_page", {"number": 3})),
        calls(("save", {"path": "train.py", "content": "import torch\n" * 230})),
        "Saved train.py.",
    ]
    async with open_agent(db, answers, tools=TOOLS) as agent:
        assert (await agent.send(task)).stop_reason == "end_turn"


# ---- services with MCP servers -----------------------------------------------------------------------------


def stdio_server(starts: Path, **settings: Any) -> dict[str, Any]:
    """A validated `mcpServers` entry starting the fake server over stdio."""
    entry = {"command": sys.executable, "args": [str(FAKE_MCP_SERVER), "--starts", str(starts)], **settings}
    return McpServer.model_validate(entry).model_dump()


def make_services(servers: dict[str, dict[str, Any]], answers: list[Any] = (), **options: Any) -> Services:
    """Services with real tools, the given MCP servers and a scripted model."""
    config = default_config().model_dump()
    config["mcpServers"] = servers
    return build_services(
        model="vllm/scripted",
        workdir=Path.cwd(),
        tool_names=options.get("tool_names"),
        stream=False,
        environ=dict(os.environ),
        config=config,
        chat_model=ScriptedChatModel(list(answers)),
    )


async def tool_in_graph(tool: BaseTool, args: dict[str, Any], sink: list[dict[str, Any]]) -> Any:
    """Call `tool` inside a one-node LangGraph run (so it can stream events), keeping its custom events in
    `sink` (also when the call raises); the tool's answer."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        result: Any

    async def call(state: State) -> dict[str, Any]:
        return {"result": await tool.ainvoke(args)}

    graph = StateGraph(State)
    graph.add_node("call", call)
    graph.add_edge(START, "call")
    graph.add_edge("call", END)
    result = None
    async for mode, chunk in graph.compile().astream({"result": None}, stream_mode=["custom", "values"]):
        if mode == "custom":
            sink.append(chunk)
        else:
            result = chunk["result"]
    return result
