"""Notifications against a fake Slack: the `notify` tool, delivery and retries, auto notifications (a real
headless `ml-intern` process), and the webhook URL and token kept out of results, events and logs."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_intern.graph import events
from ml_intern.session import notifications
from ml_intern.session.notifications import notifier_for, notifying
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.notify import tool as notify_tool
from ml_intern.tools.notify.slack import to_mrkdwn
from ml_intern.tools.registry import offered
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.fakes.slack_server import BOT_TOKEN, WEBHOOK_PATH, FakeSlack
from tests.harness import Sandbox, installed_cli
from tests.harness_cli import MODEL

QUICK = {"retry_delay": 0.01}  # the 1, 2, 4 s waits scaled down
HF_SECRET = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def messaging(destinations: dict[str, dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"messaging": {"enabled": True, "destinations": destinations, **more}, "http": QUICK}


def notify_for(config: dict[str, Any], tmp_path: Path, environ: dict[str, str] | None = None) -> Any:
    env = ToolEnv(workdir=tmp_path, home=tmp_path, config=config, environ=environ or {})
    tools = notify_tool.make_tools(env)
    return offered(tools[0]) if tools else None


def webhook(slack: FakeSlack, **flags: bool) -> dict[str, Any]:
    return {"webhook_url": slack.webhook_url, "allow_agent_tool": True, **flags}


async def test_notify_sends_to_an_allowed_destination_as_mrkdwn(slack: FakeSlack, tmp_path: Path) -> None:
    notify = notify_for(messaging({"slack.ops": webhook(slack)}), tmp_path)
    args = {"destinations": ["slack.ops"], "message": "**Done**: see [run](https://hf.co/x)", "title": "Job"}
    result = await notify.ainvoke({**args, "severity": "success"})
    assert slack.messages == ["[SUCCESS] *Job*\n*Done*: see <https://hf.co/x|run>"]
    assert result == "slack.ops: sent\n\nText sent:\n> [SUCCESS] *Job*\n> *Done*: see <https://hf.co/x|run>"
    assert slack.requests[0].path == WEBHOOK_PATH


async def test_notify_refuses_a_destination_that_does_not_allow_the_tool(
    slack: FakeSlack, tmp_path: Path
) -> None:
    config = messaging({"slack.ops": webhook(slack), "slack.auto": webhook(slack, allow_agent_tool=False)})
    notify = notify_for(config, tmp_path)
    result = await notify.ainvoke({"destinations": ["slack.auto"], "message": "hi"})
    assert result == "slack.auto: failed (not a destination the agent may use; allowed: slack.ops)"
    assert slack.requests == []


async def test_notify_posts_with_the_bot_token_to_the_channel(slack: FakeSlack, tmp_path: Path) -> None:
    dest = {"token": BOT_TOKEN, "channel": "C123", "allow_agent_tool": True}
    notify = notify_for(messaging({"slack.bot": dest}), tmp_path, {"SLACK_API_URL": slack.api_url})
    result = await notify.ainvoke({"destinations": ["slack.bot"], "message": "epoch 3 done"})
    assert result.startswith("slack.bot: sent\n")
    [request] = slack.requests
    assert request.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert request.json() == {"channel": "C123", "text": "[INFO]\nepoch 3 done"}
    assert BOT_TOKEN not in result


async def test_notify_retries_429_after_retry_after_and_500(slack: FakeSlack, tmp_path: Path) -> None:
    slack.fail("POST", "/services/", 429, headers={"Retry-After": "1"})
    slack.fail("POST", "/services/", 500)
    notify = notify_for(messaging({"slack.ops": webhook(slack)}), tmp_path)
    started = time.monotonic()
    result = await notify.ainvoke({"destinations": ["slack.ops"], "message": "hi"})
    assert result == "slack.ops: sent\n\nText sent:\n> [INFO]\n> hi"
    assert time.monotonic() - started >= 1.0  # the server's Retry-After, not the scaled-down delay
    assert len(slack.requests) == 3 and slack.messages == ["[INFO]\nhi"]


async def test_a_failed_delivery_names_no_secret(slack: FakeSlack, tmp_path: Path) -> None:
    dest = webhook(slack)
    dest["webhook_url"] = slack.url + "/services/T0/B0/wrongsecret123456"
    notify = notify_for(messaging({"slack.ops": dest}), tmp_path)
    result = await notify.ainvoke({"destinations": ["slack.ops"], "message": "hi"})
    assert result == "slack.ops: failed (HTTP 404)"


async def test_the_result_quotes_the_text_sent_within_a_bound(slack: FakeSlack, tmp_path: Path) -> None:
    # the user sees in the chat what the agent posted (no one approves a notify call)
    notify = notify_for(messaging({"slack.ops": webhook(slack)}), tmp_path)
    result = await notify.ainvoke({"destinations": ["slack.ops"], "message": "line\n" * 2000})
    [sent] = slack.messages
    assert len(sent) == len("[INFO]\n") + 2000 * 5 - 1
    assert result.startswith("slack.ops: sent\n\nText sent:\n> [INFO]\n> line\n> line\n")
    assert result.endswith(f"… [{len(sent) - 1000:,} more characters]") and len(result) < 1500


async def test_a_secret_at_the_length_limit_is_redacted_not_cut(slack: FakeSlack, tmp_path: Path) -> None:
    # cut first, the token's first 18 characters (all that fit) would not look like a token and go out
    notify = notify_for(messaging({"slack.ops": webhook(slack)}), tmp_path)
    message = "a" * (39_000 - len("[INFO]\n") - 19) + " " + HF_SECRET
    await notify.ainvoke({"destinations": ["slack.ops"], "message": message})
    [sent] = slack.messages
    assert sent.endswith("a [redacted]") and HF_SECRET[:6] not in sent


async def test_a_title_cannot_ping_the_channel(slack: FakeSlack, tmp_path: Path) -> None:
    notify = notify_for(messaging({"slack.ops": webhook(slack)}), tmp_path)
    await notify.ainvoke({"destinations": ["slack.ops"], "message": "hi", "title": "<!channel> **x**"})
    assert slack.messages == ["[INFO] *&lt;!channel&gt; *x**\nhi"]


async def test_a_plain_http_webhook_off_this_machine_is_refused(tmp_path: Path) -> None:
    dest = {"webhook_url": "http://hooks.example.com/services/T/B/secretpath", "allow_agent_tool": True}
    notify = notify_for(messaging({"slack.ops": dest}), tmp_path)
    result = await notify.ainvoke({"destinations": ["slack.ops"], "message": "hi"})
    assert result == "slack.ops: failed (webhook_url must be an https URL)"


@pytest.mark.parametrize(
    "config",
    [{}, messaging({"slack.auto": {"webhook_url": "https://hooks.slack.com/x", "allow_auto_events": True}})],
    ids=["messaging off", "no destination allows the tool"],
)
def test_notify_is_not_offered_unless_a_destination_allows_it(config: dict, tmp_path: Path) -> None:
    assert notify_for(config, tmp_path) is None


def test_notify_schema_stays_small(slack: FakeSlack, tmp_path: Path) -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    notify = notify_for(messaging({"slack.default": webhook(slack)}), tmp_path)
    schema = convert_to_openai_tool(notify)
    assert "slack.default" in schema["function"]["description"]
    assert len(json.dumps(schema)) <= 450


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("## Results", "*Results*"),
        ("[the card](https://hf.co/m)", "<https://hf.co/m|the card>"),
        ("<!channel> a < b & c", "&lt;!channel&gt; a &lt; b &amp; c"),
        ("see \x007\x00 and `c` \x000\x00", "see 7 and `c` 0"),  # NULs once raised IndexError
        ("[x](https://evil/x|https://huggingface.co)", "<https://evil/x%7Chttps://huggingface.co|x>"),
        (
            "keep `**x**` and ```\n**y** [a](https://b)\n```",
            "keep `**x**` and ```\n**y** [a](https://b)\n```",
        ),
    ],
)
def test_markdown_becomes_slack_mrkdwn_with_code_kept(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


@pytest.fixture(autouse=True)
def first_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a new process for the once-per-process destinations notice."""
    monkeypatch.setattr(notifications, "_announced", set())


