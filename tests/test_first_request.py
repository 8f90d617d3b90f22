"""The first request a run sends: system prompt plus every tool schema within the budget of issue 13, with
every teaching reachable through the `teachings` tool."""

from __future__ import annotations

import json
import subprocess

import pytest

from ml_intern.configs.prompt import teachings
from tests.fakes.llm_server import text, tool_calls

BUDGET = 16_000  # bytes of {"messages", "tools"} as JSON (the original sent 56 KB)
MESSAGES_BUDGET = 2_000  # of which the system prompt (with the teachings index) and the user's "x"


def first_request_bytes(body: dict) -> int:
    return len(json.dumps({"messages": body["messages"], "tools": body["tools"]}))


def run_cli(ml_intern_cli, env: dict, cwd, prompt: str, *options: str) -> None:
    cmd = [str(ml_intern_cli), "--model", "vllm/scripted", *options, prompt]
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
def test_first_request_fits_the_budget(llm_server, subprocess_env, tmp_path, ml_intern_cli):
    llm_server.push(text("hi"))
    run_cli(ml_intern_cli, {**subprocess_env, "VLLM_BASE_URL": llm_server.url}, tmp_path, "x")
    body = llm_server.requests[0]
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"teachings", "research", "plan_tool", "hf_jobs", "hub_repo_search", "bash"} <= names
    assert "notify" not in names  # messaging is off by default
    assert len(json.dumps(body["messages"])) <= MESSAGES_BUDGET, len(json.dumps(body["messages"]))
    assert first_request_bytes(body) <= BUDGET, first_request_bytes(body)


@pytest.mark.e2e
def test_every_teaching_in_the_prompt_reaches_the_model(llm_server, subprocess_env, tmp_path, ml_intern_cli):
    topics = sorted(teachings())
    llm_server.push(tool_calls([("teachings", {"topic": topic}) for topic in topics]), text("done"))
    run_cli(ml_intern_cli, {**subprocess_env, "VLLM_BASE_URL": llm_server.url}, tmp_path, "fine-tune a model")
    first, second = llm_server.requests
    system = first["messages"][0]["content"]
    assert all(f"{topic} (" in system for topic in topics)
    results = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert results == [teachings()[topic] for topic in topics]


@pytest.mark.e2e
def test_a_prompt_without_the_tools_does_not_name_them(llm_server, subprocess_env, tmp_path, ml_intern_cli):
    llm_server.push(text("hi"))
    env = {**subprocess_env, "VLLM_BASE_URL": llm_server.url}
    run_cli(ml_intern_cli, env, tmp_path, "x", "--tools", "bash,read")
    body = llm_server.requests[0]
    system = body["messages"][0]["content"]
    assert sorted(t["function"]["name"] for t in body["tools"]) == ["bash", "read"]
    assert "teachings" not in system and "plan_tool" not in system
    assert not any(f"{topic} (" in system for topic in teachings())
