"""A local Anthropic Messages API stand-in (`POST /v1/messages`, JSON or SSE) that plays scripted replies and
reports prompt caching honestly.

Reach it through litellm's `anthropic/` provider: `ANTHROPIC_API_BASE=<server.url>` (or `api_base=`) and any
`ANTHROPIC_API_KEY`. Every request is recorded (`server.requests`: body and lower-cased headers). Caching as
Anthropic does it: the prompt is the sequence tools, system, messages, cut into blocks; each `cache_control`
breakpoint stores the prefix up to it; a request reads the longest stored prefix it starts with that ends at
or within 20 blocks before one of its own breakpoints (`cache_read_input_tokens`), and writes the rest up to
its last breakpoint (`cache_creation_input_tokens`). Tokens are characters / 4. A request with thinking on
gets a signed thinking block first ("pondering <n>", signature "sig-<n>"). Script items: `text(...)`,
`tool_use(...)`, `error(...)`; when the script runs out the server answers 500 and counts it in `exhausted`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.http_fake import serve_in_background, stop_serving

LOOKBACK = 20  # blocks Anthropic looks back from a breakpoint for a cache hit


def text(content: str) -> dict:
    """A reply with text only."""
    return {"kind": "message", "blocks": [{"type": "text", "text": content}], "stop": "end_turn"}


def tool_use(name: str, arguments: dict, id: str | None = None) -> dict:
    """A reply calling one tool (`id` defaults to `toolu_<request number>`)."""
    return {"kind": "message", "blocks": [{"type": "tool_use", "name": name, "input": arguments, "id": id}]}


def error(status: int, message: str, kind: str = "invalid_request_error") -> dict:
    """An HTTP error answer in Anthropic's shape."""
    return {"kind": "error", "status": status, "message": message, "type": kind}


def prompt_blocks(body: dict) -> list[tuple[str, bool]]:
    """The request's prompt as (block without cache_control, as JSON; has a breakpoint) in cache order."""
    blocks: list[tuple[str, bool]] = []

    def add(role: str, block: Any) -> None:
        clean = _uncached(block)
        blocks.append((json.dumps([role, clean], sort_keys=True), "cache_control" in json.dumps(block)))

    for tool in body.get("tools") or []:
        add("tool", tool)
    system = body.get("system") or []
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system:
        add("system", block)
    for message in body.get("messages") or []:
        content = message.get("content")
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content or []:
            add(message.get("role", "user"), block)
    return blocks


