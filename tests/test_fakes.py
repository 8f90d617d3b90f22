"""The fakes of the outside world: scripted LLM server (via real ChatLiteLLM), scripted model, net guard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from tests.fakes import llm_server as script
from tests.fakes.chat_model import ScriptedChatModel, ScriptExhausted
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import NETGUARD_DIR, Sandbox, is_dropped_variable
from tests.netguard import sitecustomize as netguard

ROUTES = {  # litellm model ids that reach an OpenAI-compatible base URL without a real credential
    "openai": {"model": "openai/scripted", "api_key": "sk-test", "model_kwargs": {"max_retries": 0}},
    "hosted_vllm": {"model": "hosted_vllm/scripted"},
}


def chat_model(server: ScriptedLLMServer, route: str = "openai"):
    """A real ChatLiteLLM pointed at the scripted server."""
    from langchain_litellm import ChatLiteLLM

    return ChatLiteLLM(api_base=server.url, max_retries=0, **ROUTES[route])


async def collect_stream(model, prompt: str) -> tuple[list, object]:
    """Stream a reply; return the chunks and their sum."""
    chunks = [chunk async for chunk in model.astream(prompt)]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return chunks, total


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_text_reply_reaches_chat_litellm(llm_server: ScriptedLLMServer, route: str) -> None:
    llm_server.push(script.text("Hello from the script"))
    reply = await chat_model(llm_server, route).ainvoke("hi")
    assert reply.content == "Hello from the script"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata["output_tokens"] == len("Hello from the script") // 4
    assert llm_server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert llm_server.requests[0]["model"] == "scripted"


async def test_usage_override_reaches_usage_metadata(llm_server: ScriptedLLMServer) -> None:
    usage = {"prompt_tokens": 1200, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 1000}}
    llm_server.push(script.text("cached", usage=usage))
    reply = await chat_model(llm_server).ainvoke("hi")
    assert reply.usage_metadata["input_tokens"] == 1200
    assert reply.usage_metadata["output_tokens"] == 7
    assert reply.usage_metadata["input_token_details"]["cache_read"] == 1000


async def test_streaming_yields_pieces_and_usage(llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.text("a streamed answer of some length"))
    chunks, total = await collect_stream(chat_model(llm_server), "hi")
    assert len([chunk for chunk in chunks if chunk.content]) >= 3
    assert total.content == "a streamed answer of some length"
    assert total.usage_metadata["output_tokens"] == len("a streamed answer of some length") // 4
    assert llm_server.requests[0]["stream"] is True
    assert llm_server.requests[0]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("streaming", [False, True])
async def test_tool_calls_parse_into_ai_message(llm_server: ScriptedLLMServer, streaming: bool) -> None:
    llm_server.push(
        script.tool_calls([("bash", {"command": "ls -la"}), ("read", {"path": "a.py"})], "Looking.")
    )
    model = chat_model(llm_server)
    reply = (await collect_stream(model, "go"))[1] if streaming else await model.ainvoke("go")
    assert reply.content == "Looking."
    assert [(call["name"], call["args"], call["id"]) for call in reply.tool_calls] == [
        ("bash", {"command": "ls -la"}, "call_1_0"),
        ("read", {"path": "a.py"}, "call_1_1"),
    ]


async def test_tool_call_keeps_given_id_and_length_finish_reason(llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.tool_call("write", {"path": "x"}, id="call_abc", finish_reason="length"))
    reply = await chat_model(llm_server).ainvoke("go")
    assert reply.tool_calls[0]["id"] == "call_abc"
    assert reply.response_metadata["finish_reason"] == "length"


async def test_malformed_tool_arguments_become_invalid_tool_calls(llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.raw_tool_call("bash", "not json at all"))
    reply = await chat_model(llm_server).ainvoke("go")
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["args"] == "not json at all"


@pytest.mark.parametrize(("status", "error_name"), [(429, "RateLimitError"), (401, "AuthenticationError")])
async def test_http_errors_surface_as_litellm_exceptions(
    llm_server: ScriptedLLMServer, status: int, error_name: str
) -> None:
    llm_server.push(script.error(status, "scripted failure", headers={"Retry-After": "1"}))
    with pytest.raises(Exception) as caught:
        await chat_model(llm_server).ainvoke("hi")
    assert type(caught.value).__name__ == error_name
    assert caught.value.status_code == status
    assert "scripted failure" in str(caught.value)
    assert len(llm_server.requests) == 1


@pytest.mark.llm_script_exhaustion
async def test_exhausted_script_answers_500(llm_server: ScriptedLLMServer) -> None:
    with pytest.raises(Exception) as caught:
        await chat_model(llm_server).ainvoke("hi")
    assert caught.value.status_code == 500
    assert "scripted server: script exhausted" in str(caught.value)
    assert llm_server.exhausted == 1
    assert llm_server.unmet_expectation() is None


async def test_broken_stream_fails_after_partial_text(llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.broken_stream("partial answer"))
    received = []
    with pytest.raises(Exception, match="Connection|payload|incomplete"):
        async for chunk in chat_model(llm_server).astream("hi"):
            received.append(chunk.content)
    assert "".join(received) == "partial answer"


async def test_delay_postpones_the_answer(llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.delay(0.4, script.text("late")))
    started = time.monotonic()
    reply = await chat_model(llm_server).ainvoke("hi")
    assert reply.content == "late"
    assert time.monotonic() - started >= 0.4
    assert llm_server.request_times[0] >= started


def test_models_endpoint_lists_a_model(llm_server: ScriptedLLMServer) -> None:
    with urllib.request.urlopen(f"{llm_server.url}/models", timeout=5) as response:
        assert json.load(response)["data"][0]["id"] == "scripted"
    assert llm_server.requests == []


def test_unmet_script_expectations_are_reported() -> None:
    with ScriptedLLMServer(script.text("never asked")) as server:
        assert server.unmet_expectation() == "llm_server: 1 scripted response(s) never requested"
        server.allow_leftovers = True
        assert server.unmet_expectation() is None
        server.take({})
        server.take({})
        assert server.unmet_expectation() == "llm_server: 1 request(s) found the script exhausted"


@pytest.mark.e2e
def test_standalone_server_serves_a_script_file(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    script_file = tmp_path / "script.json"
    script_file.write_text(json.dumps([script.text("from a file")]))
    command = [sys.executable, "-m", "tests.fakes.llm_server", "--script", str(script_file)]
    with subprocess.Popen(command, env=subprocess_env, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().strip()
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
            request = urllib.request.Request(f"{url}/chat/completions", data=body)
            with urllib.request.urlopen(request, timeout=5) as response:
                answer = json.load(response)
        finally:
            process.terminate()
    assert answer["choices"][0]["message"]["content"] == "from a file"


@tool
def bash(command: str) -> str:
    """Run a shell command."""
    return command


async def test_scripted_model_plays_script_in_order_and_records_calls() -> None:
    model = ScriptedChatModel([script.tool_call("bash", {"command": "ls"}, id="c1"), "Done."])
    bound = model.bind_tools([bash])
    first = await bound.ainvoke([HumanMessage("list files")])
    second = await bound.ainvoke("and then?")
    assert first.tool_calls == [{"name": "bash", "args": {"command": "ls"}, "id": "c1", "type": "tool_call"}]
    assert second.content == "Done."
    assert [call[-1].content for call in model.calls] == ["list files", "and then?"]
    assert model.tool_schemas[0]["function"]["name"] == "bash"
    assert model.call_kwargs[0]["tools"] == model.tool_schemas
    assert second.usage_metadata["input_tokens"] == max(1, len("and then?") // 4)


async def test_scripted_model_streams_chunks_with_tool_calls_and_usage() -> None:
    usage = {"prompt_tokens": 50, "completion_tokens": 5}
    model = ScriptedChatModel([script.tool_calls([("bash", {"command": "pwd"})], "Checking.", usage=usage)])
    chunks, total = await collect_stream(model, "where am I?")
    assert len(chunks) >= 4
    assert total.content == "Checking."
    assert total.tool_calls[0]["name"] == "bash" and total.tool_calls[0]["args"] == {"command": "pwd"}
    assert total.usage_metadata == {"input_tokens": 50, "output_tokens": 5, "total_tokens": 55}


def test_scripted_model_raises_when_script_runs_out() -> None:
    model = ScriptedChatModel([AIMessage("only answer")])
    assert model.invoke("one").content == "only answer"
    with pytest.raises(ScriptExhausted, match="script exhausted on call 2"):
        model.invoke("two")
    assert len(model.calls) == 2


def test_scripted_model_raises_scripted_exceptions() -> None:
    model = ScriptedChatModel([TimeoutError("provider timed out"), "recovered"])
    with pytest.raises(TimeoutError, match="provider timed out"):
        model.invoke("hi")
    assert model.invoke("again").content == "recovered"


def test_sandbox_isolates_home_workdir_and_credentials(sandbox: Sandbox) -> None:
    assert Path.home() == sandbox.home
    assert Path.cwd() == sandbox.workdir
    assert os.environ["ML_INTERN_HOME"] == str(sandbox.ml_intern_home)
    assert os.environ["HF_ENDPOINT"] == "http://127.0.0.1:9"
    assert "ML_INTERN_CONFIG" not in os.environ
    assert [name for name in os.environ if name.endswith(("_API_KEY", "_TOKEN"))] == []


@pytest.mark.parametrize(
    ("name", "dropped"),
    [("OPENAI_API_KEY", True), ("HF_TOKEN", True), ("AWS_PROFILE", True), ("OLLAMA_BASE_URL", True)]
    + [("LOCAL_LLM_API_KEY", True), ("ML_INTERN_CONFIG", True), ("PATH", False), ("LANG", False)],
)
def test_real_world_variables_are_dropped(name: str, dropped: bool) -> None:
    assert is_dropped_variable(name) is dropped


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True)]
    + [("::ffff:127.0.0.1", True), (None, True), ("93.184.216.34", False), ("10.0.0.1", False)]
    + [("example.com", False), ("huggingface.co", False), ("localhost.evil.com", False)],
)
def test_loopback_hosts_are_recognised(host: str | None, allowed: bool) -> None:
    assert netguard.is_loopback_host(host) is allowed


@pytest.fixture
def tripwired_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the real socket calls fail loudly, so a guard that lets a call through never sends a packet."""

    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError("network guard let a real socket call through")

    for name in netguard.REAL_SOCKET_CALLS:
        monkeypatch.setitem(netguard.REAL_SOCKET_CALLS, name, tripwire)


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: socket.create_connection(("93.184.216.34", 80), timeout=1),
        lambda: socket.socket().connect(("93.184.216.34", 80)),
        lambda: socket.socket().connect_ex(("93.184.216.34", 80)),
        lambda: socket.socket(type=socket.SOCK_DGRAM).sendto(b"x", ("93.184.216.34", 80)),
        lambda: socket.getaddrinfo("93.184.216.34", 80),
        lambda: urllib.request.urlopen("http://93.184.216.34:80/", timeout=1),
    ],
    ids=["create_connection", "connect", "connect_ex", "sendto", "getaddrinfo", "urlopen"],
)
def test_guard_blocks_remote_hosts_in_process(
    tripwired_network: None, network_guard: list[str], attempt
) -> None:
    with pytest.raises(Exception, match="network guard: test tried to reach 93.184.216.34"):
        attempt()
    assert network_guard and set(network_guard) <= {"93.184.216.34:80"}
    network_guard.clear()  # the attempt was on purpose; the autouse teardown check must not fail


