"""Prompt caching: Anthropic breakpoints reach an Anthropic stand-in through ChatLiteLLM and litellm, the
stored transcript stays clean, cached tokens are counted and priced; cache keys and router session headers
per provider; replays drop earlier thinking."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph.accounting import price
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import model_view, replayable
from ml_intern.graph.turns import continue_turn
from ml_intern.model.caching import cached_request, marked_prompt
from ml_intern.model.ids import ModelSpec
from ml_intern.services import build_services
from ml_intern.session.runner import new_turn
from ml_intern.session.session import open_session
from tests.fakes.anthropic_server import AnthropicServer, text, tool_use
from tests.harness import Sandbox, child_python_path
from tests.harness_cli import QUICK_RETRIES
from tests.harness_graph import calls, open_agent

MODEL = "anthropic/claude-sonnet-4-5"
THREAD = "cache-thread"
BREAKPOINT = {"type": "ephemeral"}


@pytest.fixture
def anthropic(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Anthropic stand-in, reached by litellm's anthropic/ provider."""
    with AnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_BASE", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        yield server


async def anthropic_turn(sandbox: Sandbox, prompt: str, stream: bool, effort: str | None = None) -> Any:
    """One turn of THREAD with the anthropic model and the read tool; (outcome, saved messages, events)."""
    environ = {"ANTHROPIC_API_KEY": "sk-ant-test", "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    config = AgentConfig(retries=QUICK_RETRIES).model_dump()
    services = build_services(
        model=MODEL, workdir=sandbox.workdir, tool_names=["read", "write"], stream=stream, environ=environ,
        config=config,
    )  # fmt: skip
    ctx = RunContext(
        model=MODEL, workdir=str(sandbox.workdir), approval="auto", stream=stream, services=services,
        reasoning_effort=effort,
    )  # fmt: skip
    events: list[dict[str, Any]] = []
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        outcome = await session.turn(THREAD, new_turn(prompt), ctx, events.append, title="cache")
        return outcome, await session.messages(THREAD), events


def breakpoints(body: dict[str, Any]) -> dict[str, Any]:
    """Where a request put cache_control: system blocks, tools, and (message index, block type) pairs."""
    found: dict[str, Any] = {"system": [], "tools": [], "messages": []}
    found["system"] = [i for i, b in enumerate(body["system"]) if b.get("cache_control") == BREAKPOINT]
    found["tools"] = [t["name"] for t in body["tools"] if t.get("cache_control") == BREAKPOINT]
    for index, message in enumerate(body["messages"]):
        for block in message["content"] if isinstance(message["content"], list) else []:
            inner = block.get("content") if isinstance(block.get("content"), list) else []
            if block.get("cache_control") == BREAKPOINT or any(b.get("cache_control") for b in inner):
                found["messages"].append((index, block["type"]))
    return found


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_requests_carry_breakpoints_and_cached_tokens_are_counted(
    anthropic: AnthropicServer, sandbox: Sandbox, stream: bool
) -> None:
    (sandbox.workdir / "a.txt").write_text("alpha\n" * 200)
    (sandbox.workdir / "b.txt").write_text("beta\n" * 200)
    reads = [tool_use("read", {"path": name}) for name in ("a.txt", "b.txt")]
    anthropic.push(*reads, text("Both read."))
    outcome, messages, _ = await anthropic_turn(sandbox, "read a.txt then b.txt", stream)
    assert outcome.stop_reason == "end_turn" and outcome.final_response == "Both read."
    bodies = [request["body"] for request in anthropic.requests]
    last = breakpoints(bodies[-1])
    assert last["system"] == [len(bodies[-1]["system"]) - 1]
    assert last["tools"] == [bodies[-1]["tools"][-1]["name"]]  # only the last tool
    n = len(bodies[-1]["messages"])
    assert last["messages"] == [(n - 3, "tool_result"), (n - 1, "tool_result")]  # the two newest tool results
    assert breakpoints(bodies[0])["messages"] == [(0, "text")]  # the user's message
    # the later requests read what the earlier ones wrote
    assert [u["cache_read_input_tokens"] > 0 for u in anthropic.usages] == [False, True, True]
    assert outcome.usage["cached_tokens"] == sum(u["cache_read_input_tokens"] for u in anthropic.usages)
    total_in = sum(sum(u.values()) for u in anthropic.usages)
    assert outcome.usage["input_tokens"] == total_in
    assert "cache_control" not in json.dumps([m.model_dump() for m in messages], default=str)


async def test_cached_tokens_are_priced_at_the_cache_read_price(
    anthropic: AnthropicServer, sandbox: Sandbox
) -> None:
    # A result small next to the cached prefix (prompt + tools), so reading it back costs less than writing it
    (sandbox.workdir / "a.txt").write_text("alpha\n" * 100)
    anthropic.push(tool_use("read", {"path": "a.txt"}), text("Read."))
    outcome, _, _ = await anthropic_turn(sandbox, "read a.txt", stream=False)
    first, second = anthropic.usages
    expected = sum(
        price(MODEL, sum(u.values()), 0, u["cache_read_input_tokens"], u["cache_creation_input_tokens"])
        for u in (first, second)
    )
    outputs = price(MODEL, 0, outcome.usage["output_tokens"])
    assert outcome.usage["cost_usd"] == pytest.approx(expected + outputs)
    uncached = price(MODEL, outcome.usage["input_tokens"], outcome.usage["output_tokens"])
    assert outcome.usage["cost_usd"] < uncached


def spec(model_id: str, kind: str = "litellm", headers: dict[str, str] | None = None) -> ModelSpec:
    litellm_model = f"openai/{model_id}" if kind != "litellm" else model_id
    return ModelSpec(model_id, litellm_model, "http://127.0.0.1:9/v1", "k", kind, headers or {})  # type: ignore[arg-type]


PROMPT = [SystemMessage("system"), HumanMessage("hi"), AIMessage("hello"), HumanMessage("again")]
TOOLS = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in ("a", "b")]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (spec("openai/gpt-5"), {"prompt_cache_key": "t-1"}),
        (spec("openai/gpt-5.5:fal-ai", "router", {"X-HF-Bill-To": "my-org"}),
         {"prompt_cache_key": "t-1", "prompt_cache_retention": "24h",
          "extra_headers": {"X-HF-Bill-To": "my-org", "X-HF-Session-id": "t-1"}}),
        (spec("moonshotai/Kimi-K2.6:novita", "router"), {"extra_headers": {"X-HF-Session-id": "t-1"}}),
        (spec("vllm/qwen", "local"), {}),
        (spec("gemini/gemini-2.5-pro"), {}),
        (spec("org/claude-distill-qwen:novita", "router"), {"extra_headers": {"X-HF-Session-id": "t-1"}}),
    ],
)  # fmt: skip
def test_cache_hints_per_provider(model: ModelSpec, expected: dict[str, Any]) -> None:
    sent, kwargs = cached_request(model, PROMPT, TOOLS, "t-1")
    assert kwargs == expected and sent == PROMPT