def _uncached(value: Any) -> Any:
    """`value` without any cache_control (a tool_result's inner blocks may carry one). Stricter than
    Anthropic, which may read a string content as its one text block: a prefix matches in the same form."""
    if isinstance(value, dict):
        return {k: _uncached(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_uncached(v) for v in value]
    return value


class CacheLedger:
    """The prefixes written to the cache so far, and what a new request reads and writes."""

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}  # prefix digest -> its length in characters

    def account(self, body: dict) -> dict[str, int]:
        """Usage for `body` (input_tokens, cache_read_input_tokens, cache_creation_input_tokens); stores its
        breakpoint prefixes."""
        blocks = prompt_blocks(body)
        digests, lengths, digest, total = [], [], hashlib.sha256(), 0
        for block, _ in blocks:
            digest.update(block.encode())
            total += len(block)
            digests.append(digest.copy().hexdigest())
            lengths.append(total)
        marks = [i for i, (_, mark) in enumerate(blocks) if mark]
        reachable = {i for m in marks for i in range(max(0, m - LOOKBACK), m + 1)}
        hits = [i for i in reachable if digests[i] in self.stored]
        read = lengths[max(hits)] if hits else 0
        written = max(0, lengths[marks[-1]] - read) if marks else 0
        for i in marks:
            self.stored[digests[i]] = lengths[i]
        return {
            "input_tokens": max(1, (total - read - written) // 4),
            "cache_read_input_tokens": read // 4,
            "cache_creation_input_tokens": written // 4,
        }


class AnthropicServer:
    """A ThreadingHTTPServer on 127.0.0.1 answering /v1/messages from a script (or a `responder`)."""

    def __init__(self, *replies: dict, responder: Callable[[dict], dict] | None = None) -> None:
        self._script: deque[dict] = deque(replies)
        self.responder = responder  # answers when the script is empty (benches script 100s of calls)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # {"body": ..., "headers": {...}} per POST /v1/messages
        self.usages: list[dict[str, int]] = []  # the usage reported for each answered request
        self.exhausted = 0
        self.ledger = CacheLedger()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = serve_in_background(self._httpd, "anthropic-fake")

    @property
    def url(self) -> str:
        """The base URL (litellm appends /v1/messages)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def push(self, *replies: dict) -> None:
        with self._lock:
            self._script.extend(replies)

    def take(self, body: dict, headers: dict[str, str]) -> tuple[int, dict | None, dict[str, int]]:
        """Record a request; its number, the reply to give (None: exhausted) and its usage."""
        with self._lock:
            self.requests.append({"body": body, "headers": headers})
            reply = self._script.popleft() if self._script else None
            if reply is None and self.responder is not None:
                reply = self.responder(body)
            self.exhausted += reply is None
            usage = self.ledger.account(body) if reply and reply["kind"] == "message" else {}
            if usage:
                self.usages.append(usage)
            return len(self.requests), reply, usage

    def close(self) -> None:
        stop_serving(self._httpd)
        self._thread.join(timeout=5)

    def __enter__(self) -> AnthropicServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _content(reply: dict, number: int) -> list[dict]:
    return [
        {**b, "id": b.get("id") or f"toolu_{number}_{i}"} if b["type"] == "tool_use" else b
        for i, b in enumerate(reply["blocks"])
    ]


def _stop_reason(reply: dict) -> str:
    return reply.get("stop") or ("tool_use" if reply["blocks"][-1]["type"] == "tool_use" else "end_turn")


def _output_tokens(reply: dict) -> int:
    return max(1, len(json.dumps(reply["blocks"])) // 4)


def message(reply: dict, number: int, model: str, usage: dict[str, int]) -> dict:
    """The non-streaming JSON answer."""
    return {
        "id": f"msg_{number}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(reply, number),
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": _output_tokens(reply)},
    }


def _streamed_block(block: dict) -> tuple[dict, list[dict]]:
    """A content block's start and its deltas."""
    if block["type"] == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": block["text"]}]
    if block["type"] == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
        return {"type": "thinking", "thinking": "", "signature": ""}, [
            *deltas,
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    return {**block, "input": {}}, [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]


def with_thinking(reply: dict, body: dict, number: int) -> dict:
    """`reply` opening with a signed thinking block when the request turned thinking on."""
    if (body.get("thinking") or {}).get("type") not in ("enabled", "adaptive"):
        return reply
    thought = {"type": "thinking", "thinking": f"pondering {number}", "signature": f"sig-{number}"}
    return {**reply, "blocks": [thought, *reply["blocks"]]}


def stream_events(reply: dict, number: int, model: str, usage: dict[str, int]) -> list[tuple[str, dict]]:
    """The SSE events of a streamed answer."""
    start = {**message(reply, number, model, usage), "content": [], "stop_reason": None}
    start["usage"] = {**usage, "output_tokens": 1}
    events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(_content(reply, number)):
        head, deltas = _streamed_block(block)
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": head})
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    final = {"stop_reason": _stop_reason(reply), "stop_sequence": None}
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": final, "usage": {"output_tokens": _output_tokens(reply)}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.split("?")[0].rstrip("/").endswith("/v1/messages"):
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            return
        body = json.loads(raw or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        number, reply, usage = self.server.fake.take(body, headers)  # type: ignore[attr-defined]
        if reply is None:
            reply = error(500, "anthropic fake: script exhausted", "api_error")
        if reply["kind"] == "error":
            payload = {"type": "error", "error": {"type": reply["type"], "message": reply["message"]}}
            self._json(reply["status"], payload)
            return
        model, reply = body.get("model", "claude"), with_thinking(reply, body, number)
        if body.get("stream"):
            self._stream(stream_events(reply, number, model, usage))
        else:
            self._json(200, message(reply, number, model, usage))

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _stream(self, events: list[tuple[str, dict]]) -> None:
        data = b"".join(
            f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode() for name, payload in events
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True
