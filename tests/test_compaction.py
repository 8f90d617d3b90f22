"""Compaction in the running graph: the middle is summarised, the head and a clean tail kept, or the turn
ends with context_overflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from ml_intern.graph.messages import MARK, is_user_turn
from ml_intern.nodes.compact import SUMMARY_PROMPT
from tests.harness_graph import (
    TASK,
    TINY,
    TOOLS,
    calls,
    first_turn,
    kinds,
    open_agent,
    saved_snapshot,
    thread_row,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


async def test_compaction_summarises_the_middle_and_keeps_head_and_tail(db: Path) -> None:
    await first_turn(db)
    before = (await saved_snapshot(db)).values["messages"]
    answers = ["- read pages 1-3\n- saved train.py", "Accuracy will be reported."]
    async with open_agent(db, answers, tools=TOOLS, config=TINY) as agent:
        outcome = await agent.send("now run it")
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "Accuracy will be reported.")
    summariser = agent.model.calls[0]
    assert isinstance(summariser[0], SystemMessage) and summariser[0].content == SUMMARY_PROMPT
    assert "page 2:" in summariser[1].content and TASK not in summariser[1].content
    sent = agent.model.calls[1]
    assert kinds(sent) == ["system", "human", "human", "ai", "human"]
    assert sent[1].content == TASK and sent[1].id == before[0].id  # the first user message, verbatim
    assert sent[2].content.endswith("- read pages 1-3\n- saved train.py") and not is_user_turn(sent[2])
    assert sent[2].additional_kwargs[MARK] == {"summary": True}
    assert sent[3].content == "Saved train.py."  # the tail does not start with an orphaned tool result
    saved = await saved_snapshot(db)
    assert [m.content for m in saved.values["messages"]] == [m.content for m in sent[1:]] + [
        "Accuracy will be reported."
    ]
    [event] = [e for e in agent.events if e["type"] == "compacted"]
    assert event["tokens_before"] > 1_200 >= event["tokens_after"]
    assert saved.values["usage"]["compactions"] == 1
    assert thread_row(db)["turns"] == 2  # the summary is not a user turn


async def test_context_overflow_ends_the_turn_when_nothing_can_be_cut(db: Path) -> None:
    huge = "describe this log: " + "x" * 8_000
    async with open_agent(db, [], config={"compaction": {"threshold_tokens": 500}}) as agent:
        outcome = await agent.send(huge)
    assert outcome.stop_reason == "context_overflow"
    assert agent.model.calls == []
    assert any(e["type"] == "error" and "cannot be compacted" in e["message"] for e in agent.events)
    saved = await saved_snapshot(db)
    assert saved.values["stop_reason"] == "context_overflow" and saved.next == ()
    assert [m.content for m in saved.values["messages"]] == [huge]
    assert thread_row(db)["stop_reason"] == "context_overflow"


async def test_context_overflow_after_an_unsuccessful_summary_does_not_loop(db: Path) -> None:
    await first_turn(db, task=TASK + " " + "detail " * 1_500)  # a ~10 KB first message is kept verbatim
    before = (await saved_snapshot(db)).values["messages"]
    config = {"compaction": {"threshold_tokens": 2_000}}
    async with open_agent(db, ["a summary"], tools=TOOLS, config=config) as agent:
        outcome = await agent.send("next")
    assert outcome.stop_reason == "context_overflow"
    assert len(agent.model.calls) == 1  # one summary attempt, no main call, no retry
    messages = (await saved_snapshot(db)).values["messages"]
    assert [m.content for m in messages] == [m.content for m in before] + ["next"]  # nothing was replaced
    assert isinstance(messages[-1], HumanMessage)


# ---- the model says the context is too long ---------------------------------------------------------------

FORCEABLE = {"compaction": {"keep_recent_tokens": 10}}  # under the token budget, but a small tail is kept


def context_overflow() -> Exception:
    """What litellm raises when the prompt exceeds the model's window (the node looks at the class name)."""
    return type("ContextWindowExceededError", (Exception,), {})("prompt is too long for this model")


async def test_context_window_overflow_compacts_then_retries_the_call(db: Path) -> None:
    await first_turn(db)
    answers = [context_overflow(), "- read three pages", calls(("read_page", {"number": 4})), "done"]
    async with open_agent(db, answers, tools=TOOLS, config=FORCEABLE) as agent:
        outcome = await agent.send("continue")
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "done")
    assert len(agent.model.calls) == 4  # the failed call, the summary, the retry, the answer
    assert [e["type"] for e in agent.events].count("compacted") == 1
    saved = await saved_snapshot(db)
    assert saved.values["force_compact"] is False
    assert saved.values["messages"][-2].content.startswith("page 4:")  # the retried reply's call ran


async def test_second_overflow_after_compaction_ends_the_turn(db: Path) -> None:
    await first_turn(db)
    answers = [context_overflow(), "- read three pages", context_overflow(), "never sent"]
    async with open_agent(db, answers, tools=TOOLS, config=FORCEABLE) as agent:
        outcome = await agent.send("continue")
    assert outcome.stop_reason == "context_overflow"
    assert len(agent.model.calls) == 3
    assert (await saved_snapshot(db)).values["stop_reason"] == "context_overflow"


async def test_context_window_overflow_with_default_settings_still_compacts(db: Path) -> None:
    await first_turn(db)
    async with open_agent(db, [context_overflow(), "- read three pages", "done"], tools=TOOLS) as agent:
        outcome = await agent.send("continue")
    assert "compacted" in [e["type"] for e in agent.events]
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "done")


async def test_a_200_kb_request_stays_verbatim_through_compaction(db: Path) -> None:
    await first_turn(db)
    request = "Here is the log (piped on stdin):\n" + "step 1 loss 2.3 ok\n" * 11_000 + "Why did it fail?"
    assert len(request) > 200_000  # about 52k tokens: over the size at which kept messages become notes
    answers = [context_overflow(), "- read three pages", "It ran out of memory."]
    async with open_agent(db, answers, tools=TOOLS) as agent:
        outcome = await agent.send(request)
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "It ran out of memory.")
    assert "compacted" in [e["type"] for e in agent.events]
    retried = agent.model.calls[2]
    assert kinds(retried)[-2:] == ["human", "human"]  # the summary, then the request
    assert retried[-1].content == request and is_user_turn(retried[-1])
    assert thread_row(db)["turns"] == 2
