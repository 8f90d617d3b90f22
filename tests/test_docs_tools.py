"""explore_hf_docs and fetch_hf_docs against a fake Hub docs site and an unrelated fake web site."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ml_intern.tools.web.docs as docs
import ml_intern.tools.web.hf_api as hf_api
import ml_intern.tools.web.page_text as page_text
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import is_hf_url
from ml_intern.tools.web.docs_index import DOC_SOURCES
from tests.fakes.docs_server import OPENAPI, FakeDocsSite, hf_docs_page
from tests.fakes.research_servers import FakeHub, FakeWebsite, fresh

TOKEN = "hf_secret_token"


@pytest.fixture(scope="module")
def hub_server() -> Iterator[FakeHub]:
    with FakeHub() as server:
        yield server


@pytest.fixture
def hub(hub_server: FakeHub) -> FakeHub:
    return fresh(hub_server)


@pytest.fixture(scope="module")
def website_server() -> Iterator[FakeWebsite]:
    with FakeWebsite() as server:
        yield server


@pytest.fixture
def website(website_server: FakeWebsite) -> FakeWebsite:
    return fresh(website_server)


@pytest.fixture
def tools(hub: FakeHub, tmp_path: Path) -> dict:
    config = {"http": {"retry_delay": 0.01, "max_retry_delay": 0.05}}
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=config, hf_endpoint=hub.url, hf_token=TOKEN)
    return {tool.name: tool for tool in docs.make_tools(env)}


async def test_explore_without_query_lists_sidebar_pages_with_glimpses(tools, hub: FakeHub) -> None:
    result = await tools["explore_hf_docs"].ainvoke({"endpoint": "trl", "max_results": 3})
    assert "Docs of trl: 3 of 6 pages" in result
    assert f"1. TRL\n   {hub.url}/docs/trl/index\n   # TRL - Transformer Reinforcement Learning" in result
    assert "3. SFT Trainer" in result and "DPO Trainer" not in result
    assert "v0.9.0" not in result and "hidden" not in result  # only the sidebar's links count
    fetched = sorted(r.path for r in hub.find("GET", r"\.md$"))
    assert fetched == ["/docs/trl/index.md", "/docs/trl/quickstart.md", "/docs/trl/sft_trainer.md"]


async def test_explore_with_query_ranks_pages_by_content(tools) -> None:
    result = await tools["explore_hf_docs"].ainvoke({"endpoint": "trl", "query": "DPOConfig beta"})
    assert result.splitlines()[0] == "Docs of trl matching 'DPOConfig beta': 1 of 1 matches"
    assert "1. DPO Trainer" in result and "Use `DPOConfig` with `beta`" in result
    assert "fetch_hf_docs" in result


async def test_explore_survives_pages_that_cannot_be_fetched(tools) -> None:
    result = await tools["explore_hf_docs"].ainvoke({"endpoint": "trl", "query": "missing page"})
    assert "1. Missing page" in result and "[could not fetch: Not found (404)]" in result


async def test_explore_reads_the_index_once_per_run(tools, hub: FakeHub) -> None:
    await tools["explore_hf_docs"].ainvoke({"endpoint": "trl", "query": "sft"})
    await tools["explore_hf_docs"].ainvoke({"endpoint": "trl", "query": "grpo"})
    assert len(hub.find("GET", "^/docs/trl$")) == 1
    assert len(hub.find("GET", "^/docs/trl/grpo_trainer.md$")) == 1


async def test_explore_unknown_library_names_valid_slugs(tools) -> None:
    with pytest.raises(
        ToolError,
        match="No docs at .*/docs/nonexistent \\(HTTP 404\\). endpoint is one of: hub, transformers",
    ):
        await tools["explore_hf_docs"].ainvoke({"endpoint": "nonexistent"})


async def test_fetch_reads_markdown_and_pages_long_documents(tools, hub: FakeHub) -> None:
    first = await tools["fetch_hf_docs"].ainvoke({"url": f"{hub.url}/docs/trl/sft_trainer"})
    assert first.startswith(f"Documentation from: {hub.url}/docs/trl/sft_trainer.md\n\n# SFT Trainer")
    assert len(first) < docs.PAGE_CHARS + 300
    assert "call again with offset=20000 for more" in first
    rest = await tools["fetch_hf_docs"].ainvoke({"url": "/docs/trl/sft_trainer", "offset": 20000})
    assert "characters 20,000-" in rest and "dataset_text_field" in rest
    assert len(hub.find("GET", "/docs/trl/sft_trainer.md")) == 1


async def test_fetch_missing_page_suggests_explore(tools) -> None:
    with pytest.raises(ToolError, match="Not found \\(404\\).*explore_hf_docs"):
        await tools["fetch_hf_docs"].ainvoke({"url": "/docs/trl/nope"})


async def test_fetch_rejects_non_web_urls(tools) -> None:
    with pytest.raises(ToolError, match="Not a web URL"):
        await tools["fetch_hf_docs"].ainvoke({"url": "file:///etc/passwd"})


async def test_token_goes_to_the_hf_host_and_never_elsewhere(
    tools, hub: FakeHub, website: FakeWebsite
) -> None:
    await tools["fetch_hf_docs"].ainvoke({"url": f"{hub.url}/docs/trl/dpo_trainer"})
    post = await tools["fetch_hf_docs"].ainvoke({"url": f"{website.url}/blog/dpo.html"})
    assert "# Fine-tuning with DPO" in post and "Set **beta** to 0.1" in post
    assert "margin" not in post and "Home | Blog" not in post  # styles and navigation are dropped
    (hub_request,) = hub.find("GET", "/docs/trl/dpo_trainer.md")
    assert hub_request.headers["authorization"] == f"Bearer {TOKEN}"
    (site_request,) = website.find("GET", "/blog/dpo.html")
    assert "authorization" not in site_request.headers
    assert not website.find("GET", r"\.md$")  # '.md' is only added for Hugging Face docs pages


async def test_redirect_away_from_the_hub_drops_the_token(tools, hub: FakeHub, website: FakeWebsite) -> None:
    hub.route(
        "GET", r"/docs/trl/old/moved\.md", lambda r: (302, {"Location": f"{website.url}/blog/dpo.html"}, b"")
    )
    result = await tools["fetch_hf_docs"].ainvoke({"url": "/docs/trl/old/moved"})
    assert "Fine-tuning with DPO" in result
    assert hub.find("GET", "/docs/trl/old/moved.md")[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in website.find("GET", "/blog/dpo.html")[0].headers


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://huggingface.co/docs/trl", True),
        ("https://discuss.huggingface.co/t/1", True),
        ("https://hf.co/docs", True),
        ("http://huggingface.co/docs", False),  # never in clear text
        ("https://huggingface.co.evil.example/docs", False),
        ("https://evilhuggingface.co/docs", False),
        ("http://127.0.0.1:8123/docs/trl", True),  # the configured endpoint
        ("http://127.0.0.1:9000/docs/trl", False),  # same host, another port
        ("https://127.0.0.1:8123/docs/trl", False),  # same host and port, another scheme
    ],
)
def test_hugging_face_hosts(url: str, expected: bool) -> None:
    assert is_hf_url(httpx.URL(url), "http://127.0.0.1:8123") is expected


# ── issue 13: Markdown pages, documentation sources, Gradio, find_hf_api ───────────────────


@pytest.fixture(scope="module")
def site_server() -> Iterator[FakeDocsSite]:
    with FakeDocsSite() as server:
        yield server


@pytest.fixture
def site(site_server: FakeDocsSite) -> FakeDocsSite:
    site_server.spec = OPENAPI
    return fresh(site_server)


def site_tools(site: FakeDocsSite, home: Path) -> dict:
    """The docs tools and find_hf_api with the docs site as Hub and Gradio host."""
    config = {
        "http": {"retry_delay": 0.01, "max_retry_delay": 0.05},
        "docs": {"gradio_url": f"{site.url}/gradio/llms.txt"},
    }
    env = ToolEnv(workdir=home, home=home, config=config, hf_endpoint=site.url, hf_token=TOKEN)
    return {tool.name: tool for tool in docs.make_tools(env) + hf_api.make_tools(env)}


async def test_fetch_turns_a_real_sized_docs_page_into_markdown(site: FakeDocsSite, tmp_path: Path) -> None:
    assert len(hf_docs_page()) > 40_000
    tools = site_tools(site, tmp_path)
    text = await tools["fetch_hf_docs"].ainvoke({"url": f"{site.url}/big/trainer.html"})
    assert f"Documentation from: {site.url}/big/trainer.html\n\n# Trainer\n\nThe **Trainer** class" in text
    assert "## Section 1\n" in text and "[Trainer reference](/docs/transformers/main_classes/trainer)" in text
    fence = (
        "```python\nfrom transformers import Trainer\ntrainer = Trainer(model=model, args=training_args)\n"
    )
    assert fence + "trainer.train()\n```" in text
    assert "| Argument | Default |\n| --- | --- |\n| `learning_rate` | 5e-5 |" in text
    for boilerplate in (
        "Sidebar entry",
        "Pricing",
        "Search models",
        "Terms of service",
        "__DATA__",
        "Copy",
        "On this page",
        "hljs",
    ):
        assert boilerplate not in text
    assert "explains how gradient_accumulation_steps, mixed" in text  # no Markdown escapes in names
    assert "## Section 40" in text and len(text) < 20_000 and "offset=" not in text  # the whole page, small


async def test_unknown_docs_source_lists_the_forty_sources(site: FakeDocsSite, tmp_path: Path) -> None:
    assert len(DOC_SOURCES) == 40 and {"gradio", "trackio", "kernels", "google-cloud"} <= set(DOC_SOURCES)
    with pytest.raises(
        ToolError, match="endpoint is one of: hub, transformers, .*, kernels, google-cloud\\.$"
    ):
        await site_tools(site, tmp_path)["explore_hf_docs"].ainvoke({"endpoint": "nonexistent"})


async def test_gradio_docs_come_from_llms_txt_by_section(site: FakeDocsSite, tmp_path: Path) -> None:
    tools = site_tools(site, tmp_path)
    result = await tools["explore_hf_docs"].ainvoke({"endpoint": "gradio", "query": "ChatInterface"})
    assert result.startswith("Docs of gradio matching 'ChatInterface': 1 of 1 matches\n\n## ChatInterface\n")
    assert "`gr.ChatInterface(fn)` builds a chatbot UI" in result and "gr.Interface(fn" not in result
    listing = await tools["explore_hf_docs"].ainvoke({"endpoint": "gradio"})
    titles = [line.split(". ", 1)[1] for line in listing.splitlines() if line[:1].isdigit()]
    assert titles == ["Gradio", "Blocks", "ChatInterface", "Interface"]  # '# comment' in code is no heading
    assert [r.path for r in site.requests] == ["/gradio/llms.txt"]


async def test_find_hf_api_returns_endpoints_with_curl_examples(site: FakeDocsSite, tmp_path: Path) -> None:
    result = await site_tools(site, tmp_path)["find_hf_api"].ainvoke({"query": "create repository"})
    assert result.startswith("Hub API endpoints matching 'create repository' (1 of 1):")
    assert "POST /api/repos/create - Create a repository" in result
    assert "responses: 200 Created, 409 Already exists" in result
    assert f'curl -X POST "{site.url}/api/repos/create"' in result
    assert '-H "Authorization: Bearer $HF_TOKEN"' in result and TOKEN not in result
    assert """-d '{"name": "<name>", "type": "<type>"}'""" in result


async def test_find_hf_api_filters_by_tag_and_lists_tags(site: FakeDocsSite, tmp_path: Path) -> None:
    tool = site_tools(site, tmp_path)["find_hf_api"]
    jobs = await tool.ainvoke({"tag": "jobs"})
    assert jobs.startswith("Hub API endpoints in jobs (2 of 2):")
    assert (
        "GET /api/jobs/{namespace} - List jobs of a namespace" in jobs
        and "POST /api/jobs/{namespace}" in jobs
    )
    assert "  - namespace (path, required)" in jobs and "/api/models" not in jobs
    fallback = await tool.ainvoke({"query": "zebra", "tag": "models"})
    assert fallback.startswith("No endpoint matches 'zebra'; the endpoints of models (1 of 1)")
    assert await tool.ainvoke({}) == "Hub API tags (pass tag or query): jobs, models, repos"
    with pytest.raises(ToolError, match="Unknown tag 'spaces'; tags: jobs, models, repos"):
        await tool.ainvoke({"tag": "spaces"})


async def test_find_hf_api_caches_the_document_for_a_day(site: FakeDocsSite, tmp_path: Path) -> None:
    await site_tools(site, tmp_path)["find_hf_api"].ainvoke({"query": "models"})
    site.spec = {"paths": {}}  # a new run within the day reads the cached copy
    again = await site_tools(site, tmp_path)["find_hf_api"].ainvoke({"query": "models"})
    assert "GET /api/models - List models" in again
    assert len(site.find("GET", "openapi")) == 1
    (cached,) = (tmp_path / "cache").glob("hf_openapi_*.json")
    os.utime(cached, (time.time() - 2 * 86400,) * 2)
    stale = await site_tools(site, tmp_path)["find_hf_api"].ainvoke({"query": "models"})
    assert stale == "No Hub API endpoint matches 'models'. Tags: ."
    assert len(site.find("GET", "openapi")) == 2


async def test_find_hf_api_explains_an_unreadable_document(site: FakeDocsSite, tmp_path: Path) -> None:
    site.fail("GET", "openapi", 404)
    with pytest.raises(ToolError, match="Could not read the Hub's API description at .* \\(HTTP 404\\)"):
        await site_tools(site, tmp_path)["find_hf_api"].ainvoke({"query": "models"})


async def test_find_hf_api_downloads_once_for_concurrent_first_calls(
    site: FakeDocsSite, tmp_path: Path
) -> None:
    tool = site_tools(site, tmp_path)["find_hf_api"]
    first, second = await asyncio.gather(
        tool.ainvoke({"query": "models"}), tool.ainvoke({"query": "create repository"})
    )
    assert "GET /api/models - List models" in first and "POST /api/repos/create" in second
    assert len(site.find("GET", "openapi")) == 1


# ── attacker F4: legacy, deeply nested and huge HTML ────────────────────────────────────────


async def test_fetch_converts_unclosed_list_items_and_paragraphs(site: FakeDocsSite, tmp_path: Path) -> None:
    text = await site_tools(site, tmp_path)["fetch_hf_docs"].ainvoke({"url": f"{site.url}/pages/legacy.html"})
    assert "# Old list\n\n- item 0\n- item 1\n" in text and "- item 399" in text
    assert "first para\n\nsecond para with [a link](/docs/x)" in text


async def test_fetch_falls_back_to_plain_text_on_deep_nesting(site: FakeDocsSite, tmp_path: Path) -> None:
    text = await site_tools(site, tmp_path)["fetch_hf_docs"].ainvoke({"url": f"{site.url}/pages/deep.html"})
    assert text == f"Documentation from: {site.url}/pages/deep.html\n\ndeep text"


async def test_fetch_cuts_huge_pages_before_parsing(
    site: FakeDocsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = site_tools(site, tmp_path)["fetch_hf_docs"]
    huge = await tool.ainvoke({"url": f"{site.url}/pages/huge.html"})
    assert huge.endswith(
        "of 2,499,991; call again with offset=20000 for more]"
    )  # 2.5 MB less tags, plus a fence
    monkeypatch.setattr(page_text, "MAX_HTML_TAGS", 1000)
    many = await tool.ainvoke({"url": f"{site.url}/pages/many.html"})
    assert "para997" in many and "para998" not in many  # <body>, <main> and 998 <p> tags


async def test_fetched_pages_kept_for_the_run_are_bounded(
    site: FakeDocsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs, "CACHED_CHARS", 5_000)
    tool = site_tools(site, tmp_path)["fetch_hf_docs"]
    for name in ("legacy", "many", "legacy", "legacy"):
        await tool.ainvoke({"url": f"{site.url}/pages/{name}.html"})
    assert [r.path for r in site.requests] == ["/pages/legacy.html", "/pages/many.html", "/pages/legacy.html"]
