"""Opt-in trace upload to the user's own PRIVATE Hub dataset `{hf_user}/ml-intern-sessions` (config key
`personal_trace_repo_template`).

Off unless the config sets `share_traces` or `save_sessions`. After a turn the thread is exported as Claude
Code JSONL (session/export.py) and pushed to `sessions/<date>/<thread>.jsonl` from a daemon thread: an upload
never blocks or fails a run. Its requests are retried by the Hub client (config section `http`; sending
the same trace twice is harmless); a failed upload is logged to `trace-uploads.log` in ML_INTERN_HOME, never
shown on the terminal. A trace is kept in `trace-uploads-pending/` until its upload succeeds; one that failed
or was cut off (a headless run exiting) is retried in the background at the next start.
`/share-traces public|private` flips the dataset's visibility.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.paths import home_dir
from ml_intern.secrets import redact
from ml_intern.session.export import export_thread

if TYPE_CHECKING:
    from ml_intern.tools.http import HttpRetry

DATASET_NAME = "ml-intern-sessions"
REPO_TEMPLATE = "{hf_user}/" + DATASET_NAME  # the default of `personal_trace_repo_template`
LOG_NAME = "trace-uploads.log"
PENDING_DIR = "trace-uploads-pending"  # traces not uploaded yet, one JSON file per thread
MAX_RETRIED = 20  # pending traces retried at one start
_started: set[str] = set()  # ML_INTERN_HOMEs whose pending traces this process has retried
DATASET_CARD = """---
pretty_name: ml-intern session traces
tags:
- agent-traces
- ml-intern
- claude-code
configs:
- config_name: default
  data_files:
  - split: train
    path: "sessions/**/*.jsonl"
---

# ml-intern session traces

One ml-intern thread per file, in the Claude Code JSONL format the Hugging Face Agent Trace Viewer reads.
Known token shapes and secret environment values were redacted automatically; nothing was reviewed by a
person. Traces can hold prompts, code, paths and tool output: read them before making this dataset public.
"""


@dataclass
class HubAccess:
    """Where the Hub is, the token to use there, and how to retry its requests."""

    endpoint: str = "https://huggingface.co"
    token: str | None = field(default=None, repr=False)
    retry: HttpRetry | None = None  # None: the Hub client's current policy
    repo_template: str = REPO_TEMPLATE  # the trace dataset; `{hf_user}` is the token's user name

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], config: AgentConfig | None = None) -> HubAccess:
        from ml_intern.tools.http import HttpRetry

        endpoint = (environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        retry = HttpRetry.from_config(config) if config is not None else None
        template = config.personal_trace_repo_template if config is not None else REPO_TEMPLATE
        return cls(endpoint, environ.get("HF_TOKEN") or None, retry, template)

    def api(self) -> Any:
        from ml_intern.tools.hub.client import hub_api

        return hub_api(self.endpoint, self.token, self.retry)


def uploads_enabled(config: AgentConfig) -> bool:
    """Whether the user opted in to trace uploads."""
    return config.share_traces or config.save_sessions


def trace_repo_id(api: Any, template: str = REPO_TEMPLATE) -> str:
    """The trace dataset's id: `template` (`{hf_user}/ml-intern-sessions`) for the token's user."""
    return template.replace("{hf_user}", api.whoami()["name"]) if "{hf_user}" in template else template


def session_path(thread_id: str, created_at: float) -> str:
    """Where a thread's trace goes in the dataset (re-uploads of a thread replace it)."""
    return f"sessions/{datetime.fromtimestamp(created_at, UTC):%Y-%m-%d}/{thread_id}.jsonl"


def push_trace(access: HubAccess, jsonl: str, path_in_repo: str) -> str:
    """Create the private dataset if needed and commit the trace (plus a card the first time); its URL."""
    from huggingface_hub import CommitOperationAdd

    from ml_intern.tools.hub.client import repeatable_writes

    api = access.api()
    with repeatable_writes():  # creating with exist_ok, or committing the same file again, changes nothing
        repo_id = trace_repo_id(api, access.repo_template)
        # exist_ok keeps the visibility the user chose
        api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=jsonl.encode())]
        if not api.file_exists(repo_id, "README.md", repo_type="dataset"):
            card = CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=DATASET_CARD.encode())
            operations.append(card)
        message = f"Add session {Path(path_in_repo).stem}"
        api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset")
    return f"{access.endpoint}/datasets/{repo_id}"


def log_failure(home: Path, what: str, problem: str) -> None:
    """Append one line to the upload log; a log that cannot be written is given up on silently."""
    with suppress(OSError):
        home.mkdir(parents=True, exist_ok=True)
        with (home / LOG_NAME).open("a", encoding="utf-8") as log:
            line = " ".join(redact(problem).split())[:500]  # one line per failure
            log.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {what}: {line}\n")


