"""Keeping credentials out of everything persisted or shown: token shapes and the secret values in use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
TOKEN_SHAPES = re.compile(
    r"\bhf_[A-Za-z0-9]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{16,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{16,}"
    r"|\bsk-[A-Za-z0-9_\-]{16,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|(?i:aws_secret_access_key)\s*[=:]\s*\S+"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|(?i:authorization)\s*[:=]\s*[^\s,;]+(?:\s+[A-Za-z0-9._~+/=\-]{8,})?"
)
SECRET_NAME = re.compile(r"(TOKEN|API_KEY|SECRET|PASSWORD|ACCESS_KEY)", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words

_known: set[str] = set()


def register_secrets(environ: Mapping[str, str]) -> None:
    """Remember the values of secret-looking environment variables, so they are redacted verbatim too."""
    for name, value in environ.items():
        if SECRET_NAME.search(name) and value and len(value) >= MIN_SECRET_LENGTH:
            _known.add(value)


def redact(text: str) -> str:
    """`text` with every known secret value and token-shaped string replaced by [redacted]."""
    if not text:
        return text
    for value in _known:
        if value in text:
            text = text.replace(value, REDACTED)
    return TOKEN_SHAPES.sub(REDACTED, text)


def redact_value(value: Any) -> Any:
    """Redact the strings inside a JSON-like value (tool arguments, events)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if hasattr(value, "model_dump"):  # litellm's pydantic objects (raw tool calls) in additional_kwargs
        return redact_value(value.model_dump())
    return value


def redact_exception(exc: BaseException) -> BaseException:
    """`exc` with its message redacted in place (LangGraph saves a failed node's error in the checkpoint)."""
    exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    if isinstance(getattr(exc, "message", None), str):
        exc.message = redact(exc.message)  # type: ignore[attr-defined]
    return exc


class StreamRedactor:
    """Redacts streamed text: holds back the last words until more arrive, so a token split across
    chunks is still seen whole."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, text: str) -> str:
        self.pending += text
        # Keep the last two words: a keyword and its token ("Bearer abc...") must be redacted together.
        words = re.split(r"(\s+)", self.pending)
        if len(words) < 5:
            return ""
        ready, self.pending = "".join(words[:-4]), "".join(words[-4:])
        return redact(ready)

    def flush(self) -> str:
        ready, self.pending = self.pending, ""
        return redact(ready)


# Files that hold credentials by their name or place: never copied (snapshot store, spills, exports).
CREDENTIAL_PATH = re.compile(
    r"(^|/)(\.env(\.[^/]*)?|\.envrc|\.netrc|\.pgpass|\.npmrc|\.pypirc|secrets?\.(json|ya?ml|toml))$"
    r"|\.(pem|key|p12|pfx)$"
    r"|(^|/)(\.ssh|\.aws|\.gnupg|\.docker|\.kube)/"
    r"|(^|/)id_(rsa|dsa|ecdsa|ed25519)(\.pub)?$"
    r"|(^|/)\.cache/huggingface/(stored_)?tokens?$|(^|/)\.huggingface/token$"
)


def is_credential_path(rel: str) -> bool:
    """Whether the (posix, relative or absolute) path names a credential file by its name or place."""
    return bool(CREDENTIAL_PATH.search(rel))


def looks_secret(text: str | bytes) -> bool:
    """Whether `text` holds a known secret value or a token-shaped string (checked before storing a copy)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return redact(text) != text
