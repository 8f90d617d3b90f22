"""hub_repo_search and hub_repo_details on a fake Hub: what the model reads, and what the Hub receives."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

import ml_intern.tools.datasets.tool as datasets
import ml_intern.tools.hub.repo as hub_repo
import ml_intern.tools.hub.repo_git as hub_repo_git
import ml_intern.tools.hub.search as hub_search
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.registry import offered
from tests.fakes.hub_server import FakeHub

TOKEN = "hf_test"
FAST = {"http": {"retry_delay": 0.01, "max_retry_delay": 0.05}}
CARD = "---\nlicense: llama3\ntags:\n- facebook\n---\n# Llama 3 8B Instruct\n\n" + "Model details. " * 200


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(token=TOKEN) as server:
        server.add_repo(
            "meta-llama/Llama-3-8B-Instruct",
            files={"README.md": CARD.encode(), "config.json": b"{}"}
            | {f"model-{n:05d}-of-00030.safetensors": b"w" * 2048 for n in range(30)},
            info={
                "pipeline_tag": "text-generation",
                "library_name": "transformers",
                "downloads": 2_345_678,
                "likes": 3900,
                "tags": ["transformers", "license:llama3"] + [f"tag{n}" for n in range(30)],
                "cardData": {"license": "llama3"},
            },
            gated="manual",
        )
        server.add_repo("meta-llama/Llama-3-70B", info={"pipeline_tag": "text-generation", "downloads": 900})
        server.add_repo("acme/llama-lora", info={"library_name": "peft", "downloads": 12, "tags": ["peft"]})
        server.add_repo("acme/secret-model", private=True, files={"README.md": b"# secret"})
        server.add_repo(
            "stanfordnlp/imdb",
            "dataset",
            files={"README.md": b"# IMDB\nMovie reviews."},
            info={"description": "Large Movie Review Dataset. " * 20, "downloads": 50_000},
        )
        space = {"sdk": "gradio", "likes": 77, "cardData": {"title": "Chat"}}
        server.add_repo("gradio/llama-chat", "space", info=space)
        yield server


def tools(hub: FakeHub, sandbox, token: str | None = TOKEN) -> dict:
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home, hf_endpoint=hub.url, hf_token=token)
    return {tool.name: tool for tool in hub_search.make_tools(env)}


async def details(hub: FakeHub, sandbox, *repo_ids: str, token: str | None = TOKEN, **args) -> str:
    return await tools(hub, sandbox, token)["hub_repo_details"].ainvoke({"repo_ids": list(repo_ids)} | args)


async def test_search_lists_models_with_facts_and_links(hub, sandbox):
    out = await tools(hub, sandbox)["hub_repo_search"].ainvoke({"query": "llama", "repo_types": ["model"]})
    assert out.index("meta-llama/Llama-3-8B-Instruct") < out.index("acme/llama-lora")
    assert (
        "text-generation, transformers, 2.3M downloads, 3.9k likes, updated 2024-05-01, gated (manual)" in out
    )
    assert f"{hub.url}/meta-llama/Llama-3-8B-Instruct" in out
    (request,) = hub.find("GET", "^/api/models$")
    assert (request.arg("search"), request.arg("sort"), request.arg("limit")) == ("llama", "downloads", "10")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_search_passes_task_library_sort_and_caps_limit(hub, sandbox):
    args = {"task": "text-generation", "library": "transformers", "sort": "trending", "limit": 500}
    await tools(hub, sandbox)["hub_repo_search"].ainvoke(args | {"repo_types": ["model"]})
    (request,) = hub.find("GET", "^/api/models$")
    assert request.arg("pipeline_tag") == "text-generation"
    assert request.arg("filter") == "transformers"
    assert request.arg("sort") == "trendingScore"
    assert request.arg("limit") == "50"


async def test_search_datasets_show_a_description_and_spaces_sort_by_likes(hub, sandbox):
    out = await tools(hub, sandbox)["hub_repo_search"].ainvoke({"repo_types": ["dataset", "space"]})
    assert "- stanfordnlp/imdb: 50.0k downloads" in out
    assert "\n  Large Movie Review Dataset." in out and "..." in out  # description cut to one short line
    assert "Spaces (1, by likes):\n- gradio/llama-chat: sdk gradio, 77 likes" in out
    assert hub.find("GET", "^/api/spaces$")[0].arg("sort") == "likes"


async def test_search_output_is_bounded(hub, sandbox):
    for n in range(60):
        hub.add_repo(f"org/dataset-{n}", "dataset", info={"description": "words " * 100})
        hub.add_repo(f"org/model-with-a-long-name-{n}", info={"pipeline_tag": "text-generation"})
    out = await tools(hub, sandbox)["hub_repo_search"].ainvoke({"query": "", "limit": 50})
    assert len(out) < 12_500
    assert "characters omitted; narrow the query or lower limit" in out


async def test_details_show_facts_tags_files_and_card_start(hub, sandbox):
    out = await details(hub, sandbox, "meta-llama/Llama-3-8B-Instruct")
    assert out.startswith(f"## meta-llama/Llama-3-8B-Instruct (model) {hub.url}/meta-llama/Llama-3-8B-")
    assert "task: text-generation, library: transformers, license: llama3, gated: manual" in out
    assert "downloads (30d): 2,345,678, likes: 3900, last modified: 2024-05-01" in out
    assert "tag17 (+12 more)" in out  # 20 of 32 tags
    assert "Files (32, 63.0 KB): README.md (3.0 KB), config.json (2 B)" in out
    assert "+7 more (hf_repo_files operation=list)" in out  # 25 of 32 files
    card = out.split("Card:\n", 1)[1]
    assert card.startswith("# Llama 3 8B Instruct") and "license: llama3" not in card  # YAML stripped
    assert "card cut at 1500 chars; hf_repo_files operation=read path=README.md" in card
    assert len(card) < 1700


async def test_details_auto_detects_the_repo_type(hub, sandbox):
    out = await details(hub, sandbox, "stanfordnlp/imdb")
    assert out.startswith(f"## stanfordnlp/imdb (dataset) {hub.url}/datasets/stanfordnlp/imdb")
    assert "Card:\n# IMDB\nMovie reviews." in out
    paths = [r.path for r in hub.requests if r.path.startswith("/api/")]
    assert paths[:2] == ["/api/models/stanfordnlp/imdb", "/api/datasets/stanfordnlp/imdb"]


async def test_details_of_a_missing_repo_suggest_close_names(hub, sandbox):
    out = await details(hub, sandbox, "meta-llama/Llama-3-8B-Instrct", repo_type="model")
    assert "Repo not found (HTTP 404) while reading model repo meta-llama/Llama-3-8B-Instrct." in out
    assert "Did you mean: meta-llama/Llama-3-8B-Instruct, meta-llama/Llama-3-70B, acme/llama-lora?" in out
    searched = [r.arg("search") for r in hub.find("GET", "^/api/models$")]
    assert searched == ["Llama-3-8B-Instrct", "Instrct", "Llama"]  # whole name, then its longest words


async def test_details_of_a_private_repo_without_token_say_how_to_authenticate(hub, sandbox):
    out = await details(hub, sandbox, "acme/secret-model", token=None)
    assert "Repo not found, or private or gated (HTTP 401) while reading model/dataset/space repo" in out
    assert "set HF_TOKEN" in out and "hf auth login" in out
    assert all("authorization" not in r.headers for r in hub.requests)


async def test_details_of_a_gated_model_without_token_still_show_its_facts(hub, sandbox):
    out = await details(hub, sandbox, "meta-llama/Llama-3-8B-Instruct", token=None)
    assert "gated: manual" in out
    assert "README unavailable: gated; accept its terms on the Hub and set HF_TOKEN" in out


async def test_a_rate_limited_call_is_retried(hub, sandbox):
    hub.fail("GET", "^/api/models/acme/llama-lora$", 429, headers={"Retry-After": "0"})
    out = await details(hub, sandbox, "acme/llama-lora", repo_type="model")
    assert out.startswith("## acme/llama-lora (model)")
    assert "library: peft" in out
    assert len(hub.find("GET", "^/api/models/acme/llama-lora$")) == 2


async def test_server_errors_are_retried_a_few_times_then_reported(hub, sandbox):
    hub.fail("GET", "^/api/models/acme/llama-lora$", 503, times=10, headers={"Retry-After": "0"})
    out = await details(hub, sandbox, "acme/llama-lora", repo_type="model")
    assert "The Hub failed with HTTP 503 while reading model repo acme/llama-lora after 3 tries" in out
    assert len(hub.find("GET", "^/api/models/acme/llama-lora$")) == 3  # config http.retry_attempts


async def test_details_need_a_repo_id(hub, sandbox):
    with pytest.raises(ToolError, match="at least one repo id"):
        await details(hub, sandbox)


def test_tool_schemas_stay_compact(sandbox):
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home)
    limits = {"hf_repo_files": 1600, "hf_repo_git": 1600}
    for module in (hub_search, hub_repo, hub_repo_git, datasets):
        for tool in map(offered, module.make_tools(env)):  # as the model gets them (hidden arguments out)
            spec = json.dumps(convert_to_openai_tool(tool))
            assert len(spec) <= limits.get(tool.name, 1100), tool.name
            assert "anyOf" not in spec and '"title": "' not in spec  # no null branches, no schema titles


async def test_an_unreachable_hub_is_reported_not_raised(sandbox):
    env = ToolEnv(
        workdir=sandbox.workdir, home=sandbox.ml_intern_home, config=FAST, hf_endpoint="http://127.0.0.1:9"
    )
    (_, details_tool) = hub_search.make_tools(env)
    out = await details_tool.ainvoke({"repo_ids": ["org/model"], "repo_type": "model"})
    assert out.startswith("## org/model\nCould not reach the Hub at http://127.0.0.1:9 while reading model")
    assert out.endswith("check the network or HF_ENDPOINT.")