def test_router_anthropic_ids_get_breakpoints_on_a_copy_and_a_bounded_session_header() -> None:
    original = [m.model_copy(deep=True) for m in PROMPT]
    router = spec("anthropic/claude-opus-4.8:fal-ai", "router")
    sent, kwargs = cached_request(router, PROMPT, TOOLS, "x" * 300)
    assert kwargs["extra_headers"] == {"X-HF-Session-id": "x" * 256}
    assert [t.get("cache_control") for t in kwargs["tools"]] == [None, BREAKPOINT]
    assert sent[0].content == [{"type": "text", "text": "system", "cache_control": BREAKPOINT}]
    assert [m.content for m in sent[1:]] == [
        [{"type": "text", "text": "hi", "cache_control": BREAKPOINT}],
        "hello",
        [{"type": "text", "text": "again", "cache_control": BREAKPOINT}],
    ]
    older = [HumanMessage("old"), AIMessage("ok"), *PROMPT[1:]]
    assert marked_prompt(older)[0].content == [{"type": "text", "text": "old"}]  # the same form, unmarked
    assert [m.content for m in marked_prompt(older)[1:]] == [
        "ok",
        *[m.content for m in sent[1:]],
    ]
    assert original == PROMPT and "cache_control" not in json.dumps(TOOLS)


THINKING = {
    "reasoning_content": "let me think",
    "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
}


def thinking_reply(call_id: str) -> AIMessage:
    content = [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "reading"}]
    call = {"name": "echo", "args": {"value": "x"}, "id": call_id, "type": "tool_call"}
    return AIMessage(content=content, additional_kwargs=dict(THINKING), tool_calls=[call])


def test_replay_keeps_only_thinking_signed_for_its_endpoint() -> None:
    history = [
        HumanMessage("first"),
        thinking_reply("c1"),
        ToolMessage("x", tool_call_id="c1"),
        HumanMessage("second"),
        thinking_reply("c2"),
        ToolMessage("x", tool_call_id="c2"),
    ]
    for replayed in (replayable(history)[1], replayable(history)[4]):
        # reasoning_content would go to any endpoint; thinking_blocks only back to the one that signed them
        assert replayed.additional_kwargs == {"thinking_blocks": THINKING["thinking_blocks"]}
        assert replayed.content == [{"type": "text", "text": "reading"}]
    history[4].id = "refused"
    stripped = replayable(history, refused={"refused"})
    assert (
        stripped[4].additional_kwargs == {}
        and stripped[1].additional_kwargs == replayable(history)[1].additional_kwargs
    )
    assert history[4].additional_kwargs == THINKING  # stored unchanged


