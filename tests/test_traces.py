"""Opt-in trace upload against a fake Hub: a private dataset is created and the trace committed, in the
background, retried, never raising; visibility flips for /share-traces."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from ml_intern.configs.schema import as_config
from ml_intern.errors import UserError
from ml_intern.session.export import export_thread
from ml_intern.session.options import RunOptions
from ml_intern.session.planning import StartPlan
from ml_intern.session.session import open_session
from ml_intern.session.traces import (
    DATASET_NAME,
    LOG_NAME,
    PENDING_DIR,
    HubAccess,
    retry_pending_uploads,
    session_path,
    trace_visibility,
    upload_thread_trace,
    upload_trace,
)
from ml_intern.tools.http import HttpRetry
from tests.fakes.http_fake import Recorded, Reply
from tests.fakes.hub_server import USER, FakeHub
from tests.fakes.traces_hub import TracesHub
from tests.harness_graph import THREAD, open_agent

TOKEN = "hf_test"
REPO = ("dataset", f"{USER}/{DATASET_NAME}")
TRACE = '{"type": "user", "message": {"role": "user", "content": "hi"}}\n'
PATH = "sessions/2024-05-01/t1.jsonl"
FAST = {"retry_delay": 0.01, "max_retry_delay": 0.05}  # config section `http`


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with TracesHub(token=TOKEN) as server:
        yield server


@pytest.fixture
def access(hub: FakeHub) -> HubAccess:
    return HubAccess(endpoint=hub.url, token=TOKEN, retry=HttpRetry(tries=3, delay=0.01))


def committed_paths(hub: FakeHub) -> list[list[str]]:
    """The file paths of each commit the hub received, in order."""
    return [
        [line["value"]["path"] for line in request.ndjson() if line["key"] == "file"]
        for request in hub.find("POST", "/commit/")
    ]


def test_upload_creates_a_private_dataset_and_commits_the_trace(hub: FakeHub, access: HubAccess, tmp_path):
    url = upload_trace(access, TRACE, PATH, tmp_path)
    repo = hub.repos[REPO]
    assert url == f"{hub.url}/datasets/{USER}/{DATASET_NAME}"
    assert repo.private and repo.files[PATH] == TRACE.encode()
    assert b"agent-traces" in repo.files["README.md"]
    [create] = hub.find("POST", "/api/repos/create")
    assert create.json()["type"] == "dataset" and create.headers["authorization"] == f"Bearer {TOKEN}"
    assert not (tmp_path / LOG_NAME).exists()


def test_later_uploads_keep_the_chosen_visibility_and_the_card(hub: FakeHub, access: HubAccess, tmp_path):
    upload_trace(access, TRACE, PATH, tmp_path)
    assert trace_visibility(access, private=False).startswith(f"{USER}/{DATASET_NAME} is public")
    upload_trace(access, TRACE + TRACE, PATH, tmp_path)
    repo = hub.repos[REPO]
    assert not repo.private and repo.files[PATH] == (TRACE + TRACE).encode()
    assert committed_paths(hub) == [[PATH, "README.md"], [PATH]]


def test_a_failing_hub_is_retried_then_logged_never_raised(hub: FakeHub, access: HubAccess, tmp_path):
    hub.fail("POST", "/api/repos/create", 500, times=10)
    assert upload_trace(access, TRACE, PATH, tmp_path) is None
    assert len(hub.find("POST", "/api/repos/create")) == 3 and REPO not in hub.repos  # http.retry_attempts
    (line,) = (tmp_path / LOG_NAME).read_text().splitlines()
    assert f"{PATH}: The Hub failed with HTTP 500 while uploading the trace after 3 tries" in line


def test_a_transient_failure_is_retried(hub: FakeHub, access: HubAccess, tmp_path):
    hub.fail("POST", "/commit/", 503, times=1)
    assert upload_trace(access, TRACE, PATH, tmp_path) is not None
    assert hub.repos[REPO].files[PATH] == TRACE.encode()
    assert len(hub.find("POST", "/commit/")) == 2  # the same commit again: harmless, so retried


async def test_a_thread_is_uploaded_in_the_background_after_a_turn(hub: FakeHub, tmp_path, sandbox):
    db = tmp_path / "checkpoints.sqlite"
    environ = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    async with open_agent(db, ["Hello."]) as agent:
        await agent.send("hi")
        config = as_config({"share_traces": True, "http": FAST})
        upload = await upload_thread_trace(agent.session, THREAD, config, environ)
        expected = await export_thread(agent.session, THREAD)
        info = await agent.session.threads.find(THREAD)
    assert upload is not None and upload.wait(timeout=20) is not None
    assert hub.repos[REPO].private
    assert hub.repos[REPO].files[session_path(THREAD, info.created_at)] == expected.encode()


async def test_an_upload_never_blocks_the_run(hub: FakeHub, tmp_path, sandbox):
    hub.fail("GET", "/api/whoami-v2", 500, times=10)
    environ = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    async with open_agent(tmp_path / "checkpoints.sqlite", ["Hello."]) as agent:
        await agent.send("hi")
        started = time.monotonic()
        config = as_config({"save_sessions": True, "http": {"retry_delay": 0.3}})
        upload = await upload_thread_trace(agent.session, THREAD, config, environ)
        returned_after = time.monotonic() - started
    assert upload is not None and returned_after < 0.3  # three tries with backoff take at least 0.9 s
    assert upload.wait(timeout=20) is None
    log = (sandbox.ml_intern_home / LOG_NAME).read_text()
    assert "HTTP 500 while uploading the trace after 3 tries" in log


@pytest.mark.parametrize(
    ("config", "environ_token", "logged"),
    [
        ({}, TOKEN, False),
        ({"share_traces": False, "save_sessions": False}, TOKEN, False),
        ({"share_traces": True}, "", True),
    ],
)
async def test_nothing_is_uploaded_unless_opted_in_with_a_token(
    hub: FakeHub, tmp_path, sandbox, config, environ_token, logged
):
    environ = {
        "HF_TOKEN": environ_token,
        "HF_ENDPOINT": hub.url,
        "ML_INTERN_HOME": str(sandbox.ml_intern_home),
    }
    async with open_agent(tmp_path / "checkpoints.sqlite", ["Hello."]) as agent:
        await agent.send("hi")
        assert await upload_thread_trace(agent.session, THREAD, as_config(config), environ) is None
    assert hub.requests == []
    assert (sandbox.ml_intern_home / LOG_NAME).exists() == logged


def test_visibility_needs_a_token_and_an_existing_dataset(hub: FakeHub, access: HubAccess, tmp_path):
    with pytest.raises(UserError, match="needs a Hugging Face token"):
        trace_visibility(HubAccess(endpoint=hub.url, token=None))
    with pytest.raises(UserError, match=f"no trace dataset {USER}/{DATASET_NAME} yet"):
        trace_visibility(access, private=False)
    upload_trace(access, TRACE, PATH, tmp_path)
    assert (
        trace_visibility(access)
        == f"{USER}/{DATASET_NAME} is private: {hub.url}/datasets/{USER}/{DATASET_NAME}"
    )
    trace_visibility(access, private=False)
    assert trace_visibility(access, private=True).endswith(
        "is private: " + f"{hub.url}/datasets/{USER}/{DATASET_NAME}"
    )
    assert hub.repos[REPO].private


async def test_upload_of_an_unknown_thread_is_logged_not_raised(hub: FakeHub, tmp_path, sandbox):
    environ = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(sandbox.ml_intern_home)}
    async with open_session(tmp_path / "checkpoints.sqlite") as session:
        assert (
            await upload_thread_trace(session, "missing", as_config({"share_traces": True}), environ) is None
        )
    assert "export failed" in (sandbox.ml_intern_home / LOG_NAME).read_text()


def test_a_failed_upload_is_kept_and_retried_in_the_background_at_the_next_start(
    hub: FakeHub, access: HubAccess, tmp_path
):
    hub.fail("POST", "/commit/", 500, times=3)  # every try of this run
    assert upload_trace(access, TRACE, PATH, tmp_path) is None
    [kept] = (tmp_path / PENDING_DIR).iterdir()
    assert kept.stat().st_mode & 0o077 == 0 and REPO in hub.repos and PATH not in hub.repos[REPO].files
    environ = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(tmp_path)}
    upload = retry_pending_uploads(as_config({"share_traces": True, "http": FAST}), environ)
    assert upload is not None and upload.wait(timeout=20) == f"{hub.url}/datasets/{USER}/{DATASET_NAME}"
    assert hub.repos[REPO].files[PATH] == TRACE.encode()
    assert list((tmp_path / PENDING_DIR).iterdir()) == []


@pytest.mark.parametrize(("config", "token"), [({}, TOKEN), ({"share_traces": True}, "")])
def test_pending_traces_stay_put_unless_opted_in_with_a_token(hub: FakeHub, tmp_path, config, token):
    hub.fail("POST", "/api/repos/create", 500, times=3)
    upload_trace(
        HubAccess(endpoint=hub.url, token=TOKEN, retry=HttpRetry(tries=3, delay=0.01)), TRACE, PATH, tmp_path
    )
    sent = len(hub.requests)
    environ = {"HF_TOKEN": token, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(tmp_path)}
    assert retry_pending_uploads(as_config(config), environ) is None
    assert len(hub.requests) == sent and len(list((tmp_path / PENDING_DIR).iterdir())) == 1


class SlowOldCommits(TracesHub):
    """A Hub reached slowly by the cut-off turn-1 trace's commit (it lands after what is sent meanwhile)."""

    def dispatch(self, request: Recorded) -> Reply:
        if request.method == "POST" and "/commit/" in request.path:
            files = [line["value"]["content"] for line in request.ndjson() if line["key"] == "file"]
            if any(b"OLD turn-1" in base64.b64decode(content) for content in files):
                time.sleep(0.5)  # outside the server's lock: other requests go on meanwhile
        return super().dispatch(request)


