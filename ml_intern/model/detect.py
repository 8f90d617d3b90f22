"""A local model server already answering (Ollama, llama.cpp, vLLM, LM Studio): used when nothing else is.

On a shared machine anyone may listen on localhost: a loopback server whose socket belongs to another user
(Linux: /proc/net/tcp) is not used unasked, and a model id the server sends is used only when it is plain
(no spaces or control characters: it is printed and sent back as the model id)."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlsplit

from ml_intern.model.ids import LOCAL_SERVERS, local_base

PROBE_ORDER = ("ollama", "llamacpp", "vllm", "lm_studio")  # the first that answers wins, in this order
PROBE_BUDGET_S = 0.3  # all probes run at once; together they never take longer than this
SERVER_NAMES = {"ollama": "Ollama", "llamacpp": "llama.cpp", "vllm": "vLLM", "lm_studio": "LM Studio"}
PROC_NET = Path("/proc/net")  # Linux's socket tables (tcp, tcp6): who owns a listening port
SYSTEM_UID_MAX = 999  # root and system accounts (a packaged `ollama` service user) are the machine's own
LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
LISTEN = "0A"


def probe_url(prefix: str, environ: Mapping[str, str]) -> str:
    """Where `prefix`'s server lists its models: the base URL calls use (ids.local_base), then /models."""
    return f"{local_base(prefix, environ)}/models"


def listener_uids(port: int, proc_net: Path = PROC_NET) -> set[int]:
    """The uids owning a listening TCP socket on `port` (IPv4 and IPv6); empty when unknown (not Linux)."""
    uids: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc_net / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 7 and fields[3] == LISTEN and fields[1].rpartition(":")[2] == f"{port:04X}":
                uids.add(int(fields[7]))
    return uids


def foreign_listener(url: str, proc_net: Path = PROC_NET) -> bool:
    """Whether `url` is on loopback and another (non-system) user's process listens on its port."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in LOOPBACK and not (parts.hostname or "").startswith("127."):
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    mine = os.getuid() if hasattr(os, "getuid") else -1
    return any(uid != mine and uid > SYSTEM_UID_MAX for uid in listener_uids(port, proc_net))


def plain_id(model: object) -> bool:
    """A model id fit to print and use: printable, no whitespace, not empty."""
    return (
        isinstance(model, str) and bool(model) and model.isprintable() and not any(c.isspace() for c in model)
    )


def first_model(url: str, timeout: float, proc_net: Path = PROC_NET) -> str | None:
    """The first model id an OpenAI-compatible `GET /v1/models` lists; None on any failure, or when another
    user's process holds the loopback port."""
    if foreign_listener(url, proc_net):
        return None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: never via a proxy
    try:
        with opener.open(url, timeout=timeout) as reply:
            listed = json.loads(reply.read(1_000_000)).get("data") or []
    except Exception:  # refused, timed out, not JSON, not a model list: no server here
        return None
    ids = [entry.get("id") for entry in listed if isinstance(entry, dict)]
    return next((str(model) for model in ids if plain_id(model)), None)


def detect_local_model(
    environ: Mapping[str, str], budget: float = PROBE_BUDGET_S, proc_net: Path = PROC_NET
) -> tuple[str, str] | None:
    """(`<prefix>/<first model>`, the line saying what was picked), or None when no server answers in time."""
    urls = {prefix: probe_url(prefix, environ) for prefix in PROBE_ORDER}
    pool = ThreadPoolExecutor(max_workers=len(PROBE_ORDER), thread_name_prefix="probe-local")
    futures = {url: pool.submit(first_model, url, budget, proc_net) for url in dict.fromkeys(urls.values())}
    wait(futures.values(), timeout=budget)
    pool.shutdown(wait=False, cancel_futures=True)
    for prefix in PROBE_ORDER:
        future = futures[urls[prefix]]
        model = future.result() if future.done() else None
        if model:
            stem = f"{SERVER_NAMES[prefix]} server"
            if environ.get("LOCAL_LLM_BASE_URL") and not environ.get(f"{LOCAL_SERVERS[prefix][0]}_BASE_URL"):
                stem = "server of LOCAL_LLM_BASE_URL"
            line = (
                f"no model configured: using {prefix}/{model}, the first model of the "
                f"{stem} at {urls[prefix].removesuffix('/models')}"
            )
            return f"{prefix}/{model}", line
    return None