def test_the_model_view_keeps_the_thinking_exports_show() -> None:
    history = [HumanMessage("first"), thinking_reply("c1"), ToolMessage("x", tool_call_id="c1")]
    assert model_view(history) == history  # replay rules apply to calls only (replayable), not exports


async def test_after_a_refused_signature_the_refused_thinking_is_never_replayed(sandbox: Sandbox) -> None:
    refusal = Exception("Invalid `signature` in `thinking` block")
    first = [HumanMessage("go"), thinking_reply("c1"), ToolMessage("echo:x", tool_call_id="c1", name="echo")]
    later = [
        HumanMessage("next"),
        thinking_reply("c2"),
        ToolMessage("echo:x", tool_call_id="c2", name="echo"),
    ]
    async with open_agent(sandbox.workdir / "db.sqlite", [refusal, "done", "final"]) as agent:
        await agent.run({"messages": first, **continue_turn()})
        outcome = await agent.run({"messages": later, **continue_turn()})  # a reply signed after the refusal
    assert outcome.final_response == "final" and len(agent.model.calls) == 3  # no second refusal
    sent = agent.model.calls[2]
    assert [m.tool_calls[0]["id"] for m in sent if isinstance(m, AIMessage) and m.tool_calls] == ["c1", "c2"]
    assert sent[2].additional_kwargs == {}  # refused once: never sent again
    assert sent[6].additional_kwargs == {"thinking_blocks": THINKING["thinking_blocks"]}  # its own signature


async def test_a_second_refused_signature_fails_the_turn(sandbox: Sandbox) -> None:
    refusal = Exception("Invalid `signature` in `thinking` block")
    model_calls = [calls(("echo", {"value": "x"})), refusal, refusal]
    async with open_agent(sandbox.workdir / "db.sqlite", model_calls) as agent:
        with pytest.raises(Exception, match="signature"):
            await agent.send("go")
    assert len(agent.model.calls) == 3


def assistant_blocks(body: dict[str, Any]) -> list[list[str]]:
    """The block types of each assistant message a request carried."""
    return [[b["type"] for b in m["content"]] for m in body["messages"] if m["role"] == "assistant"]


@pytest.mark.parametrize("stream", [False, True])
async def test_signed_thinking_goes_back_to_its_endpoint_so_claude_keeps_thinking(
    anthropic: AnthropicServer, sandbox: Sandbox, stream: bool
) -> None:
    (sandbox.workdir / "a.txt").write_text("alpha\n")
    anthropic.push(tool_use("read", {"path": "a.txt"}), text("Read it."), text("Again."))
    await anthropic_turn(sandbox, "read a.txt", stream, effort="high")
    await anthropic_turn(sandbox, "and now?", stream, effort="high")
    first, within, after = (request["body"] for request in anthropic.requests)
    # litellm turns thinking off when no earlier reply carries its signed thinking
    assert [body.get("thinking", {}).get("type") for body in (first, within, after)] == ["enabled"] * 3
    assert assistant_blocks(within) == [["thinking", "tool_use"]]
    assert within["messages"][1]["content"][0]["signature"] == "sig-1"
    assert assistant_blocks(after) == [["thinking", "tool_use"], ["thinking", "text"]]
    assert "reasoning_content" not in json.dumps(after)


@pytest.mark.e2e
def test_copying_services_leaves_the_chat_model_to_its_first_use(sandbox: Sandbox) -> None:
    """The research sub-agent's copy of the services (copy, repr, ==) builds no chat model: litellm is
    imported only when the copy's model is first used, and an injected model is kept as given."""
    code = (
        "import sys; from pathlib import Path; from ml_intern.services import build_services; "
        "s = build_services(model='vllm/m', workdir=Path('.'), tool_names=['read'], stream=True, "
        "environ={}, config={}); c = s.copy(tools=[], prompt='p'); repr(c); c == s; "
        "print('litellm' in sys.modules); print(type(c.chat_model).__name__, c.context_window); "
        "print(s.copy(chat_model='given').copy(prompt='q').chat_model)"
    )
    env = {
        "PYTHONPATH": child_python_path(),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HOME": str(sandbox.home),
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["False", "ChatLiteLLM", "None", "given"], done.stderr
