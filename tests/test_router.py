"""The Hugging Face router (DESIGN.md "Models"): calls through litellm, the catalogue `/model` shows, and the
original's friendlier lines for the router's refusals. The router is tests/fakes/router_server.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_intern.graph.context import RunContext
from ml_intern.model.catalogue import CACHE_FILE, SUGGESTED, model_overview, model_report, router_catalogue
from ml_intern.model.errors import explain_model_error
from ml_intern.services import build_services
from ml_intern.session.runner import turn_failure
from tests.fakes.llm_server import error
from tests.fakes.router_server import RouterServer, model, provider
from tests.harness import Sandbox, child_python_path

ROUTER_ID = "moonshotai/Kimi-K2.6:novita"
TOKEN = "hf_router0001"


@pytest.fixture
def router() -> Iterator[RouterServer]:
    with RouterServer() as server:
        assert isinstance(server, RouterServer)
        yield server


def router_env(router: RouterServer) -> dict[str, str]:
    return {"HF_TOKEN": TOKEN, "HF_ROUTER_URL": router.base_url}


def services_for_router(router: RouterServer, sandbox: Sandbox, stream: bool, config: dict | None = None):
    return build_services(
        model=ROUTER_ID,
        workdir=sandbox.workdir,
        tool_names=["read"],
        stream=stream,
        environ=router_env(router),
        config=config or {},
    )


# ---- calls ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_router_calls_carry_the_token_the_billing_org_and_the_suffix(
    router: RouterServer, sandbox: Sandbox, stream: bool
) -> None:
    services = services_for_router(router, sandbox, stream, {"bill_to": "my-org"})
    reply = await services.chat_model.ainvoke("hi")
    [call] = router.chats()
    assert reply.content == "OK"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["x-hf-bill-to"] == "my-org"
    assert call.json()["model"] == ROUTER_ID


async def test_no_billing_header_without_bill_to(router: RouterServer, sandbox: Sandbox) -> None:
    await services_for_router(router, sandbox, False).chat_model.ainvoke("hi")
    assert "x-hf-bill-to" not in router.chats()[0].headers


async def test_the_chat_model_sets_the_originals_litellm_flags(
    router: RouterServer, sandbox: Sandbox
) -> None:
    import litellm

    litellm.drop_params = litellm.modify_params = False
    services_for_router(router, sandbox, False).chat_model  # noqa: B018 - built on first use
    assert litellm.drop_params is True and litellm.modify_params is True


@pytest.mark.e2e
def test_building_services_does_not_import_litellm(sandbox: Sandbox) -> None:
    code = (
        "import sys; from pathlib import Path; from ml_intern.services import build_services; "
        "s = build_services(model='vllm/m', workdir=Path('.'), tool_names=['read'], stream=True, "
        "environ={}, config={}); print('litellm' in sys.modules); "
        "s.chat_model; print('litellm' in sys.modules)"
    )
    env = {
        "PYTHONPATH": child_python_path(),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HOME": str(sandbox.home),
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr


REFUSALS = [  # status, the router's message, words of our line
    (400, "Model moonshotai/Kimi-K2.6 is not supported by provider novita", "drop the ':novita' suffix"),
    (401, "Invalid credentials in Authorization header", "hf auth login"),
    (402, "You have exceeded your monthly included credits", "https://huggingface.co/settings/billing"),
    (404, "The model moonshotai/Kimi-K2.6 does not exist", "/model lists suggestions"),
]


@pytest.mark.parametrize(("status", "message", "words"), REFUSALS, ids=["provider", "401", "402", "404"])
async def test_router_refusals_become_the_originals_advice(
    router: RouterServer, sandbox: Sandbox, status: int, message: str, words: str
) -> None:
    router.replies.append(error(status, message))
    services = services_for_router(router, sandbox, False)
    with pytest.raises(Exception) as caught:
        await services.chat_model.ainvoke("hi")
    line, code = explain_model_error(caught.value, ROUTER_ID)
    assert words in line and code == 2 and "\n" not in line and TOKEN not in line


async def test_a_provider_id_routed_for_want_of_its_key_names_the_hf_token_on_a_401(
    router: RouterServer, sandbox: Sandbox
) -> None:
    router.replies.append(error(401, "Invalid credentials in Authorization header"))
    model_id = "anthropic/claude-sonnet-4-5"  # no ANTHROPIC_API_KEY: through the router with the HF token
    services = build_services(
        model=model_id,
        workdir=sandbox.workdir,
        tool_names=["read"],
        stream=False,
        environ=router_env(router),
        config={},
    )
    with pytest.raises(Exception) as caught:
        await services.chat_model.ainvoke("hi")
    line, code = explain_model_error(caught.value, model_id, services.model.kind)
    assert services.model.kind == "router" and code == 2
    assert "HF_TOKEN" in line and "hf auth login" in line and "ANTHROPIC_API_KEY" not in line
    failed = turn_failure(caught.value, "t1", RunContext(model=model_id, services=services), None)
    assert str(failed) == line  # a failed turn says the same: the run knows its calls went to the router


# ---- catalogue ------------------------------------------------------------------------------------------


def models_fetched(router: RouterServer) -> int:
    return len(router.find("GET", r"/v1/models"))


def test_report_shows_the_policy_and_each_live_provider(router: RouterServer, sandbox: Sandbox) -> None:
    lines = model_report(ROUTER_ID, router_env(router), sandbox.ml_intern_home)
    assert lines == [
        f"{ROUTER_ID}: Hugging Face router, routing: pinned to novita",
        "  novita: $0.6/$2.5 per M tok, ctx 131,072, tools",
        "  together: $1/$3 per M tok, ctx 131,072, no tools",
    ]


def test_the_catalogue_is_cached_in_ml_intern_home(router: RouterServer, sandbox: Sandbox) -> None:
    environ = router_env(router)
    first = model_report("zai-org/GLM-5.1:fastest", environ, sandbox.ml_intern_home)
    second = model_report("zai-org/GLM-5.1:fastest", environ, sandbox.ml_intern_home)
    assert first == second and models_fetched(router) == 1
    assert "routing: :fastest" in first[0] and len(first) == 2  # the staging provider is not listed
    cache = sandbox.ml_intern_home / CACHE_FILE
    saved = json.loads(cache.read_text())
    cache.write_text(json.dumps({**saved, "fetched_at": time.time() - 301}))
    model_report("zai-org/GLM-5.1", environ, sandbox.ml_intern_home)
    assert models_fetched(router) == 2


def test_a_failed_fetch_is_retried_after_15_seconds_only(router: RouterServer, sandbox: Sandbox) -> None:
    router.fail("GET", r"/v1/models", 503)
    environ, home = router_env(router), sandbox.ml_intern_home
    assert router_catalogue(environ, home) is None and router_catalogue(environ, home) is None
    assert models_fetched(router) == 1
    assert "unavailable" in model_report(ROUTER_ID, environ, home)[-1]
    saved = json.loads((home / CACHE_FILE).read_text())
    (home / CACHE_FILE).write_text(json.dumps({**saved, "fetched_at": time.time() - 16}))
    assert router_catalogue(environ, home) is not None and models_fetched(router) == 2


@pytest.mark.parametrize(
    ("model_id", "warning"),
    [
        (
            "moonshotai/Kimi-K2.5:novita",
            "moonshotai/Kimi-K2.5 is not in the router's catalogue: did you mean moonshotai/Kimi-K2.6?",
        ),
        ("zai-org/GLM-5.1:together", "provider together does not serve zai-org/GLM-5.1 (live: novita)"),
        ("acme/staging-only", "no provider serves acme/staging-only right now"),
        (
            "acme/no-tools",
            "no provider supports tool calls for acme/no-tools: ml-intern's tools will not work",
        ),
    ],
    ids=["near-miss", "pinned-elsewhere", "no-live-provider", "no-tools"],
)
def test_report_warns_before_a_switch(
    router: RouterServer, sandbox: Sandbox, model_id: str, warning: str
) -> None:
    router.catalogue += [
        model("acme/staging-only", provider("acme", status="staging")),
        model("acme/no-tools", provider("acme", tools=False), provider("other", tools=False)),
    ]
    lines = model_report(model_id, router_env(router), sandbox.ml_intern_home)
    assert [line for line in lines if line.startswith("warning:")] == [f"warning: {warning}"]


def test_report_for_local_and_provider_ids_needs_no_catalogue(router: RouterServer, sandbox: Sandbox) -> None:
    environ = {**router_env(router), "ANTHROPIC_API_KEY": "sk-ant", "VLLM_BASE_URL": "http://127.0.0.1:9"}
    home = sandbox.ml_intern_home
    assert model_report("vllm/qwen", environ, home) == ["vllm/qwen: local server at http://127.0.0.1:9/v1"]
    assert "directly through litellm" in model_report("anthropic/claude-sonnet-4-5", environ, home)[0]
    assert model_report("acme/x:novita", {}, home)[0].startswith(
        "warning: acme/x:novita needs a Hugging Face"
    )
    assert models_fetched(router) == 0


def test_overview_lists_the_current_model_suggestions_suffixes_and_local_prefixes(sandbox: Sandbox) -> None:
    text = "\n".join(model_overview("vllm/qwen", {}, sandbox.ml_intern_home))
    assert text.startswith("current model: vllm/qwen (local server at http://localhost:8000/v1)")
    for _, model_id in SUGGESTED:
        assert model_id in text
    for word in (":fastest", ":cheapest", ":preferred", ":<provider>", "ollama/<name>", "llamacpp/<name>"):
        assert word in text


def test_overview_never_fetches(router: RouterServer, sandbox: Sandbox) -> None:
    model_overview(ROUTER_ID, router_env(router), Path(sandbox.ml_intern_home))
    assert models_fetched(router) == 0
