"""The Hub side of sandboxes (`tools/sandbox/spaces.py`) against the fake Spaces Hub: what a Space is created
with, the one upload, deletion with retries, listing with the run that made each Space."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_intern.secrets import redact
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.sandbox import spaces
from ml_intern.tools.sandbox.listing import list_sandboxes, read_run_variable
from ml_intern.tools.sandbox.spaces import (
    NAME_PREFIX,
    RUN_VARIABLE,
    TOKEN_SECRET,
    SandboxFailed,
    SandboxRefused,
    SpaceOps,
)
from tests.fakes.hub_server import USER
from tests.fakes.spaces_hub import SpacesHub

TOKEN = "hf_test_spaces_token_1234567890"


FAST_RETRIES = {"http": {"retry_delay": 0.01}}  # the one retry policy (HubSession), without its real waits


def env_for(hub: SpacesHub, tmp_path: Path, token: str = TOKEN) -> ToolEnv:
    return ToolEnv(workdir=tmp_path, home=tmp_path, config=FAST_RETRIES, hf_endpoint=hub.url, hf_token=token)


@pytest.fixture
def hub() -> Iterator[SpacesHub]:
    with SpacesHub(token=TOKEN, start_servers=False) as fake:
        yield fake


@pytest.fixture
def ops(hub: SpacesHub, tmp_path: Path) -> SpaceOps:
    return SpaceOps(env_for(hub, tmp_path))


def test_create_makes_a_private_docker_space_with_a_fresh_token_and_the_run(hub: SpacesHub, ops: SpaceOps):
    space = ops.create("t4-small", "thread-7", {"WANDB_API_KEY": "wandb-secret-value"}, 3600)

    owner, name = space.space_id.split("/")
    assert owner == USER and name.startswith(NAME_PREFIX) and len(name) == len(NAME_PREFIX) + 8
    int(name[len(NAME_PREFIX) :], 16)  # eight hex digits
    [body] = hub.created
    assert (body["type"], body["sdk"], body["visibility"]) == ("space", "docker", "private")
    assert (body["hardware"], body["sleepTimeSeconds"]) == ("t4-small", 3600)
    secrets = {item["key"]: item["value"] for item in body["secrets"]}
    assert secrets == {TOKEN_SECRET: space.token, "WANDB_API_KEY": "wandb-secret-value"}
    assert len(space.token) >= 40 and TOKEN not in json.dumps(body)  # the HF token is never handed over
    [variable] = body["variables"]
    assert variable["key"] == RUN_VARIABLE
    assert json.loads(variable["value"]) == {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": spaces.process_start(os.getpid()),
        "thread": "thread-7",
    }
    assert isinstance(spaces.process_start(os.getpid()), int)  # Linux: /proc/PID/stat field 22
    assert space.token not in repr(space) and space.token not in redact(f"token {space.token}")


def test_the_free_hardware_is_sent_no_sleep_time_and_tokens_differ(hub: SpacesHub, ops: SpaceOps):
    first = ops.create("cpu-basic", None, {}, 3600)
    second = ops.create("cpu-basic", None, {}, 3600)

    assert [body.get("sleepTimeSeconds") for body in hub.created] == [None, None]
    assert json.loads(hub.created[0]["variables"][0]["value"])["thread"] == ""
    assert first.space_id != second.space_id and first.token != second.token


def test_create_uploads_dockerfile_server_and_readme_in_one_commit(hub: SpacesHub, ops: SpaceOps):
    space = ops.create("cpu-basic", "t", {}, None)

    [files] = hub.commits[space.space_id]
    assert sorted(files) == ["Dockerfile", "README.md", "server.py"]
    assert files["server.py"] == spaces.package_file("server.py")
    assert files["Dockerfile"] == spaces.package_file("Dockerfile")
    readme = files["README.md"].decode()
    assert readme.startswith("---\n") and "sdk: docker" in readme and "app_port: 7860" in readme
    assert "ml-intern sandboxes --delete" in readme


def test_a_failed_upload_deletes_the_space_and_says_so_in_one_line(hub: SpacesHub, ops: SpaceOps):
    hub.fail("POST", "/commit/", 422, times=10, body={"error": "Invalid commit"})

    with pytest.raises(SandboxFailed) as failed:
        ops.create("cpu-basic", "t", {}, None)

    [body] = hub.created
    assert hub.deleted == [f"{USER}/{body['name']}"]
    assert ("space", f"{USER}/{body['name']}") not in hub.repos
    line = str(failed.value)
    assert "\n" not in line and "uploading the server" in line and TOKEN not in line


def test_a_failed_upload_whose_cleanup_fails_names_the_command_that_removes_it(hub: SpacesHub, ops: SpaceOps):
    hub.fail("POST", "/commit/", 422, times=10)
    hub.delete_failures = 5  # more than the retry policy's 3 tries

    with pytest.raises(SandboxFailed, match="ml-intern sandboxes --delete"):
        ops.create("cpu-basic", "t", {}, None)
    assert hub.deleted == []


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (402, "Spaces need billing (HTTP 402): add a payment method at {endpoint}/settings/billing"),
        (403, "your HF token cannot create Spaces (HTTP 403): use a token with write access (hf auth login)"),
        (401, "your HF token cannot create Spaces (HTTP 401): use a token with write access (hf auth login)"),
    ],
)
def test_create_refusals_are_one_short_line_that_leads_with_the_remedy(
    hub: SpacesHub, ops: SpaceOps, status, line
):
    hub.create_status = status

    with pytest.raises(SandboxRefused) as failed:
        ops.create("a10g-small", "t", {"WANDB_API_KEY": "wandb-secret-value"}, None)

    assert str(failed.value) == line.format(endpoint=hub.url) and failed.value.status == status
    assert hub.commits == {} and hub.find("DELETE") == []  # a refused creation made nothing to delete


def test_a_create_the_hub_never_answers_times_out_and_deletes_what_it_may_have_made(
    hub: SpacesHub, ops: SpaceOps, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(spaces, "REQUEST_TIMEOUT", 0.5)
    hub.create_delay = 30.0  # a Hub that does not answer (the client's own timeout is None)

    started = time.monotonic()
    with pytest.raises(SandboxFailed, match="Could not reach the Hub") as failed:
        ops.create("cpu-basic", "t", {}, None)

    assert time.monotonic() - started < 10 and not isinstance(failed.value, SandboxRefused)
    [body] = hub.created
    assert hub.deleted == [f"{USER}/{body['name']}"] and hub.commits == {}  # made all the same: deleted


def test_a_delete_the_hub_never_answers_gives_up_after_the_request_timeout(
    hub: SpacesHub, ops: SpaceOps, monkeypatch: pytest.MonkeyPatch
):
    space = ops.create("cpu-basic", "t", {}, None)
    monkeypatch.setattr(spaces, "REQUEST_TIMEOUT", 0.5)
    hub.delete_delay = 30.0

    started = time.monotonic()
    assert ops.delete(space.space_id) is False
    assert time.monotonic() - started < 10


def test_a_token_the_hub_rejects_cannot_create(hub: SpacesHub, tmp_path: Path):
    with pytest.raises(SandboxFailed, match="HTTP 401") as failed:
        SpaceOps(env_for(hub, tmp_path, token="hf_wrong_token_0000000000")).create("cpu-basic", "t", {}, None)
    assert "hf_wrong_token" not in str(failed.value)


def test_stage_of_an_unknown_space_reads_missing(ops: SpaceOps):
    assert ops.stage(f"{USER}/{NAME_PREFIX}00000000") == ("MISSING", None)


def test_delete_is_retried_through_server_errors_by_the_one_retry_policy(hub: SpacesHub, ops: SpaceOps):
    space = ops.create("cpu-basic", "t", {}, None)
    hub.delete_failures = 2

    assert ops.delete(space.space_id) is True
    assert hub.deleted == [space.space_id] and len(hub.find("DELETE", "/api/repos/delete")) == 3


def test_delete_gives_up_after_the_configured_tries(hub: SpacesHub, tmp_path: Path):
    ops = SpaceOps(ToolEnv(workdir=tmp_path, home=tmp_path, hf_endpoint=hub.url, hf_token=TOKEN,
                           config={"http": {"retry_delay": 0.01, "retry_attempts": 4}}))  # fmt: skip
    space = ops.create("cpu-basic", "t", {}, None)
    hub.delete_failures = 5

    assert ops.delete(space.space_id) is False
    assert hub.deleted == [] and len(hub.find("DELETE", "/api/repos/delete")) == 4


def test_delete_refused_says_what_to_do(hub: SpacesHub, ops: SpaceOps):
    space = ops.create("cpu-basic", "t", {}, None)
    hub.fail("DELETE", "/api/repos/delete", 403, times=5)

    with pytest.raises(SandboxRefused, match=r"^your HF token cannot create Spaces \(HTTP 403\)"):
        ops.delete(space.space_id)
    assert len(hub.find("DELETE", "/api/repos/delete")) == 1  # a refusal is not retried


def test_a_missing_space_counts_as_deleted(ops: SpaceOps):
    assert ops.delete(f"{USER}/{NAME_PREFIX}00000000") is True


def test_delete_refuses_a_space_that_is_not_a_sandbox(hub: SpacesHub, ops: SpaceOps):
    mine = hub.add_space("my-demo")

    with pytest.raises(SandboxFailed, match="not an ml-intern sandbox"):
        ops.delete(mine)
    assert hub.find("DELETE") == [] and ("space", mine) in hub.repos


def test_list_shows_only_sandboxes_with_the_run_that_made_each(hub: SpacesHub, ops: SpaceOps):
    made = ops.create("t4-small", "thread-1", {}, None)
    other = hub.add_space(
        f"{NAME_PREFIX}0badc0de",
        variables={RUN_VARIABLE: json.dumps({"host": "far", "pid": 7, "thread": "x"})},
    )
    broken = hub.add_space(f"{NAME_PREFIX}12345678", variables={RUN_VARIABLE: "{not json"})
    hub.add_space("my-demo")  # the user's own Space
    hub.add_space(f"not-{NAME_PREFIX}00000000")  # contains the prefix, does not start with it
    hub.add_space(f"{NAME_PREFIX}99999999", owner="someone-else")

    rows = {row.space_id: row for row in list_sandboxes(ops)}

    assert sorted(rows) == sorted([made.space_id, other, broken])
    assert (rows[made.space_id].host, rows[made.space_id].pid) == (socket.gethostname(), os.getpid())
    assert rows[made.space_id].start == spaces.process_start(os.getpid()) and rows[other].start is None
    assert (rows[made.space_id].thread, rows[made.space_id].hardware) == ("thread-1", "t4-small")
    assert rows[made.space_id].created_at is not None and rows[made.space_id].stage == "BUILDING"
    assert (rows[other].host, rows[other].pid, rows[other].thread) == ("far", 7, "x")
    assert (rows[broken].host, rows[broken].pid, rows[broken].thread) == ("", None, "")
    assert sorted(hub.variables_reads) == sorted(rows)
    [listing] = hub.find("GET", "^/api/spaces$")
    assert listing.arg("author") == USER and listing.arg("search") == NAME_PREFIX


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"host": "h", "pid": 5, "thread": "t"}', ("h", 5, "t", None)),
        ('{"host": "h", "pid": 5, "start": 123, "thread": "t"}', ("h", 5, "t", 123)),
        ('{"host": 3, "pid": "5", "thread": null, "start": "9"}', ("", None, "", None)),
        ('{"pid": true, "start": false}', ("", None, "", None)),
        ('{"pid": -4, "start": -1}', ("", None, "", None)),
        ("[1, 2]", ("", None, "", None)),
        ("", ("", None, "", None)),
        (None, ("", None, "", None)),
    ],
)
def test_the_run_variable_is_read_defensively(value, expected):
    assert read_run_variable(value) == expected


@pytest.mark.e2e
def test_the_commit_builds_the_space_and_its_url_reaches_the_uploaded_server(tmp_path: Path):
    with SpacesHub(token=TOKEN, build_polls=2) as hub:
        ops = SpaceOps(env_for(hub, tmp_path))
        space = ops.create("cpu-basic", "t", {}, None)

        stages = [ops.stage(space.space_id)[0] for _ in range(3)]
        assert stages == ["BUILDING", "BUILDING", "RUNNING"]
        assert ops.stage(space.space_id) == ("RUNNING", "cpu-basic")
        assert hub.runtime_polls[space.space_id] == 4
        url = ops.url(space.space_id)
        assert url == hub.url_of(space.space_id) and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/api/health", timeout=10) as answer:
            assert json.loads(answer.read())["ok"] is True
        call = urllib.request.Request(
            f"{url}/api/write",
            data=json.dumps({"path": "/app/notes.txt", "content": "hi"}).encode(),
            headers={"X-Sandbox-Authorization": f"Bearer {space.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(call, timeout=10):
            pass  # the server got the token the Space was created with, and works in root_of
        assert (hub.root_of(space.space_id) / "notes.txt").read_text() == "hi"
        assert space.token == hub.token_of(space.space_id)
        process = hub.process_of(space.space_id)
        assert process is not None and process.poll() is None

        assert ops.delete(space.space_id)
        assert process.poll() is not None  # deleting the Space stops its server
        assert ops.stage(space.space_id) == ("MISSING", None)


@pytest.mark.e2e
def test_a_failing_build_reads_its_stage_and_has_no_url(tmp_path: Path):
    with SpacesHub(token=TOKEN, fail_stage="BUILD_ERROR") as hub:
        ops = SpaceOps(env_for(hub, tmp_path))
        space = ops.create("cpu-basic", "t", {}, None)

        assert [ops.stage(space.space_id)[0] for _ in range(2)] == ["BUILDING", "BUILD_ERROR"]
        with pytest.raises(SandboxFailed, match="no address"):
            ops.url(space.space_id)
        assert hub.process_of(space.space_id) is None


@pytest.mark.e2e
def test_the_fake_stops_every_server_it_started(tmp_path: Path):
    with SpacesHub(token=TOKEN) as hub:
        ops = SpaceOps(env_for(hub, tmp_path))
        processes = [hub.process_of(ops.create("cpu-basic", "t", {}, None).space_id) for _ in range(2)]
        assert all(p is not None and p.poll() is None for p in processes)
    assert all(p is not None and p.poll() is not None for p in processes)
