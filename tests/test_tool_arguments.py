"""The original ml-intern's tool argument names, against local stand-ins: each alias reaches the service as
our argument, the original's rarer arguments work without being in the prompt, unknown arguments are answered
with the names the tool takes, and the schemas the model sees do not grow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

import ml_intern.tools.hub.repo as hub_repo
import ml_intern.tools.hub.repo_git as hub_repo_git
import ml_intern.tools.jobs.tool as jobs_tool
import ml_intern.tools.web.github as github
import ml_intern.tools.web.search as web_search
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.local.shell import bash_timeout
from ml_intern.tools.registry import approval_need, build_tools, offered, tool_facts
from tests.fakes.hub_server import FakeHub
from tests.fakes.jobs_server import FakeJobsHub
from tests.fakes.research_servers import FakeGitHub, FakeSearchEngine
from tests.harness_graph import calls, open_agent, saved_messages, tool_messages

FAST = {"http": {"retry_delay": 0.01, "max_retry_delay": 0.05}}
REPO = "alice/tiny-model"
TOKEN = "hf_test"
SECRET_ENV = {
    "WANDB_API_KEY": "wandb-value",
    "ANTHROPIC_API_KEY": "sk-ant-value",
    "GITHUB_TOKEN": "ghp_value",
}


def offered_tools(module: Any, env: ToolEnv) -> dict[str, Any]:
    """A family's tools as the registry offers them to the model."""
    return {tool.name: offered(tool) for tool in module.make_tools(env)}


@pytest.fixture
def engine() -> Iterator[FakeSearchEngine]:
    with FakeSearchEngine() as server:
        yield server


@pytest.fixture
def search(engine: FakeSearchEngine, tmp_path: Path) -> Any:
    config = {**FAST, "web_search": {"url": f"{engine.url}/html/"}}
    return offered_tools(web_search, ToolEnv(workdir=tmp_path, home=tmp_path, config=config))["web_search"]


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(token=TOKEN) as server:
        lines = "".join(f"print({n})\n" for n in range(1, 1001)).encode()
        server.add_repo(REPO, files={"README.md": b"# Tiny\n", "train.py": lines})
        yield server


def hub_tools(hub: FakeHub, tmp_path: Path) -> dict[str, Any]:
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=FAST, hf_endpoint=hub.url, hf_token=TOKEN)
    return offered_tools(hub_repo, env) | offered_tools(hub_repo_git, env)


@pytest.fixture
def jobs_hub() -> Iterator[FakeJobsHub]:
    with FakeJobsHub(orgs=("acme",)) as server:
        yield server


def jobs(server: FakeJobsHub, tmp_path: Path, environ: dict[str, str] | None = None) -> Any:
    env = ToolEnv(
        workdir=tmp_path,
        home=tmp_path / "home",
        config={**FAST, "hf_jobs": {"poll_interval": 0.05}},
        hf_endpoint=server.url,
        hf_token=server.token,
        environ=environ or {},
    )
    return offered(jobs_tool.make_tools(env)[0])


def job_call(**args: Any) -> dict[str, Any]:
    """A tool call (hf_jobs answers content and artifact only to a full call)."""
    return {"name": "hf_jobs", "args": args, "id": "call_1", "type": "tool_call"}


def result_urls(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("   http")]


async def test_web_search_takes_allowed_domains_as_include_domains(search, engine) -> None:
    result = await search.ainvoke({"query": "dpo", "allowed_domains": ["huggingface.co"]})
    assert result_urls(result) == ["https://huggingface.co/docs/trl/dpo_trainer"]
    assert engine.find("GET", "/html")[0].arg("q") == "dpo site:huggingface.co"


async def test_web_search_takes_blocked_domains_as_exclude_domains(search) -> None:
    urls = result_urls(
        await search.ainvoke({"query": "dpo", "num_results": 8, "blocked_domains": ["example.net"]})
    )
    assert urls and not any("example.net" in url for url in urls)


async def test_our_own_name_wins_over_the_alias_given_beside_it(search, engine) -> None:
    args = {"query": "dpo", "include_domains": ["arxiv.org"], "allowed_domains": ["huggingface.co"]}
    await search.ainvoke(args)
    assert engine.find("GET", "/html")[0].arg("q") == "dpo site:arxiv.org"


async def test_unknown_argument_is_rejected_naming_the_accepted_ones(search, engine) -> None:
    with pytest.raises(ToolError) as caught:
        await search.ainvoke({"query": "dpo", "domains": ["x.org"]})
    assert str(caught.value) == (
        "web_search does not take 'domains'; it takes: query, num_results, include_domains, exclude_domains."
    )
    assert engine.find("GET", "/html") == []  # nothing was searched


