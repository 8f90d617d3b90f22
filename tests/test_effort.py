"""Reasoning effort: sent per call as each provider takes it, healed down the cascade when a model refuses a
level (once per level, with a notice), settled by the `/model` check; local servers never get it."""

from __future__ import annotations

from typing import Any

import pytest

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.model.effort import effort_in_use, effort_kwargs, effort_rejection, parse_effort
from ml_intern.model.ids import ModelSpec
from ml_intern.services import build_services
from ml_intern.session.model_switch import check_model
from ml_intern.session.runner import new_turn
from ml_intern.session.session import open_session
from tests.fakes.anthropic_server import AnthropicServer
from tests.fakes.anthropic_server import text as anthropic_text
from tests.fakes.llm_server import ScriptedLLMServer, error, text
from tests.fakes.router_server import RouterServer
from tests.harness import Sandbox
from tests.harness_cli import QUICK_RETRIES

ROUTER_MODEL = "moonshotai/Kimi-K2.6:novita"
REFUSED = "reasoning_effort: invalid value, must be one of ['low', 'medium']"


@pytest.mark.parametrize(
    ("word", "level"),
    [("off", None), ("none", None), (" HIGH ", "high"), ("minimal", "minimal"), ("max", "max")],
)
def test_effort_words_parse(word: str, level: str | None) -> None:
    assert parse_effort(word) == level


def test_an_unknown_effort_word_names_the_levels() -> None:
    with pytest.raises(UserError, match="minimal|low|medium|high|xhigh|max|off"):
        parse_effort("turbo")


@pytest.mark.parametrize(
    ("kind", "level", "expected"),
    [
        ("router", "minimal", {"extra_body": {"reasoning_effort": "low"}}),
        ("router", "xhigh", {"extra_body": {"reasoning_effort": "high"}}),
        ("router", "medium", {"extra_body": {"reasoning_effort": "medium"}}),
        ("litellm", "max", {"reasoning_effort": "max"}),
        ("local", "high", {}),
        ("litellm", None, {}),
    ],
)
def test_effort_reaches_each_kind_of_model_as_it_takes_it(
    kind: str, level: str | None, expected: dict
) -> None:
    spec = ModelSpec("org/model", "openai/org/model", kind=kind)  # type: ignore[arg-type]
    assert effort_kwargs(spec, level) == expected


class BadRequestError(Exception):
    """Named as litellm's: a permanent provider refusal."""


class ServiceUnavailableError(Exception):
    """Named as litellm's: a transient fault."""


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (BadRequestError("Thinking is not supported for model x"), "thinking"),
        (BadRequestError("effort='xhigh' is not supported by this model"), "effort"),
        (BadRequestError("output_config.effort: must be one of low, medium, high"), "effort"),
        (BadRequestError("Unrecognized request argument: reasoning_effort"), "effort"),
        (BadRequestError("messages.0: field required"), None),
        (BadRequestError("Invalid `signature` in `thinking` block"), None),
        (ServiceUnavailableError("reasoning effort service unavailable, not supported right now"), None),
    ],
)
def test_effort_refusals_are_told_from_other_errors(error: Exception, kind: str | None) -> None:
    assert effort_rejection(error) == kind


