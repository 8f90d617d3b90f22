"""hf_jobs against a local fake of the HF Jobs API: payloads, waiting, cancelling, errors, approval, cost."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from ml_intern.configs.schema import as_config
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.pricing import estimate_cost, parse_timeout
from ml_intern.tools.jobs.tool import approval_reason, is_scheduled_operation, make_tools
from ml_intern.tools.registry import offered
from tests.fakes.jobs_server import FakeJobsHub, Plan
from tests.harness_graph import tool_in_graph

APPROVE = approval_reason
FAST = {"poll_interval": 0.05}
FAST_RETRIES = {"retry_delay": 0.01, "max_retry_delay": 0.05}


def TOKENS(hub: FakeJobsHub) -> dict[str, str]:  # noqa: N802 - reads as the constant it stands for
    """The job secrets every run gets: the user's token under both names."""
    return {"HF_TOKEN": hub.token, "HUGGINGFACE_HUB_TOKEN": hub.token}


@pytest.fixture
def hub() -> Iterator[FakeJobsHub]:
    with FakeJobsHub() as server:
        yield server


def make_tool(hub: FakeJobsHub, workdir: Path, token: str | None = None, **jobs_config: Any) -> BaseTool:
    env = ToolEnv(
        workdir=workdir,
        home=workdir / "home",
        config={"confirm_cpu_jobs": True, "hf_jobs": {**FAST, **jobs_config}, "http": FAST_RETRIES},
        hf_endpoint=hub.url,
        hf_token=hub.token if token is None else token or None,
    )
    return offered(make_tools(env)[0])  # as the model gets it: the original's names taken, the rarer hidden


@pytest.fixture
def tool(hub: FakeJobsHub, tmp_path: Path) -> BaseTool:
    return make_tool(hub, tmp_path)


def posted_job(hub: FakeJobsHub) -> dict[str, Any]:
    """The job spec posted, its command without the provenance wrapper (tools/hub/bootstrap.py)."""
    (request,) = hub.requests_to("POST", r"^/api/jobs/alice$")
    return {**request.body, "command": unwrapped(request.body["command"])}


def unwrapped(command: list[str]) -> list[str]:
    """The job's own command inside `sh -c '...; exec "$@"' ml-intern CMD...`."""
    return command[4:] if command[:2] == ["sh", "-c"] and command[3:4] == ["ml-intern"] else command


def shipped_script(command: list[str]) -> str:
    """Decode the script that an inline-code command writes in the container."""
    encoded = re.search(r"printf %s (\S+) \| base64 -d", command[2])
    assert command[:2] == ["/bin/sh", "-c"] and encoded
    return base64.b64decode(encoded.group(1)).decode()


async def run_in_graph(tool: BaseTool, args: dict[str, Any]) -> tuple[str, list[dict]]:
    """Call the tool inside a one-node LangGraph run, collecting the custom stream events."""
    events: list[dict] = []
    return await tool_in_graph(tool, args, events), events


async def test_run_posts_flavor_script_dependencies_timeout_and_token_as_secret(hub, tool):
    code = "import torch\nprint(torch.__version__)\n"
    result = await tool.ainvoke(
        {
            "operation": "run",
            "script": code,
            "dependencies": ["torch>=2.4", "trl"],
            "hardware_flavor": "a10g-large",
            "timeout": "2h",
        }
    )
    body = posted_job(hub)
    assert body["flavor"] == "a10g-large"
    assert body["timeoutSeconds"] == 7200
    assert body["dockerImage"] == "ghcr.io/astral-sh/uv:python3.12-bookworm"
    assert shipped_script(body["command"]) == code
    assert "uv run --with 'torch>=2.4' --with trl --with hf-transfer /tmp/script.py" in body["command"][2]
    assert body["secrets"] == TOKENS(hub)
    assert body["environment"]["HF_HUB_ENABLE_HF_TRANSFER"] == "1"
    assert body["environment"]["HF_XET_HIGH_PERFORMANCE"] == "1"
    assert "HF_TOKEN" not in body["environment"]
    assert hub.token not in result
    assert "finished: COMPLETED" in result and "est. at most $3.00" in result