async def test_hf_repo_git_from_rev_is_the_branch_start(hub, tmp_path) -> None:
    hub.repos[("model", REPO)].branches["dev"] = "d" * 40
    git = hub_tools(hub, tmp_path)["hf_repo_git"]
    out = await git.ainvoke(
        {"operation": "create_branch", "repo_id": REPO, "branch": "exp", "from_rev": "dev"}
    )
    assert out.startswith("Created branch exp from dev")
    assert hub.repos[("model", REPO)].branches["exp"] == "d" * 40
    (request,) = hub.find("POST", f"/api/models/{REPO}/branch/exp")
    assert request.json()["startingPoint"] == "dev"


async def test_hf_repo_git_tag_message_is_sent_as_the_tag_message(hub, tmp_path) -> None:
    git = hub_tools(hub, tmp_path)["hf_repo_git"]
    await git.ainvoke(
        {"operation": "create_tag", "repo_id": REPO, "tag": "v1", "tag_message": "first release"}
    )
    (request,) = hub.find("POST", f"/api/models/{REPO}/tag/main")
    assert request.json() == {"tag": "v1", "message": "first release"}


async def test_hf_repo_git_change_pr_status_reopens_a_closed_pr(hub, tmp_path) -> None:
    git = hub_tools(hub, tmp_path)["hf_repo_git"]
    await git.ainvoke({"operation": "create_pr", "repo_id": REPO, "title": "Fix"})
    await git.ainvoke({"operation": "close_pr", "repo_id": REPO, "pr_num": 1})
    args = {"operation": "change_pr_status", "repo_id": REPO, "pr_num": 1, "new_status": "open"}
    assert (await git.ainvoke(args)).startswith(f"Reopened #1: {hub.url}/{REPO}/discussions/1")
    statuses = [r.json()["status"] for r in hub.find("POST", f"/api/models/{REPO}/discussions/1/status")]
    assert statuses == ["closed", "open"]


async def test_change_pr_status_needs_new_status(hub, tmp_path) -> None:
    git = hub_tools(hub, tmp_path)["hf_repo_git"]
    with pytest.raises(ToolError, match="change_pr_status needs new_status"):
        await git.ainvoke({"operation": "change_pr_status", "repo_id": REPO, "pr_num": 1})


async def test_hf_repo_files_max_chars_caps_a_read(hub, tmp_path) -> None:
    files = hub_tools(hub, tmp_path)["hf_repo_files"]
    out = await files.ainvoke({"operation": "read", "repo_id": REPO, "path": "train.py", "max_chars": 100})
    lines = out.splitlines()
    assert sum(len(line) + 1 for line in lines[1:-1]) <= 100
    assert lines[-1] == f"[more: read with offset={len(lines) - 1}]"
    default = await files.ainvoke({"operation": "read", "repo_id": REPO, "path": "train.py"})
    assert len(default) > 10 * len(out)


async def test_github_find_examples_min_score_sets_the_match_threshold(tmp_path) -> None:
    with FakeGitHub() as api:
        env = ToolEnv(workdir=tmp_path, home=tmp_path, config=FAST, github_api_url=api.url)
        find = offered_tools(github, env)["github_find_examples"]
        loose = await find.ainvoke({"repo": "trl", "keyword": "sft"})
        strict = await find.ainvoke({"repo": "trl", "keyword": "sft", "min_score": 95})
    assert "sft_notebook.ipynb" in loose and "sft_notebook.ipynb" not in strict
    assert strict.splitlines()[0].endswith("matching 'sft': 1 of 1")


async def test_hf_jobs_namespace_runs_the_job_in_that_org(jobs_hub, tmp_path) -> None:
    tool = jobs(jobs_hub, tmp_path)
    args = {"operation": "run", "command": ["echo", "hi"], "namespace": "acme", "wait": False}
    result = await tool.ainvoke(job_call(**args))
    assert "Job submitted" in result.content
    assert len(jobs_hub.requests_to("POST", r"^/api/jobs/acme$")) == 1
    assert jobs_hub.requests_to("POST", r"^/api/jobs/alice$") == []
    await tool.ainvoke(job_call(operation="ps", all=True, namespace="acme"))
    assert len(jobs_hub.requests_to("GET", r"^/api/jobs/acme$")) == 1


async def test_hf_jobs_namespace_must_be_the_user_or_one_of_their_orgs(jobs_hub, tmp_path) -> None:
    tool = jobs(jobs_hub, tmp_path)
    with pytest.raises(ToolError, match="namespace 'globex' is neither .* use one of: alice, acme"):
        await tool.ainvoke(job_call(operation="run", command=["echo"], namespace="globex"))
    assert jobs_hub.requests_to("POST", r"^/api/jobs") == []


