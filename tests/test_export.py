"""Trace export: Claude Code session JSONL checked line by line (shape, uuid chain, every tool_use answered,
guards and summaries marked, no secrets), and the plain JSON document."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from ml_intern.errors import UserError
from ml_intern.graph.messages import NOT_EXECUTED
from ml_intern.session.export import export_thread
from ml_intern.session.session import open_session
from ml_intern.session.threads import UnknownThreadError
from tests.harness_graph import TASK, THREAD, TINY, TOOLS, calls, first_turn, open_agent

PLANTED_TOKEN = "hf_abcdefghijklmnopqrstuv"
ENV_SECRET = "swordfish-0123456789"  # not token-shaped: only known as the value of a secret variable


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


async def export(db: Path, fmt: str = "jsonl", thread: str | None = THREAD, **kwargs: Any) -> str:
    async with open_session(db) as session:
        return await export_thread(session, thread, fmt, **kwargs)


def validated_lines(text: str) -> list[dict[str, Any]]:
    """Parse the JSONL and check the Claude Code envelope, the uuid chain and tool_use/tool_result pairing."""
    assert text.endswith("\n")
    lines = [json.loads(raw) for raw in text.splitlines()]
    open_calls: set[str] = set()
    for index, line in enumerate(lines):
        assert line["type"] in ("user", "assistant") and line["message"]["role"] == line["type"]
        assert line["parentUuid"] == (lines[index - 1]["uuid"] if index else None)
        assert line["sessionId"] == THREAD
        datetime.fromisoformat(line["timestamp"])
        content = line["message"]["content"]
        blocks = content if isinstance(content, list) else []
        for block in blocks:
            if block["type"] == "tool_use":
                assert line["type"] == "assistant" and isinstance(block["input"], dict) and block["name"]
                open_calls.add(block["id"])
            elif block["type"] == "tool_result":
                assert line["type"] == "user" and isinstance(block["content"], str)
                assert isinstance(block["is_error"], bool)
                open_calls.remove(block["tool_use_id"])  # KeyError: a result for no open call
            else:
                assert block["type"] == "text" and line["type"] == "assistant"
        if line["type"] == "user" and not blocks:
            assert isinstance(content, str)
    assert not open_calls, f"tool_use without tool_result: {open_calls}"
    assert len({line["uuid"] for line in lines}) == len(lines)
    return lines


def blocks_of(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The content blocks of every line (user lines with plain text have none)."""
    return [
        block
        for line in lines
        if isinstance(line["message"]["content"], list)
        for block in line["message"]["content"]
    ]


def typed_prompts(lines: list[dict[str, Any]]) -> list[str]:
    """The user lines a viewer would show as the person's turns."""
    return [
        line["message"]["content"]
        for line in lines
        if line["type"] == "user"
        and isinstance(line["message"]["content"], str)
        and not (line.get("isMeta") or line.get("isCompactSummary"))
    ]


async def compacted_thread_with_a_guard(db: Path) -> None:
    """Turn 1 reads pages and saves a file; turn 2 is compacted first, saves a file, stalls once (a guard),
    then answers."""
    await first_turn(db)
    save = calls(("save", {"path": "eval.py", "content": "print(1)"}))
    answers = [
        "- read pages 1-3\n- saved train.py",
        save,
        AIMessage(content=""),
        "Accuracy will be reported.",
    ]
    async with open_agent(db, answers, tools=TOOLS, config=TINY) as agent:
        assert (await agent.send("now run it")).stop_reason == "end_turn"


async def seeded_thread(db: Path, messages: list[Any]) -> None:
    """A thread whose saved transcript is exactly `messages` (e.g. written before redaction existed)."""
    async with open_session(db) as session:
        await session.threads.start_turn(THREAD, "seeded", "test/scripted", str(db.parent))
        config = {"configurable": {"thread_id": THREAD}}
        await session.app.aupdate_state(config, {"messages": messages}, as_node="execute_tools")


