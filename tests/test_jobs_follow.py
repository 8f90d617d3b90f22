"""hf_jobs waiting for a job: the log kept in a file through a dropped stream, the bounded view the model
reads, logs paging, several ids, Hub prices, billing and Trackio events."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool

from ml_intern.configs.schema import as_config
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.logs import CAPPED
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.jobs.tool import approval_reason, make_tools
from ml_intern.tools.registry import offered
from tests.fakes.jobs_server import FakeJobsHub, Plan
from tests.harness_graph import tool_in_graph

FAST_RETRIES = {"retry_delay": 0.01, "max_retry_delay": 0.05}
CONFIG = {"confirm_cpu_jobs": True, "hf_jobs": {"poll_interval": 0.05}, "http": FAST_RETRIES}


async def run_in_graph(tool: BaseTool, args: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The tool's answer and the events it emitted."""
    events: list[dict[str, Any]] = []
    return await tool_in_graph(tool, args, events), events


@pytest.fixture
def hub() -> Iterator[FakeJobsHub]:
    with FakeJobsHub() as server:
        yield server


def job_env(hub: FakeJobsHub, tmp_path: Path, **config: Any) -> ToolEnv:
    (tmp_path / "train.py").write_text("print('train')\n")  # the script the approval reasons name
    return ToolEnv(
        workdir=tmp_path,
        home=tmp_path / "home",
        config=as_config({**CONFIG, **config}),
        hf_endpoint=hub.url,
        hf_token=hub.token,
    )


@pytest.fixture
def tool(hub: FakeJobsHub, tmp_path: Path) -> BaseTool:
    return offered(make_tools(job_env(hub, tmp_path))[0])


def call(args: dict[str, Any]) -> dict[str, Any]:
    """A model's tool call, with an id, as execute_tools sends it."""
    return {"name": "hf_jobs", "args": args, "id": "call-7", "type": "tool_call"}


