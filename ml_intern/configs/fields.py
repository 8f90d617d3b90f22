"""Field types the config schema shares: numbers that refuse JSON booleans, regexes, durations, sections."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


def _reject_bool(value: Any) -> Any:
    """JSON true/false is not a number (pydantic would read it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {json.dumps(value)}")
    return value


def _check_regex(pattern: str) -> str:
    """Reject a pattern that does not compile, saying why."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression ({exc})") from None
    return pattern


def _full_match(pattern: str, message: str) -> AfterValidator:
    """Accept strings that fully match `pattern`; fail with `message` otherwise."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


Int = Annotated[int, BeforeValidator(_reject_bool)]
Float = Annotated[float, BeforeValidator(_reject_bool)]
Regex = Annotated[str, AfterValidator(_check_regex)]
ImportSpec = Annotated[str, _full_match(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", "expected 'package.module:attr'")]
Duration = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v),
    _full_match(r"\d+(\.\d+)?[smhd]?", "expected a duration such as 30m, 2h or 90s"),
]  # a bare number is seconds


class Section(BaseModel):
    """Base of every config section: unknown keys are reported, never silently dropped."""

    model_config = ConfigDict(extra="forbid")
