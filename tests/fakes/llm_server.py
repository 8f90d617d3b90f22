"""A local OpenAI-compatible chat server that plays a queue of scripted responses.

Tests use it to exercise the real ChatLiteLLM -> litellm -> HTTP path. Route litellm to it without any real
credential (set LITELLM_LOCAL_MODEL_COST_MAP=True before litellm is imported):

    ChatLiteLLM(model="openai/scripted", api_base=server.url, api_key="sk-test", max_retries=0,
                model_kwargs={"max_retries": 0})  # else the OpenAI SDK itself retries 429/5xx twice

or `ChatLiteLLM(model="hosted_vllm/scripted", api_base=server.url)`: litellm's own HTTP client, no key, no
hidden retries. Responses are plain dicts made by the builders below; both `stream: true` (chunked SSE) and
plain JSON answers are rendered from them. When the script runs out the server answers HTTP 500 "scripted
server: script exhausted" and counts it in `server.exhausted`; it never cycles.
Standalone: `python -m tests.fakes.llm_server --script FILE.json` (a JSON list of builder dicts) prints a URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.http_fake import serve_in_background, stop_serving


def _message(content: str, calls: list[dict], usage: dict | None, finish_reason: str | None) -> dict:
    return {
        "kind": "message",
        "content": content,
        "tool_calls": calls,
        "usage": usage,
        "finish_reason": finish_reason,
    }


def text(content: str, usage: dict | None = None, finish_reason: str = "stop") -> dict:
    """An assistant message with text only."""
    return _message(content, [], usage, finish_reason)


def tool_calls(
    calls: list[tuple[str, dict]],
    content: str = "",
    usage: dict | None = None,
    finish_reason: str = "tool_calls",
) -> dict:
    """An assistant message calling several tools, given as (name, args) pairs."""
    return _message(
        content, [{"name": n, "arguments": json.dumps(a)} for n, a in calls], usage, finish_reason
    )


def tool_call(
    name: str, args: dict, id: str | None = None, usage: dict | None = None, finish_reason: str = "tool_calls"
) -> dict:
    """An assistant message calling one tool (`id` defaults to `call_<request>_<index>`)."""
    return _message("", [{"name": name, "arguments": json.dumps(args), "id": id}], usage, finish_reason)


def raw_tool_call(
    name: str, arguments: str, id: str | None = None, finish_reason: str = "tool_calls"
) -> dict:
    """A tool call whose arguments string is sent verbatim (e.g. malformed JSON)."""
    return _message("", [{"name": name, "arguments": arguments, "id": id}], None, finish_reason)


def error(status: int, message: str = "scripted error", headers: dict[str, str] | None = None) -> dict:
    """An HTTP error answer, e.g. `error(429, headers={"Retry-After": "1"})`."""
    return {"kind": "error", "status": status, "message": message, "headers": headers or {}}


def delay(seconds: float, response: dict) -> dict:
    """`response`, sent only after waiting `seconds`."""
    return {**response, "delay": seconds}


def broken_stream(partial_text: str) -> dict:
    """An answer that starts (SSE chunks with `partial_text`) and then loses its connection."""
    return {**_message(partial_text, [], None, None), "kind": "broken"}


def stall_after_headers(seconds: float, partial_text: str = "") -> dict:
    """A streamed answer that sends its headers (and `partial_text`, if any), then nothing for `seconds`."""
    return {**_message(partial_text, [], None, None), "kind": "stall", "stall": seconds}


def raw_body(body: str, content_type: str = "text/html", status: int = 200) -> dict:
    """An answer whose body is sent verbatim, e.g. a captive portal's HTML page or a JSON reply without a
    message (`{"choices": [{"message": null}]}`)."""
    return {"kind": "raw", "status": status, "body": body, "content_type": content_type}


EXHAUSTED_MESSAGE = "scripted server: script exhausted"
_CREATED = 1_700_000_000  # fixed timestamp: answers are deterministic


class _Reply:
    """One scripted response rendered in the OpenAI chat-completions wire format."""

    def __init__(self, response: dict, model: str, number: int, body_chars: int) -> None:
        self.response, self.model, self.number = response, model, number
        self.calls = [
            {**call, "id": call.get("id") or f"call_{number}_{index}"}
            for index, call in enumerate(response["tool_calls"])
        ]
        self.usage = self._usage(body_chars)

    def _usage(self, body_chars: int) -> dict:
        produced = len(self.response["content"]) + sum(len(c["name"] + c["arguments"]) for c in self.calls)
        usage = {"prompt_tokens": max(1, body_chars // 4), "completion_tokens": max(1, produced // 4)}
        usage.update(self.response.get("usage") or {})
        usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
        return usage

    def _envelope(self, kind: str, choices: list[dict]) -> dict:
        return {
            "id": f"chatcmpl-scripted-{self.number}",
            "object": kind,
            "created": _CREATED,
            "model": self.model,
            "choices": choices,
        }

    def completion(self) -> dict:
        """The non-streaming JSON answer."""
        message: dict[str, Any] = {"role": "assistant", "content": self.response["content"] or None}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in self.calls
            ]
        choice = {"index": 0, "message": message, "finish_reason": self.response["finish_reason"]}
        return {**self._envelope("chat.completion", [choice]), "usage": self.usage}

    def stream_events(self, include_usage: bool) -> list[dict]:
        """The SSE chunk payloads: role, content pieces, tool-call fragments, finish reason, usage."""
        deltas: list[dict] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": piece} for piece in _pieces(self.response["content"])]
        for index, call in enumerate(self.calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            deltas.append({"tool_calls": [head]})
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in _pieces(call["arguments"])
            ]
        events = [self._chunk(delta, None) for delta in deltas]
        if self.response["kind"] in ("broken", "stall"):
            return events
        events.append(self._chunk({}, self.response["finish_reason"]))
        if include_usage:
            events.append({**self._envelope("chat.completion.chunk", []), "usage": self.usage})
        return events

    def _chunk(self, delta: dict, finish_reason: str | None) -> dict:
        return self._envelope(
            "chat.completion.chunk", [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        )


def _pieces(text: str, count: int = 3) -> list[str]:
    """Split `text` into at most `count` non-empty consecutive pieces."""
    size = max(1, -(-len(text) // count))
    return [text[start : start + size] for start in range(0, len(text), size)]


class ScriptedLLMServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a background thread, answering from a response queue."""

    allow_leftovers = False  # the `llm_server` fixture accepts unused responses at teardown
    allow_exhaustion = False  # the `llm_server` fixture accepts requests that found the script empty

    def __init__(self, *responses: dict) -> None:
        self._script: deque[dict] = deque(responses)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[Any] = []  # JSON bodies received on chat/completions
        self.request_times: list[float] = []  # time.monotonic() of each of those requests
        self.exhausted = 0  # requests that found the script empty
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), _ScriptedHandler)
        self._httpd.scripted = self
        self._thread = serve_in_background(self._httpd, "scripted-llm")

    @property
    def url(self) -> str:
        """Base URL to pass as `api_base`, ending in /v1."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def push(self, *responses: dict) -> None:
        """Append responses to the script."""
        with self._lock:
            self._script.extend(responses)

    def remaining(self) -> int:
        """How many scripted responses have not been served yet."""
        with self._lock:
            return len(self._script)

    def take(self, body: Any) -> tuple[int, dict | None]:
        """Record one chat request; return its 1-based number and the next response (None when exhausted)."""
        with self._lock:
            self.requests.append(body)
            self.request_times.append(time.monotonic())
            response = self._script.popleft() if self._script else None
            self.exhausted += response is None
            return len(self.requests), response

    def unmet_expectation(self) -> str | None:
        """What went wrong with the script, if anything (the `llm_server` fixture checks it at teardown)."""
        if self.exhausted and not self.allow_exhaustion:
            return f"llm_server: {self.exhausted} request(s) found the script exhausted"
        if self.remaining() and not self.allow_leftovers:
            return f"llm_server: {self.remaining()} scripted response(s) never requested"
        return None

    def wait(self, seconds: float) -> None:
        """Sleep for a scripted delay, cut short when the server closes."""
        self._closing.wait(seconds)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._closing.set()
        stop_serving(self._httpd)
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedLLMServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its script and ignores clients hanging up early."""

    daemon_threads = True
    scripted: ScriptedLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ScriptedHandler(BaseHTTPRequestHandler):
    """Answers GET /v1/models and POST .../chat/completions from the owning server's script."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # chunks flushed one by one would otherwise wait for delayed ACKs

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"scripted server: no route for GET {self.path}"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"scripted server: no route for POST {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        scripted = self.server.scripted  # type: ignore[attr-defined]
        number, response = scripted.take(body)
        if response is None:
            self._send_json(500, {"error": {"message": EXHAUSTED_MESSAGE, "type": "server_error"}})
            return
        scripted.wait(response.get("delay", 0))
        self._answer(response, body if isinstance(body, dict) else {}, number, len(raw))

    def _answer(self, response: dict, body: dict, number: int, body_chars: int) -> None:
        if response["kind"] == "error":
            status, message = response["status"], response["message"]
            payload = {"error": {"message": message, "type": "scripted_error", "code": status}}
            self._send_json(status, payload, response["headers"])
            return
        if response["kind"] == "raw":
            self._send_raw(response["status"], response["content_type"], response["body"].encode())
            return
        reply = _Reply(response, body.get("model", "scripted"), number, body_chars)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = reply.stream_events(include_usage)
            if response["kind"] == "stall":
                self._send_stream(events if response["content"] else [], broken=True)
                self.server.scripted.wait(response["stall"])  # type: ignore[attr-defined]
                return
            self._send_stream(events, broken=response["kind"] == "broken")
        elif response["kind"] == "broken":
            self._send_truncated(json.dumps(reply.completion()).encode())
        else:
            self._send_json(200, reply.completion())

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _send_stream(self, events: list[dict], broken: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
        if not broken:
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True  # a broken stream ends without the terminating chunk

    def _send_raw(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _send_truncated(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def main() -> None:
    """Serve a JSON list of scripted responses until interrupted; print the base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", type=Path, required=True, help="JSON list of responses (builder dicts)")
    args = parser.parse_args()
    server = ScriptedLLMServer(*json.loads(args.script.read_text()))
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