async def test_run_ships_a_workdir_script_file_with_its_arguments(hub, tmp_path):
    (tmp_path / "train.py").write_text("print('training')\n")
    tool = make_tool(hub, tmp_path)
    await tool.ainvoke({"operation": "run", "script": "train.py", "script_args": ["--epochs", "1"]})
    command = posted_job(hub)["command"]
    assert shipped_script(command) == "print('training')\n"
    assert command[2].endswith("exec uv run --with hf-transfer /tmp/train.py --epochs 1")


async def test_run_passes_a_script_url_straight_to_uv(hub, tool):
    url = "https://example.org/sft.py"
    await tool.ainvoke({"operation": "run", "script": url, "dependencies": ["trl"], "script_args": ["--x"]})
    assert posted_job(hub)["command"] == ["uv", "run", "--with", "trl", "--with", "hf-transfer", url, "--x"]


async def test_docker_run_posts_image_command_and_env_without_token(hub, tool):
    env = {"MODE": "fast", "PORT": 8080, "HF_TOKEN": "$HF_TOKEN"}
    await tool.ainvoke(
        {"operation": "run", "command": ["duckdb", "-c", "select 1"], "image": "duckdb/duckdb", "env": env}
    )
    body = posted_job(hub)
    assert body["dockerImage"] == "duckdb/duckdb"
    assert body["command"] == ["duckdb", "-c", "select 1"]
    assert body["flavor"] == "cpu-basic" and body["timeoutSeconds"] == 1800
    assert body["environment"]["MODE"] == "fast" and body["environment"]["PORT"] == "8080"
    assert "HF_TOKEN" not in body["environment"]


async def test_configured_default_timeout_applies_when_none_is_given(hub, tmp_path):
    tool = make_tool(hub, tmp_path, default_timeout="2h")
    await tool.ainvoke({"operation": "run", "command": ["echo"], "wait": False})
    assert posted_job(hub)["timeoutSeconds"] == 7200
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=as_config({"hf_jobs": {"default_timeout": "2h"}}))
    reason = APPROVE({"operation": "run", "command": ["echo"]}, env)
    assert reason == "CPU job on cpu-basic for up to 2h (est. $0.02 at list prices): echo"


async def test_run_without_wait_returns_the_job_id_at_once(hub, tool):
    hub.plan = Plan(hold=True)
    result = await tool.ainvoke({"operation": "run", "command": ["sleep", "1000"], "wait": False})
    (job_id,) = hub.jobs
    assert f"Job submitted: {job_id}" in result
    assert f"/jobs/alice/{job_id}" in result
    assert json.dumps({"operation": "logs", "job_id": job_id}) in result
    assert not hub.requests_to("GET", "/logs$")
    assert hub.jobs[job_id].info["status"]["stage"] == "RUNNING"


async def test_run_with_wait_streams_logs_and_returns_head_and_tail(hub, tool):
    hub.plan = Plan(logs=[f"step {i}" for i in range(1000)] + [f"token={hub.token}"])
    result, events = await run_in_graph(tool, {"operation": "run", "command": ["python", "train.py"]})
    streamed = [e["text"] for e in events if e.get("type") == "tool_log" and e["tool"] == "hf_jobs"]
    assert [line for line in streamed if line.startswith("step")] == [f"step {i}" for i in range(1000)]
    assert "finished: COMPLETED" in result and "Logs (1001 lines;" in result
    assert "step 0\n" in result and "step 999" in result and "lines omitted" in result
    assert "step 500\n" not in result
    assert hub.token not in result and hub.token not in json.dumps(events)
    assert len(result) < 15_000