async def test_a_retried_trace_never_replaces_the_newer_one_of_the_same_thread(tmp_path, sandbox):
    home = sandbox.ml_intern_home
    with SlowOldCommits(token=TOKEN) as hub:
        environ = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(home)}
        config = as_config({"share_traces": True, "http": FAST})
        async with open_agent(tmp_path / "checkpoints.sqlite", ["Hello."]) as agent:
            await agent.send("hi")
            path = session_path(THREAD, (await agent.session.threads.find(THREAD)).created_at)
            # turn 1's upload was cut off (nothing listens there): kept pending
            old = HubAccess.from_environ({**environ, "HF_ENDPOINT": "http://127.0.0.1:9"}, config)
            assert upload_trace(old, '{"type": "user", "text": "OLD turn-1"}\n', path, home) is None
            upload = await upload_thread_trace(agent.session, THREAD, config, environ)  # retries turn 1 too
            expected = await export_thread(agent.session, THREAD)
        assert upload is not None and upload.wait(timeout=20) is not None
        time.sleep(0.8)  # a retry still sending the old trace would land by now
        assert hub.repos[REPO].files[path] == expected.encode()
        assert len(hub.find("POST", "/commit/")) <= 2  # turn 1 at most, then turn 2
    assert list((home / PENDING_DIR).iterdir()) == []


