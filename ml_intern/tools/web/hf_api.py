"""`find_hf_api`: search the Hub's REST API (its OpenAPI document) for endpoints, with curl examples."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.tools.base import ToolEnv, ToolError, clip
from ml_intern.tools.http import fetch
from ml_intern.tools.web.docs_index import query_terms

SPEC_PATH = "/.well-known/openapi.json"
CACHE_SECONDS = 24 * 3600
MAX_HITS = 20
METHODS = ("get", "post", "put", "patch", "delete")
DESCRIPTION = "Search the Hub REST API (no arguments: list tags): endpoints, parameters, curl example."


@dataclass
class Endpoint:
    """One operation of the OpenAPI document."""

    method: str
    path: str
    op: dict[str, Any] = field(repr=False)

    @property
    def tags(self) -> list[str]:
        return [str(tag) for tag in self.op.get("tags") or []]

    def params(self) -> list[dict[str, Any]]:
        return [p for p in self.op.get("parameters") or [] if isinstance(p, dict) and p.get("name")]

    def score(self, terms: list[str]) -> float:
        """Summary weighs most, then operationId and path, tags, then description and parameter names."""
        fields = (
            (3.0, self.op.get("summary")),
            (2.0, self.op.get("operationId")),
            (2.0, self.path),
            (1.5, " ".join(self.tags)),
            (1.0, self.op.get("description")),
            (1.0, " ".join(str(p["name"]) for p in self.params())),
        )
        return sum(w * (t in str(text or "").lower()) for w, text in fields for t in terms)


def endpoints_of(spec: dict[str, Any]) -> list[Endpoint]:
    """Every (method, path) operation of an OpenAPI document."""
    found = []
    for path, item in (spec.get("paths") or {}).items():
        for method in METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                found.append(Endpoint(method.upper(), path, item[method]))
    return found


def curl_example(endpoint: Endpoint, hub_url: str) -> str:
    """A curl command for the endpoint; the token stays the shell variable $HF_TOKEN."""
    required = [p["name"] for p in endpoint.params() if p.get("in") == "query" and p.get("required")]
    query = "?" + "&".join(f"{name}={{{name}}}" for name in required) if required else ""
    parts = [
        f'curl -X {endpoint.method} "{hub_url}{endpoint.path}{query}"',
        '-H "Authorization: Bearer $HF_TOKEN"',
    ]
    body = ((endpoint.op.get("requestBody") or {}).get("content") or {}).get("application/json")
    if body is not None:
        schema = body.get("schema") or {}
        fields = {name: f"<{name}>" for name in (schema.get("required") or [])[:6]}
        parts += ['-H "Content-Type: application/json"', f"-d '{json.dumps(fields)}'"]
    return " \\\n  ".join(parts)


def describe(endpoint: Endpoint, hub_url: str) -> str:
    """Method, path, summary, parameters, responses and a curl example."""
    summary = " ".join(str(endpoint.op.get("summary") or endpoint.op.get("description") or "").split())
    lines = [f"{endpoint.method} {endpoint.path}" + (f" - {summary[:200]}" if summary else "")]
    for p in endpoint.params():
        about = " ".join(str(p.get("description") or "").split())[:120]
        need = ", required" if p.get("required") else ""
        lines.append(f"  - {p['name']} ({p.get('in', '?')}{need})" + (f": {about}" if about else ""))
    responses = list((endpoint.op.get("responses") or {}).items())[:3]
    if responses:
        shown = ", ".join(
            f"{code} {str((r or {}).get('description') or '')[:60]}".strip() for code, r in responses
        )
        lines.append(f"  responses: {shown}")
    return "\n".join(lines + ["  " + curl_example(endpoint, hub_url).replace("\n", "\n  ")])


def search(endpoints: list[Endpoint], query: str, tag: str, hub_url: str) -> str:
    """The text answer: endpoints matching `query` within `tag`, best first (the tag's alone without hits)."""
    tags = sorted({t for e in endpoints for t in e.tags})
    if tag and tag.lower() not in {t.lower() for t in tags}:
        raise ToolError(f"Unknown tag {tag!r}; tags: {', '.join(tags)}.")
    pool = [e for e in endpoints if not tag or tag.lower() in (t.lower() for t in e.tags)]
    terms = query_terms(query)
    if not terms and not tag:
        return "Hub API tags (pass tag or query): " + ", ".join(tags)
    scored = sorted(((e.score(terms), n, e) for n, e in enumerate(pool)), key=lambda s: (-s[0], s[1]))
    hits = [e for score, _, e in scored if score > 0] if terms else pool
    heading = "Hub API endpoints" + (f" matching '{query}'" if terms else "") + (f" in {tag}" if tag else "")
    if not hits and tag:
        hits, heading = pool, f"No endpoint matches '{query}'; the endpoints of {tag}"
    if not hits:
        return f"No Hub API endpoint matches '{query}'. Tags: {', '.join(tags)}."
    shown = [describe(e, hub_url) for e in hits[:MAX_HITS]]
    return clip(f"{heading} ({len(shown)} of {len(hits)}):\n\n" + "\n\n".join(shown))


class OpenApiSpec:
    """The Hub's OpenAPI document, cached in the process and for a day under ML_INTERN_HOME."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        key = hashlib.sha256(env.hf_endpoint.encode()).hexdigest()[:12]
        self.cache_file = env.home / "cache" / f"hf_openapi_{key}.json"
        self.endpoints: list[Endpoint] | None = None
        self.lock = asyncio.Lock()  # concurrent first calls download once

    async def load(self) -> list[Endpoint]:
        """The endpoints, from memory, the day-old cache file or the Hub (file work off the event loop)."""
        async with self.lock:
            if self.endpoints is None:
                spec = await asyncio.to_thread(self._cached) or await self._download()
                self.endpoints = endpoints_of(spec)
        return self.endpoints

    def _cached(self) -> dict[str, Any] | None:
        try:
            if time.time() - self.cache_file.stat().st_mtime < CACHE_SECONDS:
                return json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            pass
        return None

    async def _download(self) -> dict[str, Any]:
        url = self.env.hf_endpoint + SPEC_PATH
        response = await fetch(self.env, url)
        spec = await asyncio.to_thread(parsed, response.content) if response.status_code == 200 else None
        if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
            raise ToolError(
                f"Could not read the Hub's API description at {url} (HTTP {response.status_code})."
            )
        await asyncio.to_thread(self._store, spec)
        return spec

    def _store(self, spec: dict[str, Any]) -> None:
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            self.cache_file.write_text(json.dumps(spec))
        except OSError:
            pass  # the cache is an optimisation only


def parsed(content: bytes) -> Any:
    """A JSON document, or None when it is not JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return None


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The `find_hf_api` tool."""
    spec = OpenApiSpec(env)

    async def find_hf_api(query: str = "", tag: str = "") -> str:
        return search(await spec.load(), query, tag.strip(), env.hf_endpoint)

    return [StructuredTool.from_function(coroutine=find_hf_api, name="find_hf_api", description=DESCRIPTION)]