async def test_secret_values_never_reach_results_events_or_the_call(hub, tmp_path):
    env = ToolEnv(
        workdir=tmp_path,
        home=tmp_path / "home",
        config={"hf_jobs": FAST, "http": FAST_RETRIES},
        hf_endpoint=hub.url,
        hf_token=hub.token,
        environ={"WANDB_API_KEY": "wandb-1234-secret"},
    )
    tool = offered(make_tools(env)[0])
    hub.plan = Plan(logs=["wandb key wandb-1234-secret", "done"])
    args = {"operation": "run", "command": ["python", "train.py"], "secrets": ["WANDB_API_KEY"]}
    result, events = await run_in_graph(tool, args)
    assert posted_job(hub)["secrets"] == {"WANDB_API_KEY": "wandb-1234-secret", **TOKENS(hub)}
    assert "wandb-1234-secret" not in result and "wandb-1234-secret" not in json.dumps(events)
    assert "wandb key [WANDB_API_KEY]" in result
    assert "wandb-1234-secret" not in json.dumps(args)  # the call (what is stored) names the secret only


async def test_run_reports_a_failed_job_with_its_stage(hub, tool):
    hub.plan = Plan(logs=["Traceback: CUDA out of memory"], final_stage="ERROR")
    result = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    assert "finished: ERROR" in result and "CUDA out of memory" in result


async def test_waiting_stops_at_the_limit_and_leaves_the_job_running(hub, tmp_path):
    hub.plan = Plan(logs=["started"], hold=True)
    tool = make_tool(hub, tmp_path, wait_limit="0.3s")
    result = await tool.ainvoke({"operation": "run", "command": ["sleep", "1000"]})
    (job,) = hub.jobs.values()
    assert "is still RUNNING" in result and "started" in result
    assert job.info["status"]["stage"] == "RUNNING"
    assert not hub.requests_to("POST", "/cancel$")


async def test_cancelling_the_call_cancels_the_job_on_the_server(hub, tool):
    hub.plan = Plan(logs=["epoch 1"], hold=True)
    task = asyncio.create_task(tool.ainvoke({"operation": "run", "command": ["python", "train.py"]}))
    await asyncio.to_thread(hub.wait_for, "GET", "/logs$")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (job_id,) = hub.jobs
    assert hub.requests_to("POST", f"^/api/jobs/alice/{job_id}/cancel$")
    assert hub.jobs[job_id].info["status"]["stage"] == "CANCELED"


async def test_ps_lists_running_jobs_unless_all(hub, tool):
    hub.add_job({"command": ["done"], "flavor": "cpu-basic"}).finish("COMPLETED")
    running = hub.add_job({"command": ["train"], "flavor": "t4-small"}, Plan(hold=True))
    only_running = await tool.ainvoke({"operation": "ps"})
    everything = await tool.ainvoke({"operation": "ps", "all": True})
    assert running.info["id"] in only_running and "COMPLETED" not in only_running
    assert "1 job(s)" in only_running and "2 job(s)" in everything and "COMPLETED" in everything


async def test_inspect_and_logs_of_a_job(hub, tool):
    job = hub.add_job({"command": ["echo", "hi"], "flavor": "cpu-upgrade"}, Plan(logs=["hi"], polls=1))
    details = await tool.ainvoke({"operation": "inspect", "job_id": job.info["id"]})
    logs = await tool.ainvoke({"operation": "logs", "job_id": job.info["id"]})
    assert "COMPLETED" in details and "cpu-upgrade" in details and "echo hi" in details
    assert logs.endswith("hi") and "(1 lines;" in logs


async def test_cancel_operation_cancels_the_job(hub, tool):
    job = hub.add_job({"command": ["sleep"], "flavor": "cpu-basic"}, Plan(hold=True))
    result = await tool.ainvoke({"operation": "cancel", "job_id": job.info["id"]})
    assert "cancelled" in result and job.info["status"]["stage"] == "CANCELED"


async def test_unknown_job_says_not_found_and_suggests_ps(tool):
    with pytest.raises(ToolError, match=r"Job nope not found.*\"operation\": \"ps\""):
        await tool.ainvoke({"operation": "inspect", "job_id": "nope"})


