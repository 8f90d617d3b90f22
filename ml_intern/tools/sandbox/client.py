"""The HTTP client of a running sandbox server (protocol: server.py's docstring). STUB: helper C owns it;
the manager (helper D) constructs it as below."""

from __future__ import annotations

from typing import Any


class SandboxClient:
    """Calls a sandbox server: `X-Sandbox-Authorization: Bearer <token>` always; the HF token (the private
    Space's edge) only to an https `*.hf.space` host or to HF_ENDPOINT's own host (self-hosted, tests)."""

    def __init__(self, url: str, token: str, hf_token: str | None, hf_endpoint: str) -> None:
        self.url, self.token, self.hf_token, self.hf_endpoint = url.rstrip("/"), token, hf_token, hf_endpoint

    async def health(self) -> bool:
        raise NotImplementedError

    async def call(self, operation: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """POST /api/<operation>; the JSON answer, or a ToolError with the server's one-line error."""
        raise NotImplementedError
