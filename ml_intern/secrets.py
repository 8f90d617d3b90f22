"""Keeping credentials out of everything persisted or shown: token shapes and the secret values in use.

Redact what is stored and shown, not what is executed: a tool call's arguments are stored redacted, and the
model's own arguments are kept in this process's memory (never on disk) so the call runs with them
(`redact_call_args`, `unredacted_args`).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ml_intern.secret_shapes import LINE_SHAPES, PRIVATE_KEY, REDACTED, is_secret_name, redact_shapes

MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words
MAX_REMEMBERED_CALLS = 1000

_known: list[str] = []  # secret values in use, longest first
_hold_chars = 0  # the longest known value with whitespace in it: streams hold back this many characters
_unredacted: OrderedDict[str, tuple[Any, Any]] = OrderedDict()  # call id -> (stored args, the model's args)
_lock = threading.Lock()


def register_secrets(environ: Mapping[str, str]) -> None:
    """Remember the values of secret-looking environment variables, so they are redacted verbatim too."""
    global _hold_chars
    values = set(_known)
    for name, value in environ.items():
        if is_secret_name(name) and value and len(value) >= MIN_SECRET_LENGTH and holds_secret(value):
            values.add(value)
    _known[:] = sorted(values, key=len, reverse=True)
    _hold_chars = max((len(v) for v in _known if any(c.isspace() for c in v)), default=0)


def holds_secret(value: str) -> bool:
    """False for a URL without credentials in it (`REDIS_URL=redis://localhost:6379`): nothing to hide."""
    if "://" not in value:
        return True
    return "@" in value.split("://", 1)[1].split("/", 1)[0]


def redact(text: str) -> str:
    """`text` with every known secret value and credential-shaped string replaced by [redacted]."""
    if not text:
        return text
    for value in _known:
        if value in text:
            text = text.replace(value, REDACTED)
    return redact_shapes(text)


def redact_value(value: Any) -> Any:
    """Redact the strings inside a JSON-like value (tool arguments, events)."""
    if isinstance(value, str):
        return redact_string(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if hasattr(value, "model_dump"):  # litellm's pydantic objects (raw tool calls) in additional_kwargs
        return redact_value(value.model_dump())
    return value


def redact_string(text: str) -> str:
    """`text` redacted; a JSON document (a raw tool call's `arguments`) is redacted value by value, where
    escaped quotes and line breaks cannot hide a shape."""
    redacted = redact(text)
    if text[:1] not in ("{", "["):
        return redacted
    try:
        parsed = json.loads(text)
    except ValueError:
        return redacted
    structured = redact_value(parsed)
    return redacted if structured == parsed else redact(json.dumps(structured, ensure_ascii=False))


def redact_exception(exc: BaseException) -> BaseException:
    """`exc` with its message redacted in place (LangGraph saves a failed node's error in the checkpoint)."""
    exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    if isinstance(getattr(exc, "message", None), str):
        exc.message = redact(exc.message)  # type: ignore[attr-defined]
    return exc


# ---- tool arguments: stored redacted, run as the model wrote them ------------------------------------------


def redact_call_args(call_id: str | None, args: Any) -> Any:
    """`args` redacted for storing and showing; when that changed them, the model's own are kept in memory."""
    stored = redact_value(args)
    if stored != args and call_id:
        with _lock:
            _unredacted[call_id] = (stored, args)
            _unredacted.move_to_end(call_id)
            while len(_unredacted) > MAX_REMEMBERED_CALLS:
                _unredacted.popitem(last=False)
    return stored


def unredacted_args(call: Mapping[str, Any], keep: bool = False) -> Any:
    """The arguments to run `call` with: the model's own if this process redacted them, else the stored ones;
    `keep` leaves them for later (an approval check looks at what will run, before it runs).

    After a restart the stored (redacted) arguments run: the originals were never written anywhere."""
    with _lock:
        kept = _unredacted.get(call.get("id") or "") if keep else _unredacted.pop(call.get("id") or "", None)
    if kept is None or kept[0] != call["args"]:  # not ours, or changed since (another call with the same id)
        return call["args"]
    return kept[1]


# ---- streams: text in arbitrary chunks ---------------------------------------------------------------------

HOLD_WORDS = 2  # "Bearer <token>": the last word may be partial, the one before it a keyword
OPEN_TAIL = re.compile(  # a tail that may still become "Authorization: <scheme> <token>" or "NAME = value"
    r"(?i)(?:authorization['\"]?[ \t]*[:=][ \t]*['\"]?(?:[a-z0-9\-]+[ \t]+)?"
    r"|[\w.\-]+['\"]?[ \t]*[:=][ \t]*['\"]?)\S*\Z"
)
OPEN_TAIL_WINDOW = 512  # characters searched for such a tail
MAX_HOLD = 64 * 1024  # an unfinished private-key block is held back at most this far
LONGEST_SHAPE = 4096  # a one-line credential longer than this may be cut (and missed)
MAX_PENDING = 1024 * 1024  # a run without whitespace longer than this is cut anyway...
FORCED_KEEP = 4096  # ...keeping this much of it back
WORD_START = re.compile(r"(?<!\S)\S")
BLOCK_END = re.compile(r"-----END[A-Z0-9 ]*-----")


class StreamRedactor:
    """Redacts text arriving in chunks cut anywhere (model deltas, pipe reads): what `feed` returns is safe to
    show or write, because it holds back every place where a secret may still be completing.

    Held back: the last HOLD_WORDS words (more when they may still become `Authorization: <scheme> <token>`
    or `NAME = value`), as many characters as the longest known secret with spaces, an unfinished
    `-----BEGIN` block (up to MAX_HOLD) and any credential match reaching into that tail. A run of more
    than MAX_PENDING characters without whitespace is cut FORCED_KEEP characters from its end."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, text: str) -> str:
        self.pending += text
        cut = safe_cut(self.pending)
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return redact(ready)

    def flush(self) -> str:
        ready, self.pending = self.pending, ""
        return redact(ready)


def safe_cut(text: str) -> int:
    """How much of `text` can be redacted on its own: no secret crosses that point or starts after it."""
    cut = word_start(text, len(text) - 1, HOLD_WORDS)
    if tail := OPEN_TAIL.search(text, max(0, len(text) - OPEN_TAIL_WINDOW)):
        cut = min(cut, tail.start())
    if _hold_chars:
        cut = min(cut, word_start(text, len(text) - _hold_chars, 1))
    block = text.rfind("-----BEGIN", max(0, len(text) - MAX_HOLD))
    if block >= 0 and not BLOCK_END.search(text, block):
        cut = min(cut, block)
    if cut == 0 and len(text) > MAX_PENDING:
        cut = len(text) - FORCED_KEEP
    if cut == 0:  # nothing can go yet: skip the scan for secrets crossing the cut (it rescans the held text)
        return 0
    for start, end in sorted(spans_near(text, cut), reverse=True):
        if start < cut < end:
            cut = start
    return cut


def word_start(text: str, limit: int, count: int) -> int:
    """Where the `count`-th last word starting at or before `limit` starts (0 when there are fewer)."""
    window = 256
    while limit >= 0:
        low = max(0, limit - window)
        starts = [m.start() for m in WORD_START.finditer(text, low, limit + 1)]
        if len(starts) >= count:
            return starts[-count]
        if low == 0:
            break
        window *= 4
    return 0


def spans_near(text: str, cut: int) -> list[tuple[int, int]]:
    """Where known values and credential shapes that may reach past `cut` occur in `text`."""
    low = max(0, cut - LONGEST_SHAPE)
    spans = [m.span() for pattern in LINE_SHAPES for m in pattern.finditer(text, low)]
    block = text.rfind("-----BEGIN", max(0, len(text) - MAX_HOLD), cut)
    if block >= 0 and (match := PRIVATE_KEY.match(text, block)):
        spans.append(match.span())
    for value in _known:
        at = text.find(value, max(0, cut - len(value)))
        while 0 <= at < cut:
            spans.append((at, at + len(value)))
            at = text.find(value, at + 1)
    return spans


# ---- what must never be copied -----------------------------------------------------------------------------

# Files that hold credentials by their name or place: never copied (snapshot store, spills, exports).
CREDENTIAL_PATH = re.compile(
    r"(^|/)(\.env(\.[^/]*)?|\.envrc|\.netrc|_netrc|\.pgpass|\.npmrc|\.pypirc|\.yarnrc(\.yml)?|\.git-credentials"
    r"|\.gitcookies|\.htpasswd|\.my\.cnf|\.boto|\.s3cfg|\.dockercfg|\.vault-token|\.terraformrc"
    r"|secrets?(\.[^/]*)?\.(json|ya?ml|toml|env|ini)|credentials?(\.[^/]*)?\.(json|ya?ml|toml|ini|csv)"
    r"|client_secrets?[^/]*\.json|service[-_]?account[^/]*\.json|token\.(json|pickle)|kaggle\.json)$"
    r"|\.(pem|key|p12|pfx|ppk|p8|jks|keystore|kdbx|gpg|asc)$"
    r"|(^|/)(\.ssh|\.aws|\.azure|\.gnupg|\.docker|\.kube|\.kaggle|\.password-store|\.terraform\.d)/"
    r"|(^|/)\.config/(gcloud|gh|hub|op|doctl|rclone)/"
    r"|(^|/)id_(rsa|dsa|ecdsa|ed25519)(_sk)?(\.pub)?$|(^|/)credentials$"
    r"|(^|/)\.cache/huggingface/(stored_)?tokens?$|(^|/)\.huggingface/token$",
    re.IGNORECASE,
)


def is_credential_path(rel: str) -> bool:
    """Whether the (posix, relative or absolute) path names a credential file by its name or place."""
    return bool(CREDENTIAL_PATH.search(rel.replace("\\", "/")))


def looks_secret(text: str | bytes) -> bool:
    """Whether `text` holds a known secret value or a credential shape (checked before storing a copy)."""
    if isinstance(text, bytes):
        if any(value.encode() in text for value in _known):
            return True
        text = text.decode("utf-8", errors="replace")
    return redact(text) != text
