"""The one Hub client and the one HTTP client against local servers: a Hub that keeps failing is asked a
bounded number of times, Retry-After is honoured, the model reads one sentence, the terminal stays quiet,
and no token follows a redirect to another host."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ml_intern.tools.hub.search as hub_search
import ml_intern.tools.web.papers as papers
from ml_intern.logs import setup_logging
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import MAX_TRIES, HttpRetry, fetch
from ml_intern.tools.hub.client import make_api
from ml_intern.tools.jobs.tool import make_tools as jobs_tools
from tests.fakes.http_fake import FakeHTTPServer, json_reply
from tests.fakes.jobs_server import FakeJobsHub
from tests.harness import LoggingRestored

TOKEN = "hf_secret_token_for_tests"
FAST = {"retry_delay": 0.01, "max_retry_delay": 0.05}  # config section `http`
SERVER_ERROR = re.compile(
    r"The Hub failed with HTTP 503 while (?P<what>.+) after (?P<tries>\d) tries; retry later "
    r"\(after a write, first check whether it applied\)\.",
)


@pytest.fixture
def failing_hub() -> Iterator[FakeHTTPServer]:
    """A Hub that answers every request with 503."""
    with FakeHTTPServer() as server:
        for method in ("GET", "HEAD", "POST"):
            server.fail(method, ".*", 503, times=1000, body={"error": "Service Unavailable"})
        yield server


@pytest.fixture
def quiet_logs(sandbox) -> Iterator[Path]:
    """setup_logging as the CLI applies it, undone after the test; the log file's path."""
    with LoggingRestored():
        yield setup_logging(sandbox.ml_intern_home)


def env_for(url: str, tmp_path: Path, **http: Any) -> ToolEnv:
    config = {"http": {**FAST, **http}}
    return ToolEnv(workdir=tmp_path, home=tmp_path, config=config, hf_endpoint=url, hf_token=TOKEN)


async def find_models(env: ToolEnv) -> str:
    (tool,) = papers.make_tools(env)
    with pytest.raises(ToolError) as failure:
        await tool.ainvoke({"operation": "find_models", "arxiv_id": "2305.18290"})
    return str(failure.value)


@pytest.mark.parametrize(("attempts", "sent"), [(3, 3), (1, 1), (50, MAX_TRIES)])
async def test_a_failing_hub_listing_is_sent_at_most_the_configured_times(
    failing_hub, quiet_logs, tmp_path, capfd, attempts, sent
) -> None:
    message = await find_models(env_for(failing_hub.url, tmp_path, retry_attempts=attempts))
    assert len(failing_hub.find("GET", "^/api/models$")) == sent == len(failing_hub.requests)
    if sent > 1:
        assert SERVER_ERROR.fullmatch(message)
        assert "retrying in" in quiet_logs.read_text()  # our retries are in the log file
    else:
        assert message == (
            "The Hub failed with HTTP 503 while finding models citing arxiv:2305.18290; retry later "
            "(after a write, first check whether it applied)."
        )
    assert capfd.readouterr().err == ""  # no "Retrying in 1s" from huggingface_hub, no traceback


async def test_retry_after_is_honoured(tmp_path, quiet_logs, capfd) -> None:
    with FakeHTTPServer() as hub:
        hub.fail("GET", ".*", 503, times=1000, headers={"Retry-After": "1"})
        started = time.monotonic()
        message = await find_models(env_for(hub.url, tmp_path, retry_attempts=2, max_retry_delay=2))
        elapsed = time.monotonic() - started
    assert len(hub.requests) == 2 and 1.0 <= elapsed < 2.5
    assert SERVER_ERROR.fullmatch(message)
    assert capfd.readouterr().err == ""


async def test_a_server_asking_to_wait_longer_than_allowed_is_not_asked_again(tmp_path) -> None:
    with FakeHTTPServer() as hub:
        hub.fail("GET", ".*", 429, times=1000, headers={"Retry-After": "120"})
        started = time.monotonic()
        message = await find_models(env_for(hub.url, tmp_path))
    assert len(hub.requests) == 1 and time.monotonic() - started < 1.0
    assert message.startswith("Rate limited by the Hub (HTTP 429) while finding models citing")


async def test_a_failing_jobs_listing_is_sent_at_most_the_configured_times(tmp_path, quiet_logs, capfd):
    with FakeJobsHub() as hub:
        hub.fail("GET", r"^/api/jobs/alice$", 503, times=1000)
        env = ToolEnv(tmp_path, tmp_path, {"http": FAST}, hf_endpoint=hub.url, hf_token=hub.token)
        with pytest.raises(ToolError) as failure:
            await jobs_tools(env)[0].ainvoke({"operation": "ps"})
        assert len(hub.requests_to("GET", r"^/api/jobs/alice$")) == 3  # not 3 x huggingface_hub's 6
    assert SERVER_ERROR.fullmatch(str(failure.value))
    assert SERVER_ERROR.fullmatch(str(failure.value))["what"] == "listing jobs"
    assert capfd.readouterr().err == ""


