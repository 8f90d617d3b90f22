"""The sandbox manager against the fake Spaces Hub: made once on first use and shared, progress events, a
failed or cancelled build deletes its Space, sandbox_create replaces the default or is locked out, teardown
with retries, and what reaches the Space (secrets) or the events (never the sandbox token)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.sandbox import manager as manager_module
from ml_intern.tools.sandbox import spaces
from ml_intern.tools.sandbox.manager import SandboxManager
from tests.fakes.spaces_hub import SpacesHub
from tests.harness_graph import make_tool, tool_in_graph

WANDB = "wandb-secret-value-0123456789"
CONFIG = {
    "sandbox": {"start_timeout": "60s"},
    "bash": {"env_passthrough": ["WANDB_API_KEY"]},
    "http": {"retry_delay": 0.01},  # the one retry policy (HubSession) retries deletes: without real waits
}


@pytest.fixture
def hub(request: pytest.FixtureRequest) -> Iterator[SpacesHub]:
    options = getattr(request, "param", {})
    with SpacesHub(**options) as server:
        yield server


def manager_for(hub: SpacesHub, tmp_path: Path, **config: Any) -> tuple[SandboxManager, list[dict[str, Any]]]:
    """A manager on the fake Hub, and the events it sends to the session's sink."""
    env = ToolEnv(
        workdir=tmp_path,
        home=tmp_path / "home",
        config={**CONFIG, **config},
        hf_endpoint=hub.url,
        hf_token=hub.token,
        environ={"WANDB_API_KEY": WANDB, "OPENAI_API_KEY": "sk-not-passed-0123456789", "HF_TOKEN": hub.token},
    )
    manager, events = SandboxManager(env), []
    manager.thread_id, manager.progress.on_event = "thread-1", events.append
    return manager, events


def texts(events: list[dict[str, Any]]) -> list[str]:
    return [event["text"] for event in events if event["type"] == "tool_log"]


def sandbox_token(hub: SpacesHub, index: int = 0) -> str:
    [token] = [s["value"] for s in hub.created[index]["secrets"] if s["key"] == "SANDBOX_API_TOKEN"]
    return token


def space_id(hub: SpacesHub, index: int = 0) -> str:
    return f"{hub.created[index].get('organization') or 'test-user'}/{hub.created[index]['name']}"


