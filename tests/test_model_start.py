"""Which model a run starts with when none is named, and the one line (before any thread) when none can be
used: provider keys, the HF token (router default), a local server that already answers."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.model.detect import detect_local_model, listener_uids
from ml_intern.model.ids import resolve_model
from ml_intern.model.router import ROUTER_DEFAULT_MODEL
from ml_intern.session.options import RunOptions
from ml_intern.session.start import checked_model, choose_model, preflight_model
from tests.fakes import llm_server as script
from tests.fakes.http_fake import FakeHTTPServer, json_reply
from tests.fakes.llm_server import ScriptedLLMServer
from tests.fakes.router_server import RouterServer
from tests.harness import CLOSED_LOOPBACK_URL, Sandbox, installed_cli

NOTHING_LOCAL = {
    f"{stem}_BASE_URL": CLOSED_LOOPBACK_URL for stem in ("OLLAMA", "VLLM", "LMSTUDIO", "LLAMACPP")
}


# ---- local servers ----------------------------------------------------------------------------------------


def test_a_local_server_that_answers_is_used_with_its_first_model(llm_server: ScriptedLLMServer) -> None:
    environ = {**NOTHING_LOCAL, "OLLAMA_BASE_URL": llm_server.url.removesuffix("/v1")}
    model_id, line = detect_local_model(environ) or ("", "")
    assert model_id == "ollama/scripted"
    assert "ollama/scripted" in line and "Ollama" in line and llm_server.url in line


def test_the_first_server_in_order_wins(llm_server: ScriptedLLMServer) -> None:
    environ = {**NOTHING_LOCAL, "VLLM_BASE_URL": llm_server.url, "LLAMACPP_BASE_URL": llm_server.url}
    assert (detect_local_model(environ) or ("",))[0] == "llamacpp/scripted"


def test_no_server_answering_finds_nothing() -> None:
    assert detect_local_model(NOTHING_LOCAL) is None


def test_a_slow_server_does_not_hold_up_the_start() -> None:
    class Slow(FakeHTTPServer):
        def __init__(self) -> None:
            super().__init__()
            self.route(
                "GET", r"/v1/models", lambda _: (time.sleep(1.5), json_reply(200, {"data": [{"id": "x"}]}))[1]
            )

    with Slow() as slow:
        started = time.monotonic()
        found = detect_local_model({**NOTHING_LOCAL, "VLLM_BASE_URL": slow.url})
        elapsed = time.monotonic() - started
    assert found is None and elapsed < 1.2  # under the server's 1.5 s: the probe did not wait for it


def test_a_server_that_is_not_a_model_server_is_ignored() -> None:
    with FakeHTTPServer() as other:  # answers 404 to everything, as a web app on port 8000 would
        assert detect_local_model({**NOTHING_LOCAL, "VLLM_BASE_URL": other.url}) is None


def test_local_llm_base_url_alone_is_where_detection_looks_and_calls_go(
    llm_server: ScriptedLLMServer,
) -> None:
    environ = {"LOCAL_LLM_BASE_URL": llm_server.url}  # no *_BASE_URL: localhost's usual ports are not probed
    model_id, line = detect_local_model(environ) or ("", "")
    assert model_id == "ollama/scripted" and "LOCAL_LLM_BASE_URL" in line and llm_server.url in line
    assert resolve_model(model_id, environ).api_base == llm_server.url


def test_a_model_id_with_control_characters_is_not_used() -> None:
    class Hostile(FakeHTTPServer):
        def __init__(self) -> None:
            super().__init__()
            listed = {"data": [{"id": "\x1b[2J\x1b[Hpwned"}, {"id": "has space"}, {"id": "ok-model"}]}
            self.route("GET", r"/v1/models", lambda _: json_reply(200, listed))

    with Hostile() as hostile:
        model_id, line = detect_local_model({**NOTHING_LOCAL, "VLLM_BASE_URL": hostile.url}) or ("", "")
    assert model_id == "vllm/ok-model" and "\x1b" not in line


def socket_table(port: int, uid: int) -> str:
    header = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    )
    row = f"   0: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000 {uid} 0 1 1\n"
    return header + row


def test_another_users_loopback_server_is_not_used(llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    port = int(llm_server.url.split(":")[2].split("/")[0])
    (tmp_path / "tcp").write_text(socket_table(port, 54321))  # as Linux shows another user's listener
    environ = {**NOTHING_LOCAL, "VLLM_BASE_URL": llm_server.url}
    assert detect_local_model(environ, proc_net=tmp_path) is None
    (tmp_path / "tcp").write_text(socket_table(port, os.getuid()))
    assert (detect_local_model(environ, proc_net=tmp_path) or ("",))[0] == "vllm/scripted"


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="Linux socket tables")
def test_our_own_listener_is_read_as_ours(llm_server: ScriptedLLMServer) -> None:
    port = int(llm_server.url.split(":")[2].split("/")[0])
    assert listener_uids(port) == {os.getuid()}
    assert (detect_local_model({**NOTHING_LOCAL, "VLLM_BASE_URL": llm_server.url}) or ("",))[
        0
    ] == "vllm/scripted"


def test_choose_model_falls_back_to_a_local_server_and_says_so(llm_server: ScriptedLLMServer) -> None:
    environ = {**NOTHING_LOCAL, "LMSTUDIO_BASE_URL": llm_server.url}
    model_id, notices = choose_model(RunOptions(), AgentConfig(), None, environ)
    assert model_id == "lm_studio/scripted"
    assert len(notices) == 1 and "LM Studio" in notices[0]


def test_a_credential_wins_over_a_local_server(llm_server: ScriptedLLMServer) -> None:
    environ = {**NOTHING_LOCAL, "OLLAMA_BASE_URL": llm_server.url, "HF_TOKEN": "hf_x"}
    assert choose_model(RunOptions(), AgentConfig(), None, environ) == (ROUTER_DEFAULT_MODEL, [])


def test_a_token_saved_by_hf_auth_login_picks_the_router_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm_server: ScriptedLLMServer
) -> None:
    import huggingface_hub

    token_file = tmp_path / "token"
    token_file.write_text("hf_saved0001\n")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(token_file))
    environ = {**NOTHING_LOCAL, "OLLAMA_BASE_URL": llm_server.url}
    assert choose_model(RunOptions(), AgentConfig(), None, environ) == (ROUTER_DEFAULT_MODEL, [])
    assert environ["HF_TOKEN"] == "hf_saved0001"


# ---- the check before any thread ------------------------------------------------------------------------


def test_preflight_names_the_missing_key_before_any_database(sandbox: Sandbox) -> None:
    environ = {**NOTHING_LOCAL, "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    with pytest.raises(UserError, match="needs ANTHROPIC_API_KEY") as caught:
        preflight_model(RunOptions(model="anthropic/claude-sonnet-4-5", prompt="hi"), environ)
    assert caught.value.exit_code == 2 and not list(sandbox.ml_intern_home.iterdir())


def test_preflight_sets_the_chosen_model_and_returns_the_notice(llm_server: ScriptedLLMServer) -> None:
    environ = {**NOTHING_LOCAL, "OLLAMA_BASE_URL": llm_server.url}
    options, notices = preflight_model(RunOptions(prompt="hi"), environ)
    assert options.model == "ollama/scripted" and len(notices) == 1


def test_preflight_leaves_a_resumed_thread_and_a_chat_login_alone() -> None:
    resumed = RunOptions(thread="", prompt="hi")
    assert preflight_model(resumed, dict(NOTHING_LOCAL)) == (resumed, [])
    chat = checked_model(RunOptions(model="huggingface/org/model"), AgentConfig(), dict(NOTHING_LOCAL), True)
    assert chat == ("huggingface/org/model", [])  # the chat asks for the token; headless says so in one line
    with pytest.raises(UserError, match="needs a Hugging Face token"):
        preflight_model(RunOptions(model="org/model", prompt="hi"), dict(NOTHING_LOCAL))


def test_an_explicit_router_id_keeps_its_route_with_a_provider_key() -> None:
    environ = {**NOTHING_LOCAL, "OPENAI_API_KEY": "sk-oai", "HF_TOKEN": "hf_x"}
    options, _ = preflight_model(RunOptions(model=" huggingface/openai/gpt-oss-120b ", prompt="hi"), environ)
    assert options.model == "huggingface/openai/gpt-oss-120b"  # stored so: a resumed thread keeps the router
    spec = resolve_model(options.model, environ)
    assert (spec.kind, spec.model_id) == ("router", "openai/gpt-oss-120b")


# ---- the CLI ------------------------------------------------------------------------------------------


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed_cli()), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def no_credentials(subprocess_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**subprocess_env, **NOTHING_LOCAL, **extra}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "anthropic/claude-sonnet-4-5", "Write primes.py"], "needs ANTHROPIC_API_KEY"),
        (["--model", "moonshotai/Kimi-K2.6:novita", "hi"], "needs a Hugging Face token"),
        (["hi"], "no model configured"),
    ],
    ids=["readme-first-command", "router-id", "nothing"],
)
def test_no_usable_model_is_one_line_and_no_thread(
    subprocess_env: dict[str, str], sandbox: Sandbox, args: list[str], words: str
) -> None:
    env = no_credentials(subprocess_env)
    done = run_cli(env, sandbox.workdir, *args)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "HF_TOKEN" in lines[0] and "Traceback" not in lines[0]
    assert not (sandbox.ml_intern_home / "checkpoints.sqlite").exists()
    listed = run_cli(env, sandbox.workdir, "threads")
    assert listed.returncode == 0 and "no threads" in listed.stdout


@pytest.mark.e2e
def test_an_hf_token_alone_starts_the_originals_default_through_the_router(
    subprocess_env: dict[str, str], sandbox: Sandbox
) -> None:
    with RouterServer() as router:
        assert isinstance(router, RouterServer)
        env = no_credentials(subprocess_env, HF_TOKEN="hf_only0001", HF_ROUTER_URL=router.base_url)
        done = run_cli(env, sandbox.workdir, "--no-stream", "hi")
        chats = router.chats()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"
    assert chats and chats[0].json()["model"] == ROUTER_DEFAULT_MODEL
    assert chats[0].headers["authorization"] == "Bearer hf_only0001"


@pytest.mark.e2e
def test_a_router_id_bills_the_configured_org(subprocess_env: dict[str, str], sandbox: Sandbox) -> None:
    config = sandbox.root / "config.json"
    config.write_text('{"bill_to": "my-org"}')
    with RouterServer() as router:
        assert isinstance(router, RouterServer)
        env = no_credentials(
            subprocess_env,
            HF_TOKEN="hf_only0001",
            HF_ROUTER_URL=router.base_url,
            ML_INTERN_CONFIG=str(config),
        )
        done = run_cli(env, sandbox.workdir, "-m", "huggingface/moonshotai/Kimi-K2.6:novita", "hi")
        chats = router.chats()
    assert done.returncode == 0, done.stderr
    assert chats[0].json()["model"] == "moonshotai/Kimi-K2.6:novita"
    assert chats[0].headers["x-hf-bill-to"] == "my-org"
    listed = run_cli(env, sandbox.workdir, "threads")
    assert "huggingface/moonshotai/Kimi-K2.6:novita" in listed.stdout  # the thread keeps its route


@pytest.mark.e2e
def test_a_local_server_already_running_is_used_without_being_told(
    subprocess_env: dict[str, str], sandbox: Sandbox, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.text("hello from ollama"))
    env = no_credentials(subprocess_env, OLLAMA_BASE_URL=llm_server.url)
    done = run_cli(env, sandbox.workdir, "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello from ollama"
    assert llm_server.requests[0]["model"] == "scripted"
    assert "ollama/scripted" in run_cli(env, sandbox.workdir, "threads").stdout