async def test_a_dropped_log_stream_is_reopened_and_the_file_has_every_line_once(hub, tool, tmp_path):
    lines = [f"step {n} loss {1 / (n + 1):.4f}" for n in range(3000)] + [f"token {hub.token}"]
    hub.plan = Plan(logs=lines, drop_after=1200)
    message, events = await run_in_graph(tool, call({"operation": "run", "command": ["python", "train.py"]}))
    (job_id,) = hub.jobs
    assert hub.jobs[job_id].streams >= 2  # the stream was cut once and opened again
    path = tmp_path / "home" / "jobs" / f"{job_id}.log"
    assert path.read_text().splitlines() == [*lines[:-1], "token [HF_TOKEN]"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    result = message.content
    assert "finished: COMPLETED" in result and "Logs (3001 lines;" in result and str(path) in result
    assert "step 0 " in result and "token [HF_TOKEN]" in result and "step 1500 " not in result
    assert len(result) < 13_000 and hub.token not in result and hub.token not in json.dumps(events)
    streamed = [e["text"] for e in events if e.get("type") == "tool_log" and e["text"].startswith("step")]
    assert streamed == lines[:-1]


async def test_the_stream_is_reopened_by_us_when_the_hub_client_gives_up(hub, tmp_path):
    no_retries = {**FAST_RETRIES, "retry_attempts": 1}  # the 503 reaches fetch_job_logs, which gives up
    tool = offered(make_tools(job_env(hub, tmp_path, http=no_retries))[0])
    lines = [f"step {n}" for n in range(2000)]
    hub.plan = Plan(logs=lines, drop_after=700, reconnect_status=503, polls=10**6)  # ends with its logs
    result = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    (job_id,) = hub.jobs
    assert (
        hub.jobs[job_id].streams == 4
    )  # cut, refused, replayed from the start, then the final catch-up read
    assert (tmp_path / "home" / "jobs" / f"{job_id}.log").read_text().splitlines() == lines
    assert "finished: COMPLETED" in result and "interrupted" not in result


async def test_logs_reads_the_kept_file_by_tail_and_offset(hub, tool, tmp_path):
    hub.plan = Plan(logs=[f"line {n}" for n in range(500)])
    await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    (job_id,) = hub.jobs
    streams = hub.jobs[job_id].streams
    last = await tool.ainvoke({"operation": "logs", "job_id": job_id, "tail": 3})
    assert last.endswith("line 497\nline 498\nline 499") and "(500 lines, all in " in last
    page = await tool.ainvoke({"operation": "logs", "job_id": job_id, "offset": 10})
    assert page.splitlines()[1] == "line 10" and "line 9\n" not in page
    assert hub.jobs[job_id].streams == streams  # read from the file, not fetched again


async def test_uv_install_noise_is_collapsed_for_the_model_but_kept_in_the_file(hub, tool, tmp_path):
    noise = [
        "Resolved 80 packages in 2s",
        "Downloading torch (800MiB)",
        " + torch==2.5.0",
        "Installed 80 packages",
    ]
    hub.plan = Plan(logs=["Starting", *noise, "epoch 1 done"])
    result = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    assert "Starting\n[installs truncated]\nepoch 1 done" in result and "Downloading torch" not in result
    (job_id,) = hub.jobs
    assert "Downloading torch (800MiB)" in (tmp_path / "home" / "jobs" / f"{job_id}.log").read_text()


async def test_inspect_takes_several_ids(hub, tool):
    first = hub.add_job({"command": ["a"], "flavor": "cpu-basic"}, Plan(hold=True))
    second = hub.add_job({"command": ["b"], "flavor": "t4-small"}, Plan(hold=True))
    ids = [first.info["id"], second.info["id"]]
    for job_id in (ids, ",".join(ids)):
        text = await tool.ainvoke({"operation": "inspect", "job_id": job_id})
        assert f"Job {ids[0]}: RUNNING" in text and f"Job {ids[1]}: RUNNING" in text and "t4-small" in text


async def test_hub_prices_are_used_and_cached(hub, tmp_path):
    hub.hardware = {**hub.hardware, "a10g-large": 2.4}
    env = job_env(hub, tmp_path)
    args = {"operation": "run", "script": "train.py", "hardware_flavor": "a10g-large", "timeout": "2h"}
    assert approval_reason(args, env) == "GPU job on a10g-large for up to 2h (est. $4.80): train.py"
    assert approval_reason(args, env) == "GPU job on a10g-large for up to 2h (est. $4.80): train.py"
    assert len(hub.requests_to("GET", "^/api/jobs/hardware$")) == 1  # then from ML_INTERN_HOME
    assert (
        json.loads((tmp_path / "home" / "jobs" / "hardware.json").read_text())["prices"]["a10g-large"] == 2.4
    )
    tool = offered(make_tools(env)[0])
    result = await tool.ainvoke({**args, "script": "print(1)\n", "wait": False})
    assert "est. at most $4.80" in result


async def test_the_price_table_is_the_fallback_when_the_hub_fails(hub, tmp_path):
    hub.fail("GET", "^/api/jobs/hardware$", 500, times=10)
    args = {"operation": "run", "script": "train.py", "hardware_flavor": "a10g-large", "timeout": "2h"}
    reason = approval_reason(args, job_env(hub, tmp_path))
    assert reason == "GPU job on a10g-large for up to 2h (est. $3.00 at list prices): train.py"
    assert len(hub.requests_to("GET", "^/api/jobs/hardware$")) == 1  # not retried: an approval never waits


async def test_running_event_carries_the_job_url_and_trackio_dashboard(hub, tool):
    args = {
        "operation": "run",
        "script": "import trackio\n",
        "trackio_space_id": "alice/trackio",
        "trackio_project": "sft-run",
        "wait": False,
    }
    message, events = await run_in_graph(tool, call(args))
    (job_id,) = hub.jobs
    (running,) = [e for e in events if e.get("type") == "tool_state_change"]
    assert running["id"] == "call-7" and running["state"] == "running" and running["jobId"] == job_id
    assert running["jobUrl"].endswith(f"/jobs/alice/{job_id}")
    assert running["trackioSpaceId"] == "alice/trackio" and running["trackioProject"] == "sft-run"
    assert "Trackio dashboard: https://huggingface.co/spaces/alice/trackio" in message.content
    env = hub.jobs[job_id].info["environment"]
    assert env["TRACKIO_SPACE_ID"] == "alice/trackio" and env["TRACKIO_PROJECT"] == "sft-run"


async def test_payment_required_event_names_the_namespace(hub, tool):
    hub.fail("POST", r"^/api/jobs/alice$", 402, message="Insufficient credits")
    events: list[dict[str, Any]] = []
    with pytest.raises(ToolError, match="settings/billing"):
        await tool_in_graph(tool, call({"operation": "run", "command": ["echo"]}), events)
    (billing,) = [e for e in events if e.get("type") == "tool_state_change"]
    assert billing == {
        "type": "tool_state_change", "id": "call-7", "tool": "hf_jobs", "state": "billing_required",
        "namespace": "alice",
    }  # fmt: skip
    assert not hub.jobs


async def test_a_job_left_running_at_the_wait_limit_is_waited_for_again(hub, tmp_path):
    tool = offered(
        make_tools(job_env(hub, tmp_path, hf_jobs={"poll_interval": 0.05, "wait_limit": "0.3s"}))[0]
    )
    hub.plan = Plan(logs=["epoch 1"], hold=True)
    first = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    (job,) = hub.jobs.values()
    follow = json.dumps({"operation": "logs", "job_id": job.info["id"], "follow": True})
    assert "is still RUNNING after waiting" in first and follow in first
    job.plan = Plan(logs=["epoch 1"])  # the job ends once its log is served
    again = await tool.ainvoke(json.loads(follow))
    assert again.startswith(f"Job {job.info['id']} finished: COMPLETED") and "epoch 1" in again
    assert (tmp_path / "home" / "jobs" / f"{job.info['id']}.log").read_text() == "epoch 1\n"
    assert not hub.requests_to("POST", "/cancel$")


async def test_a_stream_that_ends_quietly_is_caught_up_when_the_pump_gives_up(
    hub, tool, tmp_path, monkeypatch
):
    monkeypatch.setattr("ml_intern.tools.jobs.follow.MAX_RECONNECTS", 0)  # no second stream: only a catch-up
    lines = [f"step {n}" for n in range(50)]
    hub.plan = Plan(logs=lines, garble_after=20, polls=60)  # runs on past the pump
    result = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    (job_id,) = hub.jobs
    path = tmp_path / "home" / "jobs" / f"{job_id}.log"
    assert path.read_text().splitlines() == lines
    assert "finished: COMPLETED" in result and "Logs (50 lines;" in result
    streams = hub.jobs[job_id].streams
    assert "step 49" in await tool.ainvoke({"operation": "logs", "job_id": job_id, "tail": 1})
    assert hub.jobs[job_id].streams == streams  # the file is complete: not fetched again


async def test_a_failed_catch_up_says_so_and_the_log_is_fetched_again(hub, tmp_path, monkeypatch):
    monkeypatch.setattr("ml_intern.tools.jobs.follow.MAX_RECONNECTS", 0)
    tool = offered(make_tools(job_env(hub, tmp_path, http={**FAST_RETRIES, "retry_attempts": 1}))[0])
    lines = [f"step {n}" for n in range(50)]
    hub.plan = Plan(logs=lines, garble_after=20, polls=60)  # runs on past the pump

    def refuse_the_catch_up() -> None:
        hub.wait_for("GET", r"/logs$")  # the stream is open: the next log request is the catch-up
        hub.fail("GET", r"/logs$", 403)

    refusing = threading.Thread(target=refuse_the_catch_up)
    refusing.start()
    result = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    refusing.join()
    (job_id,) = hub.jobs
    assert "finished: COMPLETED" in result and "the log may be incomplete" in result
    streams = hub.jobs[job_id].streams
    assert "step 49" in await tool.ainvoke({"operation": "logs", "job_id": job_id, "tail": 1})
    assert hub.jobs[job_id].streams == streams + 1


@pytest.mark.parametrize("unit", ["minute", "min", "per minute", "hr", "second"])
async def test_hub_prices_in_any_unit_are_merged_over_the_table(hub, tmp_path, unit):
    hub.hardware, hub.unit = {"a10g-large": 2.4}, unit  # the Hub leaves h200 out
    env = job_env(hub, tmp_path)
    args = {"operation": "run", "script": "train.py", "hardware_flavor": "a10g-large", "timeout": "2h"}
    assert approval_reason(args, env) == "GPU job on a10g-large for up to 2h (est. $4.80): train.py"
    h200 = approval_reason({**args, "hardware_flavor": "h200"}, env)
    assert h200 == "GPU job on h200 for up to 2h (est. $10.00): train.py"


async def test_an_empty_hardware_list_is_a_failure_not_cached(hub, tmp_path):
    hub.hardware = {}
    env = job_env(hub, tmp_path)
    args = {"operation": "run", "script": "train.py", "hardware_flavor": "a10g-large", "timeout": "2h"}
    for _ in range(3):
        assert approval_reason(args, env).endswith("(est. $3.00 at list prices): train.py")
    assert len(hub.requests_to("GET", "^/api/jobs/hardware$")) == 1  # then the table, for RETRY_SECONDS


def test_a_silent_hub_costs_at_most_a_few_seconds_and_holds_no_lock(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    config = {**CONFIG, "http": {**FAST_RETRIES, "retry_attempts": 1}}
    env = ToolEnv(
        workdir=tmp_path, home=tmp_path / "home", config=as_config(config),
        hf_endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}", hf_token="hf_silent_token",
    )  # fmt: skip
    answers: list[tuple[dict[str, float], bool]] = []
    callers = [threading.Thread(target=lambda: answers.append(hourly_prices(env)), daemon=True) for _ in "ab"]
    started = time.monotonic()
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    silent.close()
    assert [from_hub for _, from_hub in answers] == [False, False]
    assert time.monotonic() - started < 8  # both asked at once: no lock held over the 3 s timeout
    assert answers[0][0]["a10g-large"] == 1.5


async def test_a_log_file_that_fails_after_submission_keeps_the_job_report(hub, tmp_path, monkeypatch):
    full = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk
    monkeypatch.setattr(
        "ml_intern.tools.jobs.logs.open_private", lambda path: full.open("w", encoding="utf-8")
    )
    tool = offered(make_tools(job_env(hub, tmp_path))[0])
    hub.plan = Plan(logs=[f"step {n}" for n in range(20)])
    message = await tool.ainvoke(call({"operation": "run", "command": ["python", "train.py"]}))
    (job_id,) = hub.jobs
    assert message.content.startswith(f"Job {job_id} finished: COMPLETED")
    assert "No space left on device" in message.content and "step 19" in message.content
    assert message.artifact["job"]["id"] == job_id and message.artifact["job"]["state"] == "ended"


async def test_a_log_directory_that_cannot_be_written_fails_before_submitting(hub, tool, tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "jobs").write_text("not a directory")
    with pytest.raises(ToolError, match="nothing was submitted"):
        await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    assert not hub.jobs
    result = await tool.ainvoke({"operation": "run", "command": ["echo"], "wait": False})
    assert result.startswith("Job submitted")  # without waiting, no file is needed


async def test_the_log_file_is_capped_with_a_note(hub, tool, tmp_path, monkeypatch):
    monkeypatch.setattr("ml_intern.tools.jobs.logs.MAX_FILE_BYTES", 100)
    lines = [f"step {n:03d}" for n in range(40)]  # 9 bytes a line
    hub.plan = Plan(logs=lines)
    result = await tool.ainvoke({"operation": "run", "command": ["python", "train.py"]})
    (job_id,) = hub.jobs
    kept = (tmp_path / "home" / "jobs" / f"{job_id}.log").read_text().splitlines()
    assert kept == [*lines[:11], CAPPED]
    assert "capped at 256 MB" in result and "step 039" in result  # the model still sees the tail


async def test_logs_of_a_job_from_an_earlier_process_hide_its_secret_values(hub, tmp_path):
    secret = "hunter2password!"
    job = hub.add_job({"command": ["a"], "flavor": "cpu-basic", "secrets": {"WANDB_API_KEY": "x"}})
    job.plan = Plan(logs=[f"key: {secret}", f"token {hub.token}x"])
    env = job_env(hub, tmp_path)
    env.environ = {"WANDB_API_KEY": secret, "OTHER": "not-a-secret-of-this-job"}
    tool = offered(make_tools(env)[0])
    for args in ({}, {"tail": 5}, {"follow": True}):
        text = await tool.ainvoke({"operation": "logs", "job_id": job.info["id"], **args})
        assert "key: [WANDB_API_KEY]" in text and secret not in text and hub.token not in text
    assert secret not in (tmp_path / "home" / "jobs" / f"{job.info['id']}.log").read_text()


async def test_the_log_file_is_private_and_never_written_through_a_linked_directory(hub, tool, tmp_path):
    job = hub.add_job({"command": ["a"], "flavor": "cpu-basic"}, Plan(logs=["hello"]))
    jobs = tmp_path / "home" / "jobs"
    jobs.mkdir(parents=True, mode=0o755)
    jobs.chmod(0o755)
    path = jobs / f"{job.info['id']}.log"
    path.write_text("old\n")
    path.chmod(0o644)
    assert "hello" in await tool.ainvoke({"operation": "logs", "job_id": job.info["id"]})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(jobs.stat().st_mode) == 0o700
    jobs.rename(tmp_path / "elsewhere")
    jobs.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ToolError, match="symlink"):
        await tool.ainvoke({"operation": "logs", "job_id": job.info["id"]})


async def test_logs_of_a_job_being_followed_do_not_truncate_its_file(hub, tool, tmp_path):
    hub.plan = Plan(logs=["epoch 1"], hold=True)
    running = asyncio.ensure_future(tool.ainvoke({"operation": "run", "command": ["python", "train.py"]}))
    await asyncio.to_thread(hub.wait_for, "GET", r"/logs$")
    (job_id,) = hub.jobs
    with pytest.raises(ToolError, match="being written by another call"):
        await tool.ainvoke({"operation": "logs", "job_id": job_id})
    running.cancel()
    with suppress(asyncio.CancelledError):
        await running
    assert (tmp_path / "home" / "jobs" / f"{job_id}.log").read_text() == "epoch 1\n"