@pytest.mark.parametrize("secrets", [["WANDB_API_KEY"], {"WANDB_API_KEY": "$WANDB_API_KEY"}])
async def test_hf_jobs_secrets_take_their_values_from_the_environment(jobs_hub, tmp_path, secrets) -> None:
    jobs_hub.plan.logs = ["key is wandb-secret-value"]  # a job that prints its secret
    tool = jobs(jobs_hub, tmp_path, environ={"WANDB_API_KEY": "wandb-secret-value"})
    result = await tool.ainvoke(job_call(operation="run", command=["train"], secrets=secrets))
    (request,) = jobs_hub.requests_to("POST", r"^/api/jobs/alice$")
    token = jobs_hub.token
    assert request.body["secrets"] == {
        "WANDB_API_KEY": "wandb-secret-value",
        "HF_TOKEN": token,
        "HUGGINGFACE_HUB_TOKEN": token,
    }
    assert "wandb-secret-value" not in result.content and "key is [WANDB_API_KEY]" in result.content
    assert "WANDB_API_KEY" not in request.body["environment"]


async def test_hf_jobs_secret_missing_from_the_environment_is_named(jobs_hub, tmp_path) -> None:
    tool = jobs(jobs_hub, tmp_path)
    with pytest.raises(ToolError, match="secrets: WANDB_API_KEY is not set in ml-intern's environment"):
        await tool.ainvoke(
            job_call(operation="run", command=["train"], secrets={"WANDB_API_KEY": "${WANDB_API_KEY}"})
        )
    assert jobs_hub.requests_to("POST", r"^/api/jobs") == []


async def test_hf_jobs_secret_values_are_never_taken_from_the_call(jobs_hub, tmp_path) -> None:
    tool = jobs(jobs_hub, tmp_path, environ={"WANDB_API_KEY": "from-env"})
    with pytest.raises(ToolError, match="never written in the call"):
        await tool.ainvoke(
            job_call(operation="run", command=["x"], secrets={"WANDB_API_KEY": "literal-value"})
        )
    assert jobs_hub.requests_to("POST", r"^/api/jobs") == []


async def test_hf_jobs_original_names_flavor_packages_python_status(jobs_hub, tmp_path) -> None:
    tool = jobs(jobs_hub, tmp_path)
    args = {
        "script": "print(1)\n",
        "flavor": "t4-small",
        "packages": ["torch"],
        "python": "3.11",
        "wait": False,
    }
    await tool.ainvoke(job_call(operation="run", **args))
    (request,) = jobs_hub.requests_to("POST", r"^/api/jobs/alice$")
    assert request.body["flavor"] == "t4-small"
    assert (
        "uv run --python 3.11 --with torch --with hf-transfer /tmp/script.py" in request.body["command"][-1]
    )
    jobs_hub.add_job({"command": ["x"], "flavor": "cpu-basic"}).finish("ERROR")
    listed = await tool.ainvoke(job_call(operation="ps", status="error"))
    assert "1 job(s)" in listed.content and "ERROR" in listed.content


def test_approval_reads_the_original_names_as_ours(tmp_path) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path)
    need = approval_need("hf_jobs", {"operation": "run", "script": "print(1)", "flavor": "a100-large"}, env)
    assert need is not None and need.reason.startswith("GPU job on a100-large")
    billed = approval_need(
        "hf_jobs", {"operation": "run", "script": "x", "flavor": "t4-small", "namespace": "acme"}, env
    )
    assert billed is not None and "billed to acme" in billed.reason


@pytest.mark.parametrize(
    ("operation", "secrets", "named"),
    [
        ("run", ["WANDB_API_KEY"], "WANDB_API_KEY"),
        ("run", {"W": "$ANTHROPIC_API_KEY"}, "W (from $ANTHROPIC_API_KEY)"),
        ("run", {"HF_TOKEN": "$ANTHROPIC_API_KEY"}, "HF_TOKEN (from $ANTHROPIC_API_KEY)"),
        ("scheduled run", ["GITHUB_TOKEN"], "GITHUB_TOKEN"),
    ],
)
def test_a_job_sent_secrets_is_always_asked_and_names_them(tmp_path, operation, secrets, named) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config={"confirm_cpu_jobs": False}, environ=SECRET_ENV)
    tool = offered(jobs_tool.make_tools(env)[0])
    args = {"operation": operation, "command": ["sh"], "schedule": "@daily", "secrets": secrets}
    need = approval_need("hf_jobs", args, env, tool)  # a CPU job: without secrets nobody would be asked
    assert need is not None and need.always_ask  # headless `auto` and yolo do not approve it
    assert need.reason.endswith(f"; sends secrets {named}")
    assert not any(value in need.reason for value in SECRET_ENV.values())


