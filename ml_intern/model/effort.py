"""Reasoning effort per model call, and the self-healing cascade when a provider rejects a level.

The preference (config `reasoning_effort`, `/effort`) is the highest level asked for. What a model accepted,
per asked level, is kept in `Services.effort_cache`; a level missing there is sent as asked. A rejected level
steps down max → xhigh → high → medium → low → off, one heal per level, with one notice each.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

from ml_intern.configs.schema import EFFORT_LEVELS
from ml_intern.configs.schema import EFFORT_OFF as OFF
from ml_intern.errors import UserError
from ml_intern.graph import events
from ml_intern.graph.events import emit
from ml_intern.model.ids import ModelSpec

T = TypeVar("T")

LOWER = {"max": "xhigh", "xhigh": "high", "high": "medium", "medium": "low", "minimal": "low", "low": None}
ROUTER_LEVELS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
THINKING_REFUSED = re.compile(r"thinking.{0,80}(not supported|unsupported)", re.I | re.S)
EFFORT_WORDS = ("effort", "output_config")
REFUSAL_WORDS = (
    "invalid",
    "not supported",
    "unsupported",
    "must be one of",
    "not a valid",
    "unrecognized",
    "unknown",
    "only supported by",
)


def parse_effort(text: str) -> str | None:
    """`/effort` and config words: a level of EFFORT_LEVELS, or None for off; a UserError otherwise."""
    word = text.strip().lower()
    if word in OFF:
        return None
    if word not in EFFORT_LEVELS:
        raise UserError(
            f"unknown reasoning effort '{text.strip()}': use one of {'|'.join((*EFFORT_LEVELS, 'off'))}"
        )
    return word


def describe(level: str | None) -> str:
    return level or "off"


def effective_effort(spec: ModelSpec, asked: str | None, cache: Mapping[str, str | None]) -> str | None:
    """The level to send to `spec`'s model: none for local servers, else the accepted level for `asked`."""
    if asked is None or spec.kind == "local":
        return None
    level = cache.get(asked, asked)
    return ROUTER_LEVELS.get(level) if spec.kind == "router" and level else level


def effort_kwargs(spec: ModelSpec, level: str | None) -> dict[str, Any]:
    """Call kwargs carrying `level`: the router takes it in the body, litellm maps it per provider."""
    if level is None or spec.kind == "local":
        return {}
    if spec.kind == "router":
        return {"extra_body": {"reasoning_effort": ROUTER_LEVELS.get(level, "high")}}
    room = output_limit(spec.litellm_model) if "claude" in spec.litellm_model else None
    return {"reasoning_effort": level, **({"max_tokens": room} if room else {})}


@functools.lru_cache(maxsize=32)
def output_limit(litellm_model: str) -> int | None:
    """The model's output limit from litellm's table. litellm sends Claude with thinking max_tokens of the
    thinking budget + 4096 (8192 at high, against 64000 without): a large `write` would be cut short."""
    import litellm

    try:
        return litellm.get_model_info(litellm_model).get("max_output_tokens") or None
    except Exception:  # litellm raises for models missing from its table
        return None


def effort_rejection(exc: BaseException) -> Literal["thinking", "effort"] | None:
    """Why the provider refused the effort: thinking not supported at all, or this level; None: not that."""
    from ml_intern.model.retry import is_transient

    if is_transient(exc):
        return None
    text = str(exc).lower()
    if THINKING_REFUSED.search(text):
        return "thinking"
    if any(word in text for word in EFFORT_WORDS) and any(word in text for word in REFUSAL_WORDS):
        return "effort"
    return None


def lower_level(spec: ModelSpec, level: str, rejection: str) -> str | None:
    """The next level to try after `level` was refused (None: off)."""
    if rejection == "thinking":
        return None
    lower = LOWER.get(level)
    while spec.kind == "router" and lower and ROUTER_LEVELS[lower] == ROUTER_LEVELS[level]:
        lower = LOWER.get(lower)  # the router sends xhigh and max as high: do not ask the same twice
    return lower


async def with_effort(
    spec: ModelSpec,
    asked: str | None,
    cache: dict[str, str | None],
    call: Callable[[dict[str, Any]], Awaitable[T]],
) -> tuple[T, str | None]:
    """`call(kwargs)` with the effort for `asked`; a refused level is replaced by the next lower one (and
    remembered in `cache[asked]`), retried at once. Returns the result and the level it was sent with."""
    level = effective_effort(spec, asked, cache)
    while True:
        try:
            return await call(effort_kwargs(spec, level)), level
        except Exception as exc:
            rejection = effort_rejection(exc) if level is not None else None
            if rejection is None:
                raise
            lower = lower_level(spec, level, rejection)
            cache[asked] = lower  # type: ignore[index]
            text = f"reasoning effort {level} not supported by {spec.model_id}: using {describe(lower)}"
            emit(events.notice("model", text))
            level = lower


def merged_kwargs(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Call kwargs from several sources; `extra_body` and `extra_headers` are merged, not replaced."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in ("extra_body", "extra_headers") and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def effort_in_use(services: Any, asked: str | None) -> str:
    """What `/model` and `/effort` print for the model of `services`: the level it is sent with, or "off"."""
    return describe(effective_effort(services.model, asked, services.effort_cache))