async def test_invalid_token_says_how_to_set_hf_token(hub, tmp_path):
    tool = make_tool(hub, tmp_path, token="hf_wrong")
    with pytest.raises(
        ToolError, match=r"Not authorised \(HTTP 401\) while checking your HF account.*settings/tokens"
    ):
        await tool.ainvoke({"operation": "ps"})


async def test_forbidden_run_says_the_token_lacks_the_jobs_permission(hub, tool):
    hub.fail("POST", r"^/api/jobs/alice$", 403)
    with pytest.raises(ToolError, match=r"Not allowed \(HTTP 403\) while submitting the job.*Jobs permiss"):
        await tool.ainvoke({"operation": "run", "command": ["echo"]})


async def test_missing_token_fails_before_calling_the_hub(hub, tmp_path):
    tool = make_tool(hub, tmp_path, token="")
    with pytest.raises(ToolError, match="HF_TOKEN is not set"):
        await tool.ainvoke({"operation": "ps"})
    assert hub.requests == []


async def test_server_errors_are_retried(hub, tool):
    job = hub.add_job({"command": ["x"], "flavor": "cpu-basic"}, Plan(hold=True))
    hub.fail("GET", f"/{job.info['id']}$", 503, times=2)
    assert "RUNNING" in await tool.ainvoke({"operation": "inspect", "job_id": job.info["id"]})
    assert len(hub.requests_to("GET", f"/{job.info['id']}$")) == 3


async def test_submission_is_retried_on_429_but_not_on_5xx(hub, tool):
    hub.fail("POST", r"^/api/jobs/alice$", 429)
    await tool.ainvoke({"operation": "run", "command": ["echo"], "wait": False})
    assert len(hub.requests_to("POST", r"^/api/jobs/alice$")) == 2 and len(hub.jobs) == 1
    hub.fail("POST", r"^/api/jobs/alice$", 502)
    with pytest.raises(ToolError, match="502"):
        await tool.ainvoke({"operation": "run", "command": ["echo"], "wait": False})
    assert len(hub.requests_to("POST", r"^/api/jobs/alice$")) == 3


async def test_scheduled_jobs_are_created_listed_suspended_and_deleted(hub, tool):
    created = await tool.ainvoke(
        {
            "operation": "scheduled run",
            "command": ["python", "sync.py"],
            "schedule": "@daily",
            "timeout": "1h",
        }
    )
    (request,) = hub.requests_to("POST", r"^/api/scheduled-jobs/alice$")
    assert request.body["schedule"] == "@daily"
    assert unwrapped(request.body["jobSpec"]["command"]) == ["python", "sync.py"]
    assert request.body["jobSpec"]["secrets"] == TOKENS(hub) and hub.token not in created
    (scheduled_id,) = hub.scheduled
    assert scheduled_id in await tool.ainvoke({"operation": "scheduled ps"})
    await tool.ainvoke({"operation": "scheduled suspend", "scheduled_job_id": scheduled_id})
    assert hub.scheduled[scheduled_id]["suspend"] is True
    assert "No scheduled jobs" in await tool.ainvoke({"operation": "scheduled ps"})
    await tool.ainvoke({"operation": "scheduled delete", "scheduled_job_id": scheduled_id})
    assert hub.scheduled == {}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"operation": "run", "script": "print(1)", "command": ["echo"]}, "exactly one"),
        (
            {"operation": "run", "command": ["echo"], "hardware_flavor": "h100x9"},
            "Unknown hardware_flavor.*a100-large",
        ),
        ({"operation": "run", "command": ["echo"], "timeout": "soon"}, "timeout: bad duration"),
        ({"operation": "run", "script": "missing.py"}, "Script file not found"),
        ({"operation": "logs"}, "'job_id' is required"),
        ({"operation": "scheduled run", "command": ["echo"]}, "'schedule' is required"),
        ({"operation": "launch"}, "Invalid hf_jobs arguments: operation"),
    ],
)
async def test_bad_arguments_are_explained_without_calling_the_hub(hub, tool, args, match):
    with pytest.raises(ToolError, match=match):
        await tool.ainvoke(args)
    assert not hub.requests_to("POST", ".")


