"""web_search against a fake DuckDuckGo HTML results page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import ml_intern.tools.web.search as web_search
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.registry import offered
from tests.fakes.http_fake import FakeHTTPServer
from tests.fakes.research_servers import FakeSearchEngine, fresh, html_reply


@pytest.fixture(scope="module")
def engine_server() -> Iterator[FakeSearchEngine]:
    with FakeSearchEngine() as server:
        yield server


@pytest.fixture
def engine(engine_server: FakeSearchEngine) -> FakeSearchEngine:
    return fresh(engine_server)


def make_search_tool(search_url: str, tmp_path: Path):
    config = {"web_search": {"url": search_url}, "http": {"retry_delay": 0.01, "max_retry_delay": 0.05}}
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=config, hf_token="hf_secret")
    (tool,) = web_search.make_tools(env)
    return offered(tool)  # as the model gets it: the original's argument names taken


@pytest.fixture
def search(engine: FakeSearchEngine, tmp_path: Path):
    return make_search_tool(f"{engine.url}/html/", tmp_path)


def result_urls(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("   http")]


async def test_results_have_title_url_and_snippet(search, engine: FakeSearchEngine) -> None:
    result = await search.ainvoke({"query": "dpo trainer"})
    assert result.startswith("Web results for 'dpo trainer' (5):")
    assert (
        "1. DPO Trainer & TRL\n   https://huggingface.co/docs/trl/dpo_trainer\n   Train with DPO in TRL"
        in result
    )
    assert "Buy GPUs" not in result  # ads are skipped
    (request,) = engine.find("GET", "/html")
    assert request.arg("q") == "dpo trainer"
    assert "authorization" not in request.headers


async def test_results_end_with_the_reminder_to_cite_sources(search) -> None:
    result = await search.ainvoke({"query": "dpo trainer"})
    assert result.endswith("\n\nInclude a Sources section (these URLs) in your final answer.")


async def test_duplicate_pages_are_listed_once(search) -> None:
    urls = result_urls(await search.ainvoke({"query": "dpo", "num_results": 8}))
    assert urls.count("https://huggingface.co/docs/trl/dpo_trainer") == 1
    assert not any("utm_source" in url for url in urls)


async def test_at_most_eight_results(search) -> None:
    urls = result_urls(await search.ainvoke({"query": "dpo", "num_results": 50}))
    assert len(urls) == 8 == len(set(urls))


async def test_include_domains_keeps_only_those_and_narrows_the_query(
    search, engine: FakeSearchEngine
) -> None:
    result = await search.ainvoke({"query": "dpo", "include_domains": ["https://www.HuggingFace.co/"]})
    assert result_urls(result) == ["https://huggingface.co/docs/trl/dpo_trainer"]
    assert engine.find("GET", "/html")[0].arg("q") == "dpo site:huggingface.co"


async def test_exclude_domains_drop_the_domain_and_its_subdomains(search) -> None:
    urls = result_urls(
        await search.ainvoke({"query": "dpo", "num_results": 8, "exclude_domains": ["example.net"]})
    )
    assert urls and not any("example.net" in url for url in urls)
    assert "https://arxiv.org/abs/2305.18290" in urls


async def test_nothing_left_after_filters_is_said(search) -> None:
    result = await search.ainvoke({"query": "dpo", "include_domains": ["pytorch.org"]})
    assert result == "No web results for 'dpo' in the allowed domains."


async def test_server_errors_are_retried_then_reported(search, engine: FakeSearchEngine) -> None:
    engine.fail("GET", "/html", 503, times=5)
    with pytest.raises(ToolError, match="search engine answered HTTP 503"):
        await search.ainvoke({"query": "dpo"})
    assert len(engine.find("GET", "/html")) == 3


async def test_bot_check_page_is_explained(tmp_path: Path) -> None:
    with FakeHTTPServer() as server:
        page = "<html><body><form id='challenge-form'>anomaly detected</form></body></html>"
        server.route("GET", r"/html/?", lambda r: html_reply(page))
        tool = make_search_tool(f"{server.url}/html/", tmp_path)
        with pytest.raises(ToolError, match="bot check"):
            await tool.ainvoke({"query": "dpo"})


async def test_empty_query_is_refused(search) -> None:
    with pytest.raises(ToolError, match="must not be empty"):
        await search.ainvoke({"query": "  "})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://www.example.com/a/", "http://example.com/a"),
        ("https://example.com/a?utm_source=x&b=1#top", "https://example.com/a?b=1"),
        ("https://Example.com/a?b=1&c=2", "https://example.com/a?c=2&b=1"),
    ],
)
def test_same_page_urls_normalise_alike(first: str, second: str) -> None:
    assert web_search.normalised_url(first) == web_search.normalised_url(second)


def test_different_pages_stay_apart() -> None:
    assert web_search.normalised_url("https://example.com/a") != web_search.normalised_url(
        "https://example.com/b"
    )


async def test_the_originals_variable_names_the_engine(engine: FakeSearchEngine, tmp_path: Path) -> None:
    config = {"web_search": {"url": "http://127.0.0.1:9/closed/"}}
    environ = {"CLAWD_WEB_SEARCH_BASE_URL": f"{engine.url}/html/"}
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=config, environ=environ)
    (tool,) = web_search.make_tools(env)
    out = await offered(tool).ainvoke({"query": "transformers"})
    assert "http" in out and engine.requests  # the variable's engine answered, not the config's closed port
