"""github_find_examples, github_list_repos and github_read_file against a fake GitHub REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

import ml_intern.tools.web.github as github
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.registry import offered
from tests.fakes.docs_server import FakeGitHubSearch
from tests.fakes.http_fake import json_reply
from tests.fakes.research_servers import LARGE_FILE, FakeGitHub, FakeWebsite, fresh

RATE_LIMITED = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"}


@pytest.fixture(scope="module")
def api_server() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def api(api_server: FakeGitHub) -> FakeGitHub:
    return fresh(api_server)


@pytest.fixture(scope="module")
def search_api() -> Iterator[FakeGitHubSearch]:
    with FakeGitHubSearch() as server:
        yield server


def make_github_tools(api: FakeGitHub, tmp_path: Path, token: str | None = "ghp_secret") -> dict:
    config = {"http": {"retry_delay": 0.01, "max_retry_delay": 0.05}}
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=config, github_api_url=api.url, github_token=token)
    return {tool.name: offered(tool) for tool in github.make_tools(env)}  # as the model gets them


@pytest.fixture
def tools(api: FakeGitHub, tmp_path: Path) -> dict:
    return make_github_tools(api, tmp_path)


async def test_find_examples_by_keyword_ranks_exact_names_first(tools, api: FakeGitHub) -> None:
    result = await tools["github_find_examples"].ainvoke({"repo": "trl", "keyword": "sft"})
    lines = result.splitlines()
    assert lines[0] == "Example files in huggingface/trl (branch main) matching 'sft': 2 of 2"
    assert lines[2].startswith("1. examples/scripts/sft.py (")
    assert lines[3].startswith("2. examples/notebooks/sft_notebook.ipynb")
    assert "trl/trainer/sft_trainer.py" not in result
    assert "github_read_file(repo='huggingface/trl'" in result
    (tree,) = api.find("GET", "/git/trees/main")
    assert tree.arg("recursive") == "1"
    assert all(r.headers["authorization"] == "Bearer ghp_secret" for r in api.requests)


async def test_find_examples_without_keyword_lists_example_directories(tools) -> None:
    result = await tools["github_find_examples"].ainvoke({"repo": "huggingface/trl", "max_results": 50})
    paths = [line.split(". ", 1)[1].split(" (")[0] for line in result.splitlines() if line[:1].isdigit()]
    assert paths[0].startswith("examples/scripts/")
    assert "scripts/train_dpo_large.py" in paths and paths.index("scripts/train_dpo_large.py") > 3
    assert "README.md" not in paths and "trl/trainer/sft_trainer.py" not in paths
    assert "examples/images/logo.png" not in paths


async def test_find_examples_falls_back_to_the_whole_repo(tools) -> None:
    result = await tools["github_find_examples"].ainvoke({"repo": "trl", "keyword": "sft_trainer"})
    assert "(none in example directories; matches elsewhere in the repo)" in result
    assert "1. trl/trainer/sft_trainer.py" in result


async def test_find_examples_tolerates_typos(tools) -> None:
    result = await tools["github_find_examples"].ainvoke({"repo": "trl", "keyword": "grpo_vml"})
    assert "1. examples/scripts/grpo_vlm.py" in result


async def test_unknown_repo_suggests_listing(tools) -> None:
    with pytest.raises(
        ToolError, match="Repository huggingface/nope not found.*github_list_repos\\(owner='huggingface'\\)"
    ):
        await tools["github_find_examples"].ainvoke({"repo": "nope"})


async def test_unknown_repo_lists_similar_repos_by_stars(
    search_api: FakeGitHubSearch, tmp_path: Path
) -> None:
    tools = make_github_tools(search_api, tmp_path)
    with pytest.raises(ToolError) as raised:
        await tools["github_find_examples"].ainvoke({"repo": "huggingface/pef"})
    lines = str(raised.value).splitlines()
    assert lines[0].startswith("Repository huggingface/pef not found.")
    assert lines[1:] == [
        "Similar repositories by stars:",
        "1. huggingface/peft (18,000 stars) Parameter-efficient fine-tuning",
        "2. someone/pef-fork (12 stars) A fork",
    ]
    (search,) = search_api.find("GET", "/search/repositories")
    assert (search.arg("q"), search.arg("sort"), search.arg("per_page")) == ("pef in:name", "stars", "10")


async def test_find_examples_offers_fifty_results_by_default(tools) -> None:
    schema = convert_to_openai_tool(tools["github_find_examples"])["function"]["parameters"]
    assert schema["properties"]["max_results"]["default"] == 50


async def test_list_repos_sorted_by_stars_then_by_update(tools, api: FakeGitHub) -> None:
    by_stars = await tools["github_list_repos"].ainvoke({"owner": "huggingface", "limit": 2})
    rows = [line for line in by_stars.splitlines() if line.startswith("| huggingface/")]
    assert [row.split(" | ")[0] for row in rows] == ["| huggingface/transformers", "| huggingface/peft"]
    assert "| 150,000 | 30,000 | Python | 2024-06-01 | State-of-the-art ML for PyTorch |" in rows[0]
    request = api.find("GET", "/search/repositories")[0]
    assert (request.arg("q"), request.arg("sort"), request.arg("per_page")) == (
        "org:huggingface",
        "stars",
        "2",
    )
    by_update = await tools["github_list_repos"].ainvoke({"owner": "huggingface", "sort": "updated"})
    assert by_update.splitlines()[3].startswith("| huggingface/trl ")


async def test_list_repos_of_unknown_owner_suggests_owner_type(tools) -> None:
    with pytest.raises(ToolError, match="no org named 'nobody'.*owner_type='user'"):
        await tools["github_list_repos"].ainvoke({"owner": "nobody"})


async def test_read_file_shows_first_300_numbered_lines(tools) -> None:
    result = await tools["github_read_file"].ainvoke(
        {"repo": "huggingface/trl", "path": "examples/scripts/sft.py"}
    )
    assert result.splitlines()[1] == "     1\t# line 1: SFTTrainer example"
    assert "   300\t# line 300:" in result and "# line 301:" not in result
    assert result.endswith("[lines 1-300 of 400; use line_start/line_end for more]")


async def test_read_file_line_range(tools, api: FakeGitHub) -> None:
    args = {"repo": "huggingface/trl", "path": "examples/scripts/sft.py", "ref": "v1.0", "line_start": 398}
    result = await tools["github_read_file"].ainvoke(args)
    assert result.splitlines()[0] == "huggingface/trl/examples/scripts/sft.py @ v1.0"
    assert result.splitlines()[1:4] == [f"   {n}\t# line {n}: SFTTrainer example" for n in (398, 399, 400)]
    assert api.find("GET", "/contents/")[0].arg("ref") == "v1.0"


async def test_read_file_past_the_end_says_how_long_it_is(tools) -> None:
    with pytest.raises(ToolError, match="line_start 900 is past the end of the file \\(400 lines\\)"):
        await tools["github_read_file"].ainvoke(
            {"repo": "huggingface/trl", "path": "examples/scripts/sft.py", "line_start": 900}
        )


async def test_notebook_is_rendered_as_text_with_trimmed_outputs(tools) -> None:
    args = {"repo": "huggingface/trl", "path": "examples/notebooks/sft_notebook.ipynb"}
    result = await tools["github_read_file"].ainvoke(args)
    assert "# Fine-tune with SFT" in result and "Steps below." in result
    assert "```python" in result and "trainer = SFTTrainer(model='Qwen/Qwen2-0.5B')" in result
    assert "step 14 loss" in result and "step 15 loss" not in result
    assert "[185 more output lines trimmed]" in result
    assert "[image/png output]" in result and "iVBORw0KGgo" not in result
    assert "ValueError: bad config" in result
    assert '"cell_type"' not in result


async def test_large_file_is_fetched_raw(tools, api: FakeGitHub) -> None:
    result = await tools["github_read_file"].ainvoke({"repo": "huggingface/trl", "path": LARGE_FILE})
    assert "     1\timport datasets" in result
    raw_request = api.find("GET", "/contents/")[-1]
    assert raw_request.headers["accept"] == "application/vnd.github.raw"


async def test_directory_is_listed_instead_of_read(tools) -> None:
    with pytest.raises(ToolError, match="(?s)is a directory.*examples/scripts/sft.py"):
        await tools["github_read_file"].ainvoke({"repo": "huggingface/trl", "path": "examples/scripts"})


async def test_binary_file_is_refused(tools) -> None:
    with pytest.raises(ToolError, match="binary file"):
        await tools["github_read_file"].ainvoke(
            {"repo": "huggingface/trl", "path": "examples/images/logo.png"}
        )


async def test_missing_file_suggests_how_to_find_paths(tools) -> None:
    with pytest.raises(
        ToolError, match="Not found: src/x.py in huggingface/trl.*github_find_examples.*github_list_repos"
    ):
        await tools["github_read_file"].ainvoke({"repo": "huggingface/trl", "path": "src/x.py"})


async def test_missing_file_without_token_mentions_private_repos(api: FakeGitHub, tmp_path: Path) -> None:
    tools = make_github_tools(api, tmp_path, token=None)
    with pytest.raises(ToolError, match="private repo also needs GITHUB_TOKEN"):
        await tools["github_read_file"].ainvoke({"repo": "huggingface/trl", "path": "src/x.py"})
    assert all("authorization" not in r.headers for r in api.requests)


@pytest.mark.parametrize(
    ("status", "token", "message"),
    [
        (401, "ghp_secret", "rejected GITHUB_TOKEN \\(401\\): it is invalid or expired"),
        (401, None, "requires authentication \\(401\\): set GITHUB_TOKEN"),
        (403, None, "refused access \\(403: .*\\): GITHUB_TOKEN must be set"),
    ],
)
async def test_auth_failures_name_github_token(
    api: FakeGitHub, tmp_path: Path, status: int, token: str | None, message: str
) -> None:
    api.fail("GET", "/repos/huggingface/trl$", status, body={"message": "Bad credentials"})
    tools = make_github_tools(api, tmp_path, token=token)
    with pytest.raises(ToolError, match=message):
        await tools["github_find_examples"].ainvoke({"repo": "trl"})
    assert len(api.find("GET", "/repos/huggingface/trl$")) == 1  # not retried


@pytest.mark.parametrize(("status", "headers"), [(403, RATE_LIMITED), (429, {"Retry-After": "0"})])
async def test_rate_limit_is_retried_after_a_backoff(
    tools, api: FakeGitHub, status: int, headers: dict
) -> None:
    api.fail("GET", "/search/repositories", status, headers=headers)
    result = await tools["github_list_repos"].ainvoke({"owner": "huggingface"})
    assert "huggingface/transformers" in result
    assert len(api.find("GET", "/search/repositories")) == 2


async def test_persistent_rate_limit_is_explained(api: FakeGitHub, tmp_path: Path) -> None:
    api.fail("GET", "/search/repositories", 403, times=5, headers=RATE_LIMITED)
    tools = make_github_tools(api, tmp_path, token=None)
    with pytest.raises(ToolError, match="rate limit exceeded.*set GITHUB_TOKEN"):
        await tools["github_list_repos"].ainvoke({"owner": "huggingface"})
    assert len(api.find("GET", "/search/repositories")) == 3  # config http.retry_attempts


async def test_token_is_not_sent_when_redirected_to_another_host(tools, api: FakeGitHub) -> None:
    with FakeWebsite() as elsewhere:
        elsewhere.route(
            "GET", r"/repos/huggingface/renamed", lambda r: json_reply(200, {"default_branch": "main"})
        )
        location = {"Location": f"{elsewhere.url}/repos/huggingface/renamed"}
        api.route("GET", r"/repos/huggingface/old-name", lambda r: (301, location, b""))
        with pytest.raises(ToolError):  # the tree is then asked of the API host, which does not know the repo
            await tools["github_find_examples"].ainvoke({"repo": "old-name"})
        assert (
            api.find("GET", "/repos/huggingface/old-name$")[0].headers["authorization"] == "Bearer ghp_secret"
        )
        assert "authorization" not in elsewhere.find("GET", "/repos/huggingface/renamed")[0].headers