class Ctx:
    """What `notifying` reads of a run context: the model and the services' config."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.model = "vllm/scripted"
        self.services = ToolEnv(workdir=Path("."), home=Path("."), config=config)


def test_auto_notifications_follow_the_front_end_and_the_event_types(slack: FakeSlack) -> None:
    dest = {"webhook_url": slack.webhook_url, "allow_auto_events": True}
    config = messaging({"slack.auto": dest}, auto_event_types=["approval_required", "error"])
    shown: list[str] = []
    sink = notifying(lambda event: shown.append(event["type"]), Ctx(config), "thread01", {})
    sink(events.approval_required([{"id": "c1", "name": "bash"}, {"id": "c2", "name": "hf_jobs"}]))
    sink(events.error("x" * 900))
    sink(events.turn_complete("thread01", "answer", "end_turn", 1, {}, None))  # not a configured type
    warning, error = slack.wait_for(2)
    assert shown == ["tool_log", "approval_required", "error", "turn_complete"]  # the notice first
    assert warning == (
        "[WARNING]\nThread thread01 is waiting for approval for 2 tool call(s). Tools: bash, hf_jobs\n"
        "thread: thread01\nmodel: vllm/scripted"
    )
    assert error.startswith("[ERROR]\nThread thread01 failed: " + "x" * 500 + "\nthread:")
    notifier_for(Ctx(config).services.config, {}).drain(2.0)
    assert len(slack.messages) == 2


def test_the_first_turn_of_the_process_says_which_destinations_are_on(slack: FakeSlack) -> None:
    auto = {"webhook_url": slack.webhook_url, "allow_auto_events": True, "allow_agent_tool": False}
    config = messaging(
        {"slack.auto": auto, "slack.ops": webhook(slack), "slack.off": webhook(slack, allow_agent_tool=False)}
    )
    shown: list[dict[str, Any]] = []
    for _turn in range(2):
        notifying(shown.append, Ctx(config), "t1", {})
    assert shown == [
        events.notice(
            "messaging",
            "notifications on: slack.auto (approval_required, error, turn_complete); slack.ops (notify tool)",
        )
    ]
    assert slack.requests == []  # the notice is the user's, not Slack's


def test_the_answer_is_redacted_before_it_is_cut(slack: FakeSlack) -> None:
    dest = {"webhook_url": slack.webhook_url, "allow_auto_events": True}
    sink = notifying(lambda event: None, Ctx(messaging({"slack.auto": dest})), "t1", {})
    # cut at 39,000 first, the last token keeps 18 characters, no longer a token's shape; the earlier tokens,
    # redacted, shorten the text enough for them to be sent
    earlier = (HF_SECRET + " ") * 10
    answer = earlier + "a" * (39_000 - len(earlier) - 19) + " " + HF_SECRET
    sink(events.turn_complete("t1", answer, "end_turn", 1, {}, None))
    [sent] = slack.wait_for(1)
    assert "a [redacted]" in sent and HF_SECRET[:6] not in sent


def test_an_unreachable_slack_never_breaks_the_turn(slack: FakeSlack) -> None:
    dest = {"webhook_url": slack.url + "/services/gone/gone/gone", "allow_auto_events": True}
    shown: list[str] = []
    sink = notifying(
        lambda event: shown.append(event["type"]), Ctx(messaging({"slack.auto": dest})), "t1", {}
    )
    sink(events.error("boom"))
    assert shown == ["tool_log", "error"]  # shown at once, whatever Slack answers
    deadline = time.monotonic() + 5
    while not slack.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.path for r in slack.requests] == ["/services/gone/gone/gone"] and slack.messages == []


# ---- a real headless run ----------------------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed_cli()), *args], env=env, cwd=Path.cwd(), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def slack_env(subprocess_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox) -> dict:
    config = sandbox.root / "config.json"
    config.write_text(json.dumps({"retries": {"attempts": 1, "base_delay": 0.05}, "http": QUICK}))
    return {**subprocess_env, "VLLM_BASE_URL": llm_server.url, "ML_INTERN_CONFIG": str(config)}


def log_text(sandbox: Sandbox) -> str:
    return "".join(path.read_text() for path in (sandbox.ml_intern_home / "logs").glob("*.log*"))


@pytest.mark.e2e
def test_headless_turn_complete_reaches_slack_with_answer_and_thread(
    slack: FakeSlack, slack_env: dict, llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.text("The **loss** fell to 0.12."))
    env = {
        **slack_env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_CHANNEL_ID": "C9",
        "SLACK_API_URL": slack.api_url,
    }
    done = run_cli(env, "-v", "--model", MODEL, "--output-format", "json", "train it")
    assert done.returncode == 0, done.stderr
    thread_id = json.loads(done.stdout)["thread_id"]
    [request] = slack.requests  # delivered before the process exited
    assert request.json()["channel"] == "C9"
    assert request.json()["text"] == (
        f"[SUCCESS]\nThread {thread_id} completed successfully.\n\nThe *loss* fell to 0.12.\n"
        f"thread: {thread_id}\nmodel: {MODEL}"
    )
    for text in (done.stdout, done.stderr, log_text(sandbox)):
        assert BOT_TOKEN not in text


@pytest.mark.e2e
def test_headless_approval_request_reaches_slack_and_the_webhook_stays_secret(
    slack: FakeSlack, slack_env: dict, llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.tool_call("bash", {"command": "sudo true"}, id="s1"))
    env = {
        **slack_env,
        "ML_INTERN_SLACK_WEBHOOK_URL": slack.webhook_url,
        "ML_INTERN_SLACK_AUTO_EVENTS": "approval_required",
    }
    done = run_cli(env, "-v", "--model", MODEL, "--approval", "ask", "--output-format", "stream-json", "go")
    assert done.returncode == 3, done.stderr  # waiting for approval
    thread_id = json.loads(done.stdout.splitlines()[0])["thread_id"]
    assert slack.messages == [
        f"[WARNING]\nThread {thread_id} is waiting for approval for 1 tool call(s). Tools: bash\n"
        f"thread: {thread_id}\nmodel: {MODEL}"
    ]
    tools = [t["function"]["name"] for t in llm_server.requests[0]["tools"]]
    assert "notify" in tools  # the env default allows the agent tool, as the original's does
    notices = [json.loads(line) for line in done.stdout.splitlines() if '"notice"' in line]
    on = "notifications on: slack.default (approval_required, notify tool)"
    assert [n["text"] for n in notices if n["tool"] == "messaging"] == [on]
    for text in (done.stdout, done.stderr, log_text(sandbox)):
        assert WEBHOOK_PATH not in text


@pytest.mark.e2e
def test_a_ci_systems_slack_webhook_url_is_not_ours(
    slack: FakeSlack, slack_env: dict, llm_server: ScriptedLLMServer
) -> None:
    # many CI systems set SLACK_WEBHOOK_URL for their own messages: the answer must not go there
    llm_server.push(script.text("Here is the private answer."))
    done = run_cli({**slack_env, "SLACK_WEBHOOK_URL": slack.webhook_url}, "--model", MODEL, "summarise")
    assert done.returncode == 0, done.stderr
    assert slack.requests == [] and "notifications on" not in done.stderr
    assert "notify" not in [t["function"]["name"] for t in llm_server.requests[0]["tools"]]
