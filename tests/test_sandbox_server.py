"""The sandbox server (tools/sandbox/server.py) run as a process on 127.0.0.1: its token check, the file
operations, bash bounded in time and output, and its errors (always one JSON line, never a traceback)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ml_intern.tools.sandbox import server as sandbox_server

pytestmark = pytest.mark.e2e

SERVER_SCRIPT = Path(sandbox_server.__file__)
AUTH = "X-Sandbox-Authorization"


@dataclass
class Running:
    """A started server: where it listens, its token, root and spill dir, and its process."""

    url: str
    token: str
    root: Path
    spill_dir: Path
    process: subprocess.Popen[str]

    def post(self, operation: str, body: Any, auth: str | None = "", timeout: float = 30) -> httpx.Response:
        """POST /api/<operation>; `auth` "" means the right token, None no header."""
        headers = {} if auth is None else {AUTH: auth or f"Bearer {self.token}"}
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        reply = httpx.post(f"{self.url}/api/{operation}", content=content, headers=headers, timeout=timeout)
        assert "Traceback" not in reply.text
        return reply

    def ok(self, operation: str, body: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        reply = self.post(operation, body, timeout=timeout)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def error(self, operation: str, body: Any, status: int = 400) -> str:
        reply = self.post(operation, body)
        assert reply.status_code == status, reply.text
        return reply.json()["error"]

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def start_server(base: Path, environment: dict[str, str], token: str | None) -> Running:
    root, spill_dir, cwd = base / "root", base / "spill", base / "server-cwd"
    cwd.mkdir(parents=True)
    env = {name: value for name, value in environment.items() if name != "SANDBOX_API_TOKEN"}
    env |= {"SANDBOX_SPILL_DIR": str(spill_dir)} | ({"SANDBOX_API_TOKEN": token} if token else {})
    argv = [sys.executable, str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--root", str(root)]
    with (base / "server.log").open("wb") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line.startswith("listening on http://127.0.0.1:"), line
    return Running(line.removeprefix("listening on "), token or "", root, spill_dir, process)


def stop_server(running: Running) -> None:
    running.process.send_signal(signal.SIGTERM)
    try:
        running.process.wait(10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait()
    assert running.process.stdout is not None
    running.process.stdout.close()


@pytest.fixture
def server(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Running]:
    running = start_server(tmp_path / "sandbox-server", subprocess_env, secrets.token_urlsafe(32))
    yield running
    stop_server(running)


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether `check` holds within `seconds` (orphans are reaped by init, not at once)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# Auth


def test_health_is_open_and_says_nothing_secret(server: Running) -> None:
    reply = httpx.get(f"{server.url}/api/health")
    assert reply.status_code == 200
    assert reply.json() == {"ok": True, "version": 1}
    assert server.token not in reply.text


@pytest.mark.parametrize(
    "auth",
    [None, "same-length", "Bearer short", "no-bearer", "Bearer"],
    ids=["missing", "wrong-same-length", "wrong-other-length", "no-bearer-prefix", "no-token"],
)
def test_a_missing_or_wrong_token_is_refused(server: Running, auth: str | None) -> None:
    if auth == "same-length":
        auth = "Bearer " + "x" * len(server.token)
    elif auth == "no-bearer":
        auth = server.token
    reply = server.post("write", {"path": "x.txt", "content": "no"}, auth=auth)
    assert reply.status_code == 401
    assert reply.json()["error"]
    assert server.token not in reply.text
    assert not (server.root / "x.txt").exists()


def test_without_a_configured_token_every_operation_answers_503(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    running = start_server(tmp_path / "tokenless", subprocess_env, None)
    try:
        assert httpx.get(f"{running.url}/api/health").status_code == 200
        for operation, body in [("bash", {"command": "touch made"}), ("write", {"path": "a", "content": ""})]:
            reply = running.post(operation, body, auth="Bearer anything")
            assert reply.status_code == 503, reply.text
            assert "SANDBOX_API_TOKEN" in reply.json()["error"]
        assert not (running.root / "made").exists() and not (running.root / "a").exists()
    finally:
        stop_server(running)


# Files


def test_write_then_read_gives_numbered_lines(server: Running) -> None:
    message = server.ok("write", {"path": "notes/a.txt", "content": "alpha\nbeta\ngamma\n"})["message"]
    assert "Wrote 17 bytes (3 lines)" in message
    assert (server.root / "notes/a.txt").read_text() == "alpha\nbeta\ngamma\n"
    whole = server.ok("read", {"path": "notes/a.txt"})
    assert whole == {
        "content": "     1\talpha\n     2\tbeta\n     3\tgamma",
        "total_lines": 3,
        "last_line": 3,
    }
    part = server.ok("read", {"path": "notes/a.txt", "offset": 2, "limit": 1})
    assert part == {"content": "     2\tbeta", "total_lines": 3, "last_line": 2}
    assert server.ok("read", {"path": "notes/a.txt", "raw": True})["content"] == "alpha\nbeta\ngamma\n"
    assert "past the end" in server.error("read", {"path": "notes/a.txt", "offset": 9})


def test_read_cuts_long_lines_and_refuses_binary_and_missing_files(server: Running) -> None:
    (server.root / "long.txt").write_text("x" * 5000 + "\nshort\n")
    lines = server.ok("read", {"path": "long.txt"})["content"].split("\n")
    assert lines[0] == "     1\t" + "x" * 2000 + "... [3000 more characters]"
    assert lines[1] == "     2\tshort"
    (server.root / "huge-line.txt").write_text("y" * 3_000_000 + "\nend\n")  # longer than a read piece
    huge = server.ok("read", {"path": "huge-line.txt"})
    assert huge["content"].split("\n") == [
        "     1\t" + "y" * 2000 + "... [2998000 more characters]",
        "     2\tend",
    ]
    (server.root / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    assert "binary file" in server.error("read", {"path": "blob.bin"})
    assert "File not found: nope.txt" in server.error("read", {"path": "nope.txt"})


EDIT_CASES = {
    "replace": ({"old_str": "three", "new_str": "THREE"}, "one\ntwo\nTHREE\ntwo\n"),
    "not-found": ({"old_str": "four", "new_str": "4"}, "old_str not found in f.txt"),
    "not-unique": ({"old_str": "two", "new_str": "2"}, "old_str found 2 times in f.txt"),
    "replace-all": ({"old_str": "two", "new_str": "2", "replace_all": True}, "one\n2\nthree\n2\n"),
    "append-after": (
        {"old_str": "one\n", "new_str": "1.5\n", "mode": "append_after"},
        "one\n1.5\ntwo\nthree\ntwo\n",
    ),
    "prepend-before": (
        {"old_str": "three", "new_str": "2.5\n", "mode": "prepend_before"},
        "one\ntwo\n2.5\nthree\ntwo\n",
    ),
}


@pytest.mark.parametrize(("body", "expected"), EDIT_CASES.values(), ids=EDIT_CASES.keys())
def test_edit_changes_one_exact_match_or_says_why_not(
    server: Running, body: dict[str, Any], expected: str
) -> None:
    original = "one\ntwo\nthree\ntwo\n"
    (server.root / "f.txt").write_text(original)
    if expected.startswith("old_str"):
        assert expected in server.error("edit", {"path": "f.txt", **body})
        assert (server.root / "f.txt").read_text() == original
        return
    reply = server.ok("edit", {"path": "f.txt", **body})
    assert (server.root / "f.txt").read_text() == expected
    assert reply["message"].startswith(f"Edited {server.root / 'f.txt'}")
    assert body["new_str"].strip() in reply["snippet"]


def test_exists_reports_files_and_directories(server: Running) -> None:
    (server.root / "d").mkdir()
    (server.root / "d/f").write_bytes(b"12345")
    assert server.ok("exists", {"path": "d/f"}) == {"exists": True, "is_dir": False, "size": 5}
    assert server.ok("exists", {"path": "/app/d"})["is_dir"] is True
    assert server.ok("exists", {"path": "d/none"}) == {"exists": False, "is_dir": False, "size": None}


def test_app_paths_map_into_the_root_and_relative_paths_stay_in_it(server: Running) -> None:
    server.ok("write", {"path": "/app/mapped/x.txt", "content": "m"})
    server.ok("write", {"path": "relative.txt", "content": "r"})
    assert (server.root / "mapped/x.txt").read_text() == "m"
    assert (server.root / "relative.txt").read_text() == "r"
    assert not any((server.root.parent / "server-cwd").iterdir())  # not the server's own directory
    ran = server.ok("bash", {"command": "pwd; touch made-here", "work_dir": "/app/mapped"})
    assert ran["output"].strip() == str(server.root / "mapped")
    assert (server.root / "mapped/made-here").exists()
    assert "not a directory" in server.error("bash", {"command": "true", "work_dir": "missing"})


def test_only_app_paths_map_onto_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert sandbox_server.resolve(root, "/app") == root
    assert sandbox_server.resolve(root, "/app/a/b") == root / "a/b"
    assert sandbox_server.resolve(root, "/application/a") == Path("/application/a")
    assert sandbox_server.resolve(root, "/srv/x") == Path("/srv/x")
    assert sandbox_server.resolve(root, "a/../b") == root / "a/../b"
    assert sandbox_server.resolve(Path("/app"), "/app/a") == Path("/app/a")


# bash


def test_bash_returns_exit_code_and_merged_output(server: Running) -> None:
    ran = server.ok("bash", {"command": 'echo out; echo err >&2; test -z "$SANDBOX_API_TOKEN" && exit 3'})
    assert ran == {
        "output": "out\nerr\n",
        "exit_code": 3,
        "timed_out": False,
        "truncated": False,
        "spill": None,
    }


def test_bash_output_is_bounded_and_spilled_whole(server: Running) -> None:
    ran = server.ok("bash", {"command": "seq 1 200000"})
    expected = "".join(f"{n}\n" for n in range(1, 200001))
    assert ran["truncated"] is True and ran["exit_code"] == 0
    output, spill = ran["output"], Path(ran["spill"])
    assert len(output) <= 25_000
    assert output.startswith("1\n2\n3\n") and output.endswith("199999\n200000\n")
    assert f"characters omitted; whole output: {spill}]" in output
    assert spill.parent == server.spill_dir
    assert spill.read_text() == expected
    assert stat.S_IMODE(spill.stat().st_mode) == 0o600


def test_a_huge_output_does_not_grow_the_server_memory(server: Running) -> None:
    server.ok("bash", {"command": "seq 1 100000"})  # warm up: threads, decoder, spill path
    before = server.rss_kb()
    ran = server.ok("bash", {"command": "yes | head -c 300000000"}, timeout=60)
    growth = server.rss_kb() - before
    spill = Path(ran["spill"])
    try:
        assert spill.stat().st_size == 300_000_000
        assert len(ran["output"]) <= 25_000
        assert growth < 40_000, f"the server grew by {growth} kB"
    finally:
        spill.unlink()


@pytest.mark.parametrize(
    "command", ["echo $$; sleep 600; echo not reached", "echo $$; while true; do :; done"]
)
def test_a_runaway_command_is_killed_at_its_timeout(server: Running, command: str) -> None:
    started = time.monotonic()
    ran = server.ok("bash", {"command": command, "timeout": 1})
    assert time.monotonic() - started < 1 + 5
    assert ran["timed_out"] is True and ran["exit_code"] is None
    pgid = int(ran["output"].split()[0])
    assert eventually(lambda: group_gone(pgid))


def test_a_background_child_holding_the_output_is_stopped(server: Running) -> None:
    started = time.monotonic()
    ran = server.ok("bash", {"command": "sleep 600 & echo $!; echo done", "timeout": 5})
    assert time.monotonic() - started < 5 + 5
    child = int(ran["output"].split()[0])
    assert "done" in ran["output"] and "background processes" in ran["output"]
    assert ran["exit_code"] == 0 and ran["timed_out"] is False
    assert eventually(lambda: process_gone(child))


def test_kill_stops_a_command_started_by_another_request(server: Running) -> None:
    results: list[dict[str, Any]] = []
    command = {"command": "echo $$; touch started; sleep 600", "timeout": 60}
    call = threading.Thread(target=lambda: results.append(server.ok("bash", command, timeout=90)))
    call.start()
    assert eventually(lambda: (server.root / "started").exists())
    assert server.ok("kill", {})["killed"] >= 1
    call.join(15)
    assert not call.is_alive() and results
    assert results[0]["timed_out"] is False and results[0]["exit_code"] == 128 + signal.SIGTERM
    assert eventually(lambda: group_gone(int(results[0]["output"].split()[0])))
    assert server.ok("kill", {}) == {"killed": 0}


def test_kill_with_an_id_stops_that_call_only_and_its_background_jobs(server: Running) -> None:
    background = server.ok("bash", {"command": "nohup sleep 600 > job.log 2>&1 & echo $!", "id": "early"})
    job = int(background["output"].split()[0])
    results: list[dict[str, Any]] = []
    command = {"command": "echo $$; touch started; sleep 600", "timeout": 60, "id": "later"}
    call = threading.Thread(target=lambda: results.append(server.ok("bash", command, timeout=90)))
    call.start()
    assert eventually(lambda: (server.root / "started").exists())
    assert server.ok("kill", {"id": "later"}) == {"killed": 1}
    call.join(15)
    assert not call.is_alive() and results[0]["exit_code"] == 128 + signal.SIGTERM
    assert eventually(lambda: group_gone(int(results[0]["output"].split()[0])))
    assert not process_gone(job)  # the model's earlier background job runs on
    assert server.ok("kill", {"id": "early"}) == {"killed": 1}
    assert eventually(lambda: process_gone(job))


def test_a_call_killed_before_it_arrives_never_starts(server: Running) -> None:
    assert server.ok("kill", {"id": "cancelled-early"}) == {"killed": 0}
    said = server.error("bash", {"command": "touch ran", "id": "cancelled-early"}, status=409)
    assert said == "bash call cancelled-early was cancelled before it started"
    assert not (server.root / "ran").exists()
    assert "longer than 100" in server.error("kill", {"id": "x" * 101})


# Errors


def test_bad_requests_get_one_json_line_never_a_traceback(server: Running) -> None:
    big = b'{"path": "big.txt", "content": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    assert "16 MB" in server.error("write", big, status=413)
    assert not (server.root / "big.txt").exists()
    assert "not valid JSON" in server.error("write", b"{not json")
    assert "JSON object" in server.error("write", b"[1, 2]")
    assert "missing argument: path" in server.error("write", {"content": "x"})
    assert "must be a string" in server.error("read", {"path": 5})
    assert "unknown operation" in server.error("format_disk", {}, status=404)
    for reply in (server.post("read", {"path": "x"}, auth=None), httpx.put(f"{server.url}/api/read")):
        assert reply.headers["content-type"] == "application/json" and reply.json()["error"]
        assert "Traceback" not in reply.text


def test_a_body_without_content_length_is_refused(server: Running) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"POST /api/exists HTTP/1.1\r\nHost: {host}\r\n{AUTH}: Bearer {server.token}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\n{}   \r\n0\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = b"".join(iter(lambda: connection.recv(65536), b"")).decode()  # the server closes
    assert answer.startswith("HTTP/1.1 411") and '{"error": "Content-Length required"}' in answer
