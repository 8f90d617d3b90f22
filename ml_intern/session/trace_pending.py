"""Traces waiting for their upload, one JSON file per thread in `trace-uploads-pending/` of ML_INTERN_HOME.

A trace is kept there (0600, already redacted) before its upload and removed once the Hub has it. The uploads
of one home run one at a time and always send the newest content kept for a path, so a retried old trace can
never land after a newer one of the same thread. A kept trace records the dataset template and a fingerprint
of the token it was for: it is only ever sent to that account and dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml_intern.secrets import redact

PENDING_DIR = "trace-uploads-pending"  # traces not uploaded yet, one JSON file per thread
MAX_RETRIED = 20  # pending traces retried at one start
_guard = threading.Lock()
_locks: dict[str, tuple[threading.Lock, threading.Lock]] = {}  # home -> (upload lock, file lock)
_uploaded: dict[str, str] = {}  # pending file -> the dataset URL of its last upload
LOG_NAME = "trace-uploads.log"
Push = Callable[[Any, str, str], str]  # (access, jsonl, path in the dataset) -> the dataset URL


def _home_locks(home: Path) -> tuple[threading.Lock, threading.Lock]:
    with _guard:
        return _locks.setdefault(str(home), (threading.Lock(), threading.Lock()))


def fingerprint(token: str | None) -> str:
    """A short hash naming the token a trace was for (never the token itself)."""
    return hashlib.sha256((token or "").encode()).hexdigest()[:16]


def owner(access: Any) -> dict[str, str]:
    """The account and dataset a trace is for."""
    return {"repo_template": access.repo_template, "token_sha": fingerprint(access.token)}


def pending_file(home: Path, path_in_repo: str) -> Path:
    return home / PENDING_DIR / f"{Path(path_in_repo).stem}.json"


def keep_pending(home: Path, jsonl: str, path_in_repo: str, access: Any) -> bool:
    """Keep a trace (already redacted) until it is uploaded, readable by the user only; it replaces an older
    trace of the same thread. False when it could not be kept."""
    with suppress(OSError), _home_locks(home)[1]:
        (home / PENDING_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        target = pending_file(home, path_in_repo)
        partial = target.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"path": path_in_repo, "jsonl": jsonl, **owner(access)}, file)
        os.replace(partial, target)
        return True
    return False


def read_pending(file: Path) -> dict[str, str] | None:
    """A kept trace, or None when it is gone or unreadable."""
    with suppress(OSError, ValueError, TypeError, KeyError):
        entry = json.loads(file.read_text(encoding="utf-8"))
        if str(entry["path"]).startswith("sessions/") and ".." not in entry["path"]:
            return {key: str(value) for key, value in entry.items()}
    return None


def belongs(entry: Mapping[str, str], access: Any) -> bool:
    """Whether a kept trace was for this token's account and this dataset."""
    return all(entry.get(key) == value for key, value in owner(access).items())


def upload_pending(access: Any, home: Path, path_in_repo: str, push: Push) -> str | None:
    """Upload the newest trace kept for `path_in_repo` (blocking; one upload per home at a time); the dataset
    URL, or None with the trace still kept."""
    upload_lock, file_lock = _home_locks(home)
    file = pending_file(home, path_in_repo)
    with upload_lock:
        with file_lock:
            entry = read_pending(file)
        if entry is None:  # already sent (the newest content) by an earlier upload
            return _uploaded.get(str(file))
        if not belongs(entry, access):
            log_failure(home, path_in_repo, "kept for another account or dataset: not uploaded")
            return None
        url = send(push, access, entry["jsonl"], entry["path"], home)
        with file_lock:
            if url and (read_pending(file) or {}).get("jsonl") == entry["jsonl"]:  # nothing newer came
                file.unlink(missing_ok=True)
        if url:
            _uploaded[str(file)] = url
        return url


def pending_paths(home: Path, access: Any) -> list[str]:
    """The paths of the traces kept for this account and dataset, newest first (at most MAX_RETRIED): old ones
    that keep failing never crowd out the trace of a turn cut off at the last exit."""
    with suppress(OSError):
        files = sorted((home / PENDING_DIR).glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
        entries = (read_pending(file) for file in files)
        return [entry["path"] for entry in entries if entry and belongs(entry, access)][:MAX_RETRIED]
    return []


def log_failure(home: Path, what: str, problem: str) -> None:
    """Append one line to the upload log; a log that cannot be written is given up on silently."""
    with suppress(OSError):
        home.mkdir(parents=True, exist_ok=True)
        with (home / LOG_NAME).open("a", encoding="utf-8") as log:
            line = " ".join(redact(problem).split())[:500]  # one line per failure
            log.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {what}: {line}\n")


def send(push: Push, access: Any, jsonl: str, path_in_repo: str, home: Path) -> str | None:
    """Push one trace (blocking); the dataset URL, or None with the failure logged."""
    from ml_intern.tools.hub.failures import hub_failure, is_hub_failure

    try:
        return push(access, jsonl, path_in_repo)
    except Exception as exc:  # any failure: logged, never raised into the run
        if not is_hub_failure(exc):
            log_failure(home, path_in_repo, f"{type(exc).__name__}: {exc}")
        else:
            log_failure(home, path_in_repo, hub_failure(exc, "uploading the trace", access.endpoint))
    return None


class TraceUpload:
    """An upload running in a daemon thread; `wait` lets a headless run give it a moment before exiting."""

    def __init__(self, job: Callable[[], str | None]) -> None:
        self.url: str | None = None  # the dataset URL once uploaded
        self._thread = threading.Thread(target=self._run, args=(job,), daemon=True, name="trace-upload")
        self._thread.start()

    def _run(self, job: Callable[[], str | None]) -> None:
        with suppress(Exception):  # upload_trace logs its failures: no traceback may reach the terminal
            self.url = job()

    def wait(self, timeout: float | None = None) -> str | None:
        """Wait up to `timeout` seconds; the URL when the upload succeeded by then."""
        self._thread.join(timeout)
        return self.url
