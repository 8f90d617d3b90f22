"""`ml-intern sandboxes` as a subprocess against the fake Spaces Hub: the listing with who holds each sandbox,
`--delete` removing only leftovers, `--delete NAME` refusing a held one, one line for every failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_intern.terminal.sandboxes import NOBODY, UNKNOWN, age, holder
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.sandbox.listing import SpaceRow
from ml_intern.tools.sandbox.spaces import NAME_PREFIX, RUN_VARIABLE, SpaceOps, process_start
from tests.fakes.hub_server import USER
from tests.fakes.spaces_hub import SpacesHub
from tests.harness import installed_cli

TOKEN = "hf_test_sandboxes_command_0123456789"


@pytest.fixture
def hub() -> Iterator[SpacesHub]:
    with SpacesHub(token=TOKEN, start_servers=False) as fake:
        yield fake


@pytest.fixture
def made(hub: SpacesHub, tmp_path: Path) -> dict[str, str]:
    """Sandboxes made through SpaceOps: held by this (live) process, by a finished one, by another machine,
    of unknown origin; and a Space of the user's that is no sandbox."""
    ops = SpaceOps(ToolEnv(workdir=tmp_path, home=tmp_path, hf_endpoint=hub.url, hf_token=TOKEN))
    ids = {
        kind: ops.create("cpu-basic", f"thread-{kind}", {}, None).space_id for kind in ("live", "dead", "far")
    }
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # reaped: its pid is no process's
    runs = {
        "dead": {"host": socket.gethostname(), "pid": finished.pid, "thread": "thread-dead"},
        "far": {"host": "far-away-machine", "pid": os.getpid(), "thread": "thread-far"},
    }
    for kind, run in runs.items():
        hub.spaces[ids[kind]].variables[RUN_VARIABLE] = json.dumps(run)
    ids["unknown"] = hub.add_space(f"{NAME_PREFIX}0000abcd", variables={})
    ids["mine"] = hub.add_space("my-demo-app")
    return ids