async def test_every_tool_words_the_same_failure_the_same_way(failing_hub, tmp_path) -> None:
    env = env_for(failing_hub.url, tmp_path)
    search = hub_search.make_tools(env)[0]
    with pytest.raises(ToolError) as from_search:
        await search.ainvoke({"query": "llama", "repo_types": ["model"]})
    from_papers = await find_models(env)
    details = await hub_search.make_tools(env)[1].ainvoke({"repo_ids": ["org/x"], "repo_type": "model"})
    sentences = [str(from_search.value), from_papers, details.split("\n", 1)[1]]
    matches = [SERVER_ERROR.fullmatch(sentence) for sentence in sentences]
    assert all(matches), sentences
    assert [m["what"] for m in matches] == [
        "searching models",
        "finding models citing arxiv:2305.18290",
        "reading model repo org/x",
    ]


@pytest.fixture
def elsewhere() -> Iterator[FakeHTTPServer]:
    """A host that is not Hugging Face's."""
    with FakeHTTPServer() as server:
        server.route("GET", "/page", lambda request: (200, {"Content-Type": "text/plain"}, b"moved here"))
        server.route("GET", "/api/models/org/moved", lambda request: json_reply(200, {"id": "org/moved"}))
        yield server


async def test_our_client_drops_the_token_when_a_hub_page_redirects_elsewhere(tmp_path, elsewhere):
    with FakeHTTPServer() as hub:
        hub.route("GET", "/docs/old", lambda request: (302, {"Location": f"{elsewhere.url}/page"}, b""))
        response = await fetch(env_for(hub.url, tmp_path), f"{hub.url}/docs/old")
        assert response.text == "moved here"
        assert hub.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in elsewhere.requests[0].headers


async def test_the_hub_client_drops_the_token_when_the_hub_redirects_elsewhere(tmp_path, elsewhere):
    with FakeHTTPServer() as hub:
        target = {"Location": f"{elsewhere.url}/api/models/org/moved"}
        hub.route("GET", "/api/models/org/old", lambda request: (307, target, b""))
        info = make_api(env_for(hub.url, tmp_path)).model_info("org/old")
        assert info.id == "org/moved"
        assert hub.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in elsewhere.requests[0].headers


async def test_a_failed_write_is_not_sent_again(failing_hub, tmp_path) -> None:
    api = make_api(env_for(failing_hub.url, tmp_path))
    with pytest.raises(Exception, match="503"):
        api.create_repo("org/new")
    assert len(failing_hub.requests) == 1  # a 5xx write may have happened: repeating it could apply it twice


@pytest.mark.parametrize(
    ("failed", "headers", "wait"),
    [
        (1, {}, 1.0),
        (2, {}, 2.0),
        (3, {}, None),  # three tries made: give up
        (1, {"retry-after": "3"}, 3.0),
        (1, {"retry-after": "5"}, None),  # longer than max_delay: not retried early
        (1, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"}, 0.0),  # GitHub's quota reset
        (1, {"ratelimit": '"api";r=0;t=3', "ratelimit-policy": '"fixed window";"api";q=500;w=300'}, 3.0),
        (1, {"ratelimit": '"api";r=0;t=55'}, None),  # the Hub's quota resets later than max_delay
        (1, {"ratelimit": '"api";r=7;t=55'}, 1.0),  # quota left: a plain backoff
    ],
)
def test_retry_waits(failed: int, headers: dict[str, str], wait: float | None) -> None:
    assert HttpRetry(tries=3, delay=1.0, max_delay=4.0).wait(failed, headers) == wait


def test_no_config_makes_more_than_six_tries() -> None:
    assert HttpRetry(tries=100, delay=0).wait(MAX_TRIES - 1) == 0
    assert HttpRetry(tries=100, delay=0).wait(MAX_TRIES) is None


async def test_a_dropped_connection_is_retried_by_both_clients(tmp_path) -> None:
    from tests.fakes.resetting_proxy import ResettingProxy

    with FakeHTTPServer() as hub:
        hub.route("GET", "^/api/models/org/m$", lambda r: json_reply(200, {"id": "org/m"}))
        hub.route("GET", "^/page$", lambda r: json_reply(200, {"ok": True}))
        proxy = ResettingProxy(hub.url, resets=1)
        try:
            base = proxy.url.removesuffix("/v1")
            assert make_api(env_for(base, tmp_path)).model_info("org/m").id == "org/m"
            proxy.resets_left = 1
            response = await fetch(env_for(base, tmp_path), f"{base}/page")
        finally:
            proxy.close()
    assert response.json() == {"ok": True}
    assert proxy.connections >= 4  # each client: the reset connection, then the one that answered