def pending_file(home: Path, path_in_repo: str) -> Path:
    return home / PENDING_DIR / f"{Path(path_in_repo).stem}.json"


def keep_pending(home: Path, jsonl: str, path_in_repo: str) -> None:
    """Keep a trace (already redacted) until it is uploaded, readable by the user only."""
    with suppress(OSError):
        (home / PENDING_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(pending_file(home, path_in_repo), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"path": path_in_repo, "jsonl": jsonl}, file)


def upload_trace(access: HubAccess, jsonl: str, path_in_repo: str, home: Path) -> str | None:
    """Push one trace (blocking); the dataset URL, or None with the failure logged and the trace kept
    pending for the next start."""
    from ml_intern.tools.hub.failures import hub_failure, is_hub_failure

    keep_pending(home, jsonl, path_in_repo)
    try:
        url = push_trace(access, jsonl, path_in_repo)
        pending_file(home, path_in_repo).unlink(missing_ok=True)
        return url
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


def pending_traces(home: Path) -> list[tuple[str, str]]:
    """The traces kept pending, oldest first, as (jsonl, path in the dataset); unreadable ones skipped."""
    files = sorted((home / PENDING_DIR).glob("*.json"), key=lambda f: f.stat().st_mtime)
    traces = []
    for file in files[:MAX_RETRIED]:
        with suppress(OSError, ValueError, TypeError, KeyError):
            entry = json.loads(file.read_text(encoding="utf-8"))
            if str(entry["path"]).startswith("sessions/") and ".." not in entry["path"]:
                traces.append((str(entry["jsonl"]), str(entry["path"])))
    return traces


def retry_pending_uploads(config: AgentConfig, environ: Mapping[str, str]) -> TraceUpload | None:
    """At start, if the user opted in: upload the pending traces in the background (None: nothing to do)."""
    home = home_dir(environ)
    _started.add(str(home))
    if not uploads_enabled(config) or not (home / PENDING_DIR).is_dir():
        return None
    access = HubAccess.from_environ(environ, config)
    if not access.token or not any((home / PENDING_DIR).glob("*.json")):
        return None

    def job() -> str | None:  # the traces are read in the background too: they can be large
        urls = [upload_trace(access, jsonl, path, home) for jsonl, path in pending_traces(home)]
        return next((url for url in reversed(urls) if url), None)

    return TraceUpload(job)


async def upload_thread_trace(
    session: Any, thread_id: str, config: AgentConfig, environ: Mapping[str, str]
) -> TraceUpload | None:
    """After a turn, if the user opted in: export the thread and start its upload (None: nothing started)."""
    if not uploads_enabled(config):
        return None
    access, home = HubAccess.from_environ(environ, config), home_dir(environ)
    if str(home) not in _started:  # a front-end that did not retry them at start: now, once
        _started.add(str(home))
        retry_pending_uploads(config, environ)
    if not access.token:
        log_failure(home, thread_id, "no HF_TOKEN: trace not uploaded (run `hf auth login` or set HF_TOKEN)")
        return None
    try:
        info = await session.threads.find(thread_id)
        jsonl = await export_thread(session, info.thread_id, "jsonl", environ)
    except Exception as exc:  # sharing must never fail the run
        log_failure(home, thread_id, f"export failed: {type(exc).__name__}: {exc}")
        return None
    path = session_path(info.thread_id, info.created_at)
    return TraceUpload(lambda: upload_trace(access, jsonl, path, home))


def trace_visibility(access: HubAccess, private: bool | None = None) -> str:
    """Show (None) or set the trace dataset's visibility (blocking); one line for the user, or a UserError."""
    from huggingface_hub.errors import RepositoryNotFoundError

    if not access.token:
        raise UserError("sharing traces needs a Hugging Face token: run `hf auth login` or set HF_TOKEN")
    api = access.api()
    repo_id = access.repo_template.replace("{hf_user}/", "")
    try:
        repo_id = trace_repo_id(api, access.repo_template)
        if private is not None:
            api.update_repo_settings(repo_id, private=private, repo_type="dataset")
        is_private = api.repo_info(repo_id, repo_type="dataset").private
    except RepositoryNotFoundError:
        raise UserError(f"no trace dataset {repo_id} yet: it is created by the first upload") from None
    except Exception as exc:
        raise UserError(f"could not reach the trace dataset {repo_id}: {redact(str(exc))[:200]}") from None
    return f"{repo_id} is {'private' if is_private else 'public'}: {access.endpoint}/datasets/{repo_id}"