def sandboxes(hub: SpacesHub | None, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ml-intern sandboxes ARGS` with the fake Hub's URL and token."""
    if hub is not None:
        env = {**env, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN}
    return subprocess.run(
        [str(installed_cli()), "sandboxes", *args], env=env, capture_output=True, text=True, timeout=120
    )


def line_of(output: str, space_id: str) -> str:
    [line] = [line for line in output.splitlines() if space_id in line]
    return line


@pytest.mark.e2e
def test_the_listing_says_who_holds_each_sandbox(hub: SpacesHub, made: dict[str, str], subprocess_env):
    result = sandboxes(hub, subprocess_env)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0].split() == ["NAME", "HARDWARE", "STAGE", "AGE", "THREAD", "HELD", "BY"]
    live = line_of(out, made["live"]).split()[1:]
    assert live[:2] == ["cpu-basic", "BUILDING"] and live[3:] == ["thread-live", "pid", str(os.getpid())]
    assert live[2] in ("0s", "1s", "2s")  # made just before the command ran
    assert line_of(out, made["dead"]).split()[-2:] == ["thread-dead", NOBODY]
    assert line_of(out, made["far"]).split()[-2:] == ["thread-far", "far-away-machine"]
    assert line_of(out, made["unknown"]).split()[-1] == UNKNOWN
    assert "my-demo-app" not in out
    assert "1 left over by runs that ended: ml-intern sandboxes --delete removes them" in out
    assert hub.deleted == [] and TOKEN not in out + result.stderr


@pytest.mark.e2e
def test_delete_removes_only_the_leftovers_made_here(hub: SpacesHub, made: dict[str, str], subprocess_env):
    result = sandboxes(hub, subprocess_env, "--delete")

    assert result.returncode == 0, result.stderr
    assert hub.deleted == [made["dead"]]
    assert f"deleted {made['dead']}" in result.stdout
    assert (
        "kept 2 made on other machines or by unknown runs: --delete --all removes them too" in result.stdout
    )


@pytest.mark.e2e
def test_delete_all_also_removes_other_machines_but_never_a_live_run(
    hub: SpacesHub, made: dict[str, str], subprocess_env
):
    result = sandboxes(hub, subprocess_env, "--delete", "--all")

    assert result.returncode == 0, result.stderr
    assert sorted(hub.deleted) == sorted([made["dead"], made["far"], made["unknown"]])
    assert ("space", made["live"]) in hub.repos and ("space", made["mine"]) in hub.repos
    assert [line for line in result.stdout.splitlines() if line.startswith("deleted ")] == [
        f"deleted {space_id}" for space_id in sorted([made["dead"], made["far"], made["unknown"]])
    ]


@pytest.mark.e2e
def test_delete_by_name_refuses_a_held_sandbox_and_a_space_that_is_none(
    hub: SpacesHub, made: dict[str, str], subprocess_env
):
    live_name = made["live"].split("/")[1]
    result = sandboxes(hub, subprocess_env, "--delete", live_name, made["far"], "my-demo-app")

    assert result.returncode == 1
    assert hub.deleted == [made["far"]]  # named explicitly: deleted although another machine made it
    assert f"deleted {made['far']}" in result.stdout
    errors = result.stderr.splitlines()
    assert (
        f"ml-intern: error: {made['live']}: held by pid {os.getpid()}: stop that run first (or add --force)"
        in errors
    )
    assert f"ml-intern: error: my-demo-app is not a sandbox: their names start with {NAME_PREFIX}" in errors
    assert len(errors) == 2


@pytest.mark.e2e
def test_force_deletes_a_named_sandbox_that_looks_held(hub: SpacesHub, made: dict[str, str], subprocess_env):
    result = sandboxes(hub, subprocess_env, "--delete", "--force", made["live"])

    assert (result.returncode, result.stderr) == (0, "")
    assert hub.deleted == [made["live"]] and result.stdout.strip() == f"deleted {made['live']}"


@pytest.mark.e2e
def test_a_leftover_whose_pid_was_reused_is_nobodys_and_deleted(hub: SpacesHub, subprocess_env):
    start = process_start(1)
    assert start is not None  # Linux
    run = {"host": socket.gethostname(), "pid": 1, "start": start + 1, "thread": "t-crashed"}  # pid 1 lives
    reused = hub.add_space(f"{NAME_PREFIX}deadbeef", variables={RUN_VARIABLE: json.dumps(run)})

    listing = sandboxes(hub, subprocess_env)
    assert line_of(listing.stdout, reused).split()[-2:] == ["t-crashed", NOBODY]
    result = sandboxes(hub, subprocess_env, "--delete")

    assert result.returncode == 0, result.stderr
    assert hub.deleted == [reused] and f"deleted {reused}" in result.stdout


@pytest.mark.e2e
def test_delete_by_name_of_a_leftover_succeeds(hub: SpacesHub, made: dict[str, str], subprocess_env):
    result = sandboxes(hub, subprocess_env, "--delete", made["dead"])

    assert (result.returncode, result.stderr) == (0, "")
    assert hub.deleted == [made["dead"]] and result.stdout.strip() == f"deleted {made['dead']}"


@pytest.mark.e2e
def test_a_deletion_the_hub_keeps_failing_is_one_line_and_exit_1(
    hub: SpacesHub, made: dict[str, str], subprocess_env
):
    hub.delete_failures = 10

    result = sandboxes(hub, subprocess_env, "--delete", made["dead"])

    assert result.returncode == 1 and hub.deleted == []
    assert result.stderr.splitlines() == [
        f"ml-intern: error: could not delete {made['dead']} (the Hub kept failing): try again later"
    ]
    assert len(hub.find("DELETE", "/api/repos/delete")) == 3


@pytest.mark.e2e
def test_nothing_to_list(hub: SpacesHub, subprocess_env):
    hub.add_space("my-demo-app")

    result = sandboxes(hub, subprocess_env)

    assert (result.returncode, result.stdout, result.stderr) == (0, "no sandboxes\n", "")


@pytest.mark.e2e
def test_no_token_is_one_line_and_exit_2(subprocess_env):
    result = sandboxes(None, subprocess_env)

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "ml-intern: error: ml-intern sandboxes needs a Hugging Face token: run hf auth login or set HF_TOKEN"
    ]


@pytest.mark.e2e
def test_a_token_the_hub_rejects_is_one_line_and_exit_1(hub: SpacesHub, subprocess_env):
    wrong = "hf_wrong_token_abcdefghijklmnop"
    result = sandboxes(None, {**subprocess_env, "HF_ENDPOINT": hub.url, "HF_TOKEN": wrong})

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("ml-intern: error: ") and "HTTP 401" in line and wrong not in line


@pytest.mark.e2e
def test_names_without_delete_are_a_usage_error(hub: SpacesHub, subprocess_env):
    result = sandboxes(hub, subprocess_env, f"{NAME_PREFIX}0000abcd")

    assert result.returncode == 2 and "--delete" in result.stderr
    assert hub.requests == []


@pytest.mark.parametrize(
    ("host", "pid", "expected"),
    [
        (socket.gethostname(), os.getpid(), f"pid {os.getpid()}"),
        (socket.gethostname(), None, NOBODY),
        ("elsewhere", os.getpid(), "elsewhere"),
        ("", os.getpid(), UNKNOWN),
    ],
)
def test_holder(host, pid, expected):
    assert holder(SpaceRow(f"{USER}/{NAME_PREFIX}00000000", None, None, None, "", host, pid)) == expected


def test_a_recorded_start_time_tells_a_live_run_from_a_reused_pid():
    here, pid, start = socket.gethostname(), os.getpid(), process_start(os.getpid())
    assert start is not None
    row = SpaceRow(f"{USER}/{NAME_PREFIX}00000000", None, None, None, "", here, pid, start)
    assert holder(row) == f"pid {pid}"
    assert holder(SpaceRow(row.space_id, None, None, None, "", here, pid, start + 1)) == NOBODY


@pytest.mark.parametrize(
    ("created", "expected"), [(None, "?"), (1000.0, "0s"), (955.0, "45s"), (280.0, "12m"), (-9800.0, "3h")]
)
def test_age(created, expected):
    assert age(created, now=1000.0) == expected
