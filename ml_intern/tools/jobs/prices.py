"""Hourly job prices from the Hub (`HfApi.list_jobs_hardware`), cached for 6 hours in ML_INTERN_HOME; the
hand-typed table in pricing.py only when the Hub cannot be asked."""

from __future__ import annotations

import json
import threading
import time
from contextlib import suppress
from pathlib import Path

from huggingface_hub import JobHardwareInfo, get_session
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

from ml_intern.tools.base import ToolEnv
from ml_intern.tools.jobs.pricing import HOURLY_USD

CACHE_SECONDS = 6 * 3600  # as the original
RETRY_SECONDS = 600  # after a failed fetch, the table is used this long before asking again
FETCH_TIMEOUT = 3.0  # seconds, as the original: approval must not hang on a silent Hub
_PER_HOUR = {"second": 3600.0, "minute": 60.0, "hour": 1.0}
_UNITS = {"s": "second", "sec": "second", "min": "minute", "m": "minute", "h": "hour", "hr": "hour"}
_failed: dict[str, float] = {}  # endpoint -> when fetching last failed
_lock = threading.Lock()  # guards the cache file and _failed, never held over the network


def hourly_prices(env: ToolEnv) -> tuple[dict[str, float], bool]:
    """({flavour: USD per hour}, whether from the Hub): the Hub's prices over the table; the table alone
    when offline or without a token."""
    cache = env.home / "jobs" / "hardware.json"
    with _lock:
        cached = _read_cache(cache, env.hf_endpoint)
        if cached:
            return {**HOURLY_USD, **cached}, True
        if not env.hf_token or time.time() - _failed.get(env.hf_endpoint, 0.0) < RETRY_SECONDS:
            return dict(HOURLY_USD), False
    try:
        prices = _fetch(env)
    except Exception:  # offline, an old Hub, a refusal, an empty answer: the table is an approximation
        with _lock:
            _failed[env.hf_endpoint] = time.time()
        return dict(HOURLY_USD), False
    with _lock:
        _write_cache(cache, env.hf_endpoint, prices)
    return {**HOURLY_USD, **prices}, True


def _fetch(env: ToolEnv) -> dict[str, float]:
    """The Hub's hourly prices (GET /api/jobs/hardware, 3 s timeout); ValueError when it lists none."""
    url = f"{env.hf_endpoint}/api/jobs/hardware"
    response = get_session().get(url, headers=build_hf_headers(token=env.hf_token), timeout=FETCH_TIMEOUT)
    hf_raise_for_status(response)
    prices = {}
    for item in response.json():
        hw = JobHardwareInfo(**item)
        unit = per_hour(hw.unit_label)
        if unit and hw.unit_cost_usd is not None:
            prices[hw.name] = round(hw.unit_cost_usd * unit, 4)
    if not prices:
        raise ValueError("the Hub listed no priced hardware")
    return prices


def per_hour(label: str | None) -> float | None:
    """How many of a price unit fit in an hour ("minute", "min", "per minute"...); None if unknown."""
    word = str(label or "").strip().lower().removeprefix("per ").removeprefix("/").strip()
    word = word[:-1] if len(word) > 2 and word.endswith("s") else word
    return _PER_HOUR.get(_UNITS.get(word, word))


def _read_cache(cache: Path, endpoint: str) -> dict[str, float]:
    """The cached prices for `endpoint` if fresh, else {}."""
    with suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data["endpoint"] == endpoint and time.time() - float(data["fetched"]) < CACHE_SECONDS:
            return {str(k): float(v) for k, v in data["prices"].items()}
    return {}


def _write_cache(cache: Path, endpoint: str, prices: dict[str, float]) -> None:
    """Keep the prices for the next 6 hours (best effort)."""
    with suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        payload = {"endpoint": endpoint, "fetched": time.time(), "prices": prices}
        cache.write_text(json.dumps(payload), encoding="utf-8")
