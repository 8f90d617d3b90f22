"""hf_papers against a fake Hub papers API, a fake arXiv HTML server and a fake Semantic Scholar API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ml_intern.tools.web.papers as papers
from ml_intern.tools.base import MAX_RESULT_CHARS, ToolEnv, ToolError
from tests.fakes.research_servers import DPO_ID, GRPO_PAPER, NBSP_PAPER_ID, FakeArxiv, FakeHub, fresh
from tests.fakes.s2_server import FakeSemanticScholar

FAST_RETRIES = {"retry_attempts": 3, "retry_delay": 0.01, "max_retry_delay": 0.05}


@pytest.fixture(scope="module")
def hub_server() -> Iterator[FakeHub]:
    with FakeHub() as server:
        yield server


@pytest.fixture
def hub(hub_server: FakeHub) -> FakeHub:
    return fresh(hub_server)


@pytest.fixture(scope="module")
def arxiv_server() -> Iterator[FakeArxiv]:
    with FakeArxiv() as server:
        yield server


@pytest.fixture
def arxiv(arxiv_server: FakeArxiv) -> FakeArxiv:
    return fresh(arxiv_server)


@pytest.fixture(scope="module")
def s2_server() -> Iterator[FakeSemanticScholar]:
    with FakeSemanticScholar() as server:
        yield server


@pytest.fixture
def s2(s2_server: FakeSemanticScholar) -> FakeSemanticScholar:
    return fresh(s2_server)


def papers_tool(hub: FakeHub, arxiv: FakeArxiv, s2: FakeSemanticScholar, tmp_path: Path, **environ: str):
    papers_config = {"html_urls": [f"{arxiv.url}/html"], "semantic_scholar_url": s2.url}
    config = {"http": FAST_RETRIES, "papers": papers_config}
    env = ToolEnv(
        workdir=tmp_path,
        home=tmp_path,
        config=config,
        hf_endpoint=hub.url,
        hf_token="hf_secret",
        environ=environ,
    )
    (tool,) = papers.make_tools(env)
    return tool


@pytest.fixture
def hf_papers(hub: FakeHub, arxiv: FakeArxiv, s2: FakeSemanticScholar, tmp_path: Path):
    return papers_tool(hub, arxiv, s2, tmp_path)


async def test_search_lists_matching_papers_with_ids(hf_papers, hub: FakeHub) -> None:
    result = await hf_papers.ainvoke({"operation": "search", "query": "preference", "limit": 5})
    assert "Direct Preference Optimization" in result
    assert f"arxiv_id: {DPO_ID}" in result
    assert "LoRA" not in result
    (request,) = hub.find("GET", "/api/papers/search")
    assert request.arg("q") == "preference" and request.arg("limit") == "5"
    assert request.headers["authorization"] == "Bearer hf_secret"


async def test_trending_filters_daily_papers_by_query(hf_papers, hub: FakeHub) -> None:
    result = await hf_papers.ainvoke({"operation": "trending", "query": "lora", "date": "2024-06-01"})
    assert "LoRA: Low-Rank Adaptation" in result
    assert "DeepSeekMath" not in result and "Direct Preference" not in result
    (request,) = hub.find("GET", "/api/daily_papers")
    assert request.arg("date") == "2024-06-01"


async def test_paper_details_show_summary_authors_and_code(hf_papers) -> None:
    result = await hf_papers.ainvoke({"operation": "paper_details", "arxiv_id": f"arxiv:{DPO_ID}"})
    assert "Rafael Rafailov" in result
    assert "without a reward model" in result  # the AI summary
    assert "github.com/eric-mitchell/direct-preference-optimization (2400 stars)" in result


async def test_unknown_paper_says_how_to_find_ids(hf_papers) -> None:
    with pytest.raises(ToolError, match="9999.99999 was not found on the Hub.*search"):
        await hf_papers.ainvoke({"operation": "paper_details", "arxiv_id": "9999.99999"})


async def test_operations_on_a_paper_require_an_arxiv_id(hf_papers) -> None:
    with pytest.raises(ToolError, match="'arxiv_id' is required for read_paper"):
        await hf_papers.ainvoke({"operation": "read_paper"})


async def test_read_paper_without_section_lists_abstract_and_sections(hf_papers, arxiv: FakeArxiv) -> None:
    result = await hf_papers.ainvoke(
        {"operation": "read_paper", "arxiv_id": f"https://arxiv.org/abs/{DPO_ID}v2"}
    )
    assert result.startswith("# Direct Preference Optimization")
    assert "simple classification loss" in result
    for title in (
        "- 1 Introduction",
        "- 4 Direct Preference Optimization",
        "  - 4.1 Loss function",
        "- 6 Experiments",
    ):
        assert title in result
    assert "section='4'" in result
    assert len(result) <= MAX_RESULT_CHARS
    (request,) = arxiv.find("GET", f"/html/{DPO_ID}")
    assert "authorization" not in request.headers  # arXiv is not a Hugging Face host


async def test_read_paper_section_by_number_keeps_math_and_drops_markup(hf_papers) -> None:
    intro = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": DPO_ID, "section": "1"})
    assert "$\\pi_\\theta$ as the policy" in intro
    assert "junk" not in intro and "color:red" not in intro
    subsection = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": DPO_ID, "section": "4.1"})
    assert subsection.startswith("# 4.1 Loss function") and "chosen and rejected" in subsection
    parent = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": DPO_ID, "section": "4"})
    assert "We derive the DPO objective" in parent and "chosen and rejected" in parent


async def test_long_section_is_paged_with_offset(hf_papers, arxiv: FakeArxiv) -> None:
    first = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": DPO_ID, "section": "experiments"})
    assert "Result paragraph 0:" in first and "Result paragraph 399:" not in first
    assert len(first) < papers.SECTION_CHARS + 500
    assert "call again with offset=8000 for more" in first
    second = await hf_papers.ainvoke(
        {"operation": "read_paper", "arxiv_id": DPO_ID, "section": "Experiments", "offset": 8000}
    )
    assert "characters 8,000-" in second
    assert len(arxiv.find("GET", "/html/")) == 1  # the parsed paper is reused


async def test_unknown_section_lists_the_sections(hf_papers) -> None:
    with pytest.raises(ToolError, match="(?s)Section 'Ablations' not found.*- 6 Experiments"):
        await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": DPO_ID, "section": "Ablations"})


async def test_read_paper_without_html_falls_back_to_abstract(hf_papers, arxiv: FakeArxiv) -> None:
    result = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": "2106.09685"})
    assert "LoRA: Low-Rank Adaptation" in result and "freezes the pretrained weights" in result
    assert "only the abstract" in result and "https://arxiv.org/pdf/2106.09685" in result
    assert arxiv.find("GET", "/html/2106.09685")


async def test_find_all_resources_lists_models_datasets_and_collections(hf_papers, hub: FakeHub) -> None:
    result = await hf_papers.ainvoke({"operation": "find_all_resources", "arxiv_id": DPO_ID})
    assert "HuggingFaceH4/zephyr-7b-beta — downloads: 150,000" in result
    assert "HuggingFaceH4/ultrafeedback_binarized" in result
    assert "Preference tuning — by trl-lib" in result
    (models,) = hub.find("GET", "/api/models")
    assert models.arg("filter") == f"arxiv:{DPO_ID}" and models.arg("sort") == "downloads"
    (collections,) = hub.find("GET", "/api/collections")
    assert collections.arg("item") == f"papers/{DPO_ID}"


async def test_find_models_reports_none(hf_papers) -> None:
    result = await hf_papers.ainvoke({"operation": "find_models", "arxiv_id": "2106.09685", "sort": "likes"})
    assert result == "No models cite arxiv:2106.09685."


async def test_throttled_hub_call_is_retried(hf_papers, hub: FakeHub) -> None:
    hub.fail("GET", "/api/papers/search", 429, headers={"Retry-After": "0"})
    result = await hf_papers.ainvoke({"operation": "search", "query": "lora"})
    assert "LoRA" in result
    assert len(hub.find("GET", "/api/papers/search")) == 2


async def test_persistent_hub_error_is_reported(hf_papers, hub: FakeHub) -> None:
    hub.fail("GET", "/api/papers/search", 503, times=5)
    with pytest.raises(ToolError, match="The Hub failed with HTTP 503 while searching papers after 3 tries"):
        await hf_papers.ainvoke({"operation": "search", "query": "lora"})
    assert len(hub.find("GET", "/api/papers/search")) == 3


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2305.18290", "2305.18290"),
        ("arXiv:2305.18290v3", "2305.18290"),
        ("https://arxiv.org/pdf/2305.18290.pdf", "2305.18290"),
    ],
)
def test_arxiv_ids_are_normalised(given: str, expected: str) -> None:
    assert papers.normalise_arxiv_id(given) == expected


async def test_read_paper_prefers_the_hubs_markdown(hf_papers, hub: FakeHub, arxiv: FakeArxiv) -> None:
    grpo = GRPO_PAPER["id"]
    contents = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": grpo})
    assert contents.startswith("# DeepSeekMath") and "variant of PPO" in contents
    assert (
        "- 4 Reinforcement Learning" in contents and "  - 4.1 Group Relative Policy Optimization" in contents
    )
    subsection = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": grpo, "section": "4.1"})
    assert "KL coefficient 0.04" in subsection and "# a comment, not a heading" in subsection
    parent = await hf_papers.ainvoke(
        {"operation": "read_paper", "arxiv_id": grpo, "section": "reinforcement"}
    )
    assert "drops the value model" in parent and "KL coefficient" in parent
    assert len(hub.find("GET", f"/papers/{grpo}.md")) == 1  # parsed once, then reused
    assert not arxiv.find("GET", f"/html/{grpo}")  # the arXiv HTML parser is the fallback only


async def test_heading_with_a_long_nbsp_run_is_parsed_quickly(hf_papers, hub: FakeHub) -> None:
    started = time.monotonic()
    contents = await hf_papers.ainvoke({"operation": "read_paper", "arxiv_id": NBSP_PAPER_ID})
    assert time.monotonic() - started < 2  # a backtracking heading regex took ~30 s on this line
    assert contents.startswith("# Slow Headings") and "- 1 Method" in contents
    assert len(hub.find("GET", f"/papers/{NBSP_PAPER_ID}.md")) == 1


def search_gap(s2: FakeSemanticScholar) -> float:
    """Seconds between the first two snippet searches the fake received."""
    first, second = [t for path, t in s2.arrivals if path.endswith("/snippet/search")][:2]
    return abs(second - first)


async def test_semantic_scholar_calls_are_paced_with_an_api_key(hub, arxiv, s2, tmp_path) -> None:
    searches = [{"operation": "snippet_search", "query": q, "limit": 2} for q in ("dpo beta", "ipo tau")]
    graph = {"operation": "citation_graph", "arxiv_id": DPO_ID, "direction": "references"}
    s2.arrivals.clear()
    keyed = papers_tool(hub, arxiv, s2, tmp_path, S2_API_KEY="s2-secret-key")
    await asyncio.gather(*(keyed.ainvoke(args) for args in [*searches, graph]))
    assert len(s2.arrivals) == 3 and search_gap(s2) >= 0.8  # the key's limit: 1 s between searches
    s2.arrivals.clear()
    unkeyed = papers_tool(hub, arxiv, s2, tmp_path)
    await asyncio.gather(*(unkeyed.ainvoke({**args, "query": args["query"] + " x"}) for args in searches))
    assert search_gap(s2) < 0.5  # without a key, nothing to pace


async def test_citation_graph_shows_influence_intents_and_contexts(
    hf_papers, s2: FakeSemanticScholar
) -> None:
    result = await hf_papers.ainvoke(
        {"operation": "citation_graph", "arxiv_id": f"arxiv:{DPO_ID}", "direction": "both", "limit": 5}
    )
    assert "## Cited by arxiv:2305.18290\n- [influential] A General Theoretical Paradigm" in result
    assert "(2023, 450 citations) arxiv_id: 2310.12036\n  intents: methodology" in result
    contexts = [line for line in result.splitlines() if line.startswith("  > ")]
    assert len(contexts) == 3 and all(len(c) <= 204 for c in contexts)  # two of IPO's three, one of PPO's
    assert "  > c" not in result and "- KTO: Model Alignment" in result
    assert "## References of arxiv:2305.18290\n- [influential] Proximal Policy Optimization" in result
    citing, cited = s2.find("GET", "/citations$")[0], s2.find("GET", "/references$")[0]
    assert citing.path == f"/graph/v1/paper/ARXIV:{DPO_ID}/citations" and cited.arg("limit") == "5"
    assert "contexts,intents,isInfluential" in citing.arg("fields")
    assert "x-api-key" not in citing.headers and "authorization" not in citing.headers


async def test_throttled_semantic_scholar_call_waits_and_retries(hf_papers, s2: FakeSemanticScholar) -> None:
    s2.fail("GET", "/snippet/search", 429, headers={"Retry-After": "1"})
    result = await hf_papers.ainvoke({"operation": "snippet_search", "query": "dpo beta", "limit": 3})
    assert result.startswith("# Passages matching 'dpo beta'\n- Direct Preference Optimization [Experiments]")
    assert "We set beta = 0.1" in result and max(len(line) for line in result.splitlines()) <= 402
    first, second = s2.find("GET", "/graph/v1/snippet/search")
    assert second.arg("query") == "dpo beta" and second.arg("limit") == "3"


async def test_semantic_scholar_key_goes_to_semantic_scholar_only(hub, arxiv, s2, tmp_path) -> None:
    tool = papers_tool(hub, arxiv, s2, tmp_path, S2_API_KEY="s2-secret-key")
    result = await tool.ainvoke({"operation": "recommend", "arxiv_id": DPO_ID, "limit": 1})
    assert result == "# Papers like 2305.18290\n- " + (
        "A General Theoretical Paradigm to Understand Learning from Human Preferences (2023, 450 citations) "
        "arxiv_id: 2310.12036"
    )
    (request,) = s2.find("GET", f"/recommendations/v1/papers/forpaper/ARXIV:{DPO_ID}")
    assert request.headers["x-api-key"] == "s2-secret-key" and request.arg("limit") == "1"
    await tool.ainvoke({"operation": "search", "query": "lora"})
    (hub_request,) = hub.find("GET", "/api/papers/search")
    assert "x-api-key" not in hub_request.headers


async def test_recommend_from_several_papers_posts_them(hf_papers, s2: FakeSemanticScholar) -> None:
    args = {"positive_ids": "2305.18290, arxiv:2106.09685v2", "negative_ids": "1707.06347"}
    result = await hf_papers.ainvoke({"operation": "recommend", **args})
    assert "Proximal Policy Optimization Algorithms (2017, 20,000 citations)" in result
    (request,) = s2.find("POST", "/recommendations/v1/papers")
    assert request.json() == {
        "positivePaperIds": ["ARXIV:2305.18290", "ARXIV:2106.09685"],
        "negativePaperIds": ["ARXIV:1707.06347"],
    }


async def test_search_with_filters_asks_semantic_scholar(hf_papers, hub: FakeHub, s2) -> None:
    filters = {"date_from": "2023-01-01", "min_citations": 100, "sort_by": "citationCount"}
    args = {"operation": "search", "query": "preference", "categories": "Computer Science", **filters}
    result = await hf_papers.ainvoke(args)
    assert result.startswith("# Papers matching 'preference' (Semantic Scholar, 2 total)")
    assert "- KTO: Model Alignment as Prospect Theoretic Optimization (2024, 300 citations)" in result
    (request,) = s2.find("GET", "/graph/v1/paper/search/bulk")
    assert request.arg("publicationDateOrYear") == "2023-01-01:" and request.arg("minCitationCount") == "100"
    assert request.arg("sort") == "citationCount:desc" and request.arg("fieldsOfStudy") == "Computer Science"
    assert not hub.find("GET", "/api/papers/search")


async def test_semantic_scholar_answers_are_cached(hf_papers, s2: FakeSemanticScholar) -> None:
    call = {"operation": "citation_graph", "arxiv_id": DPO_ID, "direction": "references"}
    assert await hf_papers.ainvoke(call) == await hf_papers.ainvoke(call)
    assert len(s2.find("GET", "/references$")) == 1


async def test_paper_unknown_to_semantic_scholar_is_one_clear_message(hf_papers) -> None:
    with pytest.raises(ToolError, match="^Semantic Scholar does not know this paper; check the arxiv id.$"):
        await hf_papers.ainvoke({"operation": "citation_graph", "arxiv_id": "9999.99999"})


async def test_persistent_semantic_scholar_throttling_is_reported(hf_papers, s2: FakeSemanticScholar) -> None:
    s2.fail("GET", "/citations$", 429, times=5, headers={"Retry-After": "0"})
    with pytest.raises(ToolError, match="Semantic Scholar is rate-limiting requests"):
        await hf_papers.ainvoke({"operation": "citation_graph", "arxiv_id": DPO_ID})
    assert len(s2.find("GET", "/citations$")) == 3


def test_schemas_fit_the_first_request_budget(tmp_path: Path) -> None:
    """hf_papers (every operation, its rarer arguments hidden) and research stay small in the prompt."""
    import json

    from langchain_core.utils.function_calling import convert_to_openai_tool

    from ml_intern.tools.registry import all_tools

    offered = {t.name: t for t in all_tools(ToolEnv(workdir=tmp_path, home=tmp_path))}
    sizes = {
        name: len(json.dumps(convert_to_openai_tool(offered[name]))) for name in ("hf_papers", "research")
    }
    assert sizes["hf_papers"] <= 1_350 and sizes["research"] <= 450, sizes
    assert "citation_graph" in offered["hf_papers"].description