@pytest.mark.parametrize("secrets", [["HF_TOKEN"], {"HF_TOKEN": "$HF_TOKEN"}, []])
def test_a_job_sent_only_the_hf_token_follows_the_usual_rule(tmp_path, secrets) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config={"confirm_cpu_jobs": False}, environ=SECRET_ENV)
    tool = offered(jobs_tool.make_tools(env)[0])
    args = {"operation": "run", "command": ["sh"], "secrets": secrets}
    assert approval_need("hf_jobs", args, env, tool) is None
    gpu = approval_need("hf_jobs", {**args, "flavor": "t4-small"}, env, tool)
    assert gpu is not None and not gpu.always_ask and "secrets" not in gpu.reason


def test_cancelling_in_a_namespace_is_asked_and_scheduled_changes_name_it(tmp_path) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path)
    tool = offered(jobs_tool.make_tools(env)[0])
    assert approval_need("hf_jobs", {"operation": "cancel", "job_id": "j1"}, env, tool) is None
    need = approval_need("hf_jobs", {"operation": "cancel", "job_id": "j1", "namespace": "acme"}, env, tool)
    assert need is not None and need.reason == "Cancel job j1 in acme"
    args = {"operation": "scheduled suspend", "scheduled_job_id": "s1", "namespace": "acme"}
    need = approval_need("hf_jobs", args, env, tool)
    assert need is not None and need.reason == "Scheduled job s1 in acme: suspend" and need.always_ask


def test_a_call_that_will_be_rejected_is_not_put_to_the_user(tmp_path) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path)
    tool = offered(jobs_tool.make_tools(env)[0])
    args = {"operation": "run", "script": "x", "flavor": "a100-large"}
    assert approval_need("hf_jobs", args, env, tool) is not None
    assert approval_need("hf_jobs", {**args, "gpus": 8}, env, tool) is None  # answered, never run


def test_bash_timeout_goes_up_to_the_originals_ten_hours() -> None:
    assert bash_timeout(36_000, 120) == 36_000
    assert bash_timeout(90_000, 120) == 36_000
    assert bash_timeout(0, 120) == 120


def test_the_schemas_the_model_sees_show_no_alias_or_hidden_argument(tmp_path) -> None:
    offered_specs = [
        convert_to_openai_tool(tool) for tool in build_tools(ToolEnv(workdir=tmp_path, home=tmp_path))
    ]
    for spec in offered_specs:
        name, parameters = spec["function"]["name"], spec["function"]["parameters"]
        facts = tool_facts(name)
        assert not (set(parameters.get("properties", {})) & (set(facts.aliases) | facts.hidden)), name
        assert "change_pr_status" not in json.dumps(spec)
    sizes = {spec["function"]["name"]: len(json.dumps(spec)) for spec in offered_specs}
    assert sizes["hf_jobs"] <= 1600 and sizes["hf_repo_git"] <= 1600 and sizes["hf_repo_files"] <= 1600


def test_every_built_in_tool_rejects_an_unknown_argument(tmp_path) -> None:
    for tool in build_tools(ToolEnv(workdir=tmp_path, home=tmp_path)):
        with pytest.raises(ToolError, match=f"^{tool.name} does not take 'bogus_argument'; it takes: "):
            tool.invoke({"name": tool.name, "args": {"bogus_argument": 1}, "id": "c1", "type": "tool_call"})


async def test_in_the_graph_an_unknown_argument_is_a_tool_message(tmp_path, search, engine) -> None:
    db = tmp_path / "threads.sqlite"
    answers = [
        calls(("web_search", {"query": "dpo", "blocked_domains": ["example.net"], "lang": "en"})),
        "ok",
    ]
    async with open_agent(db, answers, tools=[search]) as agent:
        await agent.send("search")
    (message,) = tool_messages(await saved_messages(db))
    assert message.status == "error"
    accepted = "query, num_results, include_domains, exclude_domains"
    assert message.content == f"Error: web_search does not take 'lang'; it takes: {accepted}."
    assert engine.find("GET", "/html") == []


async def test_a_gated_call_with_an_unknown_argument_is_answered_not_asked(tmp_path) -> None:
    config = {"bash": {"approval_patterns": [r"\btouch\b"]}}
    (bash,) = build_tools(ToolEnv(workdir=tmp_path, home=tmp_path / "home", config=config), ["bash"])
    answers = [calls(("bash", {"command": "touch made.txt", "cwd": "."})), "ok"]
    async with open_agent(tmp_path / "threads.sqlite", answers, tools=[bash], config=config) as agent:
        outcome = await agent.send("make a file")
    assert (outcome.stop_reason, outcome.approval) == ("end_turn", None)
    (message,) = tool_messages(await saved_messages(tmp_path / "threads.sqlite"))
    assert message.content.startswith("Error: bash does not take 'cwd'; it takes: command, description,")
    assert not (tmp_path / "made.txt").exists()
