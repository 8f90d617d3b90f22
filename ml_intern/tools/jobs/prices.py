"""Hourly job prices from the Hub (`HfApi.list_jobs_hardware`), cached for 6 hours in ML_INTERN_HOME; the
hand-typed table in pricing.py only when the Hub cannot be asked."""

from __future__ import annotations

import json
import threading
import time
from contextlib import suppress
from pathlib import Path

from ml_intern.tools.base import ToolEnv
from ml_intern.tools.hub.client import make_api
from ml_intern.tools.jobs.pricing import HOURLY_USD

CACHE_SECONDS = 6 * 3600  # as the original
RETRY_SECONDS = 600  # after a failed fetch, the table is used this long before asking again
_PER_HOUR = {"second": 3600.0, "minute": 60.0, "hour": 1.0}
_failed: dict[str, float] = {}  # endpoint -> when fetching last failed
_lock = threading.Lock()


def hourly_prices(env: ToolEnv) -> tuple[dict[str, float], bool]:
    """({flavour: USD per hour}, whether from the Hub); the table when offline or without a token."""
    cache = env.home / "jobs" / "hardware.json"
    with _lock:
        cached = _read_cache(cache, env.hf_endpoint)
        if cached:
            return cached, True
        if not env.hf_token or time.time() - _failed.get(env.hf_endpoint, 0.0) < RETRY_SECONDS:
            return dict(HOURLY_USD), False
        try:
            hardware = make_api(env).list_jobs_hardware()
        except Exception:  # offline, an old Hub, a refusal: the table is an approximation, not a failure
            _failed[env.hf_endpoint] = time.time()
            return dict(HOURLY_USD), False
        prices = {
            hw.name: round(hw.unit_cost_usd * _PER_HOUR[hw.unit_label], 4)
            for hw in hardware
            if hw.unit_label in _PER_HOUR and hw.unit_cost_usd is not None
        }
        _write_cache(cache, env.hf_endpoint, prices)
        return prices, True


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
