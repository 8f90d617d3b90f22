"""A fake Slack on 127.0.0.1: an incoming webhook (`/services/...`) and the Web API's `chat.postMessage`.
It records every body and header; `fail` (from FakeHTTPServer) makes it answer 429 or 500 first."""

from __future__ import annotations

import json
import threading
import time

from tests.fakes.http_fake import FakeHTTPServer, Recorded, Reply, json_reply

WEBHOOK_PATH = "/services/T0FAKE/B0FAKE/hooksecret0123456789"
BOT_TOKEN = "xoxb-fake-0123456789-abcdefghij"


class FakeSlack(FakeHTTPServer):
    """Webhook and chat.postMessage endpoints; `messages` holds the texts delivered, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.delivered = threading.Event()
        self.route("POST", r"/services/.+", self.webhook)
        self.route("POST", r"/api/chat\.postMessage", self.post_message)

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def webhook(self, request: Recorded) -> Reply:
        if request.path != WEBHOOK_PATH:
            return 404, {"Content-Type": "text/plain"}, b"no_service"
        return self.take(request.json()["text"], (200, {"Content-Type": "text/plain"}, b"ok"))

    def post_message(self, request: Recorded) -> Reply:
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return json_reply(200, {"ok": False, "error": "invalid_auth"})
        body = request.json()
        if not body.get("channel"):
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        return self.take(body["text"], json_reply(200, {"ok": True, "channel": body["channel"]}))

    def take(self, text: str, reply: Reply) -> Reply:
        self.messages.append(text)
        self.delivered.set()
        return reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        """The delivered messages once there are `count` of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.messages)

    def bodies(self) -> list[dict]:
        """The JSON bodies of every request received, failed ones included."""
        return [json.loads(r.body or b"null") for r in self.requests]
