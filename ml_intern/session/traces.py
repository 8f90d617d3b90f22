"""Opt-in trace upload to the user's own PRIVATE Hub dataset `{hf_user}/ml-intern-sessions` (config key
`personal_trace_repo_template`).

Off unless the config sets `share_traces` or `save_sessions`. After a turn the thread is exported as Claude
Code JSONL (session/export.py) and pushed to `sessions/<date>/<thread>.jsonl` from a daemon thread: an upload
never blocks or fails a run. Its requests are retried by the Hub client (config section `http`; sending
the same trace twice is harmless); a failed upload is logged to `trace-uploads.log` in ML_INTERN_HOME, never
shown on the terminal. A trace is kept in `trace-uploads-pending/` until its upload succeeds; one that failed
or was cut off (a headless run exiting) is retried in the background at the next start (trace_pending.py).
`/share-traces public|private` flips the dataset's visibility.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
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
from ml_intern.session.trace_pending import (  # noqa: F401  (LOG_NAME, TraceUpload: re-exported)
    LOG_NAME,
    PENDING_DIR,
    TraceUpload,
    keep_pending,
    log_failure,
    pending_paths,
    send,
    upload_pending,
)

if TYPE_CHECKING:
    from ml_intern.tools.http import HttpRetry

DATASET_NAME = "ml-intern-sessions"
REPO_TEMPLATE = "{hf_user}/" + DATASET_NAME  # the default of `personal_trace_repo_template`
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


def upload_trace(access: HubAccess, jsonl: str, path_in_repo: str, home: Path) -> str | None:
    """Keep the trace pending and upload it (blocking); the dataset URL, or None with it kept for the next
    start."""
    if not keep_pending(home, jsonl, path_in_repo, access):  # not kept (a full disk): sent as it is
        return send(push_trace, access, jsonl, path_in_repo, home)
    return upload_pending(access, home, path_in_repo, push_trace)


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
        urls = [upload_pending(access, home, path, push_trace) for path in pending_paths(home, access)]
        return next((url for url in reversed(urls) if url), None)

    return TraceUpload(job)


def retry_once(config: AgentConfig, environ: Mapping[str, str]) -> None:
    """Retry the pending traces unless this process already did for this home (never blocks)."""
    if str(home_dir(environ)) not in _started:
        with suppress(Exception):  # a retry must never fail a start
            retry_pending_uploads(config, environ)


async def upload_thread_trace(
    session: Any, thread_id: str, config: AgentConfig | None, environ: Mapping[str, str]
) -> TraceUpload | None:
    """After a turn, if the user opted in: export the thread and start its upload (None: nothing started)."""
    if config is None or not uploads_enabled(config):
        return None
    access, home = HubAccess.from_environ(environ, config), home_dir(environ)
    retry_once(config, environ)  # a front-end that did not retry them at start: now, once
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
    # Kept before this returns, so a later turn's trace always replaces this one (the newest is sent).
    if not await asyncio.to_thread(keep_pending, home, jsonl, path, access):
        return TraceUpload(lambda: send(push_trace, access, jsonl, path, home))
    return TraceUpload(lambda: upload_pending(access, home, path, push_trace))


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
