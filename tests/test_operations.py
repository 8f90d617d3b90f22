"""The Session's operations in process: compact, settle pending calls, switch model, status, HF token."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
from langchain_core.messages import AIMessage, SystemMessage

import ml_intern.model.credentials as credentials
import ml_intern.tools.registry as registry
from ml_intern.errors import TurnFailed, UserError
from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import MARK
from ml_intern.nodes.compact import SUMMARY_PROMPT
from ml_intern.services import build_services
from ml_intern.session.model_switch import MODEL_CHECK_PROMPT
from ml_intern.session.pending import ABANDONED, INTERRUPTED
from ml_intern.session.session import open_session
from tests.fakes import llm_server as script
from tests.fakes.hub_server import USER, FakeHub
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness_graph import (
    THREAD,
    Agent,
    assert_every_call_answered,
    calls,
    kinds,
    make_tool,
    open_agent,
    saved_snapshot,
    thread_row,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def bind(agent: Agent, thread: str = THREAD) -> list[dict[str, Any]]:
    """The agent's session at work on `thread` with the agent's context; the events the session emits."""
    emitted: list[dict[str, Any]] = []
    agent.session.ctx, agent.session.thread_id, agent.session.on_event = agent.ctx, thread, emitted.append
    return emitted


async def read_page(number: int) -> str:
    """Read a page."""
    return f"page {number}: " + "lorem ipsum " * 50


async def slow(seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return "slept"


async def touch(name: str) -> str:
    """Create a file (needs approval)."""
    return f"created {name}"


TOOLS = [make_tool(read_page), make_tool(slow), make_tool(touch)]
FIRST_TURN = [calls(("read_page", {"number": 1})), calls(("read_page", {"number": 2})), "Read both pages."]


# ---- compact now ------------------------------------------------------------------------------------------


async def test_compact_now_summarises_and_the_next_turn_continues_from_it(db: Path) -> None:
    answers = [*FIRST_TURN, "- read pages 1 and 2", "Going on."]
    async with open_agent(db, answers, tools=TOOLS) as agent:
        await agent.send("read the pages")
        emitted = bind(agent)
        done = await agent.session.compact()
        compacted = (await saved_snapshot(db)).values
        outcome = await agent.send("what next?")
    assert done is not None and done.tokens_after < done.tokens_before
    assert emitted == [events.compacted(done.tokens_before, done.tokens_after)]
    summariser = agent.model.calls[3]
    assert summariser[0].content == SUMMARY_PROMPT and "page 2:" in summariser[1].content
    assert [m.content for m in compacted["messages"]][::2] == ["read the pages", "Read both pages."]
    summary = compacted["messages"][1]
    assert summary.additional_kwargs[MARK] == {"summary": True} and "read pages 1 and 2" in summary.content
    assert compacted["context_tokens"] == done.tokens_after and compacted["usage"]["compactions"] == 1
    assert outcome.stop_reason == "end_turn"
    sent = agent.model.calls[4]
    assert isinstance(sent[0], SystemMessage) and kinds(sent[1:]) == ["human", "human", "ai", "human"]
    assert sent[2].content == summary.content and sent[-1].content == "what next?"
    saved = await saved_snapshot(db)
    assert kinds(saved.values["messages"]) == ["human", "human", "ai", "human", "ai"] and saved.next == ()


async def test_compact_now_does_nothing_when_nothing_can_be_cut(db: Path) -> None:
    async with open_agent(db, ["Hello."], tools=TOOLS) as agent:
        emitted = bind(agent, "empty-thread")
        assert await agent.session.compact() is None
        await agent.send("hi")
        bind(agent)
        assert await agent.session.compact() is None and emitted == []
    assert len(agent.model.calls) == 1
    assert kinds((await saved_snapshot(db)).values["messages"]) == ["human", "ai"]


# ---- pending calls ----------------------------------------------------------------------------------------


@pytest.fixture
def touch_needs_approval(monkeypatch: pytest.MonkeyPatch) -> None:
    facts = registry.ToolFacts(effect="local files", approval=lambda args, env: "make a file")
    monkeypatch.setattr(registry, "declared_facts", lambda: {"touch": facts})


async def test_settled_calls_are_answered_and_the_thread_goes_on(db: Path) -> None:
    reply = calls(("slow", {"seconds": 30}), ("read_page", {"number": 3}))
    async with open_agent(db, [reply, "Back again."], tools=TOOLS) as agent:
        running = asyncio.create_task(agent.send("wait a long time"))
        await asyncio.sleep(0.5)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        emitted = bind(agent)
        answered = await agent.session.interrupt()
        settled = await saved_snapshot(db)
        outcome = await agent.send("are you there?")
    assert answered == 2
    assert settled.next == () and not settled.interrupts and settled.values["stop_reason"] == "interrupted"
    assert [m.content for m in settled.values["messages"][-2:]] == [INTERRUPTED] * 2
    stopped = [events.tool_state_change(c["id"], c["name"], "interrupted") for c in reply.tool_calls]
    assert emitted == [*stopped, events.interrupted(THREAD, 2)]
    assert_every_call_answered(settled.values["messages"])
    assert thread_row(db)["stop_reason"] == "end_turn" and outcome.final_response == "Back again."
    assert kinds(agent.model.calls[-1][1:]) == ["human", "ai", "tool", "tool", "human"]


async def test_a_new_message_abandons_a_pending_approval(db: Path, touch_needs_approval: None) -> None:
    reply = calls(("touch", {"name": "a.txt"}))
    async with open_agent(db, [reply, "Fine."], tools=TOOLS, approval="ask") as agent:
        outcome = await agent.send("make a file")
        emitted = bind(agent)
        pending = await agent.session.pending_approval()
        answered = await agent.session.abandon_pending_approval()
        again = await agent.session.abandon_pending_approval()
        after = await saved_snapshot(db)
        await agent.send("forget it")
    assert pending == outcome.approval and pending["tool_calls"][0]["id"] == reply.tool_calls[0]["id"]
    assert (answered, again) == (1, 0)
    assert emitted == [events.tool_state_change(reply.tool_calls[0]["id"], "touch", "abandoned")]
    assert not after.interrupts and after.values["messages"][-1].content == ABANDONED
    assert after.values["stop_reason"] == "abandoned" and thread_row(db)["stop_reason"] == "end_turn"
    sent = agent.model.calls[-1]
    assert [m.content for m in sent[-2:]] == [ABANDONED, "forget it"]


async def test_compact_now_refuses_while_an_approval_is_pending(db: Path, touch_needs_approval: None) -> None:
    answers = [*FIRST_TURN, calls(("touch", {"name": "b.txt"}))]
    async with open_agent(db, answers, tools=TOOLS, approval="ask") as agent:
        await agent.send("read the pages")
        await agent.send("now make a file")
        bind(agent)
        with pytest.raises(UserError, match="waiting for an approval"):
            await agent.session.compact()


# ---- the session's turns and events ------------------------------------------------------------------------


async def test_a_session_announces_its_thread_its_turns_and_its_end(db: Path) -> None:
    async with open_agent(db, ["Hello."], tools=TOOLS) as agent:
        emitted: list[dict[str, Any]] = []
        agent.session.on_event = emitted.append
        await agent.session.begin(agent.ctx)
        first = agent.session.thread_id
        outcome = await agent.session.send("hi")
        await agent.session.begin(agent.ctx, first)  # opened again, as `resume` does
        await agent.session.new_thread()
        await agent.session.close()
    model, workdir = "test/scripted", str(db.parent)
    assert emitted[:2] == [events.thread_started(first, model), events.ready(first, model, 3, workdir)]
    [complete] = [e for e in emitted if e["type"] == "turn_complete"]
    assert complete == outcome.completed(first) and complete["final_response"] == "Hello."
    assert events.resume_complete(first, model, 1, False) in emitted
    [new] = [e for e in emitted if e["type"] == "new_complete"]
    assert (new["previous_thread_id"], new["previous_turns"]) == (first, 1) and new["thread_id"] != first
    assert emitted[-1] == events.shutdown()


async def test_send_and_answer_run_approvals_and_a_new_message_abandons_one(
    db: Path, touch_needs_approval: None
) -> None:
    first, second = calls(("touch", {"name": "a.txt"})), calls(("touch", {"name": "b.txt"}))
    async with open_agent(db, [first, "Made it.", second, "Fine."], tools=TOOLS, approval="ask") as agent:
        emitted = bind(agent)
        asked = await agent.session.send("make a file")
        answered = await agent.session.answer({"approve": True})
        await agent.session.send("and another")
        await agent.session.send("forget it")
    assert asked.stop_reason == "approval_required" and answered.final_response == "Made it."
    requests = [e for e in emitted if e["type"] == "approval_required"]
    asked_ids = [request["tool_calls"][0]["id"] for request in requests]
    assert asked_ids == [first.tool_calls[0]["id"], second.tool_calls[0]["id"]]
    stops = [e["stop_reason"] for e in emitted if e["type"] == "turn_complete"]
    assert stops == ["approval_required", "end_turn", "approval_required", "end_turn"]
    assert events.tool_state_change(second.tool_calls[0]["id"], "touch", "abandoned") in emitted
    assert thread_row(db)["turns"] == 3


async def test_finish_goes_on_with_a_capped_turn_and_reports_an_ended_one(db: Path) -> None:
    answers = [calls(("read_page", {"number": 1})), "Read it."]
    async with open_agent(db, answers, tools=TOOLS, max_iterations=1) as agent:
        emitted = bind(agent)
        capped = await agent.session.send("read page 1")
        finished = await agent.session.finish()
        again = await agent.session.finish()  # nothing was cut off: the model is not called
    assert capped.stop_reason == "max_iterations"
    assert (finished.stop_reason, finished.final_response) == ("end_turn", "Read it.")
    assert again == finished and len(agent.model.calls) == 2
    stops = [e["stop_reason"] for e in emitted if e["type"] == "turn_complete"]
    assert stops == ["max_iterations", "end_turn", "end_turn"]
    assert thread_row(db)["turns"] == 1


async def test_finish_refuses_a_turn_waiting_for_approval(db: Path, touch_needs_approval: None) -> None:
    async with open_agent(db, [calls(("touch", {"name": "a.txt"}))], tools=TOOLS, approval="ask") as agent:
        bind(agent)
        await agent.session.send("make a file")
        with pytest.raises(UserError, match=f"answer it with ml-intern resume {THREAD}"):
            await agent.session.finish()


async def test_a_failed_model_call_is_one_error_event_and_a_resumable_failure(db: Path) -> None:
    async with open_agent(db, [ValueError("the server went away")]) as agent:
        emitted = bind(agent)
        with pytest.raises(TurnFailed) as failed:
            await agent.session.send("hi")
    assert failed.value.resumable and failed.value.exit_code == 1
    assert "the server went away" in str(failed.value)
    assert emitted[-1] == events.error(str(failed.value))
    assert "turn_complete" not in [e["type"] for e in emitted]


# ---- model and status -------------------------------------------------------------------------------------


def http_context(model: str) -> RunContext:
    """A run context whose model is reached over HTTP (litellm), as the CLI builds it."""
    services = build_services(
        model=model,
        workdir=Path.cwd(),
        tool_names=["read"],
        stream=False,
        environ=dict(os.environ),
        config=None,
    )
    return RunContext(model=model, workdir=str(Path.cwd()), services=services, tools=["read"], stream=False)


async def test_switch_model_keeps_the_old_context_unless_the_new_model_answers(
    db: Path, llm_server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", llm_server.url)
    llm_server.push(script.error(404, "The model `missing` does not exist"), script.text("OK"))
    old = http_context("vllm/scripted")
    async with open_session(db) as session:
        session.ctx = old
        with pytest.raises(UserError, match="model vllm/missing was not found"):
            await session.switch_model("vllm/missing")
        with pytest.raises(UserError, match="needs a provider prefix"):
            await session.switch_model("no-prefix")
        with pytest.raises(UserError, match="needs a Hugging Face token"):
            await session.switch_model("huggingface/org/model")
        assert session.ctx is old
        await session.switch_model("vllm/other")
        new = session.ctx
    assert (old.model, old.services.model.model_id) == ("vllm/scripted", "vllm/scripted")
    assert (new.model, new.services.model.model_id, new.tools) == ("vllm/other", "vllm/other", ["read"])
    assert [tool.name for tool in new.services.tools] == ["read"]
    checks = llm_server.requests
    assert [c["model"] for c in checks] == ["missing", "other"] and checks[1]["max_tokens"] == 16
    assert checks[1]["messages"] == [{"role": "user", "content": MODEL_CHECK_PROMPT}]


async def test_thread_status_reports_turns_tokens_and_cost(db: Path) -> None:
    def priced(text: str, cost: float | None) -> AIMessage:
        usage = {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}
        return AIMessage(content=text, usage_metadata=usage, response_metadata={"response_cost": cost})

    async with open_agent(db, [priced("one", 0.25), priced("two", 0.5), priced("three", None)]) as agent:
        assert (await agent.session.status(THREAD)).cost_usd == 0.0
        await agent.send("first")
        await agent.send("second")
        status = await agent.session.status(THREAD)
        await agent.send("third")
        unknown = await agent.session.status(THREAD)
    assert (status.turns, status.input_tokens, status.output_tokens) == (2, 200, 20)
    assert status.cost_usd == pytest.approx(0.75) and status.context_tokens == 110
    assert (unknown.turns, unknown.cost_usd) == (3, None)


# ---- Hugging Face token -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "environ", "needed"),
    [
        ("huggingface/moonshotai/Kimi-K2-Instruct", {}, True),
        ("huggingface/moonshotai/Kimi-K2-Instruct", {"HF_TOKEN": "hf_x"}, False),
        ("anthropic/claude-sonnet-4-5", {}, False),
        ("vllm/huggingface", {}, False),
    ],
)
def test_only_hugging_face_models_need_a_token(model: str, environ: dict[str, str], needed: bool) -> None:
    assert credentials.needs_hf_token(model, environ) is needed


def test_verify_hf_token_asks_the_hub_who_the_token_belongs_to() -> None:
    with FakeHub(token="hf_valid0001") as hub:
        assert credentials.verify_hf_token("hf_valid0001", hub.url) == USER
        with pytest.raises(UserError) as rejected:
            credentials.verify_hf_token("hf_invalid9999", hub.url)
        sent = [r.headers.get("authorization") for r in hub.find("GET", "/api/whoami-v2")]
    assert sent == ["Bearer hf_valid0001", "Bearer hf_invalid9999"]
    assert str(rejected.value).startswith(f"{hub.url} did not accept the token")
    assert "hf_invalid9999" not in str(rejected.value)


def test_a_token_saved_by_hf_auth_login_counts_as_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(token_file))
    environ: dict[str, Any] = {}
    assert not credentials.adopt_saved_hf_token(environ) and environ == {}
    token_file.write_text("hf_saved0001\n")
    assert credentials.adopt_saved_hf_token(environ) and environ == {"HF_TOKEN": "hf_saved0001"}
    explicit = {"HF_TOKEN": "hf_explicit01"}
    assert not credentials.adopt_saved_hf_token(explicit) and explicit == {"HF_TOKEN": "hf_explicit01"}
    assert not credentials.needs_hf_token("huggingface/org/model", environ)
