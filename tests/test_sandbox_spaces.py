"""The Hub side of sandboxes (`tools/sandbox/spaces.py`) against the fake Spaces Hub: what a Space is created
with, the one upload, deletion with retries, listing with the run that made each Space."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_intern.secrets import redact
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.sandbox import spaces
from ml_intern.tools.sandbox.listing import list_sandboxes, read_run_variable
from ml_intern.tools.sandbox.spaces import NAME_PREFIX, RUN_VARIABLE, TOKEN_SECRET, SandboxFailed, SpaceOps
from tests.fakes.hub_server import USER
from tests.fakes.spaces_hub import SpacesHub

TOKEN = "hf_test_spaces_token_1234567890"


def env_for(hub: SpacesHub, tmp_path: Path, token: str = TOKEN) -> ToolEnv:
    return ToolEnv(workdir=tmp_path, home=tmp_path, hf_endpoint=hub.url, hf_token=token)


@pytest.fixture
def hub() -> Iterator[SpacesHub]:
    with SpacesHub(token=TOKEN, start_servers=False) as fake:
        yield fake


@pytest.fixture
def ops(hub: SpacesHub, tmp_path: Path) -> SpaceOps:
    return SpaceOps(env_for(hub, tmp_path), sleep=lambda seconds: None)


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
        "thread": "thread-7",
    }
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
    hub.delete_failures = 5

    with pytest.raises(SandboxFailed, match="ml-intern sandboxes --delete"):
        ops.create("cpu-basic", "t", {}, None)
    assert hub.deleted == []


@pytest.mark.parametrize(
    ("status", "words"),
    [(402, "settings/billing"), (403, "write access"), (401, "write access")],
)
def test_create_refusals_become_one_line_saying_what_to_do(hub: SpacesHub, ops: SpaceOps, status, words):
    hub.create_status = status

    with pytest.raises(SandboxFailed) as failed:
        ops.create("a10g-small", "t", {"WANDB_API_KEY": "wandb-secret-value"}, None)

    line = str(failed.value)
    assert words in line and f"HTTP {status}" in line and "\n" not in line
    assert TOKEN not in line and "wandb-secret-value" not in line
    assert hub.commits == {}


def test_a_token_the_hub_rejects_cannot_create(hub: SpacesHub, tmp_path: Path):
    with pytest.raises(SandboxFailed, match="HTTP 401") as failed:
        SpaceOps(env_for(hub, tmp_path, token="hf_wrong_token_0000000000")).create("cpu-basic", "t", {}, None)
    assert "hf_wrong_token" not in str(failed.value)


def test_stage_of_an_unknown_space_reads_missing(ops: SpaceOps):
    assert ops.stage(f"{USER}/{NAME_PREFIX}00000000") == ("MISSING", None)


def test_delete_retries_through_server_errors_one_then_two_seconds_apart(hub: SpacesHub, tmp_path: Path):
    pauses: list[float] = []
    ops = SpaceOps(env_for(hub, tmp_path), sleep=pauses.append)
    space = ops.create("cpu-basic", "t", {}, None)
    hub.delete_failures = 2

    assert ops.delete(space.space_id) is True
    assert pauses == [1.0, 2.0] and hub.deleted == [space.space_id]
    assert len(hub.find("DELETE", "/api/repos/delete")) == 3


def test_delete_gives_up_after_its_attempts(hub: SpacesHub, tmp_path: Path):
    pauses: list[float] = []
    ops = SpaceOps(env_for(hub, tmp_path), sleep=pauses.append)
    space = ops.create("cpu-basic", "t", {}, None)
    hub.delete_failures = 5

    assert ops.delete(space.space_id, attempts=3) is False
    assert pauses == [1.0, 2.0] and hub.deleted == []


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
        ('{"host": "h", "pid": 5, "thread": "t"}', ("h", 5, "t")),
        ('{"host": 3, "pid": "5", "thread": null}', ("", None, "")),
        ('{"pid": true}', ("", None, "")),
        ('{"pid": -4}', ("", None, "")),
        ("[1, 2]", ("", None, "")),
        ("", ("", None, "")),
        (None, ("", None, "")),
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
