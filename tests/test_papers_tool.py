"""hf_papers against a fake Hub papers API and a fake arXiv HTML server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import ml_intern.tools.web.papers as papers
from ml_intern.tools.base import MAX_RESULT_CHARS, ToolEnv, ToolError
from tests.fakes.research_servers import DPO_ID, FakeArxiv, FakeHub, fresh

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


@pytest.fixture
def hf_papers(hub: FakeHub, arxiv: FakeArxiv, tmp_path: Path):
    config = {"http": FAST_RETRIES, "papers": {"html_urls": [f"{arxiv.url}/html"]}}
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=config, hf_endpoint=hub.url, hf_token="hf_secret")
    (tool,) = papers.make_tools(env)
    return tool


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
    assert "call again with offset=10000 for more" in first
    second = await hf_papers.ainvoke(
        {"operation": "read_paper", "arxiv_id": DPO_ID, "section": "Experiments", "offset": 10000}
    )
    assert "characters 10,000-" in second
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
