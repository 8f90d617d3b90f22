"""Slack delivery: an incoming webhook or a bot token (chat.postMessage), Markdown turned into Slack mrkdwn,
retries after 1, 2 and 4 s on 429 and 5xx. Webhook URLs and tokens are secrets: no error names them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ml_intern.configs.schema import AgentConfig, Destination
from ml_intern.secrets import redact, register_secrets

SLACK_API = "https://slack.com/api"
RETRY_DELAYS = (1.0, 2.0, 4.0)  # the original's waits before each retry
MAX_RETRY_AFTER = 30.0  # a longer Retry-After ends the retries
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_TEXT = 39_000  # under Slack's 40,000-character message limit
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


class DeliveryError(Exception):
    """A message that could not be delivered, as a reason safe to show (no URL path, no token)."""


@dataclass(frozen=True)
class SlackTarget:
    """Where and how one destination's messages go."""

    name: str
    destination: Destination
    api_url: str = SLACK_API  # chat.postMessage's base (SLACK_API_URL in tests)
    delays: tuple[float, ...] = RETRY_DELAYS


def checked_url(url: str, what: str) -> str:
    """`url` if it is https (http only on this machine, for tests); else a one-line ValueError."""
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or local):
        raise ValueError(f"{what} must be an https URL")
    return url


def remember_secrets(destination: Destination) -> None:
    """Have the redactor hide the destination's token and webhook path wherever they would be shown."""
    path = urlsplit(destination.webhook_url or "").path
    register_secrets({"SLACK_WEBHOOK_SECRET": path, "SLACK_BOT_TOKEN": destination.token or ""})


def to_mrkdwn(text: str) -> str:
    """Markdown as Slack mrkdwn: **bold** and headings as *bold*, [text](url) as <url|text>; code kept.
    &, < and > are escaped first, so that no text can ping a channel (<!channel>) or forge a link; NULs
    (the code spans' placeholders) are dropped, and a '|' in a link's URL is encoded (it ends a URL)."""
    text = text.replace("\x00", "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = CODE.sub(keep, text)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: f"*{m.group(1) or m.group(2)}*", text)
    text = re.sub(r"(?m)^#{1,6}\s+(.+?)\s*#*$", r"*\1*", text)
    text = re.sub(
        r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)",
        lambda m: f"<{m.group(2).replace('|', '%7C')}|{m.group(1)}>",
        text,
    )
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def format_message(message: str, title: str | None, severity: str, metadata: dict[str, str]) -> str:
    """The text sent: severity prefix, title, the message as mrkdwn, then metadata lines; secrets redacted
    before the cut (a secret cut in two would no longer be recognised)."""
    head = f"[{severity.upper()}]" + (f" *{to_mrkdwn(title.strip())}*" if title and title.strip() else "")
    lines = [f"{key}: {value}" for key, value in metadata.items() if value]
    text = "\n".join([head, to_mrkdwn(message.strip()), *lines])
    return redact(text)[:MAX_TEXT]


def request_for(target: SlackTarget, text: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL, headers and JSON body of one delivery."""
    dest = target.destination
    if dest.token and dest.channel:
        url = checked_url(f"{target.api_url.rstrip('/')}/chat.postMessage", "the Slack API URL")
        return url, {"Authorization": f"Bearer {dest.token}"}, {"channel": dest.channel, "text": text}
    if dest.webhook_url:
        return checked_url(dest.webhook_url, "webhook_url"), {}, {"text": text}
    raise DeliveryError("no webhook_url, nor token and channel")


def retry_wait(response: httpx.Response, delay: float) -> float | None:
    """Seconds to wait before retrying `response`, or None when it is not worth a retry."""
    if response.status_code != 429 and response.status_code < 500:
        return None
    asked = response.headers.get("retry-after", "").strip()
    if response.status_code == 429 and asked.isdigit():
        return float(asked) if float(asked) <= MAX_RETRY_AFTER else None
    return delay


def outcome(response: httpx.Response) -> str | None:
    """Why a final answer is a failure (Slack's own error code, never the body), or None when delivered."""
    if response.status_code >= 300:
        return f"HTTP {response.status_code}"
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict) and body.get("ok") is False:
            return f"Slack error {str(body.get('error', 'unknown'))[:60]}"
    return None


def deliver(target: SlackTarget, text: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """Post `text` to the destination, retrying 429, 5xx and dropped connections; else DeliveryError."""
    try:
        url, headers, body = request_for(target, text)
    except ValueError as exc:
        raise DeliveryError(str(exc)) from None
    with httpx.Client(timeout=15, follow_redirects=False) as client:
        for delay in (*target.delays, None):
            try:
                response = client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                failure, wait = f"connection failed ({type(exc).__name__})", delay
            else:
                failure = outcome(response)
                if failure is None:
                    return
                wait = retry_wait(response, delay) if delay is not None else None
            if wait is None:
                raise DeliveryError(failure)
            sleep(wait)
    raise DeliveryError("not sent")  # unreachable: the last try has no delay


def slack_targets(
    config: AgentConfig, environ: Mapping[str, str], allowed: Callable[[Destination], bool]
) -> dict[str, SlackTarget]:
    """The enabled config's destinations that `allowed` accepts, by name (none when messaging is off).
    SLACK_API_URL (not from `.env`: an `_API_URL`) points chat.postMessage elsewhere, for tests."""
    messaging = config.messaging
    if not messaging.enabled:
        return {}
    api_url = environ.get("SLACK_API_URL") or SLACK_API
    delays = tuple(delay * config.http.retry_delay for delay in RETRY_DELAYS)  # 1, 2, 4 s by default
    chosen = {name: dest for name, dest in messaging.destinations.items() if allowed(dest)}
    for dest in chosen.values():
        remember_secrets(dest)
    return {name: SlackTarget(name, dest, api_url, delays) for name, dest in chosen.items()}