async def until(condition: Any, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@pytest.mark.e2e
async def test_the_first_client_makes_one_space_that_concurrent_calls_share(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    clients = await asyncio.gather(*(manager.client() for _ in range(3)))
    assert clients[0] is clients[1] is clients[2] and await clients[0].health()
    assert len(hub.created) == 1 and hub.created[0]["hardware"] == "cpu-basic"
    assert hub.created[0]["visibility"] == "private" and hub.created[0]["sdk"] == "docker"
    name = space_id(hub).split("/")[1]
    assert name.startswith("ml-intern-sandbox-")
    assert any(text.startswith(f"building {name} on cpu-basic (") for text in texts(events))
    assert texts(events)[-1] == f"{space_id(hub)} is running on cpu-basic"
    status = manager.status()
    assert status | {"running_since": None, "cost_so_far": None} == {
        "runtime": "sandbox",
        "space_id": space_id(hub),
        "hardware": "cpu-basic",
        "stage": "running",
        "price_per_hour": 0.0,
        "running_since": None,
        "cost_so_far": None,
    }
    assert status["cost_so_far"] == 0.0 and status["running_since"] <= time.time()
    assert await manager.client() is clients[0] and len(hub.created) == 1
    await manager.aclose()
    assert hub.deleted == [space_id(hub)] and events[-1]["notice"]
    assert events[-1]["text"].startswith(f"deleted {space_id(hub)} (ran 0 min, about $0.00)")
    await manager.aclose()  # idempotent
    assert hub.deleted == [space_id(hub)] and manager.status()["stage"] == "none"
    with pytest.raises(ToolError, match="the run is ending"):
        await manager.client()
    assert sandbox_token(hub) not in json.dumps(events)


@pytest.mark.e2e
async def test_a_preloaded_sandbox_streams_its_progress_into_the_tool_call_that_waits(hub, tmp_path):
    manager, session_events = manager_for(hub, tmp_path)
    manager.preload()
    manager.preload()  # once

    async def uses_sandbox() -> str:
        """Wait for the sandbox."""
        return (await manager.client()).url

    graph_events: list[dict[str, Any]] = []
    url = await tool_in_graph(make_tool(uses_sandbox), {}, graph_events)
    assert url == hub.url_of(space_id(hub)) and len(hub.created) == 1
    assert texts(graph_events)[-1] == f"{space_id(hub)} is running on cpu-basic"
    assert f"{space_id(hub)} is running on cpu-basic" not in texts(session_events)  # not twice
    await manager.aclose()
    assert hub.deleted == [space_id(hub)]


@pytest.mark.parametrize("hub", [{"fail_stage": "BUILD_ERROR"}], indirect=True)
async def test_a_failed_build_is_one_line_for_the_model_and_the_space_is_deleted(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    with pytest.raises(ToolError) as failed:
        await manager.client()
    message = str(failed.value)
    assert message.startswith("the sandbox could not start: ") and "BUILD_ERROR" in message
    assert "\n" not in message and "Traceback" not in message
    assert hub.deleted == [space_id(hub)] and manager.status()["stage"].startswith("failed: ")
    assert any(e.get("notice") and e["text"].startswith(f"deleted {space_id(hub)}") for e in events)
    with pytest.raises(ToolError):  # the next call tries a new one
        await manager.client()
    assert len(hub.created) == 2 and hub.deleted == [space_id(hub, 0), space_id(hub, 1)]


@pytest.mark.parametrize("hub", [{"start_servers": False}], indirect=True)
async def test_a_sandbox_not_running_by_the_start_timeout_is_deleted(hub, tmp_path):
    manager, _ = manager_for(hub, tmp_path, sandbox={"start_timeout": "1s"})
    with pytest.raises(ToolError, match=r"could not start: .* was not running after 1 s \(stage BUILDING\)"):
        await manager.client()
    assert hub.deleted == [space_id(hub)]


@pytest.mark.parametrize("hub", [{"start_servers": False}], indirect=True)
async def test_cancelling_a_paid_sandbox_create_during_the_build_deletes_the_space(hub, tmp_path):
    manager, _ = manager_for(hub, tmp_path)
    call = asyncio.create_task(manager.create("t4-small", trackio_project="demo", other="x"))
    await until(lambda: hub.runtime_polls)
    waiter = asyncio.create_task(manager.client())  # waits for the t4 one, then makes the default
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert hub.deleted == [space_id(hub)] and hub.created[0]["hardware"] == "t4-small"
    secrets = {s["key"] for s in hub.created[0]["secrets"]}
    assert "TRACKIO_PROJECT" in secrets and "OTHER" not in secrets
    await until(lambda: len(hub.created) == 2)
    assert hub.created[1]["hardware"] == "cpu-basic" and manager.status()["stage"] == "starting"
    await manager.aclose()
    assert hub.deleted == [space_id(hub, 0), space_id(hub, 1)] and manager.status()["stage"] == "none"
    with pytest.raises(ToolError, match="the run is ending"):
        await waiter


@pytest.mark.parametrize("hub", [{"start_servers": False}], indirect=True)
async def test_a_cancelled_call_leaves_the_shared_making_which_closing_cancels_and_deletes(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    first, second = asyncio.create_task(manager.client()), asyncio.create_task(manager.client())
    await until(lambda: hub.runtime_polls)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    polls = hub.runtime_polls[space_id(hub)]
    await until(lambda: hub.runtime_polls[space_id(hub)] > polls)  # still being made, for `second`
    assert not second.done() and hub.deleted == [] and manager.status()["stage"] == "starting"
    started = time.monotonic()
    await manager.aclose()
    assert time.monotonic() - started < 15 and hub.deleted == [space_id(hub)]
    with pytest.raises(ToolError, match="the run is ending"):
        await second
    assert any(e.get("notice") and e["text"].startswith(f"deleted {space_id(hub)}") for e in events)


@pytest.mark.e2e
async def test_sandbox_create_replaces_the_default_then_keeps_or_locks_out_its_hardware(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    await manager.client()
    default = space_id(hub)
    text = await manager.create("t4-small")
    paid = space_id(hub, 1)
    assert hub.deleted == [default] and hub.created[1]["hardware"] == "t4-small"
    assert text.startswith(f"Replaced {default} on cpu-basic: its files are lost.\n")
    assert f"Sandbox {paid} is running on t4-small ($0.40/h)" in text and "/app" in text
    assert "billed while it runs; after 30m idle it sleeps: billing stops and its files are lost" in text
    assert "It is deleted 2 h after it was made (sandbox.max_hours)" in text
    assert hub.created[1]["sleepTimeSeconds"] == 1800
    assert manager.status()["space_id"] == paid and manager.status()["price_per_hour"] == 0.40
    assert await manager.create("t4-small") == f"Sandbox already active on t4-small: {paid}"
    locked = await manager.create("a10g-small")
    assert locked.startswith(f"Hardware cannot be changed while {paid} runs on t4-small (its files would")
    assert "ml-intern sandboxes --delete" in locked
    assert len(hub.created) == 2 and (await manager.client()).url == hub.url_of(paid)
    await manager.aclose()
    assert hub.deleted == [default, paid]
    assert sandbox_token(hub, 0) not in json.dumps(events) and sandbox_token(hub, 1) not in json.dumps(events)


@pytest.mark.e2e
@pytest.mark.parametrize("hub", [{"delete_failures": 2}], indirect=True)
async def test_closing_deletes_through_failed_attempts(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    await manager.client()
    await manager.aclose()
    deletes = [r for r in hub.requests if r.method == "DELETE" and r.path == "/api/repos/delete"]
    assert hub.deleted == [space_id(hub)] and len(deletes) == 3
    assert events[-1]["text"].startswith(f"deleted {space_id(hub)} (ran 0 min")


@pytest.mark.e2e
@pytest.mark.parametrize("hub", [{"delete_failures": 1000}], indirect=True)
async def test_closing_when_the_space_cannot_be_deleted_says_how_to_remove_it_and_returns(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    await manager.client()
    started = time.monotonic()
    await manager.aclose()
    assert time.monotonic() - started < 15 and hub.deleted == []
    assert events[-1] == {
        "type": "tool_log",
        "tool": "sandbox",
        "text": f"could not delete {space_id(hub)}: run ml-intern sandboxes --delete",
        "notice": True,
    }


@pytest.mark.parametrize("hub", [{"fail_stage": "BUILD_ERROR"}], indirect=True)
@pytest.mark.parametrize(
    ("passthrough", "passed"),
    [
        (["WANDB_API_KEY"], {"WANDB_API_KEY"}),
        (["WANDB_API_KEY", "HF_TOKEN", "UNSET"], {"WANDB_API_KEY", "HF_TOKEN"}),
    ],
)
async def test_the_space_gets_only_the_secrets_bash_may_see(hub, tmp_path, passthrough, passed):
    manager, events = manager_for(hub, tmp_path, bash={"env_passthrough": passthrough})
    with pytest.raises(ToolError):
        await manager.client()
    secrets = {s["key"]: s["value"] for s in hub.created[0]["secrets"]}
    assert set(secrets) == {"SANDBOX_API_TOKEN", *passed} and secrets["WANDB_API_KEY"] == WANDB
    assert secrets.get("HF_TOKEN", hub.token) == hub.token and len(secrets["SANDBOX_API_TOKEN"]) >= 32
    [variable] = hub.created[0]["variables"]
    assert variable["key"] == "ML_INTERN_RUN" and json.loads(variable["value"])["thread"] == "thread-1"
    assert all(value not in json.dumps(events) for value in secrets.values())


def notices(events: list[dict[str, Any]]) -> list[str]:
    return [event["text"] for event in events if event.get("notice")]


@pytest.mark.parametrize("hub", [{"create_delay": 1.0, "start_servers": False}], indirect=True)
def test_a_run_that_ends_while_the_space_is_created_deletes_it(hub, tmp_path):
    async def run() -> list[dict[str, Any]]:
        manager, events = manager_for(hub, tmp_path)
        manager.preload()
        await until(lambda: hub.created)  # the Hub made it; its answer is on the way
        await manager.aclose()
        return events

    events = asyncio.run(run())
    assert hub.deleted == [space_id(hub)]
    assert any(text.startswith(f"deleted {space_id(hub)} (ran 0 min") for text in notices(events))


@pytest.mark.parametrize("hub", [{"create_delay": 1.0, "start_servers": False}], indirect=True)
def test_a_run_that_ends_without_closing_while_the_space_is_created_still_deletes_it(hub, tmp_path):
    async def run() -> None:
        manager, _ = manager_for(hub, tmp_path)
        manager.preload()
        await until(lambda: hub.created)  # asyncio.run then cancels the making: no aclose

    asyncio.run(run())
    assert hub.deleted == [space_id(hub)]


@pytest.mark.parametrize("hub", [{"create_delay": 3.0, "start_servers": False}], indirect=True)
def test_closing_gives_up_on_a_slow_creation_at_its_limit_and_the_thread_still_deletes_it(
    hub, tmp_path, monkeypatch
):
    monkeypatch.setattr(manager_module, "CLOSE_LIMIT", 0.5)

    async def run() -> tuple[float, list[dict[str, Any]]]:
        manager, events = manager_for(hub, tmp_path)
        manager.preload()
        await until(lambda: hub.created)
        started = time.monotonic()
        await manager.aclose()
        return time.monotonic() - started, events

    took, events = asyncio.run(run())  # returns once the worker thread is done: it deleted the Space
    assert took < 2 and notices(events) == [
        f"could not delete {space_id(hub)}: run ml-intern sandboxes --delete"
    ]
    assert hub.deleted == [space_id(hub)]


@pytest.mark.parametrize("hub", [{"delete_delay": 60.0, "start_servers": False}], indirect=True)
def test_exit_does_not_wait_for_a_hub_that_never_answers(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(manager_module, "CLOSE_LIMIT", 1.0)
    monkeypatch.setattr(spaces, "REQUEST_TIMEOUT", 1.0)  # 30 s in real runs

    async def run() -> list[dict[str, Any]]:
        manager, events = manager_for(hub, tmp_path)
        manager.preload()
        await until(lambda: hub.runtime_polls)
        await manager.aclose()
        return events

    started = time.monotonic()
    events = asyncio.run(run())  # also waits for the worker threads (the default executor)
    assert time.monotonic() - started < 10 and hub.deleted == []
    assert notices(events) == [f"could not delete {space_id(hub)}: run ml-intern sandboxes --delete"]


@pytest.mark.parametrize("hub", [{"create_status": 403}], indirect=True)
async def test_a_token_refusal_is_told_once_and_remembered_without_asking_the_hub_again(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    line = "your HF token cannot create Spaces (HTTP 403): use a token with write access (hf auth login)"
    with pytest.raises(ToolError) as first:
        await manager.client()
    assert str(first.value) == line and notices(events) == [line]
    asked = len(hub.requests)
    for call in (manager.client(), manager.create("t4-small"), manager.client()):
        with pytest.raises(ToolError) as again:
            await call
        assert str(again.value) == line
    assert len(hub.requests) == asked and len(hub.created) == 1 and notices(events) == [line]
    await manager.aclose()


@pytest.mark.parametrize("hub", [{"create_status": 402, "fail_stage": "BUILD_ERROR"}], indirect=True)
async def test_a_billing_refusal_is_remembered_for_its_hardware_only(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path)
    line = f"Spaces need billing (HTTP 402): add a payment method at {hub.url}/settings/billing"
    for _ in range(2):
        with pytest.raises(ToolError) as refused:
            await manager.create("t4-small")
        assert str(refused.value) == line
    assert len(hub.created) == 1 and notices(events) == [line]
    hub.create_status = None
    with pytest.raises(ToolError, match="BUILD_ERROR"):  # the free hardware is still tried
        await manager.client()
    assert [body["hardware"] for body in hub.created] == ["t4-small", "cpu-basic"]
    await manager.aclose()


@pytest.mark.parametrize("stage", ["SLEEPING", "PAUSED", "STOPPED"])
async def test_a_space_that_sleeps_pauses_or_stops_while_made_fails_fast(stage, tmp_path):
    with SpacesHub(fail_stage=stage) as hub:
        manager, _ = manager_for(hub, tmp_path)  # start_timeout 60 s
        started = time.monotonic()
        with pytest.raises(ToolError, match=f"could not start: .* stopped with {stage}"):
            await manager.client()
        assert time.monotonic() - started < 10 and hub.deleted == [space_id(hub)]


@pytest.mark.e2e
async def test_paid_hardware_is_deleted_at_max_hours_and_the_default_comes_back(hub, tmp_path):
    manager, events = manager_for(hub, tmp_path, sandbox={"start_timeout": "60s", "max_hours": 0.002})
    text = await manager.create("t4-small")
    paid = space_id(hub)
    assert "It is deleted 0.002 h after it was made (sandbox.max_hours)" in text
    said = f"deleted {paid}: it reached sandbox.max_hours (0.002 h) (ran "  # how long: the machine's load
    # The Hub records the DELETE before the deleting thread returns and the notice is sent: wait for both.
    await until(lambda: any(text.startswith(said) and "about $" in text for text in notices(events)))
    assert hub.deleted == [paid]
    assert manager.status()["stage"] == "none"
    assert (await manager.client()).url == hub.url_of(space_id(hub, 1))
    assert hub.created[1]["hardware"] == "cpu-basic"
    await asyncio.sleep(0.1)  # the free one has no limit
    assert hub.deleted == [paid] and manager.status()["stage"] == "running"
    await manager.aclose()
    assert hub.deleted == [paid, space_id(hub, 1)]