@pytest.mark.parametrize(
    ("token", "template"),
    [("hf_other_account", "{hf_user}/ml-intern-sessions"), (TOKEN, "{hf_user}/jobs")],
)
def test_a_pending_trace_goes_only_to_the_account_and_dataset_it_was_for(
    hub: FakeHub, tmp_path, token, template
):
    hub.fail("POST", "/api/repos/create", 500, times=3)
    kept_for = HubAccess(
        endpoint=hub.url, token=token, retry=HttpRetry(tries=3, delay=0.01), repo_template=template
    )
    assert upload_trace(kept_for, TRACE, PATH, tmp_path) is None
    sent = len(hub.requests)
    environ = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "ML_INTERN_HOME": str(tmp_path)}
    upload = retry_pending_uploads(as_config({"share_traces": True, "http": FAST}), environ)
    assert upload is not None and upload.wait(timeout=20) is None
    assert len(hub.requests) == sent and REPO not in hub.repos  # nothing sent with this token
    assert len(list((tmp_path / PENDING_DIR).glob("*.json"))) == 1  # kept for its own account


async def test_pending_traces_are_sent_in_the_background_when_a_session_starts(
    hub: FakeHub, access: HubAccess, tmp_path, sandbox, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    home = sandbox.ml_intern_home
    hub.fail("POST", "/commit/", 500, times=3)  # a run whose upload failed
    assert upload_trace(access, TRACE, PATH, home) is None
    environ = {
        "HF_TOKEN": TOKEN,
        "HF_ENDPOINT": hub.url,
        "ML_INTERN_HOME": str(home),
        "OPENAI_API_KEY": "sk-x",
    }
    plan = StartPlan(as_config({"share_traces": True, "http": FAST}), "openai/gpt-4o-mini", None)
    async with open_session(tmp_path / "checkpoints.sqlite") as session:
        session.environ = environ
        await session.start(RunOptions(prompt="hi", tools=[]), interactive=False, plan=plan)
        await session.close()
    deadline = time.monotonic() + 20
    while PATH not in hub.repos[REPO].files and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.repos[REPO].files[PATH] == TRACE.encode()  # no turn was run, nothing else uploaded