def services_for_model(sandbox: Sandbox, model: str, environ: dict[str, str], stream: bool = False) -> Any:
    environ = {**environ, "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    config = AgentConfig(retries=QUICK_RETRIES).model_dump()
    return build_services(
        model=model,
        workdir=sandbox.workdir,
        tool_names=["read"],
        stream=stream,
        environ=environ,
        config=config,
    )


async def turn(sandbox: Sandbox, services: Any, effort: str | None, prompt: str = "hi") -> tuple[Any, list]:
    """One turn; (outcome or the exception it raised, events)."""
    ctx = RunContext(
        model=services.model.model_id, workdir=str(sandbox.workdir), approval="auto", stream=False,
        services=services, reasoning_effort=effort,
    )  # fmt: skip
    events: list[dict[str, Any]] = []
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        try:
            return await session.turn("effort-thread", new_turn(prompt), ctx, events.append), events
        except Exception as exc:  # the failure under test
            return exc, events


def notices(events: list[dict[str, Any]]) -> list[str]:
    return [e["text"] for e in events if e["type"] == "tool_log" and "reasoning effort" in e["text"]]


def router_efforts(router: RouterServer) -> list[str | None]:
    return [(r.json().get("reasoning_effort")) for r in router.chats()]


@pytest.fixture
def router() -> Any:
    with RouterServer() as server:
        yield server


def router_env(router: RouterServer) -> dict[str, str]:
    return {"HF_TOKEN": "hf_efforttest", "HF_ROUTER_URL": router.base_url}


async def test_a_router_call_carries_the_effort_and_the_session_header(
    router: RouterServer, sandbox: Sandbox
) -> None:
    services = services_for_model(sandbox, ROUTER_MODEL, router_env(router))
    outcome, _ = await turn(sandbox, services, "xhigh")
    assert outcome.final_response == "OK"
    (request,) = router.chats()
    assert request.json()["reasoning_effort"] == "high" and request.json()["model"] == ROUTER_MODEL
    assert request.headers["x-hf-session-id"] == "effort-thread"


async def test_a_refused_level_steps_down_once_and_is_remembered(
    router: RouterServer, sandbox: Sandbox
) -> None:
    router.replies.extend([error(400, REFUSED), text("first"), text("second")])
    services = services_for_model(sandbox, ROUTER_MODEL, router_env(router))
    outcome, events = await turn(sandbox, services, "high")
    assert outcome.final_response == "first"
    assert notices(events) == [f"reasoning effort high not supported by {ROUTER_MODEL}: using medium"]
    assert services.effort_cache == {"high": "medium"}
    outcome, events = await turn(sandbox, services, "high", "again")
    assert outcome.final_response == "second" and notices(events) == []
    assert router_efforts(router) == ["high", "medium", "medium"]


async def test_thinking_not_supported_turns_effort_off(router: RouterServer, sandbox: Sandbox) -> None:
    router.replies.extend([error(400, "Thinking is not supported for this model"), text("plain")])
    services = services_for_model(sandbox, ROUTER_MODEL, router_env(router))
    outcome, events = await turn(sandbox, services, "medium")
    assert outcome.final_response == "plain" and router_efforts(router) == ["medium", None]
    assert services.effort_cache == {"medium": None} and notices(events)[0].endswith("using off")


async def test_the_cascade_never_loops(router: RouterServer, sandbox: Sandbox) -> None:
    router.replies.extend([error(400, REFUSED)] * 5)
    services = services_for_model(sandbox, ROUTER_MODEL, router_env(router))
    outcome, events = await turn(sandbox, services, "max")
    assert isinstance(outcome, Exception)
    assert router_efforts(router) == ["high", "medium", "low", None]  # max and xhigh are sent as high
    assert len(notices(events)) == 3


async def test_other_errors_are_not_healed(router: RouterServer, sandbox: Sandbox) -> None:
    router.replies.append(error(400, "messages: field required"))
    services = services_for_model(sandbox, ROUTER_MODEL, router_env(router))
    outcome, events = await turn(sandbox, services, "high")
    assert isinstance(outcome, Exception) and len(router.chats()) == 1 and notices(events) == []


async def test_local_servers_never_get_an_effort(llm_server: ScriptedLLMServer, sandbox: Sandbox) -> None:
    llm_server.push(text("local"))
    services = services_for_model(sandbox, "vllm/qwen", {"VLLM_BASE_URL": llm_server.url})
    outcome, _ = await turn(sandbox, services, "max")
    assert outcome.final_response == "local"
    assert "reasoning_effort" not in llm_server.requests[0] and "extra_body" not in llm_server.requests[0]


@pytest.fixture
def anthropic(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Anthropic stand-in, answering "thought", reached by litellm's anthropic/ provider."""
    with AnthropicServer(anthropic_text("thought")) as server:
        monkeypatch.setenv("ANTHROPIC_API_BASE", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        yield server


async def test_litellm_maps_the_effort_for_anthropic_and_a_refused_level_heals(
    anthropic: AnthropicServer, sandbox: Sandbox
) -> None:
    model = "anthropic/claude-opus-4-6"  # litellm refuses xhigh for it before sending anything
    services = services_for_model(sandbox, model, {"ANTHROPIC_API_KEY": "sk-ant-test"})
    outcome, events = await turn(sandbox, services, "xhigh")
    assert outcome.final_response == "thought"
    (request,) = anthropic.requests
    assert request["body"]["output_config"] == {"effort": "high"} and request["body"]["thinking"]
    assert request["body"]["max_tokens"] == 128000  # the model's output limit, as without effort
    assert notices(events) == [f"reasoning effort xhigh not supported by {model}: using high"]


async def test_thinking_leaves_claude_its_whole_output_room(
    anthropic: AnthropicServer, sandbox: Sandbox
) -> None:
    services = services_for_model(sandbox, "anthropic/claude-sonnet-4-5", {"ANTHROPIC_API_KEY": "sk-ant"})
    await turn(sandbox, services, "high")
    body = anthropic.requests[0]["body"]
    assert body["thinking"]["type"] == "enabled" and body["max_tokens"] == 64000


async def test_the_model_check_settles_the_effort(router: RouterServer, sandbox: Sandbox) -> None:
    router.replies.extend([error(400, REFUSED), text("OK")])
    services = services_for_model(sandbox, ROUTER_MODEL, router_env(router))
    ctx = RunContext(model=ROUTER_MODEL, services=services, reasoning_effort="high")
    assert await check_model(ctx) == "medium"
    assert effort_in_use(services, "high") == "medium" and router_efforts(router) == ["high", "medium"]
    # with room to think, but bounded: a reasoning model must not think until the check's timeout
    assert [r.json().get("max_tokens") for r in router.chats()] == [2048, 2048]


async def test_the_model_check_of_claude_keeps_the_thinking_room_its_effort_needs(
    anthropic: AnthropicServer, sandbox: Sandbox
) -> None:
    model = "anthropic/claude-sonnet-4-5"
    services = services_for_model(sandbox, model, {"ANTHROPIC_API_KEY": "sk-ant-test"})
    assert await check_model(RunContext(model=model, services=services, reasoning_effort="high")) == "high"
    body = anthropic.requests[0]["body"]
    assert body["thinking"]["type"] == "enabled" and body["max_tokens"] == 64000


async def test_the_model_check_of_a_local_model_sends_no_effort(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(text("OK"))
    services = services_for_model(sandbox, "vllm/qwen", {"VLLM_BASE_URL": llm_server.url})
    ctx = RunContext(model="vllm/qwen", services=services, reasoning_effort="high")
    assert await check_model(ctx) is None
    assert llm_server.requests[0]["max_tokens"] == 16 and effort_in_use(services, "high") == "off"


async def test_a_refused_check_of_a_routed_provider_id_names_the_hf_token(
    router: RouterServer, sandbox: Sandbox
) -> None:
    router.replies.append(error(401, "Invalid credentials in Authorization header"))
    model = "anthropic/claude-sonnet-4-5"  # no ANTHROPIC_API_KEY: it goes through the router
    services = services_for_model(sandbox, model, router_env(router))
    with pytest.raises(UserError) as refused:
        await check_model(RunContext(model=model, services=services))
    assert "hf auth login" in str(refused.value) and "ANTHROPIC_API_KEY" not in str(refused.value)
