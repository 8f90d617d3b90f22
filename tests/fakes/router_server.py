"""A stand-in for the Hugging Face Inference Providers router on 127.0.0.1, behind HF_ROUTER_URL.

`GET /v1/models` answers the catalogue (OpenAI list shape, each model with `providers`);
`POST /v1/chat/completions` answers queued replies (llm_server's `text(...)` / `error(...)` builders),
streamed as SSE when asked. Every request is recorded with its headers (`server.requests`).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from tests.fakes.http_fake import FakeHTTPServer, Recorded, Reply, json_reply
from tests.fakes.llm_server import _Reply, text


def provider(
    name: str,
    status: str = "live",
    price: tuple[float, float] | None = (1.0, 3.0),
    context: int | None = 131072,
    tools: bool = True,
) -> dict[str, Any]:
    """One provider entry of a catalogue model."""
    entry: dict[str, Any] = {"provider": name, "status": status, "supports_tools": tools}
    if price is not None:
        entry["pricing"] = {"input": price[0], "output": price[1]}
    if context is not None:
        entry["context_length"] = context
    return entry


def model(model_id: str, *providers: dict[str, Any]) -> dict[str, Any]:
    """One catalogue model."""
    owner = model_id.split("/")[0]
    return {"id": model_id, "object": "model", "owned_by": owner, "providers": list(providers)}


DEFAULT_CATALOGUE = [
    model("moonshotai/Kimi-K2.6", provider("novita", price=(0.6, 2.5)), provider("together", tools=False)),
    model("anthropic/claude-opus-4.8", provider("fal-ai", price=(5.0, 25.0), context=200000)),
    model("zai-org/GLM-5.1", provider("novita"), provider("zai-org", status="staging")),
]


class RouterServer(FakeHTTPServer):
    """The router stand-in; `replies` are served in order, then each chat request gets "OK"."""

    def __init__(self, catalogue: list[dict[str, Any]] | None = None, *replies: dict) -> None:
        super().__init__()
        self.catalogue = list(DEFAULT_CATALOGUE if catalogue is None else catalogue)
        self.replies: deque[dict] = deque(replies)
        self.route("GET", r"/v1/models/?", self._models)
        self.route("POST", r"/v1/chat/completions/?", self._chat)

    @property
    def base_url(self) -> str:
        """What HF_ROUTER_URL is set to."""
        return f"{self.url}/v1"

    def chats(self) -> list[Recorded]:
        """The chat-completion requests received."""
        return self.find("POST", r"/chat/completions")

    def _models(self, _: Recorded) -> Reply:
        return json_reply(200, {"object": "list", "data": self.catalogue})

    def _chat(self, request: Recorded) -> Reply:
        body = request.json()
        response = self.replies.popleft() if self.replies else text("OK")
        if response["kind"] == "error":
            return json_reply(response["status"], {"error": {"message": response["message"]}})
        reply = _Reply(response, body.get("model", "?"), len(self.chats()), len(request.body))
        if not body.get("stream"):
            return json_reply(200, reply.completion())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = [f"data: {json.dumps(event)}\n\n" for event in reply.stream_events(include_usage)]
        payload = ("".join(events) + "data: [DONE]\n\n").encode()
        return 200, {"Content-Type": "text/event-stream"}, payload
