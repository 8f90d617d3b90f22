"""A local model server already answering (Ollama, llama.cpp, vLLM, LM Studio): used when nothing else is."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait

from ml_intern.model.ids import LOCAL_SERVERS

PROBE_ORDER = ("ollama", "llamacpp", "vllm", "lm_studio")  # the first that answers wins, in this order
PROBE_BUDGET_S = 0.3  # all probes run at once; together they never take longer than this
SERVER_NAMES = {"ollama": "Ollama", "llamacpp": "llama.cpp", "vllm": "vLLM", "lm_studio": "LM Studio"}


def probe_url(prefix: str, environ: Mapping[str, str]) -> str:
    """Where `prefix`'s server lists its models: its *_BASE_URL, else the usual localhost port."""
    stem, port = LOCAL_SERVERS[prefix]
    base = (environ.get(f"{stem}_BASE_URL") or f"http://localhost:{port}").rstrip("/")
    return f"{base if base.endswith('/v1') else base + '/v1'}/models"


def first_model(url: str, timeout: float) -> str | None:
    """The first model id an OpenAI-compatible `GET /v1/models` lists; None on any failure."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: never via a proxy
    try:
        with opener.open(url, timeout=timeout) as reply:
            listed = json.loads(reply.read(1_000_000)).get("data") or []
    except Exception:  # refused, timed out, not JSON, not a model list: no server here
        return None
    ids = [entry.get("id") for entry in listed if isinstance(entry, dict)]
    return next((str(model) for model in ids if isinstance(model, str) and model.strip()), None)


def detect_local_model(environ: Mapping[str, str], budget: float = PROBE_BUDGET_S) -> tuple[str, str] | None:
    """(`<prefix>/<first model>`, the line saying what was picked), or None when no server answers in time."""
    pool = ThreadPoolExecutor(max_workers=len(PROBE_ORDER), thread_name_prefix="probe-local")
    urls = {prefix: probe_url(prefix, environ) for prefix in PROBE_ORDER}
    futures = {prefix: pool.submit(first_model, url, budget) for prefix, url in urls.items()}
    wait(futures.values(), timeout=budget)
    pool.shutdown(wait=False, cancel_futures=True)
    for prefix in PROBE_ORDER:
        future = futures[prefix]
        model = future.result() if future.done() else None
        if model:
            line = (
                f"no model configured: using {prefix}/{model}, the first model of the "
                f"{SERVER_NAMES[prefix]} server at {urls[prefix].removesuffix('/models')}"
            )
            return f"{prefix}/{model}", line
    return None