async def test_jsonl_is_a_claude_code_session_with_every_call_answered(db: Path) -> None:
    await compacted_thread_with_a_guard(db)
    lines = validated_lines(await export(db))
    assert typed_prompts(lines) == [TASK, "now run it"]
    [summary] = [line for line in lines if line.get("isCompactSummary")]
    assert "read pages 1-3" in summary["message"]["content"] and summary["type"] == "user"
    [guard] = [line for line in lines if line.get("isMeta")]
    assert guard["mlIntern"] == {"guard": "stall"}
    assistant = [line for line in lines if line["type"] == "assistant"]
    assert assistant[-1]["message"]["content"] == [{"type": "text", "text": "Accuracy will be reported."}]
    assert assistant[-1]["message"]["stop_reason"] == "end_turn"
    assert assistant[-1]["message"]["usage"]["input_tokens"] > 0 and "costUSD" in assistant[-1]
    assert all(line["cwd"] for line in lines)
    [result] = [block for block in blocks_of(lines) if block["type"] == "tool_result"]
    assert (result["content"], result["is_error"]) == ("saved eval.py", False)


async def test_uuids_are_stable_across_exports(db: Path) -> None:
    await compacted_thread_with_a_guard(db)
    assert await export(db) == await export(db)


async def test_calls_left_without_a_result_get_a_not_executed_one(db: Path) -> None:
    pending = {"name": "bash", "args": {"command": "make"}, "id": "c1"}
    await seeded_thread(db, [HumanMessage(content="build"), AIMessage(content="", tool_calls=[pending])])
    lines = validated_lines(await export(db))
    [result] = lines[-1]["message"]["content"]
    assert (result["tool_use_id"], result["content"], result["is_error"]) == ("c1", NOT_EXECUTED, True)


async def test_secrets_are_redacted_on_the_way_out(db: Path) -> None:
    call = {"name": "bash", "args": {"command": f"HF_TOKEN={PLANTED_TOKEN} train"}, "id": "c1"}
    await seeded_thread(
        db,
        [
            HumanMessage(content=f"my token is {PLANTED_TOKEN}"),
            AIMessage(content=f"Using {PLANTED_TOKEN}", tool_calls=[call]),
            ToolMessage(content=f"echo {ENV_SECRET} {PLANTED_TOKEN}", tool_call_id="c1", name="bash"),
            AIMessage(content="done"),
        ],
    )
    environ = {"MY_SERVICE_API_KEY": ENV_SECRET}
    for fmt in ("jsonl", "json"):
        text = await export(db, fmt, environ=environ)
        assert PLANTED_TOKEN not in text and ENV_SECRET not in text
        assert "[redacted]" in text
    lines = validated_lines(await export(db))
    assert lines[1]["message"]["content"][1]["input"] == {"command": "HF_TOKEN=[redacted] train"}


async def test_json_document_has_the_thread_usage_and_marked_messages(db: Path) -> None:
    await compacted_thread_with_a_guard(db)
    document = json.loads(await export(db, "json", thread=THREAD[:4]))  # a unique prefix is enough
    assert document["thread"]["thread_id"] == THREAD and document["thread"]["turns"] == 2
    assert document["usage"]["turn"]["compactions"] == 1
    assert document["usage"]["thread"]["calls"] == document["thread"]["usage"]["calls"]
    roles = {message["role"] for message in document["messages"]}
    assert roles == {"human", "ai", "tool"}
    marked = [m["marked"] for m in document["messages"] if "marked" in m]
    assert marked == [{"summary": True}, {"guard": "stall"}]


async def test_unknown_format_and_unknown_thread_are_user_errors(db: Path) -> None:
    await seeded_thread(db, [HumanMessage(content="hi")])
    with pytest.raises(UserError, match="unknown export format 'csv'"):
        await export(db, "csv")
    with pytest.raises(UnknownThreadError):
        await export(db, thread="nope")