def test_guard_lets_loopback_through(network_guard: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("localhost", port), timeout=5), socket.socket() as direct:
            direct.connect(("127.0.0.1", port))
    assert network_guard == []


CHILD_PROGRAM = """
import socket, sys
import sitecustomize
assert socket.socket.connect is sitecustomize.guarded_connect
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as conn:
    conn.sendall(b"GET /v1/models HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    print(conn.recv(64).decode().splitlines()[0])
def tripwire(*args, **kwargs):
    raise SystemExit("network guard let a real socket call through")
for name in sitecustomize.REAL_SOCKET_CALLS:
    sitecustomize.REAL_SOCKET_CALLS[name] = tripwire
try:
    socket.create_connection(("93.184.216.34", 80), timeout=1)
except Exception as exc:
    print(type(exc).__name__, exc)
print(sitecustomize.__file__)
"""


@pytest.mark.e2e
def test_guard_blocks_remote_hosts_in_subprocess(
    llm_server: ScriptedLLMServer, subprocess_env: dict[str, str]
) -> None:
    port = llm_server.url.split(":")[-1].split("/")[0]
    command = [sys.executable, "-c", CHILD_PROGRAM, port]
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=30)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert lines[0] == "HTTP/1.1 200 OK"
    assert lines[1] == "NetworkGuardError network guard: test tried to reach 93.184.216.34:80"
    assert lines[2] == str(NETGUARD_DIR / "sitecustomize.py")
    assert "network guard: test tried to reach 93.184.216.34:80" in result.stderr
