"""The Hugging Face MCP server: the HF token goes, as a Bearer, only to servers on the HF endpoint's host (the
original sent it to every server), and tools that duplicate built-in ones are not offered twice."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# Tools of the HF MCP server the original skipped (ml-intern has its own); built-in names are skipped too.
SKIPPED_HF_TOOLS = frozenset({"hf_jobs", "hf_doc_search", "hf_doc_fetch", "hf_whoami"})


def on_hf_host(settings: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    """Whether an http/sse server lives on the HF endpoint (`HF_ENDPOINT`, default huggingface.co): same
    scheme, host and port."""
    if settings.get("transport") == "stdio" or not settings.get("url"):
        return False
    server = urlsplit(str(settings["url"]))
    endpoint = urlsplit((environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/"))
    return (server.scheme, server.netloc.lower()) == (endpoint.scheme, endpoint.netloc.lower())


def hf_token(environ: Mapping[str, str]) -> str | None:
    """The HF token: the environment's, else the one `hf auth login` saved."""
    token = environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def with_hf_token(settings: dict[str, Any], environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`settings` with `Authorization: Bearer <HF token>` when the server is on the HF host and the config
    sets no Authorization header itself; any other server's settings unchanged."""
    headers = dict(settings.get("headers") or {})
    if not on_hf_host(settings, environ) or any(name.lower() == "authorization" for name in headers):
        return settings
    token = hf_token(environ)
    return {**settings, "headers": {**headers, "Authorization": f"Bearer {token}"}} if token else settings
