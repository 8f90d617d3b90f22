"""The Hugging Face router's model list (cached in ML_INTERN_HOME) and the lines `/model` prints from it."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml_intern.model.ids import LOCAL_SERVERS, ModelError, resolve_model
from ml_intern.model.router import POLICY_SUFFIXES, router_base, split_suffix

CACHE_FILE = "router-models.json"
FRESH_S = 300.0  # a fetched list is used this long
RETRY_AFTER_FAILURE_S = 15.0  # after a failed fetch, the router is not asked again this soon
TIMEOUT_S = 5.0
SUGGESTED = (  # the original ml-intern's suggestions
    ("Claude Opus 4.8", "anthropic/claude-opus-4.8:fal-ai"),
    ("GPT-5.5", "openai/gpt-5.5:fal-ai"),
    ("MiniMax M2.7", "MiniMaxAI/MiniMax-M2.7:novita"),
    ("Kimi K2.6", "moonshotai/Kimi-K2.6:novita"),
    ("GLM 5.1", "zai-org/GLM-5.1:novita"),
    ("DeepSeek V4 Pro", "deepseek-ai/DeepSeek-V4-Pro:novita"),
)


def router_catalogue(environ: Mapping[str, str], home: Path) -> dict[str, dict[str, Any]] | None:
    """The router's models by id (blocking: at most one 5 s request); None when the router cannot say."""
    url = f"{router_base(environ)}/models"
    cache = home / CACHE_FILE
    try:
        saved = json.loads(cache.read_text())
    except (OSError, ValueError):
        saved = {}
    age = time.time() - float(saved.get("fetched_at", 0))
    if saved.get("url") == url and age < (FRESH_S if saved.get("ok") else RETRY_AFTER_FAILURE_S):
        return _by_id(saved.get("models")) if saved.get("ok") else None
    models = _fetch(url)
    record = {"url": url, "fetched_at": time.time(), "ok": models is not None, "models": models or []}
    try:
        home.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(record))
    except OSError:  # no cache: the next /model asks again
        pass
    return _by_id(models) if models is not None else None


def _fetch(url: str) -> list[Any] | None:
    import httpx

    try:
        reply = httpx.get(url, timeout=TIMEOUT_S, follow_redirects=True)
        reply.raise_for_status()
        models = reply.json().get("data")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return models if isinstance(models, list) else None


def _by_id(models: Any) -> dict[str, dict[str, Any]]:
    return {str(m["id"]): m for m in models or [] if isinstance(m, dict) and m.get("id")}


def model_overview(current: str, environ: Mapping[str, str], home: Path) -> list[str]:
    """What `/model` prints with no argument: the current model, suggestions, suffixes, local prefixes."""
    width = max(len(name) for name, _ in SUGGESTED)
    lines = [
        f"current model: {current}{_route(current, environ)}",
        "suggested (Hugging Face router, with HF_TOKEN):",
    ]
    lines += [f"  {name:<{width}}  {model_id}" for name, model_id in SUGGESTED]
    lines.append("router suffixes: :<provider> pins one (e.g. :novita); no suffix lets the router choose")
    lines += [f"  :{suffix}  {meaning}" for suffix, meaning in POLICY_SUFFIXES.items()]
    local = ", ".join(f"{prefix}/<name>" for prefix in LOCAL_SERVERS)
    lines.append(f"local servers: {local}")
    lines.append("provider keys: anthropic/<model>, openai/<model>, ... with that provider's API key")
    lines.append("switch with /model <id>")
    return lines


def model_report(model_id: str, environ: Mapping[str, str], home: Path) -> list[str]:
    """What `/model ID` prints before switching (blocking): how the id is reached and, for router ids, the
    routing policy, each live provider's price, context and tool support, and warnings."""
    try:
        spec = resolve_model(model_id, environ)
    except ModelError as exc:
        return [f"warning: {exc}"]
    if spec.kind == "local":
        return [f"{spec.model_id}: local server at {spec.api_base}"]
    if spec.kind == "litellm":
        return [f"{spec.model_id}: called directly through litellm ({spec.model_id.partition('/')[0]})"]
    base, suffix = split_suffix(spec.served_id)
    lines = [f"{spec.model_id}: Hugging Face router, {_policy(suffix)}"]
    catalogue = router_catalogue(environ, home)
    if catalogue is None:
        return [*lines, f"warning: the router's model list is unavailable ({router_base(environ)}/models)"]
    entry = catalogue.get(base) or {k.lower(): v for k, v in catalogue.items()}.get(base.lower())
    if entry is None:
        return [*lines, _not_listed(base, catalogue)]
    providers = [p for p in entry.get("providers") or [] if isinstance(p, dict)]
    live = [p for p in providers if p.get("status", "live") == "live"]
    lines += [_provider_line(p) for p in live]
    if not live:
        lines.append(f"warning: no provider serves {base} right now")
    if suffix and suffix not in POLICY_SUFFIXES and suffix not in {p.get("provider") for p in live}:
        serving = ", ".join(str(p.get("provider")) for p in live) or "none"
        lines.append(f"warning: provider {suffix} does not serve {base} (live: {serving})")
    if live and not any(p.get("supports_tools") for p in live):
        lines.append(f"warning: no provider supports tool calls for {base}: ml-intern's tools will not work")
    return lines


def _route(model_id: str, environ: Mapping[str, str]) -> str:
    try:
        spec = resolve_model(model_id, environ)
    except ModelError:
        return ""
    if spec.kind == "local":
        return f" (local server at {spec.api_base})"
    return " (Hugging Face router)" if spec.kind == "router" else " (litellm provider)"


def _policy(suffix: str | None) -> str:
    if suffix is None:
        return "routing: auto (the router picks a provider)"
    if suffix in POLICY_SUFFIXES:
        return f"routing: :{suffix} ({POLICY_SUFFIXES[suffix]})"
    return f"routing: pinned to {suffix}"


def _provider_line(provider: dict[str, Any]) -> str:
    pricing = provider.get("pricing") or {}
    price = (
        f"${pricing['input']:g}/${pricing['output']:g} per M tok"
        if isinstance(pricing.get("input"), int | float) and isinstance(pricing.get("output"), int | float)
        else "price n/a"
    )
    context = provider.get("context_length")
    ctx = f"ctx {context:,}" if isinstance(context, int) else "ctx n/a"
    tools = "tools" if provider.get("supports_tools") else "no tools"
    return f"  {provider.get('provider', '?')}: {price}, {ctx}, {tools}"


def _not_listed(base: str, catalogue: dict[str, dict[str, Any]]) -> str:
    lowered = {model.lower(): model for model in catalogue}
    close = difflib.get_close_matches(base.lower(), list(lowered), n=3, cutoff=0.4)
    hint = f": did you mean {', '.join(lowered[c] for c in close)}?" if close else ""
    return f"warning: {base} is not in the router's catalogue{hint}"