@pytest.mark.parametrize(
    ("args", "config", "reason"),
    [
        (
            {"operation": "run", "script": "train.py", "hardware_flavor": "a10g-large", "timeout": "2h"},
            {},
            "GPU job on a10g-large for up to 2h (est. $3.00 at list prices): train.py",
        ),
        (
            {"operation": "run", "command": ["python", "-c", "print(1)"], "timeout": 7200},
            {},
            "CPU job on cpu-basic for up to 2h (est. $0.02 at list prices): python -c 'print(1)'",
        ),
        ({"operation": "run", "command": ["echo"]}, {"confirm_cpu_jobs": False}, None),
        (
            {
                "operation": "run",
                "script": "# setup\nimport os\nprint(os.getcwd())",
                "hardware_flavor": "h200",
            },
            {"confirm_cpu_jobs": False},
            "GPU job on h200 for up to 30m (est. $2.50 at list prices): import os (+1 lines)",
        ),
        (
            {
                "operation": "scheduled run",
                "command": ["sync"],
                "schedule": "@daily",
                "hardware_flavor": "t4-small",
            },
            {"confirm_cpu_jobs": False},
            "Scheduled job (@daily): GPU on t4-small, up to 30m per run (est. $0.20 at list prices per run): "
            "sync",
        ),
        ({"operation": "scheduled delete", "scheduled_job_id": "s1"}, {}, "Scheduled job s1: delete"),
        ({"operation": "ps"}, {}, None),
        ({"operation": "logs", "job_id": "j"}, {}, None),
        ({"operation": "inspect", "job_id": "j"}, {}, None),
        ({"operation": "cancel", "job_id": "j"}, {}, None),
        ({"operation": "scheduled ps"}, {}, None),
    ],
)
def test_approval_reasons(args, config, reason):
    Path("train.py").write_text("print('train')\n")  # in the sandbox's working directory (conftest)
    assert APPROVE(args, ToolEnv(workdir=Path.cwd(), home=Path.cwd(), config=as_config(config))) == reason


@pytest.mark.parametrize(
    ("operation", "scheduled"),
    [("scheduled run", True), ("scheduled delete", True), ("scheduled resume", True), ("run", False),
     ("scheduled ps", False)],
)  # fmt: skip
def test_scheduled_changes_are_flagged_for_the_policy(operation, scheduled):
    assert is_scheduled_operation({"operation": operation}) is scheduled


@pytest.mark.parametrize(
    ("flavor", "timeout", "cost"),
    [("a10g-large", "2h", 3.0), ("t4-small", "90m", 0.6), ("h200", 3600, 5.0), ("h200x8", "1d", 960.0),
     ("cpu-basic", "30m", 0.01), ("nope", "1h", None), ("t4-small", "soon", None)],
)  # fmt: skip
def test_estimate_cost(flavor, timeout, cost):
    assert estimate_cost(flavor, timeout) == cost


@pytest.mark.parametrize("text", ["0", "-5m", "2 weeks", ""])
def test_parse_timeout_rejects_nonsense(text):
    with pytest.raises(ValueError):
        parse_timeout(text)


def test_schema_and_description_fit_the_prompt_budget(tool):
    assert len(json.dumps(convert_to_openai_tool(tool))) <= 1200


async def test_a_script_file_outside_the_workdir_is_never_sent(hub, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keys.py").write_text("API_KEY = 'sk-live-1234'\n")
    work = tmp_path / "work"
    work.mkdir()
    tool = make_tool(hub, work)
    with pytest.raises(ToolError, match="outside the working directory"):
        await tool.ainvoke({"operation": "run", "script": str(outside / "keys.py"), "wait": False})
    assert not hub.jobs
